"""Phonetic decision trees: tying triphone HMM states by likelihood-maximising context questions.

Kaldi's ``build-tree`` in miniature. The statistics are, for every seen context ``(left, phone,
state, right)``, the frame count and the first and second moments of the features aligned to it
(single diagonal Gaussians). One tree grows per ``(phone, state)``: a leaf is split by the question
"is the left (or right) phone in set Q" that most increases the log-likelihood of the data under
one Gaussian per leaf, best gain first across all trees, until ``num_leaves`` leaves, no gain above
``min_gain``, or no split leaves ``min_count`` frames on both sides. The question sets are the phone
clusters of a binary tree grown by clustering the monophone states' means (Kaldi's
``cluster-phones``), each phone alone, and the utterance boundary (context ``0``) with silence.

The silence phone is not split (one leaf per state), as contexts barely change it.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> # phone 2 ("b") sounds different after phone 1 ("a") than after silence (0)
    >>> keys, n, x, xx = [], [], [], []
    >>> for left in (0, 1):
    ...     v = torch.randn(200, 2, generator=g) + (3.0 if left == 1 else 0.0)
    ...     keys.append((left, 2, 0, 0)); n.append(200.0); x.append(v.sum(0)); xx.append((v ** 2).sum(0))
    >>> stats = TreeStats(keys, torch.tensor(n), torch.stack(x), torch.stack(xx))
    >>> tree = build_tree(stats, phones=["SIL", "a", "b"], n_states=[1, 1, 1], questions=[[1]],
    ...                   num_leaves=10, min_count=50)
    >>> tree.pdf(1, 2, 0, 0) != tree.pdf(0, 2, 0, 0)
    True
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

_LOG2PI = math.log(2 * math.pi)


@dataclass
class TreeStats:
    """Per-context statistics: ``keys[i] = (left, phone, state, right)`` (phone ids, 0 = boundary),
    ``count [K]``, ``x [K, D]``, ``xx [K, D]`` (float64)."""

    keys: list[tuple[int, int, int, int]]
    count: torch.Tensor
    x: torch.Tensor
    xx: torch.Tensor

    @classmethod
    def from_alignments(cls, feats: Sequence[torch.Tensor], windows: Sequence[torch.Tensor]) -> TreeStats:
        """Accumulate from per-frame contexts ``windows[i] [T, 4]`` (left, phone, state, right)."""
        allw = torch.cat([w.long() for w in windows])
        allx = torch.cat([f.to(torch.float64) for f in feats])
        uniq, inv = torch.unique(allw, dim=0, return_inverse=True)
        k, d = uniq.shape[0], allx.shape[1]
        ones = torch.ones(len(inv), dtype=torch.float64)
        count = torch.zeros(k, dtype=torch.float64).index_add_(0, inv, ones)
        x = torch.zeros(k, d, dtype=torch.float64).index_add_(0, inv, allx)
        xx = torch.zeros(k, d, dtype=torch.float64).index_add_(0, inv, allx ** 2)
        return cls([tuple(int(v) for v in row) for row in uniq.tolist()], count, x, xx)


def _loglik(n: np.ndarray, x: np.ndarray, xx: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Log-likelihood of data with counts ``n [..]`` under its own ML diagonal Gaussian."""
    safe = np.maximum(n, 1e-10)[..., None]
    var = np.maximum(xx / safe - (x / safe) ** 2, floor)
    return -0.5 * n * (x.shape[-1] * (_LOG2PI + 1.0) + np.log(var).sum(-1))


@dataclass
class Node:
    """A tree node: a leaf (``pdf >= 0``) or a question on ``pos`` (``0`` left, ``2`` right) with the
    phone set ``qset``, children ``yes``/``no`` (node indices)."""

    pdf: int = -1
    pos: int = -1
    qset: frozenset[int] = frozenset()
    yes: int = -1
    no: int = -1


