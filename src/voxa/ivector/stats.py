"""Baum-Welch statistics of utterances against a UBM, batched over many utterances at once.

For an utterance with frames ``x_t`` and UBM posteriors ``gamma_tk`` the statistics are

    N_k = sum_t gamma_tk                                  (zeroth order, [K])
    F_k = sum_t gamma_tk (x_t - mu_k)                     (first order centred on the UBM, [K, d])
    S_k = sum_t gamma_tk (x_t - mu_k)^2                   (second order, [K, d]; [K, d, d] for a
                                                           full-covariance UBM: outer products)

Many utterances are processed together: their frames are concatenated so the posteriors of the
whole batch are one GEMM (through :func:`voxa.gmm.em.phi` and :func:`voxa.gmm.em.natural_params`),
and all the sums are one batched GEMM over fixed-length *segments*: each utterance is cut into
segments of at most ``_SEG`` frames (only its last segment is padded), ``gamma_seg^T @ [y, 1, q]``
gives ``[segments, K, d + 1 (+ second order)]``, and those are scatter-added to their utterances
by utterance index (``index_add_``). That keeps every operation a dense GEMM whatever the mix of
utterance lengths, with at most ``_SEG - 1`` padded frames per utterance.

Example:
    >>> import torch
    >>> from voxa.gmm import GaussianMixture
    >>> ubm = GaussianMixture(8, random_state=0, max_iter=5).fit(torch.randn(4000, 4))
    >>> utts = [torch.randn(n, 4) for n in (120, 80, 200)]
    >>> N, F = baum_welch_stats(ubm, utts)
    >>> N.shape, F.shape
    (torch.Size([3, 8]), torch.Size([3, 8, 4]))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch
from tqdm import tqdm

from voxa.errors import VoxaError
from voxa.gmm.em import log_prob, natural_params, phi
from voxa.utils.serialization import register

if TYPE_CHECKING:
    from voxa.gmm.mixture import GaussianMixture

_CLASS = "voxa.ivector.BaumWelchStats"
# Frames per segment of the batched first-order GEMM: long enough for efficient [K, _SEG] x
# [_SEG, d] products, short enough that padding the last segment of each utterance costs little.
_SEG = 128
# Elements of the widest per-batch temporary ([frames, K] posteriors and their padded copy).
_BUDGET = 1 << 23

Frames = Union[np.ndarray, torch.Tensor]


@dataclass
@register(_CLASS)
class BaumWelchStats:
    """Per-utterance Baum-Welch statistics.

    Unpacks like the pair ``(N, F)`` (``N, F = stats``); the optional second-order statistics and
    utterance ids are attributes.

    Attributes:
        N: ``[U, K]`` zeroth-order statistics.
        F: ``[U, K, d]`` first-order statistics centred on the UBM means.
        S: ``None`` or second-order statistics centred on the UBM means: ``[U, K, d]`` (diagonal
            UBM) or ``[U, K, d, d]`` (full-covariance UBM).
        ids: Optional utterance ids (``len == U``).
    """

    N: torch.Tensor
    F: torch.Tensor
    S: torch.Tensor | None = None
    ids: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        N, F = torch.as_tensor(self.N), torch.as_tensor(self.F)
        if N.dim() != 2 or F.dim() != 3 or F.shape[:2] != N.shape:
            raise VoxaError(f"stats: N must be [U, K] and F [U, K, d], got {tuple(N.shape)} and "
                            f"{tuple(F.shape)}")
        self.N, self.F = N, F
        if self.S is not None:
            S = torch.as_tensor(self.S)
            if S.shape[:3] != F.shape or S.dim() not in (3, 4):
                raise VoxaError(f"stats: S must be [U, K, d] or [U, K, d, d], got {tuple(S.shape)}")
            self.S = S
        if self.ids is not None:
            self.ids = [str(i) for i in self.ids]
            if len(self.ids) != N.shape[0]:
                raise VoxaError(f"stats: {len(self.ids)} ids for {N.shape[0]} utterances")

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.N, self.F))

    def __len__(self) -> int:
        return int(self.N.shape[0])

    def __getitem__(self, idx: Any) -> BaumWelchStats:
        """Rows ``idx`` (an int, slice, index list/tensor or boolean mask) as new statistics."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        if not isinstance(idx, slice):
            idx = torch.as_tensor(idx, device=self.N.device)
            if idx.dtype == torch.bool:
                idx = torch.nonzero(idx)[:, 0]
        ids = None
        if self.ids is not None:
            rows = range(len(self))[idx] if isinstance(idx, slice) else idx.tolist()
            ids = [self.ids[i] for i in rows]
        return BaumWelchStats(self.N[idx], self.F[idx], None if self.S is None else self.S[idx], ids)

    @property
    def n_components(self) -> int:
        """``K``."""
        return int(self.N.shape[1])

    @property
    def dim(self) -> int:
        """Feature dimension ``d``."""
        return int(self.F.shape[2])

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
           ) -> BaumWelchStats:
        """A copy on ``device`` in ``dtype`` (each left as is when ``None``)."""
        S = self.S.to(device=device, dtype=dtype) if self.S is not None else None
        return BaumWelchStats(self.N.to(device=device, dtype=dtype),
                              self.F.to(device=device, dtype=dtype), S, self.ids)

    def pool(self, labels: Sequence[Any]) -> tuple[BaumWelchStats, list[Any], torch.Tensor]:
        """Sum the statistics of utterances sharing a label (e.g. a speaker).

        Args:
            labels: ``U`` hashable labels.

        Returns:
            ``(pooled, names, index)``: pooled statistics with one row per distinct label (in order
            of first appearance, ``ids`` set to ``str(name)``), the distinct labels, and the
            ``[U]`` int64 row of each utterance in ``pooled``.
        """
        names, index = group_labels(labels, len(self))
        idx = index.to(self.N.device)
        G = len(names)

        def add(t: torch.Tensor) -> torch.Tensor:
            return t.new_zeros(G, *t.shape[1:]).index_add_(0, idx, t)

        S = add(self.S) if self.S is not None else None
        pooled = BaumWelchStats(add(self.N), add(self.F), S, [str(n) for n in names])
        return pooled, names, index

    @classmethod
    def concat(cls, parts: Sequence[BaumWelchStats]) -> BaumWelchStats:
        """Stack statistics of disjoint utterance sets (in order)."""
        if not parts:
            raise VoxaError("stats: nothing to concatenate")
        S = None if any(p.S is None for p in parts) else torch.cat([p.S for p in parts])
        ids = None if any(p.ids is None for p in parts) else [i for p in parts for i in p.ids]
        return cls(torch.cat([p.N for p in parts]), torch.cat([p.F for p in parts]), S, ids)

    def save(self, path: str | os.PathLike) -> Path:
        """Write to one safetensors file (tensors + JSON header with the ids)."""
        from voxa.utils.serialization import save_model

        tensors = {"N": self.N, "F": self.F}
        if self.S is not None:
            tensors["S"] = self.S
        return save_model(path, tensors, {"class": _CLASS, "ids": self.ids})

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> BaumWelchStats:
        """Read statistics written by :meth:`save`."""
        from voxa.utils.serialization import load_model

        tensors, header = load_model(path, expected_class=_CLASS, device=device)
        try:
            return cls(tensors["N"], tensors["F"], tensors.get("S"), header.get("ids"))
        except KeyError as e:
            raise VoxaError(f"{path}: malformed BaumWelchStats file (missing {e})") from e


