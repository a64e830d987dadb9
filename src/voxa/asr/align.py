"""Forced alignment: the best state path of a known transcript, batched over utterances.

A transcript becomes a chain of HMM states: optional silence, the phones of word 1, optional
silence, the phones of word 2, ..., optional silence. Every state has a self-loop and an arc to the
next state; an optional silence block is bypassed by a skip arc from the state before it to the state
after it (probability ``sil_prob`` of taking the silence, as Kaldi's lexicon FST). Viterbi over such
chains needs only three predecessors per state (itself, the previous state, the skip source), so a
batch of utterances is aligned together as padded ``[B, S]`` chains: the recursion steps over frames
and is vectorised over utterances and states (no loops over either).

Each word uses its most probable pronunciation (alternatives are handled by the decoding graph).

Example:
    >>> import torch
    >>> from voxa.asr.acoustic import AcousticModel
    >>> am = AcousticModel.init_flat(["SIL", "a", "b"], 2, torch.zeros(2), torch.ones(2))
    >>> chain = build_chain(am, [["a"], ["b"]], sil_prob=0.5)
    >>> len(chain.pdf)  # SIL? a a a SIL? b b b SIL?: 9 + 3 x 3 silence states
    15
    >>> ali = align_batch(am, [torch.randn(40, 2)], [chain])[0]
    >>> ali.pdfs.shape
    torch.Size([40])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from voxa.asr.acoustic import AcousticModel
from voxa.errors import VoxaError

_NEG = -1.0e30


@dataclass
class Chain:
    """One utterance's state chain.

    Attributes:
        pdf: ``[S]`` pdf of each state.
        log_self, log_next: ``[S]`` log probabilities of the self-loop and of the arc to ``s + 1``.
        skip_src: ``[S]`` the state a skip arc into ``s`` comes from (``-1``: none).
        log_skip: ``[S]`` log probability of that skip arc.
        log_init, log_final: ``[S]`` log probabilities of starting / ending in each state.
        phone: ``[S]`` phone index of each state; ``word``: ``[S]`` word position (``-1`` silence).
        first: ``[S]`` whether the state is the first of its phone.
    """

    pdf: torch.Tensor
    log_self: torch.Tensor
    log_next: torch.Tensor
    skip_src: torch.Tensor
    log_skip: torch.Tensor
    log_init: torch.Tensor
    log_final: torch.Tensor
    phone: torch.Tensor
    word: torch.Tensor
    first: torch.Tensor


@dataclass
class Alignment:
    """The best path of one utterance: per frame its ``states`` (chain positions), ``pdfs``,
    ``phones`` (phone indices) and ``words`` (word positions, ``-1`` in silence), and ``score``
    (the path's log-likelihood, transitions included)."""

    states: torch.Tensor
    pdfs: torch.Tensor
    phones: torch.Tensor
    words: torch.Tensor
    first: torch.Tensor
    score: float

    def phone_segments(self, am: AcousticModel, frame_shift: float = 0.01) -> list[tuple[float, float, str]]:
        """``(start_s, end_s, phone)`` per phone occurrence (a new one starts at each phone's first state)."""
        return _segments(self.phones, self.first & _changed(self.states), frame_shift,
                         lambda i: am.phones[i])

    def word_segments(self, words: Sequence[str], frame_shift: float = 0.01
                      ) -> list[tuple[float, float, str]]:
        """``(start_s, end_s, word)`` per word of the transcript (silence left out)."""
        out = []
        w = self.words
        for k in range(len(words)):
            idx = torch.nonzero(w == k).flatten()
            if len(idx):
                out.append((float(idx[0]) * frame_shift, float(idx[-1] + 1) * frame_shift, words[k]))
        return out


def _changed(x: torch.Tensor) -> torch.Tensor:
    c = torch.ones_like(x, dtype=torch.bool)
    c[1:] = x[1:] != x[:-1]
    return c


def _segments(labels: torch.Tensor, starts: torch.Tensor, shift: float, name) -> list:
    pos = torch.nonzero(starts).flatten().tolist() + [len(labels)]
    return [(a * shift, b * shift, name(int(labels[a]))) for a, b in zip(pos[:-1], pos[1:])]


def build_chain(am: AcousticModel, prons: Sequence[Sequence[str]], sil_prob: float = 0.5,
                optional_silence: bool = True) -> Chain:
    """The state chain of a transcript given one pronunciation (phone list) per word.

    Args:
        am: the acoustic model (its phone set and self-loop probabilities).
        prons: phones of each word, in order.
        sil_prob: probability of silence at each word boundary, the start and the end.
        optional_silence: ``False`` drops the silence blocks (e.g. isolated words cut tightly).
    """
    pdf: list[int] = []
    phone: list[int] = []
    word: list[int] = []
    first: list[bool] = []
    sil_blocks: list[tuple[int, int]] = []  # [start, end) of each optional silence block
    use_sil = optional_silence and am.silence in am.phones and sil_prob > 0

    def add_phone(p: str, w: int) -> None:
        pi = am.phone_index(p)
        for k, q in enumerate(am.pdfs_of(p)):
            pdf.append(q)
            phone.append(pi)
            word.append(w)
            first.append(k == 0)

    def add_sil() -> None:
        if use_sil:
            a = len(pdf)
            add_phone(am.silence, -1)
            sil_blocks.append((a, len(pdf)))

    add_sil()
    for w, pr in enumerate(prons):
        if not pr:
            raise VoxaError(f"word {w} of the transcript has an empty pronunciation")
        for p in pr:
            add_phone(p, w)
        add_sil()
    s = len(pdf)
    if s == 0:
        raise VoxaError("empty transcript and no silence phone: nothing to align")
    pdf_t = torch.tensor(pdf)
    ls = am.log_self[pdf_t].double()
    lexit = torch.log1p(-torch.exp(ls).clamp(max=1 - 1e-6))
    log_next = lexit.clone()
    skip_src = torch.full((s,), -1, dtype=torch.long)
    log_skip = torch.full((s,), _NEG, dtype=torch.float64)
    log_init = torch.full((s,), _NEG, dtype=torch.float64)
    log_final = torch.full((s,), _NEG, dtype=torch.float64)
    log_init[0] = 0.0
    log_final[s - 1] = 0.0
    lp, lq = math.log(sil_prob) if use_sil else 0.0, math.log1p(-sil_prob) if use_sil else 0.0
    for a, b in sil_blocks:
        if a == 0:                      # leading silence: start in it, or after it
            log_init[0] = lp
            if b < s:
                log_init[b] = lq
        elif b == s:                    # trailing silence: end in it, or before it
            log_final[s - 1] = lp
            log_final[a - 1] = lq
        else:                           # between words: enter it, or skip over it
            log_next[a - 1] = lexit[a - 1] + lp
            if b < s:
                skip_src[b] = a - 1
                log_skip[b] = lexit[a - 1] + lq
    log_next[s - 1] = _NEG
    return Chain(pdf_t, ls, log_next, skip_src, log_skip, log_init, log_final, torch.tensor(phone),
                 torch.tensor(word), torch.tensor(first))


def _pad(chains: Sequence[Chain], name: str, fill: float | int) -> torch.Tensor:
    s = max(len(c.pdf) for c in chains)
    first = getattr(chains[0], name)
    out = torch.full((len(chains), s), fill, dtype=first.dtype)
    for i, c in enumerate(chains):
        v = getattr(c, name)
        out[i, :len(v)] = v
    return out


def viterbi_chains(log_b: torch.Tensor, lengths: torch.Tensor, chains: Sequence[Chain]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Best state paths through padded chains.

    Args:
        log_b: ``[B, T, S]`` emission log-likelihood of each chain state at each frame.
        lengths: ``[B]`` frames per utterance.
        chains: ``B`` chains (padded to ``S`` states inside).

    Returns:
        ``(scores [B], paths [B, T])``; a path is ``-1`` past its utterance's length, and the score is
        ``-inf`` where no path fits (fewer frames than the chain's compulsory states).
    """
    return _viterbi_tbs(log_b.transpose(0, 1).contiguous(), lengths, chains)


def _viterbi_tbs(lb: torch.Tensor, lengths: torch.Tensor, chains: Sequence[Chain]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`viterbi_chains` on frame-major emissions ``lb [T, B, S]`` (any float dtype; scores
    accumulate in float64)."""
    t, b, s = lb.shape
    f64 = torch.float64
    ls = _pad(chains, "log_self", _NEG).to(f64)
    ln = _pad(chains, "log_next", _NEG).to(f64)[:, :-1].contiguous()
    src = _pad(chains, "skip_src", -1)
    lk = _pad(chains, "log_skip", _NEG).to(f64)  # -1e30 where a state has no skip arc into it
    li = _pad(chains, "log_init", _NEG).to(f64)
    lf = _pad(chains, "log_final", _NEG).to(f64)
    src_c = src.clamp_min(0)
    lengths = lengths.long()
    # no masking inside the loop: each utterance's scores are read at its own last frame, and its
    # back-pointers are only followed up to there
    ends: dict[int, list[int]] = {}
    for i, n in enumerate(lengths.tolist()):
        ends.setdefault(n - 1, []).append(i)
    # the recursion is a few small element-wise operations per frame: numpy's per-call cost is a
    # fraction of torch's, and that cost is the whole run time at these sizes
    lbn = lb.numpy()
    lsn, lnn, lkn, srcn = ls.numpy(), ln.numpy(), lk.numpy(), src_c.numpy()
    final = np.empty((b, s))
    delta = li.numpy() + lbn[0]
    bp = np.zeros((t, b, s), dtype=np.uint8)
    stay = np.empty((b, s))
    nxt = np.full((b, s), _NEG)
    skp = np.empty((b, s))
    best = np.empty((b, s))
    rows_b = np.arange(b)[:, None]
    for k in range(t):
        if k:
            np.add(delta, lsn, out=stay)
            np.add(delta[:, :-1], lnn, out=nxt[:, 1:])
            np.add(delta[rows_b, srcn], lkn, out=skp)
            np.greater(nxt, stay, out=bp[k], casting="unsafe")
            np.maximum(stay, nxt, out=best)
            bp[k][skp > best] = 2
            np.maximum(best, skp, out=delta)
            delta += lbn[k]
        if k in ends:
            idx = ends[k]
            final[idx] = delta[idx]
    final += lf.numpy()
    cur = final.argmax(1)
    score = final[np.arange(b), cur]
    paths = np.full((b, t), -1, dtype=np.int64)
    rows = np.arange(b)
    last = lengths.numpy() - 1
    for k in range(t - 1, -1, -1):
        live = k <= last
        paths[live, k] = cur[live]
        if k == 0:
            break
        move = bp[k, rows, cur]
        prev = np.where(move == 0, cur, np.where(move == 1, cur - 1, srcn[rows, cur]))
        cur = np.where(live, prev, cur)
    score = np.where(score < _NEG / 2, -np.inf, score)
    return torch.from_numpy(score), torch.from_numpy(paths)


def align_batch(am: AcousticModel, feats: Sequence[torch.Tensor], chains: Sequence[Chain],
                log_likes: Sequence[torch.Tensor] | None = None) -> list[Alignment]:
    """Align utterances ``feats`` (each ``[T_i, D]``) to their chains, all at once.

    ``log_likes`` (each ``[T_i, P]``) replaces the acoustic model's likelihoods (a hybrid network's
    scaled posteriors, for instance).

    Raises:
        VoxaError: an utterance has fewer frames than its chain has compulsory states.
    """
    if len(feats) != len(chains):
        raise VoxaError(f"{len(feats)} utterances but {len(chains)} transcripts")
    lengths = torch.tensor([f.shape[0] for f in feats])
    t, s = int(lengths.max()), max(len(c.pdf) for c in chains)
    # frame-major, so that each step of the recursion reads one contiguous [B, S] slice
    log_b = torch.full((t, len(feats), s), _NEG, dtype=torch.float32)
    for i, (f, c) in enumerate(zip(feats, chains)):
        ll = log_likes[i] if log_likes is not None else am.log_likelihoods(f)
        log_b[:f.shape[0], i, :len(c.pdf)] = ll[:, c.pdf]
    scores, paths = _viterbi_tbs(log_b, lengths, chains)
    out = []
    for i, c in enumerate(chains):
        if not math.isfinite(float(scores[i])):
            raise VoxaError(f"utterance {i}: {int(lengths[i])} frames are too few for its transcript "
                            f"({len(c.pdf)} HMM states with optional silence)")
        st = paths[i, :int(lengths[i])]
        out.append(Alignment(st, c.pdf[st], c.phone[st], c.word[st], c.first[st], float(scores[i])))
    return out


def equal_alignment(chain: Chain, num_frames: int) -> torch.Tensor:
    """Flat-start alignment: the compulsory states (no optional silence inside the transcript) share
    the frames equally (Kaldi's ``align-equal-compiled``). Returns chain positions ``[T]``."""
    s = len(chain.pdf)
    inner = torch.ones(s, dtype=torch.bool)
    # leave out the between-word silence blocks (skippable), keep leading/trailing ones
    for k in range(s):
        if int(chain.skip_src[k]) >= 0:
            inner[int(chain.skip_src[k]) + 1:k] = False
    idx = torch.nonzero(inner).flatten()
    if num_frames < len(idx):
        idx = idx[(chain.word[idx] >= 0)] if num_frames >= int((chain.word[idx] >= 0).sum()) else idx
        if num_frames < len(idx):
            raise VoxaError(f"{num_frames} frames cannot hold {len(idx)} HMM states")
    pos = (torch.arange(num_frames) * len(idx)) // num_frames
    return idx[pos]
