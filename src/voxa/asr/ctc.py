"""CTC search and alignment over per-frame log-posteriors ``[T, V]`` (a network's ``log_softmax``).

Token ``blank`` (default 0) is CTC's blank; a label sequence is read off a frame path by merging
repeats, then dropping blanks (``a a - a b b`` reads ``a a b``).

* :func:`ctc_greedy`: the best path, collapsed.
* :func:`ctc_prefix_beam_search`: the prefix beam search of Hannun et al. (2014), which sums over the
  alignments of each prefix (blank-ending and non-blank-ending probabilities kept apart), with optional
  shallow fusion of a word n-gram LM (:class:`voxa.asr.lm.NgramLM`), a word insertion bonus and a
  lexicon constraint.
* :func:`ctc_forced_align` / :func:`ctc_segments`: the Viterbi path of a known token sequence through
  the CTC topology, and the time span of each token on it.
* :func:`ctc_alignment_plot`: the posteriors as an image with that path drawn over it.

Scores are natural logs throughout; an LM's ``logprob`` is read as log10 (what ``NgramLM`` and ARPA
files give) and converted.

Example:
    >>> import torch
    >>> logp = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]).log()
    >>> ctc_greedy(logp), ctc_prefix_beam_search(logp)[0][0]
    ([1, 2], [1, 2])
    >>> ctc_segments(ctc_forced_align(logp, [1, 2]))
    [(0.0, 0.02, 1), (0.03, 0.04, 2)]
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from voxa.errors import ConfigError, VoxaError

__all__ = ["ctc_alignment_plot", "ctc_forced_align", "ctc_greedy", "ctc_prefix_beam_search", "ctc_segments"]

_LN10 = math.log(10.0)
_MAX_PLOT_ROWS = 64  # above this many tokens the plot keeps only blank and the tokens on the path


class WordLM(Protocol):
    """What the beam search needs of a word LM: log10 probabilities given the preceding words."""

    def logprob(self, word: str, context: Sequence[str] = ()) -> float: ...


# ---------------------------------------------------------------------------------------- checks
def _logp_numpy(logp: Any) -> np.ndarray:
    """``[T, V]`` float64 numpy view of a tensor or array of log-probabilities."""
    if isinstance(logp, torch.Tensor):
        x = logp.detach().to("cpu", torch.float64).numpy()
    else:
        x = np.asarray(logp, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise VoxaError(f"CTC log-posteriors must be [frames, tokens], got shape {x.shape}")
    if np.isnan(x).any():
        raise VoxaError("CTC log-posteriors contain NaN")
    return x


def _logp_tensor(logp: Any) -> torch.Tensor:
    x = logp.detach() if isinstance(logp, torch.Tensor) else torch.as_tensor(np.asarray(logp))
    if x.ndim != 2 or x.shape[1] < 1:
        raise VoxaError(f"CTC log-posteriors must be [frames, tokens], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.double()
    if torch.isnan(x).any():
        raise VoxaError("CTC log-posteriors contain NaN")
    return x


def _check_token(name: str, value: int, V: int) -> int:
    if not isinstance(value, (int, np.integer)) or not 0 <= value < V:
        raise ConfigError(f"{name} must be a token id in [0, {V}), got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------- greedy
def ctc_greedy(logp: torch.Tensor | np.ndarray, blank: int = 0) -> list[int]:
    """The best path's labelling: per-frame argmax, repeats merged, blanks dropped.

    Args:
        logp: ``[T, V]`` per-frame log-probabilities (any monotone score works: only the argmax counts).
        blank: the blank token id.

    Returns:
        The token ids, blanks excluded.

    Raises:
        VoxaError: ``logp`` is not 2-D or holds NaN. ConfigError: ``blank`` is not a token id.

    Example:
        >>> ctc_greedy(torch.eye(3)[[1, 1, 0, 1, 2, 2]])  # a a - a b b
        [1, 1, 2]
    """
    x = _logp_tensor(logp)
    blank = _check_token("blank", blank, x.shape[1])
    best = x.argmax(-1)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[1:] = best[1:] != best[:-1]
    return best[keep & (best != blank)].tolist()


# ---------------------------------------------------------------------------------------- beam search
class _WordScorer:
    """Word-level scores of prefixes: LM (ln, weighted), insertion bonus and lexicon, as a state
    ``(context words, partial word)`` carried by each prefix and a score added on each extension."""

    def __init__(self, tokens: Sequence[str] | None, space: int | None, lm: WordLM | None, lm_weight: float,
                 word_bonus: float, lexicon: Collection[str] | None, oov_logprob: float) -> None:
        self.tokens = None if tokens is None else [str(t) for t in tokens]
        self.space = space
        # lm_weight 0 turns the LM off, so that a -inf from it cannot become 0 * -inf = NaN
        self.lm = lm if lm is not None and lm_weight != 0 else None
        self.lm_weight = float(lm_weight)
        self.bonus = float(word_bonus)
        self.oov = float(oov_logprob)
        self.lexicon = None if lexicon is None else frozenset(lexicon)
        self.prefixes = None if lexicon is None else frozenset(w[:i] for w in self.lexicon
                                                                for i in range(1, len(w) + 1))
        order = getattr(lm, "order", None)
        # the LM reads at most order - 1 words back: a shorter context keeps the cache small
        self.keep = max(int(order) - 1, 0) if isinstance(order, (int, np.integer)) else None
        self.cache: dict[tuple[tuple[str, ...], str], float] = {}
        self.initial: tuple[tuple[str, ...], str] = (("<s>",)[: self.keep], "")

    def _lm(self, ctx: tuple[str, ...], word: str) -> float:
        key = (ctx, word)
        s = self.cache.get(key)
        if s is None:
            lp = float(self.lm.logprob(word, ctx))
            s = self.lm_weight * (lp * _LN10 if lp > -math.inf else self.oov)
            self.cache[key] = s
        return s

    def _push(self, ctx: tuple[str, ...], word: str) -> tuple[str, ...]:
        ctx = ctx + (word,)
        return ctx if self.keep is None else ctx[-self.keep:] if self.keep else ()

    def _word(self, ctx: tuple[str, ...], word: str) -> float:
        if self.lexicon is not None and word not in self.lexicon:
            return -math.inf
        return self.bonus + (self._lm(ctx, word) if self.lm is not None else 0.0)

    def extend(self, state: tuple[tuple[str, ...], str], c: int) -> tuple[tuple[tuple[str, ...], str], float]:
        ctx, partial = state
        if self.space is None:
            word = self.tokens[c] if self.tokens is not None else str(c)
            return (self._push(ctx, word), ""), self._word(ctx, word)
        if c == self.space:
            if not partial:  # a leading or doubled separator completes no word
                return state, 0.0
            return (self._push(ctx, partial), ""), self._word(ctx, partial)
        partial = partial + (self.tokens[c] if self.tokens is not None else "\x00")
        ok = self.prefixes is None or partial in self.prefixes
        return (ctx, partial), 0.0 if ok else -math.inf

    def finish(self, state: tuple[tuple[str, ...], str]) -> float:
        ctx, partial = state
        s = 0.0
        if self.space is not None and partial:
            s += self._word(ctx, partial)
            ctx = self._push(ctx, partial)
        if self.lm is not None:
            s += self._lm(ctx, "</s>")
        return s


def ctc_prefix_beam_search(logp: torch.Tensor | np.ndarray, beam: int = 10, blank: int = 0,
                           lm: WordLM | None = None, lm_weight: float = 0.5, word_bonus: float = 0.0,
                           space: int | None = None, tokens: Sequence[str] | None = None,
                           lexicon: Collection[str] | None = None, prune: float = -12.0, nbest: int = 1,
                           oov_logprob: float = -10.0) -> list[tuple[list[int], float]]:
    """CTC prefix beam search (Hannun et al. 2014), with optional word LM shallow fusion and lexicon.

    Each prefix keeps the log-probabilities of its alignments so far that end in blank and in its last
    token; the ``beam`` prefixes with the best total ``ln(P_blank + P_token) + word scores`` survive each
    frame. A word's score is ``lm_weight * ln P_LM(word | previous words) + word_bonus``, added when the
    word is complete; at the end of the utterance the last partial word and ``</s>`` are scored.

    Words are the runs between ``space`` tokens when ``space`` is given (character units: ``tokens[i]``
    is the text of token ``i``); with ``space=None`` every emitted token is a word (word or phone units,
    each scored on emission).

    Args:
        logp: ``[T, V]`` per-frame log-probabilities.
        beam: prefixes kept per frame (>= 1).
        blank: the blank token id.
        lm: a word LM: ``lm.logprob(word, context)`` gives log10 ``P(word | context)``, ``context``
            starting at ``<s>`` (:class:`voxa.asr.lm.NgramLM`); needs ``tokens``.
        lm_weight: the LM's weight (0 turns it off).
        word_bonus: added per word (an insertion bonus against the LM's preference for short outputs).
        space: the word separator token id (character units), or ``None``.
        tokens: the text of each token id (``V`` strings); needed by ``lm`` and ``lexicon``.
        lexicon: the allowed words: a partial word must start one of them, a complete word be one.
        prune: at each frame, tokens whose log-probability is below this are not tried as extensions
            (blank and repeats are always scored).
        nbest: how many hypotheses to return.
        oov_logprob: the natural-log LM score of a word the LM gives no probability (``-inf``), before
            ``lm_weight``.

    Returns:
        Up to ``nbest`` ``(token ids, score)``, best first: ``score`` is the acoustic log-probability
        summed over the labelling's alignments plus the word scores. Fewer when fewer prefixes survive
        (none when a lexicon rules out every one).

    Raises:
        VoxaError: ``logp`` is not 2-D or holds NaN. ConfigError: a bad beam, nbest, blank, space or
            tokens, or an LM or lexicon without ``tokens``.

    Example:
        >>> from voxa.asr.lm import NgramLM
        >>> chars = ["-", " ", "a", "b"]
        >>> p = torch.tensor([[.1, .1, .45, .35], [.9, .1e-2, .05, .049]]).log()  # "a" or "b"?
        >>> ctc_prefix_beam_search(p, tokens=chars, space=1)[0][0]
        [2]
        >>> lm = NgramLM.fit(["b", "b", "b", "b", "a b"], order=2)  # "a" is an unlikely first word
        >>> ctc_prefix_beam_search(p, tokens=chars, space=1, lm=lm, lm_weight=1.0)[0][0]
        [3]
    """
    x = _logp_numpy(logp)
    T, V = x.shape
    blank = _check_token("blank", blank, V)
    if not isinstance(beam, (int, np.integer)) or beam < 1:
        raise ConfigError(f"beam must be an integer >= 1, got {beam!r}")
    if not isinstance(nbest, (int, np.integer)) or nbest < 1:
        raise ConfigError(f"nbest must be an integer >= 1, got {nbest!r}")
    if space is not None and _check_token("space", space, V) == blank:
        raise ConfigError("space and blank must be different tokens")
    if tokens is not None and len(tokens) != V:
        raise ConfigError(f"tokens has {len(tokens)} entries for {V} token ids")
    if (lm is not None or lexicon is not None) and tokens is None:
        raise ConfigError("an LM or a lexicon needs the text of each token (tokens=)")
    if not all(math.isfinite(v) for v in (lm_weight, word_bonus, oov_logprob)):
        raise ConfigError("lm_weight, word_bonus and oov_logprob must be finite")
    scorer = None
    if (lm is not None and lm_weight != 0) or lexicon is not None or word_bonus != 0:
        scorer = _WordScorer(tokens, space, lm, lm_weight, word_bonus, lexicon, oov_logprob)

    # prefixes are the nodes of a trie, so a prefix is one int and its extension a dict look-up
    parent, token = [-1], [-1]
    children: dict[int, int] = {}
    fused = [0.0]  # the word scores accumulated along each prefix
    states = [scorer.initial] if scorer is not None else None

    def child(key: int) -> int:
        n = children.get(key)
        if n is None:
            p, c = divmod(key, V)
            n = len(parent)
            parent.append(p)
            token.append(c)
            if scorer is not None:
                st, f = scorer.extend(states[p], c)
                states.append(st)
                fused.append(fused[p] + f)
            children[key] = n
        return n

    # an upper bound on what a word score can add: with it, extensions that cannot reach the beam are
    # dropped before their (Python) trie look-up; none when a negative LM weight makes scores unbounded
    gain = max(0.0, float(word_bonus)) if lm_weight >= 0 else math.inf
    nodes, par = np.zeros(1, np.int64), np.full(1, -1, np.int64)
    last = np.full(1, -1, np.int64)
    pb, pnb, fz = np.zeros(1), np.full(1, -np.inf), np.zeros(1)
    cand = x >= prune
    cand[:, blank] = False
    for t in range(T):
        if nodes.size == 0:  # a lexicon ruled out every prefix
            break
        row = x[t]
        ptot = np.logaddexp(pb, pnb)
        pb_s = ptot + row[blank]
        pnb_s = pnb + row[last]  # the root's last is -1: a wrong column, but its pnb is -inf
        C = np.flatnonzero(cand[t])
        if C.size == 0:  # no extension: the set of prefixes stays, only their scores move
            pb, pnb = pb_s, pnb_s
            continue
        B, K = nodes.size, C.size
        # a repeated token extends only the alignments ending in blank; other tokens extend all
        ext = (np.where(last[:, None] == C, pb[:, None], ptot[:, None]) + row[C]).ravel()
        keys = (nodes[:, None] * V + C).ravel()
        # an extension can be a prefix already in the beam (a + b = ab): merge it into that one
        bkeys = par * V + last  # the root's is negative, so never matched
        order = np.argsort(bkeys)
        pos = np.minimum(np.searchsorted(bkeys[order], keys), B - 1)
        hit = bkeys[order[pos]] == keys
        if hit.any():
            slot = order[pos[hit]]
            pnb_s[slot] = np.logaddexp(pnb_s[slot], ext[hit])
        new = ~hit
        if B >= beam and gain < math.inf:
            # the beam-th best kept prefix is a floor on the cut: a new prefix below it cannot survive
            floor = np.partition(np.logaddexp(pb_s, pnb_s) + fz, B - beam)[B - beam]
            new &= ext + np.repeat(fz, K) + gain >= floor
        kids = np.fromiter((child(k) for k in keys[new].tolist()), np.int64, count=int(new.sum()))
        all_nodes = np.concatenate([nodes, kids])
        all_par = np.concatenate([par, np.repeat(nodes, K)[new]])
        all_pb = np.concatenate([pb_s, np.full(kids.size, -np.inf)])
        all_pnb = np.concatenate([pnb_s, ext[new]])
        all_last = np.concatenate([last, np.tile(C, B)[new]])
        all_fz = np.concatenate([fz, [fused[k] for k in kids.tolist()]]) if scorer is not None \
            else np.zeros(all_nodes.size)
        score = np.logaddexp(all_pb, all_pnb) + all_fz
        keep = np.argpartition(-score, beam - 1)[:beam] if score.size > beam else np.arange(score.size)
        keep = keep[score[keep] > -np.inf]
        nodes, par, last = all_nodes[keep], all_par[keep], all_last[keep]
        pb, pnb, fz = all_pb[keep], all_pnb[keep], all_fz[keep]

    total = np.logaddexp(pb, pnb) + fz
    if scorer is not None:
        total = total + np.array([scorer.finish(states[n]) for n in nodes.tolist()])
    out = []
    for i in np.argsort(-total, kind="stable")[:nbest]:
        if total[i] == -np.inf:
            break
        seq, n = [], int(nodes[i])
        while n > 0:
            seq.append(token[n])
            n = parent[n]
        out.append((seq[::-1], float(total[i])))
    return out


# ---------------------------------------------------------------------------------------- alignment
def ctc_forced_align(logp: torch.Tensor | np.ndarray, targets: Sequence[int] | torch.Tensor,
                     blank: int = 0) -> torch.Tensor:
    """The Viterbi (best single) frame path of ``targets`` through the CTC topology.

    States are the ``2L + 1`` blank-interleaved targets ``- t1 - t2 ... tL -``; a frame stays in its
    state or moves one on, or two (skipping a blank) between different tokens; the path starts in the
    first blank or ``t1`` and ends in ``tL`` or the last blank.

    Args:
        logp: ``[T, V]`` per-frame log-probabilities.
        targets: ``[L]`` token ids (no blank).
        blank: the blank token id.

    Returns:
        ``[T]`` long tensor: each frame's token id (``blank`` on blank frames); it collapses to
        ``targets``.

    Raises:
        VoxaError: ``T`` is shorter than ``L`` plus the number of adjacent repeats in ``targets`` (a
            blank must separate them), a target is blank or not a token id, or every path has
            probability 0.

    Example:
        >>> p = torch.tensor([[.6, .3, .1], [.5, .4, .1], [.2, .2, .6]]).log()
        >>> ctc_forced_align(p, [1, 2]).tolist()
        [0, 1, 2]
    """
    x = _logp_tensor(logp)
    T, V = x.shape
    blank = _check_token("blank", blank, V)
    tgt = torch.as_tensor(np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets),
                          dtype=torch.long).reshape(-1)
    L = tgt.numel()
    if L and (tgt.min() < 0 or tgt.max() >= V or (tgt == blank).any()):
        raise VoxaError(f"targets must be token ids in [0, {V}) other than blank {blank}, got {tgt.tolist()}")
    repeats = int((tgt[1:] == tgt[:-1]).sum()) if L > 1 else 0
    if T < L + repeats:
        raise VoxaError(f"{T} frames cannot hold {L} tokens with {repeats} repeats (need at least "
                        f"{L + repeats})")
    if T == 0:
        return torch.zeros(0, dtype=torch.long)
    S = 2 * L + 1
    ext = torch.full((S,), blank, dtype=torch.long)
    ext[1::2] = tgt
    skip = torch.zeros(S, dtype=torch.bool)
    if L > 1:
        skip[3::2] = tgt[1:] != tgt[:-1]
    skip = skip.to(x.device)
    emit = x[:, ext.to(x.device)]                                                     # [T, S]
    neg = torch.tensor(-math.inf, dtype=x.dtype, device=x.device)
    alpha = torch.full((S,), -math.inf, dtype=x.dtype, device=x.device)
    alpha[:min(2, S)] = emit[0, :min(2, S)]
    back = torch.zeros(T, S, dtype=torch.uint8, device=x.device)  # 0 stay, 1 from s-1, 2 from s-2
    cands = torch.empty(3, S, dtype=x.dtype, device=x.device)
    for t in range(1, T):
        cands[0] = alpha
        cands[1, 0] = neg
        cands[1, 1:] = alpha[:-1]
        cands[2, :2] = neg
        cands[2, 2:] = torch.where(skip[2:], alpha[:-2], neg)
        best, arg = cands.max(0)
        alpha = best + emit[t]
        back[t] = arg
    ends = alpha[-2:] if S > 1 else alpha
    s = S - len(ends) + int(ends.argmax())
    if alpha[s] == -math.inf:
        raise VoxaError(f"no CTC path of the {L} targets has a nonzero probability")
    back = back.cpu().numpy()
    states = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    return ext[torch.from_numpy(states)]


def ctc_segments(frame_labels: torch.Tensor | Sequence[int], blank: int = 0,
                 frame_shift: float = 0.01) -> list[tuple[float, float, int]]:
    """The time span of each emitted token of a frame path (e.g. :func:`ctc_forced_align`'s).

    A token's span is its run of frames; the blank frames between tokens belong to none.

    Args:
        frame_labels: ``[T]`` token id per frame.
        blank: the blank token id.
        frame_shift: seconds between frames.

    Returns:
        ``(start s, end s, token id)`` per emitted token, in order.

    Example:
        >>> ctc_segments([0, 3, 3, 0, 0, 3, 5], frame_shift=0.5)
        [(0.5, 1.5, 3), (2.5, 3.0, 3), (3.0, 3.5, 5)]
    """
    lab = torch.as_tensor(np.asarray(frame_labels.cpu() if isinstance(frame_labels, torch.Tensor)
                                     else frame_labels), dtype=torch.long).reshape(-1)
    if lab.numel() == 0:
        return []
    start = torch.ones_like(lab, dtype=torch.bool)
    start[1:] = lab[1:] != lab[:-1]
    pos = torch.nonzero(start).flatten().tolist() + [lab.numel()]
    return [(round(a * frame_shift, 10), round(b * frame_shift, 10), int(lab[a]))
            for a, b in zip(pos[:-1], pos[1:]) if int(lab[a]) != blank]


# ---------------------------------------------------------------------------------------- plot
def ctc_alignment_plot(logp: torch.Tensor | np.ndarray, frame_labels: torch.Tensor | Sequence[int],
                       tokens: Sequence[str], path: str | os.PathLike, title: str | None = None,
                       blank: int = 0, frame_shift: float = 0.01) -> Path:
    """The per-frame token posteriors as an image (time across, tokens up), the alignment over it.

    With more than 64 tokens only blank and the tokens on the path get a row.

    Args:
        logp: ``[T, V]`` per-frame log-probabilities.
        frame_labels: ``[T]`` token id per frame (:func:`ctc_forced_align`).
        tokens: the text of each token id (``V`` strings).
        path: the PNG to write (atomically).
        title: the figure's title.
        blank: the blank token id.
        frame_shift: seconds between frames.

    Returns:
        ``path``.

    Raises:
        VoxaError: the shapes of ``logp``, ``frame_labels`` and ``tokens`` disagree.

    Example:
        >>> import tempfile
        >>> p = torch.tensor([[.6, .3, .1], [.5, .4, .1], [.2, .2, .6]]).log()
        >>> out = Path(tempfile.mkdtemp()) / "align.png"
        >>> ctc_alignment_plot(p, ctc_forced_align(p, [1, 2]), ["-", "a", "b"], out).name
        'align.png'
    """
    from voxa.plots import plt, save_figure

    post = np.exp(_logp_numpy(logp))
    T, V = post.shape
    lab = np.asarray(frame_labels.cpu() if isinstance(frame_labels, torch.Tensor) else frame_labels,
                     dtype=np.int64).reshape(-1)
    if lab.size != T:
        raise VoxaError(f"{lab.size} frame labels for {T} frames of posteriors")
    if len(tokens) != V:
        raise VoxaError(f"tokens has {len(tokens)} entries for {V} token ids")
    if T and (lab.min() < 0 or lab.max() >= V):
        raise VoxaError(f"frame labels must be token ids in [0, {V})")
    rows = np.arange(V) if V <= _MAX_PLOT_ROWS else np.union1d(lab, [blank])
    row_of = np.full(V, -1)
    row_of[rows] = np.arange(rows.size)

    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.18 * rows.size + 1.5)))
    im = ax.imshow(post[:, rows].T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1,
                   extent=[0, T * frame_shift, -0.5, rows.size - 0.5], interpolation="nearest")
    fig.colorbar(im, ax=ax, label="posterior")
    t = (np.arange(T) + 0.5) * frame_shift
    y = row_of[lab]
    ax.step(t, y, where="mid", color="tab:orange", lw=1.0, alpha=0.8, label="alignment")
    tok = lab != blank
    ax.scatter(t[tok], y[tok], s=10, color="tab:red", zorder=3, label="token frames")
    names = [str(s) if str(s).strip() else "\u2423" for s in tokens]  # a space token would be invisible
    for a, b, k in ctc_segments(lab, blank, frame_shift):
        ax.text((a + b) / 2, rows.size - 0.5, names[k], ha="center", va="bottom", fontsize=7,
                color="tab:red")
    ax.set_yticks(np.arange(rows.size))
    ax.set_yticklabels([names[i] if i != blank else f"{names[i]} (blank)" for i in rows], fontsize=6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("token")
    ax.set_xlim(0, max(T, 1) * frame_shift)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7, frameon=False)
    ax.set_title(title or "CTC forced alignment", pad=14)
    return save_figure(fig, path)