def group_labels(labels: Sequence[Any], n: int) -> tuple[list[Any], torch.Tensor]:
    """Distinct labels in order of first appearance and the ``[n]`` int64 group of each item."""
    labels = list(labels)
    if len(labels) != n:
        raise VoxaError(f"{len(labels)} labels for {n} utterances")
    pos: dict[Any, int] = {}
    index = [pos.setdefault(lab, len(pos)) for lab in labels]
    return list(pos), torch.tensor(index, dtype=torch.int64)


def as_stats(stats: Any) -> BaumWelchStats:
    """Accept :class:`BaumWelchStats` or a tuple ``(N, F)`` / ``(N, F, S)`` of arrays or tensors."""
    if isinstance(stats, BaumWelchStats):
        return stats
    if isinstance(stats, (tuple, list)) and len(stats) in (2, 3) and not isinstance(
            stats[0], BaumWelchStats):
        return BaumWelchStats(*stats)
    raise VoxaError(f"stats: expected BaumWelchStats or an (N, F) tuple, got {type(stats).__name__}")


def check_stats(stats: BaumWelchStats, K: int, d: int) -> None:
    """Raise a one-line :class:`VoxaError` unless ``stats`` fits a ``K x d`` UBM and is finite."""
    if stats.N.shape[1] != K or stats.F.shape[2] != d:
        raise VoxaError(f"stats are for K={stats.N.shape[1]}, d={stats.F.shape[2]} but the UBM has "
                        f"K={K}, d={d}")
    if len(stats) == 0:
        raise VoxaError("stats: no utterances")
    if not (bool(torch.isfinite(stats.N).all()) and bool(torch.isfinite(stats.F).all())):
        raise VoxaError("stats contain NaN or infinite values")


