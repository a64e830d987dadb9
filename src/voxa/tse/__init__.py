"""Distance-based single-channel target speech extraction (Shi, Yen, Nakadai 2024).

``voxa.tse.sim`` builds impulse-response banks (simulated rooms D1-D3, real banks such as AIR);
``voxa.tse.bank`` stores and reads them; ``voxa.tse.data`` mixes speech on the fly.
"""
