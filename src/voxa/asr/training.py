"""Monophone GMM-HMM training from a flat start, as Kaldi's ``steps/train_mono.sh`` does it.

1. Every state starts as one Gaussian at the global mean and variance (``gmm-init-mono``).
2. Iteration 0 takes an equal alignment: the transcript's states share each utterance's frames.
3. Each later iteration re-aligns by Viterbi on the realignment iterations (every iteration for the
   first ten, then every other or third, Kaldi's schedule), accumulates the statistics of the
   alignment, re-estimates (ML), and mixes up: the total Gaussian count grows linearly to
   ``max_gaussians`` over the first ``mixup_iters`` iterations, shared out by occupancy^0.25.

Statistics are summed over utterances in float64 and all-reduced over ``torch.distributed`` ranks
(each rank passes its own shard of utterances; the global moments and the phone set are agreed across
ranks too), so several processes train one model.

Example:
    >>> import torch
    >>> from voxa.asr.training import MonoConfig, train_mono
    >>> g = torch.Generator().manual_seed(0)
    >>> means = {"a": 2.0, "b": -2.0, "SIL": 0.0}
    >>> def utt(words):  # 10 silence frames, then 12 frames per word, then 10 of silence
    ...     sil = [torch.zeros(10, 2)]
    ...     parts = sil + [torch.full((12, 2), means[w]) for w in words] + sil
    ...     return torch.cat(parts) + 0.3 * torch.randn(sum(len(p) for p in parts), 2, generator=g)
    >>> texts = {f"u{i}": w for i, w in enumerate([["a", "b"], ["b", "a"], ["a"], ["b", "b"]] * 3)}
    >>> feats = {k: utt(w) for k, w in texts.items()}
    >>> prons = {"a": [("a",)], "b": [("b",)]}
    >>> am = train_mono(feats, texts, prons, MonoConfig(num_iters=6, max_gaussians=20), progress=False)
    >>> float(am.means[am.pdf_of("a", 1), 0, 0]) > 1.0
    True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from voxa.asr.acoustic import AcousticModel, GmmStats
from voxa.asr.align import Alignment, Chain, align_batch, build_chain, equal_alignment
from voxa.errors import ConfigError, VoxaError
from voxa.gmm.distributed import is_distributed

log = logging.getLogger(__name__)

Prons = Mapping[str, Sequence[tuple[Sequence[str], float] | Sequence[str]]]


@dataclass
class MonoConfig:
    """Monophone training settings (Kaldi's ``train_mono.sh`` defaults where they apply).

    Attributes:
        num_iters: training iterations (Kaldi: 40).
        max_gaussians: total Gaussians at the end of mixing up (Kaldi: 1000).
        mixup_iters: iterations over which the count grows (Kaldi's ``max_iter_inc``: 30).
        realign_iters: iterations that re-align first; ``None`` is Kaldi's schedule.
        n_states: emitting states per phone; ``silence_states`` for silence (Kaldi: 3 and 5).
        silence: the silence phone; ``sil_prob`` the probability of silence at a word boundary.
        power: mixing-up exponent on occupancy.
        batch_size: utterances aligned together.
        min_count: components with fewer frames are removed.
    """

    num_iters: int = 40
    max_gaussians: int = 1000
    mixup_iters: int = 30
    realign_iters: list[int] | None = None
    n_states: int = 3
    silence_states: int = 5
    silence: str = "SIL"
    sil_prob: float = 0.5
    power: float = 0.25
    batch_size: int = 64
    min_count: float = 3.0
    self_loop: float = 0.75
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for name in ("num_iters", "max_gaussians", "n_states", "silence_states", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}={v!r} must be a positive integer")
        if not 0.0 <= self.sil_prob < 1.0:
            raise ConfigError(f"sil_prob={self.sil_prob!r} must be in [0, 1)")

    def realign_at(self) -> set[int]:
        if self.realign_iters is not None:
            return set(self.realign_iters)
        # Kaldi's train_mono.sh: 1..10, 12, 14, ..., 20, 23, 26, ..., 38
        return set(range(1, 11)) | set(range(12, 21, 2)) | set(range(23, 39, 3))


def best_pron(prons: Prons, word: str) -> list[str]:
    """The most probable pronunciation of ``word`` in a ``{word: [(phones, prob), ...]}`` mapping (or a
    :class:`voxa.asr.lexicon.Lexicon`, whose ``prons(word)`` gives that list)."""
    from voxa.asr.lexicon import pron_options

    return list(max(pron_options(prons, word), key=lambda o: o[1])[0])


def check_words(prons: Prons, transcripts: Mapping[str, Sequence[str]]) -> None:
    """One error naming the transcript words the lexicon lacks."""
    if hasattr(prons, "check"):
        prons.check(sorted({w for ws in transcripts.values() for w in ws}), where="transcripts")
        return
    missing = sorted({w for ws in transcripts.values() for w in ws if not prons.get(w)})
    if missing:
        more = f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
        raise VoxaError(f"transcripts: {len(missing)} word(s) not in the lexicon: "
                        f"{', '.join(missing[:10])}{more}")


def phone_set(prons: Prons, words: Sequence[str], silence: str | None) -> list[str]:
    """Silence first, then the phones the words use, sorted."""
    ph = sorted({p for w in words for p in best_pron(prons, w)} - {silence})
    return ([silence] if silence else []) + ph


def _batches(ids: Sequence[str], feats: Mapping[str, torch.Tensor], size: int) -> list[list[str]]:
    frames = getattr(feats, "num_frames", None) or (lambda k: feats[k].shape[0])
    order = sorted(ids, key=frames)
    return [order[i:i + size] for i in range(0, len(order), size)]


def accumulate_alignments(am: AcousticModel, feats: Mapping[str, torch.Tensor],
                          alignments: Mapping[str, torch.Tensor]) -> GmmStats:
    """Statistics of frame-level pdf alignments ``{utt: pdfs [T]}``, all-reduced over ranks."""
    stats = GmmStats.zeros(am.num_pdfs, am.means.shape[1], am.dim)
    for k, pdfs in alignments.items():
        am.accumulate(feats[k], pdfs, stats)
    stats.all_reduce()
    return stats


def align_utterances(am: AcousticModel, feats: Mapping[str, torch.Tensor],
                     chains: Mapping[str, Chain], batch_size: int = 32,
                     progress: bool = False, log_likes: Any = None) -> dict[str, Alignment]:
    """Viterbi alignments of every utterance to its chain, in length-sorted batches. An utterance
    too short for its transcript is left out with a warning (Kaldi's "failed to align").
    ``log_likes`` (``[T, D] -> [T, P]``) scores the frames instead of the acoustic model (a hybrid
    network's scaled likelihoods)."""

    def scores(keys):
        return None if log_likes is None else [log_likes(feats[k]) for k in keys]

    out: dict[str, Alignment] = {}
    failed = []
    for batch in tqdm(_batches(list(chains), feats, batch_size), desc="align", unit="batch",
                      disable=not progress, leave=False):
        try:
            res = align_batch(am, [feats[k] for k in batch], [chains[k] for k in batch], scores(batch))
        except VoxaError:
            res = []
            for k in batch:  # find the culprit(s), keep the rest
                try:
                    res.append(align_batch(am, [feats[k]], [chains[k]], scores([k]))[0])
                except VoxaError:
                    res.append(None)
        for k, a in zip(batch, res):
            if a is None:
                failed.append(k)
            else:
                out[k] = a
    if failed:
        log.warning("%d utterance(s) failed to align (too short for the transcript), e.g. %s",
                    len(failed), failed[0])
    if not out:
        raise VoxaError("no utterance could be aligned to its transcript")
    return out


def _all_ranks_words(words: set[str]) -> list[str]:
    """The union of every rank's transcript words, so that all ranks build the same phone set."""
    if is_distributed():
        import torch.distributed as dist

        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, sorted(words))
        words = {w for p in parts for w in p}
    return sorted(words)


def _global_moments(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) variance of every frame on every rank, float64."""
    n = torch.tensor([float(sum(f.shape[0] for f in feats))], dtype=torch.float64)
    s1 = sum(f.to(torch.float64).sum(0) for f in feats)
    s2 = sum((f.to(torch.float64) ** 2).sum(0) for f in feats)
    if is_distributed():
        import torch.distributed as dist

        for t in (n, s1, s2):
            dist.all_reduce(t)
    mean = s1 / n
    var = (s2 - n * mean ** 2) / (n - 1).clamp_min(1.0)
    return mean, var


def train_mono(feats: Mapping[str, torch.Tensor], transcripts: Mapping[str, Sequence[str]], prons: Prons,
               config: MonoConfig | None = None, progress: bool = True) -> AcousticModel:
    """Train a monophone GMM-HMM.

    Args:
        feats: ``{utt: [T, D]}`` features (e.g. MFCC + deltas, CMVN).
        transcripts: ``{utt: [word, ...]}`` (an empty list is silence only).
        prons: the lexicon: ``{word: [(phones, prob), ...]}`` or a :class:`voxa.asr.lexicon.Lexicon`.
        config: settings; ``config.history`` receives one row per iteration.

    Returns:
        The trained :class:`AcousticModel` (``info`` holds the training history).
    """
    cfg = config or MonoConfig()
    ids = [k for k in transcripts if k in feats]
    if not ids:
        raise VoxaError("no utterance has both features and a transcript")
    check_words(prons, {k: transcripts[k] for k in ids})
    words = _all_ranks_words({w for k in ids for w in transcripts[k]})
    phones = phone_set(prons, words, cfg.silence)
    mean, var = _global_moments([feats[k] for k in ids])
    am = AcousticModel.init_flat(phones, len(mean), mean, var, n_states=cfg.n_states,
                                 silence=cfg.silence, silence_states=cfg.silence_states,
                                 self_loop=cfg.self_loop)
    pron_cache = {w: best_pron(prons, w) for w in words}
    chains = {k: build_chain(am, [pron_cache[w] for w in transcripts[k]], cfg.sil_prob) for k in ids}
    # iteration 0: equal alignment (utterances too short for their states are left out)
    ali: dict[str, torch.Tensor] = {}
    for k in ids:
        try:
            ali[k] = chains[k].pdf[equal_alignment(chains[k], feats[k].shape[0])]
        except VoxaError:
            continue
    if not ali:
        raise VoxaError("every utterance is too short for its transcript's HMM states")
    realign = cfg.realign_at()
    start_g = am.num_pdfs
    bar = tqdm(range(cfg.num_iters), desc="train mono", unit="iter", disable=not progress)
    score = math.nan
    for it in bar:
        if it in realign:
            aligned = align_utterances(am, feats, chains, cfg.batch_size)
            ali = {k: a.pdfs for k, a in aligned.items()}
            frames = sum(len(a.pdfs) for a in aligned.values())
            score = sum(a.score for a in aligned.values()) / max(frames, 1)
        stats = accumulate_alignments(am, feats, ali)
        am.update(stats, min_count=cfg.min_count)
        frame_ll = stats.loglik / max(stats.num_frames, 1)
        if it < cfg.mixup_iters:
            target = int(start_g + (cfg.max_gaussians - start_g) * (it + 1) / cfg.mixup_iters)
            am.split(min(target, cfg.max_gaussians), stats.occ.sum(1), cfg.power)
        row = {"iter": it, "gaussians": am.num_gaussians, "frame_loglik": round(frame_ll, 4),
               "align_loglik": round(score, 4) if it in realign else None, "utterances": len(ali)}
        cfg.history.append(row)
        bar.set_postfix(ll=f"{frame_ll:.2f}", g=am.num_gaussians)
        log.debug("mono iter %d: %s", it, row)
    am.info = {"system": "mono", "history": cfg.history, "utterances": len(ali),
               "frames": int(sum(len(v) for v in ali.values()))}
    return am
