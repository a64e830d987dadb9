"""Alignment through a per-utterance graph, choosing among pronunciations: Kaldi's
``compile-train-graphs`` + ``gmm-align-compiled``, and pronunciation counts for ``lexiconp.txt``.

For each utterance the transcript becomes a linear word acceptor G; ``H ∘ (L ∘ G)`` with the full
lexicon L (every pronunciation, optional silence) is searched with a wide beam by Kaldi's decoder.
The best path says which pronunciation each word took; the counts re-estimate the pronunciation
probabilities (:meth:`voxa.asr.lexicon.Lexicon.reestimate`, Kaldi's ``get_prons`` +
``dict_dir_add_pronprobs.sh``). Monophone models only.

Example:
    >>> import torch
    >>> from voxa.asr.acoustic import AcousticModel
    >>> am = AcousticModel.init_flat(["SIL", "a", "b"], 1, torch.zeros(1), torch.ones(1), silence_states=1)
    >>> am.means[am.pdfs_of("a")] = 4.0; am.means[am.pdfs_of("b")] = -4.0; am._cache = None
    >>> lex = {"X": [(("a",), 1.0), (("b",), 1.0)]}
    >>> x = torch.cat([torch.zeros(4), torch.full((9,), -4.0), torch.zeros(4)])[:, None]
    >>> pron_counts(am, lex, {"u": x}, {"u": ["X"]}, acoustic_scale=1.0)
    {('X', ('b',)): 1.0}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from voxa.asr.acoustic import AcousticModel
from voxa.asr.graph import _compile, _remove_disambig, _word_table, hmm_fst, lexicon_fst
from voxa.asr.lexicon import pron_options
from voxa.errors import VoxaError

log = logging.getLogger(__name__)


def _split(phones: list[str], words: Sequence[str], prons: Any) -> list[tuple[str, ...]] | None:
    """Which pronunciation of each word spells ``phones`` in order (backtracking over prefixes)."""
    out: list[tuple[str, ...]] = []

    def rec(i: int, k: int) -> bool:
        if k == len(words):
            return i == len(phones)
        for pr, _ in sorted(pron_options(prons, words[k]), key=lambda x: -len(x[0])):
            if tuple(phones[i:i + len(pr)]) == pr:
                out.append(pr)
                if rec(i + len(pr), k + 1):
                    return True
                out.pop()
        return False

    return out if rec(0, 0) else None


def pron_counts(am: AcousticModel, prons: Any, feats: Mapping[str, torch.Tensor],
                transcripts: Mapping[str, Sequence[str]], beam: float = 40.0, acoustic_scale: float = 0.1,
                sil_prob: float = 0.5) -> dict[tuple[str, tuple[str, ...]], float]:
    """``{(word, pronunciation): count}`` over the best paths of every utterance's training graph."""
    import kaldi_decoder
    import kaldifst
    import numpy as np

    if am.context_dependent:
        raise VoxaError("pronunciation counts need a monophone model")
    words = sorted({w for v in transcripts.values() for w in v})
    table = _word_table(words)
    table["#0"] = len(table)
    lex, first_dis, _ = lexicon_fst(am, prons, words, table, sil_prob)
    kaldifst.arcsort(lex, sort_type="olabel")
    h = hmm_fst(am, first_dis)
    kaldifst.arcsort(h, sort_type="olabel")
    pdf_phone = am.pdf_phone()
    first_pdf = torch.zeros(am.num_pdfs, dtype=torch.bool)
    first_pdf[torch.tensor([am.pdfs_of(p)[0] for p in am.phones])] = True
    opts = kaldi_decoder.FasterDecoderOptions()
    opts.beam = beam
    counts: dict[tuple[str, tuple[str, ...]], float] = {}
    failed = 0
    for k, ws in transcripts.items():
        if k not in feats or not ws:
            continue
        g = _compile([f"{i} {i + 1} {table[w]} {table[w]} 0" for i, w in enumerate(ws)] + [f"{len(ws)} 0"])
        kaldifst.arcsort(g, sort_type="ilabel")
        lg = _remove_disambig(kaldifst.compose(lex, g), first_dis)
        kaldifst.arcsort(lg, sort_type="ilabel")
        hlg = kaldifst.compose(h, lg)
        ll = np.ascontiguousarray((am.log_likelihoods(feats[k]) * acoustic_scale).numpy())
        dec = kaldi_decoder.FasterDecoder(hlg, opts)
        dec.decode(kaldi_decoder.DecodableCtc(ll))
        ok, best = dec.get_best_path()
        if not ok or not dec.reached_final():
            failed += 1
            continue
        _, isyms, _, _ = kaldifst.get_linear_symbol_sequence(best)
        pdfs = torch.tensor([i - 1 for i in isyms])
        new = first_pdf[pdfs].clone()
        new[1:] &= pdfs[1:] != pdfs[:-1]
        seq = [am.phones[int(p)] for p in pdf_phone[pdfs[new]]]
        seq = [p for p in seq if p != am.silence]
        split = _split(seq, ws, prons)
        if split is None:
            failed += 1
            continue
        for w, pr in zip(ws, split):
            counts[(w, pr)] = counts.get((w, pr), 0.0) + 1.0
    if failed:
        log.warning("pronunciation counts: %d utterance(s) did not align through their graph", failed)
    return counts
