"""Speech recognition building blocks: pronunciation lexicons, n-gram language models, acoustic models
and alignment. Import the submodules (``voxa.asr.lexicon``, ``voxa.asr.lm``, ...) directly."""
