"""Context-dependent (triphone) GMM-HMM training with decision-tree state tying, Kaldi's ``tri1``.

From a monophone system's alignments (``steps/train_deltas.sh`` does the same):

1. every frame gets its context window ``(left phone, phone, state, right phone)``, the neighbours
   being the adjacent phones of the aligned sequence (silence included, ``0`` at utterance ends);
2. single-Gaussian statistics per seen window grow the decision trees (:mod:`voxa.asr.tree`), whose
   leaves are the tied states (pdfs);
3. each leaf starts as its pooled Gaussian; iterations re-estimate from the alignment mapped through
   the tree, mix up to ``max_gaussians`` and re-align on ``realign_iters``.

Re-alignment keeps the phone sequence of the previous alignment (where silence was taken) and moves
the boundaries; the optional silences are re-decided only by the monophone pass. Decoding uses the
full context machinery (Kaldi's C transducer, :func:`voxa.asr.graph.build_graph`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from voxa.asr.acoustic import AcousticModel, GmmStats
from voxa.asr.align import _NEG, Alignment, Chain
from voxa.asr.training import accumulate_alignments, align_utterances
from voxa.asr.tree import TreeStats, build_tree, leaf_statistics, phone_questions
from voxa.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class TriConfig:
    """Triphone settings (Kaldi's ``train_deltas.sh``: 2000 leaves / 10000 Gaussians on WSJ si84; the
    defaults here suit a few hours of speech or less).

    Attributes:
        num_leaves: target number of tied states.
        max_gaussians: total Gaussians after mixing up.
        num_iters, mixup_iters, realign_iters: as in :class:`voxa.asr.training.MonoConfig`.
        min_count: a tree split needs this many frames on each side.
    """

    num_leaves: int = 500
    max_gaussians: int = 4000
    num_iters: int = 25
    mixup_iters: int = 20
    realign_iters: list[int] = field(default_factory=lambda: [10, 20])
    min_count: float = 100.0
    power: float = 0.25
    batch_size: int = 32
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for name in ("num_leaves", "max_gaussians", "num_iters", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"tri.{name}={v!r} must be a positive integer")


def _positions(first: torch.Tensor) -> torch.Tensor:
    """State index within its phone, from first-state flags ``[S]``."""
    idx = torch.arange(len(first))
    start = torch.cummax(torch.where(first, idx, torch.zeros_like(idx)), 0).values
    return idx - start


def instances(ali: Alignment, chain: Chain) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """The aligned phone sequence: ``(phone ids (1-based), instance of every frame [T], state within
    the phone of every frame [T])``."""
    st = ali.states
    new = chain.first[st].clone()
    if len(st) > 1:
        new[1:] &= st[1:] != st[:-1]
    new[0] = True
    inst = torch.cumsum(new.long(), 0) - 1
    starts = torch.nonzero(new).flatten()
    phones = (chain.phone[st[starts]] + 1).tolist()
    return phones, inst, _positions(chain.first)[st]


def windows(ali: Alignment, chain: Chain) -> torch.Tensor:
    """``[T, 4]`` context window ``(left, phone, state, right)`` of every frame (ids 1-based, 0 = edge)."""
    phones, inst, pos = instances(ali, chain)
    seq = torch.tensor([0] + phones + [0])
    i = inst + 1
    return torch.stack([seq[i - 1], seq[i], pos, seq[i + 1]], 1)


def fixed_chain(am: AcousticModel, phones: Sequence[int]) -> Chain:
    """A chain through exactly ``phones`` (1-based ids, no optional silence), pdfs in context."""
    pdf, phone, first = [], [], []
    ctx = [0] + list(phones) + [0]
    for k, p in enumerate(phones):
        for s in range(am.n_states[p - 1]):
            pdf.append(am.cd_pdf(ctx[k], p, s, ctx[k + 2]))
            phone.append(p - 1)
            first.append(s == 0)
    pdf_t = torch.tensor(pdf)
    n = len(pdf)
    ls = am.log_self[pdf_t].double()
    lnext = torch.log1p(-torch.exp(ls).clamp(max=1 - 1e-6))
    lnext[-1] = _NEG
    init = torch.full((n,), _NEG, dtype=torch.float64)
    init[0] = 0.0
    final = torch.full((n,), _NEG, dtype=torch.float64)
    final[-1] = 0.0
    return Chain(pdf_t, ls, lnext, torch.full((n,), -1, dtype=torch.long),
                 torch.full((n,), _NEG, dtype=torch.float64), init, final, torch.tensor(phone),
                 torch.full((n,), -1, dtype=torch.long), torch.tensor(first))


def train_tri(feats: Mapping[str, torch.Tensor], mono: AcousticModel, alignments: Mapping[str, Alignment],
              chains: Mapping[str, Chain], config: TriConfig | None = None, progress: bool = True
              ) -> AcousticModel:
    """Train a triphone model from a monophone model's alignments (see the module docstring).

    Args:
        feats: ``{utt: [T, D]}``, the features the monophone model was trained on.
        mono: the monophone model (its phones, topology and transition probabilities seed the new one).
        alignments, chains: the monophone alignments and the chains they index.
    """
    from voxa.asr.tree import DecisionTree  # noqa: F401  (the tree type the model carries)

    cfg = config or TriConfig()
    ids = [k for k in alignments if k in feats]
    seqs = {k: instances(alignments[k], chains[k])[0] for k in ids}
    wins = {k: windows(alignments[k], chains[k]) for k in ids}
    stats = TreeStats.from_alignments([feats[k] for k in ids], [wins[k] for k in ids])
    sil = mono.phone_index(mono.silence) + 1 if mono.silence in mono.phones else None
    centre = torch.stack([mono.means[mono._offset[i] + mono.n_states[i] // 2, 0]
                          for i in range(len(mono.phones))])
    qs = phone_questions(centre, list(range(1, len(mono.phones) + 1)), sil)
    tree = build_tree(stats, mono.phones, mono.n_states, qs, num_leaves=cfg.num_leaves,
                      min_count=cfg.min_count, silence=sil)
    cnt, x, xx = leaf_statistics(tree, stats)
    d = mono.dim
    safe = cnt.clamp_min(1.0)[:, None]
    mean = x / safe
    var = torch.maximum(xx / safe - mean ** 2, mono.var_floor.double() if mono.var_floor is not None
                        else torch.full((d,), 1e-4, dtype=torch.float64))
    # a leaf that saw no frame (a root never aligned) starts from the global statistics
    glob_m = stats.x.sum(0) / stats.count.sum()
    glob_v = stats.xx.sum(0) / stats.count.sum() - glob_m ** 2
    empty = cnt <= 0
    mean[empty] = glob_m
    var[empty] = glob_v
    # transitions: each leaf inherits the self-loop of its monophone state
    leaf_self = torch.zeros(tree.num_pdfs)
    for (p, s), _ in tree.roots.items():
        for leaf in _leaves(tree, tree.roots[(p, s)]):
            leaf_self[leaf] = mono.log_self[mono._offset[p - 1] + s]
    am = AcousticModel(list(mono.phones), list(mono.n_states), mean.float()[:, None, :],
                       var.float()[:, None, :], torch.zeros(tree.num_pdfs, 1), leaf_self, mono.silence,
                       mono.var_floor, {}, tree)
    log.info("triphone tree: %d leaves from %d contexts (%d monophone pdfs)", tree.num_pdfs, len(stats.keys),
             mono.num_pdfs)
    ali = {k: torch.tensor([tree.pdf(*map(int, w)) for w in wins[k].tolist()]) for k in ids}
    start_g = am.num_gaussians
    realign = set(cfg.realign_iters)
    bar = tqdm(range(cfg.num_iters), desc="train tri", unit="iter", disable=not progress)
    for it in bar:
        if it in realign:
            fixed = {k: fixed_chain(am, seqs[k]) for k in ids}
            aligned = align_utterances(am, feats, fixed, cfg.batch_size)
            ali = {k: a.pdfs for k, a in aligned.items()}
        stats_it: GmmStats = accumulate_alignments(am, feats, ali)
        am.update(stats_it)
        ll = stats_it.loglik / max(stats_it.num_frames, 1)
        if it < cfg.mixup_iters:
            target = int(start_g + (cfg.max_gaussians - start_g) * (it + 1) / cfg.mixup_iters)
            am.split(min(target, cfg.max_gaussians), stats_it.occ.sum(1), cfg.power)
        cfg.history.append({"iter": it, "gaussians": am.num_gaussians, "frame_loglik": round(ll, 4)})
        bar.set_postfix(ll=f"{ll:.2f}", g=am.num_gaussians)
    am.info = {"system": "tri", "leaves": tree.num_pdfs, "history": cfg.history, "utterances": len(ids)}
    return am


def _leaves(tree, i: int) -> list[int]:
    nd = tree.nodes[i]
    if nd.pdf >= 0:
        return [nd.pdf]
    return _leaves(tree, nd.yes) + _leaves(tree, nd.no)