def ubm_from_tensors(weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor,
                     covariance_type: str, dtype: torch.dtype,
                     var_floor: torch.Tensor | None = None) -> GaussianMixture:
    """A fitted :class:`~voxa.gmm.GaussianMixture` from stored parameters (for standalone models)."""
    from voxa.gmm.mixture import GaussianMixture

    g = GaussianMixture(int(weights.shape[0]), covariance_type=covariance_type, dtype=dtype)
    dev = means.device
    g.weights_, g.means_, g.covariances_ = (t.to(dev, torch.float64)
                                            for t in (weights, means, covariances))
    diag = covariances if covariance_type == "diag" else covariances.diagonal(dim1=-2, dim2=-1)
    g.var_floor_ = (var_floor.to(dev, torch.float64) if var_floor is not None
                    else torch.full_like(diag[0], 1e-10, dtype=torch.float64))
    g.converged_, g.n_iter_, g.lower_bound_, g.history_, g.device_ = True, 0, float("nan"), [], dev
    return g


# ---------------------------------------------------------------------------------- computing
class _Posteriors:
    """UBM natural parameters in the compute dtype, built once per call."""

    def __init__(self, ubm: GaussianMixture, dtype: torch.dtype) -> None:
        ubm.check_fitted()
        self.kind = ubm.covariance_type
        self.dtype = dtype
        self.device = ubm.means_.device
        shift = ubm.weights_ @ ubm.means_
        # Centring on the mixture mean keeps float32 products accurate (as in voxa.gmm.em).
        self.W = natural_params(ubm.weights_, ubm.means_, ubm.covariances_, self.kind,
                                shift).to(dtype)
        self.shift = shift.to(dtype)
        self.offset = (ubm.means_ - shift).to(dtype)  # [K, d] UBM means in the shifted frame
        self.K, self.d = ubm.means_.shape

    def gamma(self, y: torch.Tensor, top_c: int | None) -> torch.Tensor:
        """``[n, K]`` posteriors of shifted frames ``y``, optionally only the top ``C`` per frame."""
        L = log_prob(phi(y, self.kind), self.W)
        if top_c is None or top_c >= self.K:
            return torch.softmax(L, dim=1)
        best, idx = torch.topk(L, top_c, dim=1)
        return torch.zeros_like(L).scatter_(1, idx, torch.softmax(best, dim=1))


