"""Neural systems of the ASR recipe task: DNN-HMM hybrid, RNN-CTC and Listen-Attend-Spell.

:func:`train_dnn_hmm` trains a hybrid network on the forced alignments of the GMM-HMM system it
replaces (triphones when trained, else monophones) and returns an :class:`voxa.tasks.asr.AsrSystem`
that decodes through the same graphs and decoder with scaled likelihoods. :func:`train_e2e` trains a
CTC or LAS model on the transcripts alone; :func:`decode_e2e` decodes with it: ``greedy``, ``loop``
(beam search, no LM) or an n-gram order ``n`` (beam search with shallow fusion of an n-gram LM trained
on the training transcripts: words for character units, tokens for ``words`` units).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from voxa.asr.units import WORD_SEP, Units
from voxa.errors import VoxaError

log = logging.getLogger(__name__)

FRAME_SHIFT = 0.01
E2E_SYSTEMS = ("ctc", "las")


# ------------------------------------------------------------------------------------------ hybrid
def hybrid_targets(source: Any, mono: Any, feats: Mapping[str, torch.Tensor], sil_prob: float,
                   texts: Mapping[str, list[str]] | None = None, log_likes: Any = None
                   ) -> dict[str, torch.Tensor]:
    """``{utt: [T] pdf ids}``: forced alignments of the training transcripts under ``source`` (a mono or
    tri :class:`voxa.tasks.asr.AsrSystem`; a triphone system is aligned through the phone sequence the
    monophone alignment chose, as Kaldi's ``align_si.sh`` would through its own graph). ``texts``
    (default: the monophone system's training transcripts) may add perturbed copies; ``log_likes``
    (a hybrid network's scaled likelihoods) realigns with the network instead of the GMMs: the phone
    sequences stay the GMM alignment's, only the state boundaries move."""
    from voxa.asr.align import build_chain
    from voxa.asr.training import align_utterances, best_pron
    from voxa.asr.triphone import fixed_chain, instances

    texts = mono.train_texts if texts is None else texts
    chains = {k: build_chain(mono.am, [best_pron(mono.lexicon, w) for w in v], sil_prob)
              for k, v in texts.items() if k in feats}
    ali = align_utterances(mono.am, feats, chains)
    if source.am.tree is None:
        if log_likes is None:
            return {k: a.pdfs for k, a in ali.items()}
        fixed = chains
    else:
        fixed = {k: fixed_chain(source.am, instances(a, chains[k])[0]) for k, a in ali.items()}
    return {k: a.pdfs for k, a in align_utterances(source.am, feats, fixed, log_likes=log_likes).items()}


def train_dnn_hmm(systems: Mapping[str, Any], feats: Mapping[str, torch.Tensor], cfg: Any, exp: Path,
                  texts: Mapping[str, list[str]] | None = None) -> Any:
    """The hybrid system on top of ``systems`` (``mono`` and maybe ``tri``), trained in ``exp`` on
    ``texts`` (default: the GMM-HMM's training transcripts; perturbed copies may be added)."""
    from voxa.asr.hybrid import train_hybrid
    from voxa.tasks.asr import AsrSystem

    hc = cfg.dnn_hmm
    name = hc.source if hc.source != "auto" else ("tri" if "tri" in systems else "mono")
    if name not in systems:
        raise VoxaError(f"dnn_hmm.source={name}: that GMM-HMM system is not trained (add it to systems)")
    src, mono = systems[name], systems["mono"]
    t0 = time.perf_counter()
    targets = hybrid_targets(src, mono, feats, cfg.sil_prob, texts)
    model = train_hybrid(feats, targets, src.am.num_pdfs, hc, exp / "pass0")
    system = AsrSystem(src.am, src.lexicon, src.train_texts, 0.0, scorer=model,
                       acoustic_scale=hc.acoustic_scale)
    for k in range(hc.realign):
        targets = hybrid_targets(src, mono, feats, cfg.sil_prob, texts,
                                 log_likes=model.pseudo_log_likelihoods)
        model = train_hybrid(feats, targets, src.am.num_pdfs, hc, exp / f"pass{k + 1}")
        system.scorer = model
    # the hybrid's training time includes the GMM-HMM system whose alignments it learns from
    system.seconds = src.seconds + time.perf_counter() - t0
    model.training_summary["source"] = name
    return system


def perturbed_training_data(records: Sequence[Any], feats: Mapping[str, torch.Tensor],
                            texts: Mapping[str, list[str]], cfg: Any) -> tuple[dict, dict]:
    """Features and transcripts with ``cfg.perturb.copies`` speed-perturbed copies of every training
    utterance added (ids ``<utt>#sp<k>``), for the neural systems; the clean ones are kept."""
    from voxa.features.perturb import perturbed_features

    recs = [r for r in records if r.id in texts]
    copies = perturbed_features(recs, cfg.features, cfg.perturb)
    f, t = dict(feats), dict(texts)
    for r, cs in zip(recs, copies):
        for j, x in enumerate(cs):
            f[f"{r.id}#sp{j}"] = x
            t[f"{r.id}#sp{j}"] = texts[r.id]
    return f, t


# ---------------------------------------------------------------------------------- CTC and LAS
@dataclass
class E2eSystem:
    """An end-to-end system: ``kind`` (``ctc`` or ``las``), the network, its output ``units``, the
    training transcripts (for LMs), the lexicon (vocabulary of the LMs and of lexicon-constrained
    search) and the training time."""

    kind: str
    model: Any
    units: Units
    train_texts: dict[str, list[str]]
    lexicon: Any
    seconds: float

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _las_specials() -> list[str]:
    from voxa.nn import las

    return list(las.SPECIALS)


def train_e2e(kind: str, texts: Mapping[str, list[str]], feats: Mapping[str, torch.Tensor], lexicon: Any,
              cfg: Any, exp: Path) -> E2eSystem:
    """Train a ``ctc`` or ``las`` system on ``{utt: words}`` transcripts."""
    texts = {k: v for k, v in texts.items() if v and k in feats}
    t0 = time.perf_counter()
    if kind == "ctc":
        from voxa.asr.ctc_model import train_ctc

        units = Units.from_texts(texts.values(), cfg.ctc.units, offset=1)
        targets = {k: units.encode(v) for k, v in texts.items()}
        model = train_ctc(feats, targets, units.vocab(["<blank>"]), cfg.ctc, exp)
    elif kind == "las":
        from voxa.asr.las_training import train_las

        specials = _las_specials()
        units = Units.from_texts(texts.values(), cfg.las.units, offset=len(specials))
        targets = {k: units.encode(v) for k, v in texts.items()}
        model = train_las(feats, targets, units.vocab(specials), cfg.las, exp)
    else:
        raise VoxaError(f"unknown end-to-end system {kind!r}; one of {', '.join(E2E_SYSTEMS)}")
    return E2eSystem(kind, model, units, dict(texts), lexicon, time.perf_counter() - t0)


def _lm(system: E2eSystem, order: int, cfg: Any, exp: Path) -> Any:
    from voxa.asr.lm import NgramLM

    texts = list(system.train_texts.values())
    if system.kind == "las" and system.units.kind == "chars":
        # the speller emits characters: its LM is a character n-gram over spelled transcripts
        seqs = [list(WORD_SEP.join(v)) for v in texts]
        return NgramLM.fit(seqs, order=order, smoothing=cfg.smoothing, vocab=system.units.symbols)
    vocab = sorted({w for v in texts for w in v} | set(getattr(system.lexicon, "words", [])))
    lm = NgramLM.fit(texts, order=order, smoothing=cfg.smoothing, vocab=vocab)
    lm.write_arpa(exp / f"lm{order}.arpa")
    return lm


def decode_e2e(system: E2eSystem, feats: Mapping[str, torch.Tensor], ids: Sequence[str], grammar: Any,
               cfg: Any, exp: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Hypotheses ``{id: words}`` and timing; ``grammar`` is ``greedy``, ``loop`` (beam search without
    an LM), ``isolated`` (the best beam hypothesis that is one lexicon word: isolated-word recognition)
    or an n-gram order."""
    lm = _lm(system, int(grammar), cfg, exp) if isinstance(grammar, int) else None
    search = _searcher(system, grammar, lm, cfg)
    words = set(system.lexicon.words)
    hyps, t_net, t_search, frames = {}, 0.0, 0.0, 0
    for k in tqdm(ids, desc=f"decode {system.kind} ({grammar})", unit="utt", leave=False):
        t0 = time.perf_counter()
        # CTC: the network runs once, then the search over its posteriors; LAS searches with the network
        x = system.model.log_probs(feats[k]) if system.kind == "ctc" else feats[k]
        t1 = time.perf_counter()
        out = search(x)
        t2 = time.perf_counter()
        t_net, t_search = t_net + (t1 - t0), t_search + (t2 - t1)
        hyps[k] = _pick(system.units, out, grammar, words)
        frames += feats[k].shape[0]
    audio = frames * FRAME_SHIFT
    return hyps, {"likelihood_seconds": round(t_net, 2), "search_seconds": round(t_search, 2),
                  "audio_seconds": round(audio, 1), "rtf": round((t_net + t_search) / max(audio, 1e-9), 4)}


def _pick(units: Units, nbest: list[list[int]], grammar: Any, words: set[str]) -> list[str]:
    """The words of the best hypothesis (for ``isolated``: the best that is one lexicon word)."""
    if grammar == "isolated":
        for ids in nbest:
            hyp = units.decode(ids)
            if len(hyp) == 1 and hyp[0] in words:
                return hyp
    return units.decode(nbest[0]) if nbest else []


def _searcher(system: E2eSystem, grammar: Any, lm: Any, cfg: Any) -> Any:
    """``x -> n-best id lists`` for one decoding: CTC posteriors ``[T', V]`` or LAS features ``[T, D]``."""
    model = system.model
    if system.kind == "ctc":
        from voxa.asr.ctc import ctc_greedy, ctc_prefix_beam_search

        c = cfg.ctc
        if grammar == "greedy":
            return lambda logp: [ctc_greedy(logp)]
        chars = system.units.kind == "chars"
        lexicon = set(system.lexicon.words) if chars and (c.lexicon or grammar == "isolated") else None
        kw = {"beam": c.beam, "lm": lm, "lm_weight": c.lm_weight if lm else 0.0,
              "word_bonus": c.word_bonus if lm else 0.0, "space": system.units.separator if chars else None,
              "tokens": model.cfg.vocab, "lexicon": lexicon, "nbest": c.beam if grammar == "isolated" else 1}
        return lambda logp: [list(ids) for ids, _ in ctc_prefix_beam_search(logp, **kw)]
    from voxa.nn.las import char_lm_scorer

    c = cfg.las
    if grammar == "greedy":
        return lambda x: [list(model.greedy(x[None], torch.tensor([x.shape[0]]))[0])]
    # one scorer for the whole decoding, so its cache of LM histories serves every utterance
    scorer = char_lm_scorer(lm, model.cfg.vocab, model) if lm is not None else None
    return lambda x: [list(ids) for ids, _ in model.beam_search(
        x, beam=c.beam, length_norm=c.length_norm, lm=scorer, lm_weight=c.lm_weight if scorer else 0.0)]


def e2e_alignment_plots(system: E2eSystem, feats: Mapping[str, torch.Tensor], utt: str, words: list[str],
                        exp: Path) -> list[Path]:
    """The CTC forced-alignment plot or the LAS attention plot of one utterance (PNG in ``exp``)."""
    out = []
    x = feats[utt]
    if system.kind == "ctc":
        from voxa.asr.ctc import ctc_alignment_plot, ctc_forced_align

        logp = system.model.log_probs(x)
        targets = system.units.encode(words)
        labels = ctc_forced_align(logp, targets)
        out.append(ctc_alignment_plot(logp, labels, system.model.cfg.vocab, exp / f"ctc_alignment_{utt}.png",
                                      title=f"CTC forced alignment: {' '.join(words)}"))
    else:
        from voxa.nn.las import plot_attention

        targets = torch.tensor(system.units.encode(words))
        w = system.model.attention(x, targets)
        toks = [system.model.cfg.vocab[i] for i in targets.tolist()] + ["<eos>"]
        out.append(plot_attention(w, exp / f"las_attention_{utt}.png", tokens=toks,
                                  title=f"LAS attention: {' '.join(words)}"))
    return out


def save_e2e(system: E2eSystem, path: Path) -> Path:
    """The network with its units and training summary in the header."""
    return system.model.save(path, units={"symbols": system.units.symbols, "kind": system.units.kind,
                                          "offset": system.units.offset},
                             training=getattr(system.model, "training_summary", {}))


__all__ = ["E2E_SYSTEMS", "E2eSystem", "decode_e2e", "e2e_alignment_plots", "hybrid_targets",
           "perturbed_training_data", "save_e2e", "train_dnn_hmm", "train_e2e"]