@dataclass
class DecisionTree:
    """Roots per ``(phone, state)``; :meth:`pdf` walks them. ``num_pdfs`` leaves in all."""

    roots: dict[tuple[int, int], int]
    nodes: list[Node]
    num_pdfs: int
    leaf_info: list[dict[str, Any]] = field(default_factory=list)

    def pdf(self, left: int, phone: int, state: int, right: int) -> int:
        """The pdf of ``state`` of ``phone`` between ``left`` and ``right`` (phone ids, 0 = boundary)."""
        i = self.roots[(phone, state)]
        while True:
            nd = self.nodes[i]
            if nd.pdf >= 0:
                return nd.pdf
            ctx = left if nd.pos == 0 else right
            i = nd.yes if ctx in nd.qset else nd.no

    def to_json(self) -> dict[str, Any]:
        return {"roots": [[p, s, i] for (p, s), i in sorted(self.roots.items())],
                "nodes": [[n.pdf, n.pos, sorted(n.qset), n.yes, n.no] for n in self.nodes],
                "num_pdfs": self.num_pdfs}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DecisionTree:
        nodes = [Node(int(a), int(b), frozenset(int(v) for v in c), int(y), int(n))
                 for a, b, c, y, n in d["nodes"]]
        return cls({(int(p), int(s)): int(i) for p, s, i in d["roots"]}, nodes, int(d["num_pdfs"]))


def phone_questions(means: torch.Tensor, phone_ids: Sequence[int], silence: int | None) -> list[list[int]]:
    """Question sets from a binary clustering of phones by their monophone means ``[len(phone_ids), D]``
    (average linkage), plus each phone alone; the boundary ``0`` joins every set holding silence, and
    ``{0, silence}`` is a question of its own."""
    from scipy.cluster.hierarchy import linkage

    ids = list(phone_ids)
    qs: list[list[int]] = [[p] for p in ids]
    if len(ids) > 2:
        z = linkage(means.double().numpy(), method="average")
        members: list[list[int]] = [[p] for p in ids]
        for a, b, _, _ in z:
            members.append(members[int(a)] + members[int(b)])
            qs.append(sorted(members[-1]))
    out = []
    for q in qs:
        q = sorted(set(q))
        if silence is not None and silence in q:
            q = sorted(set(q) | {0})
        out.append(q)
    if silence is not None:
        out.append([0, silence])
    uniq = {tuple(q) for q in out if 0 < len(q)}
    return [list(q) for q in sorted(uniq)]