def _batch_stats(post: _Posteriors, xs: list[torch.Tensor], top_c: int | None, second_order: bool,
                 first: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Statistics of one batch of utterances (shapes validated, on device, in dtype); ``first`` is
    the index of ``xs[0]`` among all utterances, for error messages."""
    K, d, dev, dt = post.K, post.d, post.device, post.dtype
    B = len(xs)
    lens = torch.tensor([x.shape[0] for x in xs], device=dev)
    x = torch.cat(xs)
    # One check per batch: small per-utterance ops cost more in dispatch than in arithmetic.
    if not bool(torch.isfinite(x).all()):
        bad = next(i for i, t in enumerate(xs) if not bool(torch.isfinite(t).all()))
        raise VoxaError(f"utterance {first + bad}: frames contain NaN or infinite values")
    y = x - post.shift
    gamma = post.gamma(y, top_c)
    utt = torch.repeat_interleave(torch.arange(B, device=dev), lens)

    # Segment layout: utterance i owns segments seg0[i] .. seg0[i] + ceil(len_i / _SEG) - 1.
    nseg = (lens + _SEG - 1) // _SEG
    seg0 = torch.cumsum(nseg, 0) - nseg
    start = torch.cumsum(lens, 0) - lens
    pos = torch.arange(y.shape[0], device=dev) - start[utt]
    seg = seg0[utt] + torch.div(pos, _SEG, rounding_mode="floor")
    slot = pos % _SEG
    n_seg = int(nseg.sum().item())
    # [y, 1, q(y)]: the column of ones makes N come out of the same GEMM as F and S.
    cols = [y, torch.ones(y.shape[0], 1, dtype=dt, device=dev)]
    if second_order:
        cols.append(y * y if post.kind == "diag"
                    else (y[:, :, None] * y[:, None, :]).reshape(-1, d * d))
    feats = torch.cat(cols, dim=1)
    G = torch.zeros(n_seg, _SEG, K, dtype=dt, device=dev)
    G[seg, slot] = gamma
    X = torch.zeros(n_seg, _SEG, feats.shape[1], dtype=dt, device=dev)
    X[seg, slot] = feats
    seg_utt = torch.repeat_interleave(torch.arange(B, device=dev), nseg)
    acc = torch.zeros(B, K, feats.shape[1], dtype=dt, device=dev).index_add_(
        0, seg_utt, G.transpose(1, 2) @ X)

    a = post.offset  # UBM means relative to the shift: x - mu = y - a
    Fy = acc[:, :, :d]
    N = acc[:, :, d].contiguous()
    F = Fy - N[:, :, None] * a
    S = None
    if second_order:
        if post.kind == "diag":
            # sum g (y - a)^2 = sum g y^2 - 2 a sum g y + N a^2
            S = acc[:, :, d + 1:] - 2.0 * a * Fy + N[:, :, None] * (a * a)
        else:
            Syy = acc[:, :, d + 1:].reshape(B, K, d, d)
            aF = a[None, :, :, None] * Fy[:, :, None, :]
            S = Syy - aF - aF.transpose(-1, -2) + N[:, :, None, None] * (a[:, :, None] * a[:, None, :])
    return N, F, S


def _frames(x: Any, i: int, d: int) -> torch.Tensor:
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise VoxaError(f"utterance {i}: cannot convert {type(x).__name__} to a tensor ({e})") from e
    if t.dim() != 2 or t.shape[1] != d:
        raise VoxaError(f"utterance {i}: frames must be [T, {d}] to match the UBM, got "
                        f"{tuple(t.shape)}")
    if t.shape[0] == 0:
        raise VoxaError(f"utterance {i}: no frames")
    return t


def iter_baum_welch_stats(ubm: GaussianMixture,
                          utterances: Iterable[Frames] | Mapping[str, Frames] | Callable[[], Iterable],
                          top_c: int | None = None, batch_frames: int | None = None,
                          second_order: bool = False, dtype: torch.dtype | None = None,
                          progress: bool = False) -> Iterator[BaumWelchStats]:
    """Stream statistics: yield one :class:`BaumWelchStats` per batch of utterances.

    Utterances are read lazily, so an iterator (e.g. one reading features from disk) never has to
    fit in memory at once; only one batch of frames and its statistics do.

    Args:
        ubm: Fitted :class:`~voxa.gmm.GaussianMixture` (diag or full covariances).
        utterances: Per-utterance frames ``[T_u, d]`` (numpy or torch): a list/iterable, a
            zero-argument callable returning one, or a mapping id -> frames such as a
            :class:`voxa.features.store.FeatureReader` (ids are kept; frames are read one batch at
            a time).
        top_c: Keep only each frame's ``C`` most likely components (posteriors renormalised over
            them, the rest zero); ``None`` for exact posteriors.
        batch_frames: Frames per batch (default: about 8M elements of ``[frames, K]``); an
            utterance longer than this forms a batch alone.
        second_order: Also compute ``S``.
        dtype: Compute and output dtype (default the UBM's ``dtype``).
        progress: Show a tqdm bar (utterances).

    Yields:
        :class:`BaumWelchStats` of consecutive utterances, on the UBM's device.

    Raises:
        VoxaError: An utterance is empty, has the wrong dimension, or holds NaN/inf.
    """
    dt = dtype or ubm.dtype
    post = _Posteriors(ubm, dt)
    K, d = post.K, post.d
    if top_c is not None and int(top_c) < 1:
        raise VoxaError(f"top_c must be >= 1 or None, got {top_c}")
    if batch_frames is None:
        width = K + (2 * d if second_order else d)
        batch_frames = max(256, _BUDGET // width)
    ids_iter: Iterator[str] | None = None
    mapping_like = hasattr(utterances, "keys") and hasattr(utterances, "__getitem__")
    if isinstance(utterances, Mapping) or mapping_like:
        # mappings, and readers that behave like one (voxa.features.store.FeatureReader), read lazily
        keys = list(utterances.keys())
        ids_iter = iter([str(k) for k in keys])
        source: Iterable[Any] = (utterances[k] for k in keys)
    elif callable(utterances):
        source = utterances()
    else:
        source = utterances
    total = len(utterances) if isinstance(utterances, Sized) else None
    bar = tqdm(total=total, desc="Baum-Welch stats", unit="utt", disable=not progress, leave=False)
    batch: list[torch.Tensor] = []
    ids: list[str] = []
    n = 0
    first = 0

    def flush() -> BaumWelchStats:
        N, F, S = _batch_stats(post, batch, None if top_c is None else int(top_c), second_order,
                               first)
        bar.update(len(batch))
        return BaumWelchStats(N, F, S, list(ids) if ids_iter is not None else None)

    for i, x in enumerate(source):
        t = _frames(x, i, d).to(device=post.device, dtype=dt)
        if batch and n + t.shape[0] > batch_frames:
            yield flush()
            batch, ids, n, first = [], [], 0, i
        batch.append(t)
        if ids_iter is not None:
            ids.append(next(ids_iter))
        n += t.shape[0]
    if batch:
        yield flush()
    bar.close()


def baum_welch_stats(ubm: GaussianMixture,
                     utterances: Iterable[Frames] | Mapping[str, Frames] | Callable[[], Iterable],
                     top_c: int | None = None, batch_frames: int | None = None,
                     second_order: bool = False, dtype: torch.dtype | None = None,
                     progress: bool = False) -> BaumWelchStats:
    """Statistics of every utterance, computed in batches (see :func:`iter_baum_welch_stats`).

    Args:
        ubm: Fitted UBM.
        utterances: Per-utterance frames ``[T_u, d]`` (list, iterable, callable or mapping).
        top_c: Top-C posterior pruning (``None``: exact).
        batch_frames: Frames per batch.
        second_order: Also compute ``S``.
        dtype: Compute and output dtype (default the UBM's).
        progress: Show a tqdm bar.

    Returns:
        :class:`BaumWelchStats` with ``N [U, K]`` and ``F [U, K, d]``; it unpacks as
        ``N, F = baum_welch_stats(ubm, utts)``.

    Raises:
        VoxaError: No utterances, or an utterance is empty, mis-sized or non-finite.
    """
    parts = list(iter_baum_welch_stats(ubm, utterances, top_c, batch_frames, second_order, dtype,
                                       progress))
    if not parts:
        raise VoxaError("no utterances")
    return parts[0] if len(parts) == 1 else BaumWelchStats.concat(parts)