def build_tree(stats: TreeStats, phones: Sequence[str], n_states: Sequence[int],
               questions: Sequence[Sequence[int]], num_leaves: int = 500, min_count: float = 100.0,
               min_gain: float = 0.0, silence: int | None = None, floor_factor: float = 0.01) -> DecisionTree:
    """Grow the trees (see the module docstring). Phone ids are 1-based (``phones[i - 1]``); ``0`` is
    the utterance boundary. Every ``(phone, state)`` gets a root; unseen ones stay a single leaf."""
    n = stats.count.numpy()
    x = stats.x.numpy()
    xx = stats.xx.numpy()
    tot = max(n.sum(), 1.0)
    floor = floor_factor * np.maximum(xx.sum(0) / tot - (x.sum(0) / tot) ** 2, 1e-10)
    keys = np.array(stats.keys, dtype=np.int64).reshape(-1, 4)
    qsets = [frozenset(int(v) for v in q) for q in questions]
    max_id = len(phones) + 1
    # membership [Q, ids]: does context id belong to question q
    member = np.zeros((len(qsets), max_id), dtype=bool)
    for qi, q in enumerate(qsets):
        for v in q:
            if 0 <= v < max_id:
                member[qi, v] = True

    nodes: list[Node] = []
    roots: dict[tuple[int, int], int] = {}
    heap: list[tuple[float, int, int]] = []
    leaf_rows: dict[int, np.ndarray] = {}
    best: dict[int, tuple[int, int, np.ndarray, np.ndarray]] = {}

    def propose(node: int) -> None:
        rows = leaf_rows[node]
        if len(rows) < 2:
            return
        phone = int(keys[rows[0], 1])
        if silence is not None and phone == silence:
            return
        nr, xr, xxr = n[rows], x[rows], xx[rows]
        parent = _loglik(nr.sum(), xr.sum(0), xxr.sum(0), floor)
        best_gain, arg = -math.inf, None
        for pos, col in ((0, 0), (2, 3)):
            m = member[:, keys[rows, col]].astype(np.float64)          # [Q, K]
            ny, xy, xxy = m @ nr, m @ xr, m @ xxr
            nn, xn, xxn = nr.sum() - ny, xr.sum(0) - xy, xxr.sum(0) - xxy
            ok = (ny >= min_count) & (nn >= min_count)
            if not ok.any():
                continue
            gain = _loglik(ny, xy, xxy, floor) + _loglik(nn, xn, xxn, floor) - parent
            gain[~ok] = -math.inf
            qi = int(np.argmax(gain))
            if gain[qi] > best_gain:
                best_gain = float(gain[qi])
                yes = m[qi] > 0
                arg = (pos, qi, rows[yes], rows[~yes])
        if arg is not None and best_gain > min_gain:
            best[node] = arg
            heapq.heappush(heap, (-best_gain, node, len(nodes)))

    for pi in range(1, len(phones) + 1):
        for s in range(n_states[pi - 1]):
            nodes.append(Node())
            roots[(pi, s)] = len(nodes) - 1
            sel = np.nonzero((keys[:, 1] == pi) & (keys[:, 2] == s))[0] if len(keys) else np.zeros(0, int)
            leaf_rows[len(nodes) - 1] = sel
            propose(len(nodes) - 1)
    leaves = len(nodes)
    while heap and leaves < num_leaves:
        _, node, _ = heapq.heappop(heap)
        if node not in best:
            continue
        pos, qi, yes_rows, no_rows = best.pop(node)
        yes_i, no_i = len(nodes), len(nodes) + 1
        nodes.append(Node())
        nodes.append(Node())
        nodes[node] = Node(pos=pos, qset=qsets[qi], yes=yes_i, no=no_i)
        leaf_rows[yes_i], leaf_rows[no_i] = yes_rows, no_rows
        del leaf_rows[node]
        leaves += 1
        propose(yes_i)
        propose(no_i)
    # number the leaves: pdf ids, root order (so a monophone-like tree numbers like the monophones)
    info: list[dict[str, Any]] = []
    order: list[int] = []

    def walk(i: int) -> None:
        if nodes[i].yes < 0:
            order.append(i)
        else:
            walk(nodes[i].yes)
            walk(nodes[i].no)

    for key in sorted(roots):
        walk(roots[key])
    for pdf, i in enumerate(order):
        nodes[i].pdf = pdf
        rows = leaf_rows.get(i, np.zeros(0, int))
        info.append({"count": float(n[rows].sum()) if len(rows) else 0.0})
    return DecisionTree(roots, nodes, len(order), info)


def leaf_statistics(tree: DecisionTree, stats: TreeStats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pooled ``count [P]``, ``x [P, D]``, ``xx [P, D]`` of each leaf (to initialise its Gaussian)."""
    p, d = tree.num_pdfs, stats.x.shape[1]
    idx = torch.tensor([tree.pdf(k[0], k[1], k[2], k[3]) for k in stats.keys], dtype=torch.long)
    cnt = torch.zeros(p, dtype=torch.float64).index_add_(0, idx, stats.count)
    x = torch.zeros(p, d, dtype=torch.float64).index_add_(0, idx, stats.x)
    xx = torch.zeros(p, d, dtype=torch.float64).index_add_(0, idx, stats.xx)
    return cnt, x, xx
