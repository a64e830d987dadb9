"""GMM-HMM acoustic model: left-to-right phone HMMs whose states ("pdfs") are diagonal GMMs.

Every phone is a left-to-right HMM of ``n_states`` emitting states with self-loops (Kaldi's and HTK's
3-state topology by default; silence may have more). Each state of a monophone model owns one pdf;
pdf ``j`` is a diagonal-covariance GMM with up to ``M`` components, stored padded as
``means [P, M, D]``, ``variances [P, M, D]`` and ``log_weights [P, M]`` (``-inf`` for unused
components), so that the frame log-likelihoods of every pdf are two matrix products. Transition
probabilities are one self-loop probability per pdf (the rest leaves the state), as in HTK.

Statistics (zeroth, first and second order per component) are accumulated from frame-level pdf
alignments in float64 and may be all-reduced over ``torch.distributed`` ranks before the M-step, the
same scale-out the UBM uses.

Example:
    >>> import torch
    >>> am = AcousticModel.init_flat(["SIL", "a", "b"], dim=4, mean=torch.zeros(4), var=torch.ones(4))
    >>> am.num_pdfs, am.pdf_of("a", 1)
    (9, 4)
    >>> am.log_likelihoods(torch.randn(20, 4)).shape
    torch.Size([20, 9])
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voxa.errors import VoxaError
from voxa.utils.serialization import register

_CLASS = "voxa.asr.AcousticModel"
_LOG2PI = math.log(2 * math.pi)
_SPLIT_EPS = 0.2  # HTK's mixing-up perturbation, in standard deviations


@dataclass
class GmmStats:
    """Sufficient statistics per pdf component, float64: ``occ [P, M]``, ``x [P, M, D]``, ``xx [P, M, D]``,
    and transition counts ``self_counts``/``frames`` ``[P]`` (frames spent in a state, and of those how
    many stayed)."""

    occ: torch.Tensor
    x: torch.Tensor
    xx: torch.Tensor
    frames: torch.Tensor
    stays: torch.Tensor
    loglik: float = 0.0
    num_frames: int = 0

    @classmethod
    def zeros(cls, p: int, m: int, d: int) -> GmmStats:
        z = torch.zeros
        f64 = torch.float64
        return cls(z(p, m, dtype=f64), z(p, m, d, dtype=f64), z(p, m, d, dtype=f64), z(p, dtype=f64),
                   z(p, dtype=f64))

    def add(self, other: GmmStats) -> None:
        for name in ("occ", "x", "xx", "frames", "stays"):
            getattr(self, name).add_(getattr(other, name))
        self.loglik += other.loglik
        self.num_frames += other.num_frames

    def all_reduce(self) -> None:
        """Sum over ``torch.distributed`` ranks (no-op when not initialised)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        for name in ("occ", "x", "xx", "frames", "stays"):
            dist.all_reduce(getattr(self, name))
        scal = torch.tensor([self.loglik, float(self.num_frames)], dtype=torch.float64)
        dist.all_reduce(scal)
        self.loglik, self.num_frames = float(scal[0]), int(scal[1])


@register(_CLASS)
@dataclass
class AcousticModel:
    """Monophone GMM-HMM acoustic model.

    Attributes:
        phones: phone symbols; ``phones[0]`` is conventionally the silence phone.
        n_states: emitting states of each phone, ``[len(phones)]``.
        means, variances: ``[P, M, D]`` float32.
        log_weights: ``[P, M]``, ``-inf`` where a pdf has fewer than ``M`` components.
        log_self: ``[P]`` log self-loop probability of each state (``log(1 - exp(log_self))`` leaves it).
        silence: the silence phone (optional between words).
        var_floor: ``[D]`` variance floor used by the M-step.
    """

    phones: list[str]
    n_states: list[int]
    means: torch.Tensor
    variances: torch.Tensor
    log_weights: torch.Tensor
    log_self: torch.Tensor
    silence: str = "SIL"
    var_floor: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    tree: Any = None

    def __post_init__(self) -> None:
        self._offset = [0]
        for n in self.n_states:
            self._offset.append(self._offset[-1] + n)
        self._index = {p: i for i, p in enumerate(self.phones)}
        if len(self._index) != len(self.phones):
            raise VoxaError("acoustic model: duplicate phone symbols")
        want = self.tree.num_pdfs if self.tree is not None else self._offset[-1]
        if self.means.shape[0] != want:
            raise VoxaError(f"acoustic model: {self.means.shape[0]} pdfs for {want} tied HMM states")
        self._cache: tuple[torch.Tensor, ...] | None = None

    # ------------------------------------------------------------------------------------ structure
    @classmethod
    def init_flat(cls, phones: list[str], dim: int, mean: torch.Tensor, var: torch.Tensor,
                  n_states: int = 3, silence: str = "SIL", silence_states: int | None = None,
                  self_loop: float = 0.75, floor_factor: float = 0.01) -> AcousticModel:
        """Every state a single Gaussian at the global mean and variance (Kaldi's ``gmm-init-mono``).

        Args:
            phones: phone symbols (the silence phone among them if it is used).
            dim: feature dimension ``D``.
            mean, var: global statistics ``[D]`` of the training features.
            n_states: emitting states per phone; ``silence_states`` overrides it for silence.
            self_loop: initial self-loop probability (Kaldi's topology starts at 0.75).
            floor_factor: the variance floor is this fraction of the global variance.
        """
        ns = [silence_states if (p == silence and silence_states) else n_states for p in phones]
        p = sum(ns)
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, 1, dim)
        var = torch.as_tensor(var, dtype=torch.float32).reshape(1, 1, dim)
        return cls(list(phones), ns, mean.repeat(p, 1, 1), var.repeat(p, 1, 1), torch.zeros(p, 1),
                   torch.full((p,), math.log(self_loop)), silence, (floor_factor * var).reshape(dim))

    @property
    def num_pdfs(self) -> int:
        return int(self.means.shape[0])

    @property
    def context_dependent(self) -> bool:
        """Whether pdfs depend on the neighbouring phones (a triphone model with a decision tree)."""
        return self.tree is not None

    def cd_pdf(self, left: int, phone: int, state: int, right: int) -> int:
        """The pdf of ``state`` of phone id ``phone`` (1-based, 0 = boundary) in context; a monophone
        model ignores the context."""
        if self.tree is None:
            return self._offset[phone - 1] + state
        return self.tree.pdf(left, phone, state, right)

    @property
    def dim(self) -> int:
        return int(self.means.shape[-1])

    @property
    def num_gaussians(self) -> int:
        return int(torch.isfinite(self.log_weights).sum())

    def phone_index(self, phone: str) -> int:
        try:
            return self._index[phone]
        except KeyError:
            raise VoxaError(f"phone {phone!r} is not in the acoustic model's phone set") from None

    def pdf_of(self, phone: str, state: int) -> int:
        """The pdf of emitting state ``state`` (0-based) of ``phone`` (monophone models)."""
        self._mono_only()
        return self._offset[self.phone_index(phone)] + state

    def pdfs_of(self, phone: str) -> list[int]:
        """The pdfs of every state of ``phone`` (monophone models)."""
        self._mono_only()
        i = self.phone_index(phone)
        return list(range(self._offset[i], self._offset[i + 1]))

    def _mono_only(self) -> None:
        if self.tree is not None:
            raise VoxaError("a context-dependent model has no single pdf per phone state; use cd_pdf")

    def pdf_phone(self) -> torch.Tensor:
        """``[P]`` phone index of every pdf."""
        return torch.repeat_interleave(torch.arange(len(self.phones)), torch.tensor(self.n_states))

    # ---------------------------------------------------------------------------------- likelihoods
    def _natural(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._cache is None:
            prec = 1.0 / self.variances                                         # [P, M, D]
            const = (self.log_weights - 0.5 * (self.dim * _LOG2PI + torch.log(self.variances).sum(-1)
                                               + (self.means ** 2 * prec).sum(-1)))  # [P, M]
            self._cache = (prec, self.means * prec, const)
        return self._cache

    def component_log_likelihoods(self, feats: torch.Tensor) -> torch.Tensor:
        """``[T, P, M]`` log weight + log density of every component for frames ``feats [T, D]``."""
        prec, mp, const = self._natural()
        x = feats.to(torch.float32)
        p, m, d = prec.shape
        quad = (x ** 2) @ prec.reshape(p * m, d).T                              # [T, P*M]
        lin = x @ mp.reshape(p * m, d).T
        return (lin - 0.5 * quad).reshape(-1, p, m) + const

    def log_likelihoods(self, feats: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
        """``[T, P]`` frame log-likelihood of every pdf (log-sum over its components)."""
        if feats.dim() != 2 or feats.shape[1] != self.dim:
            raise VoxaError(f"features of shape {tuple(feats.shape)} for a {self.dim}-dimensional model")
        out = [torch.logsumexp(self.component_log_likelihoods(feats[i:i + chunk]), dim=-1)
               for i in range(0, feats.shape[0], chunk)]
        return torch.cat(out) if out else feats.new_zeros(0, self.num_pdfs)

    # ------------------------------------------------------------------------------------- training
    def accumulate(self, feats: torch.Tensor, pdfs: torch.Tensor, stats: GmmStats) -> None:
        """Add the statistics of frames ``feats [T, D]`` aligned to pdfs ``pdfs [T]`` to ``stats``."""
        x = feats.to(torch.float32)
        pdfs = pdfs.long()
        prec, mp, const = self._natural()
        # only the aligned pdf's components per frame: [T, M, D] gathers, not all P
        mu, pr = self.means[pdfs], prec[pdfs]
        # const holds -0.5 mu'P mu (for the matmul form); the direct quadratic form restores it
        comp = const[pdfs] + 0.5 * (mu ** 2 * pr).sum(-1) - 0.5 * (((x[:, None, :] - mu) ** 2) * pr).sum(-1)
        ll = torch.logsumexp(comp, dim=-1)
        post = torch.exp(comp - ll[:, None]).to(torch.float64)                    # [T, M]
        x64 = x.to(torch.float64)
        stats.occ.index_add_(0, pdfs, post)
        stats.x.index_add_(0, pdfs, post[:, :, None] * x64[:, None, :])
        stats.xx.index_add_(0, pdfs, post[:, :, None] * (x64 ** 2)[:, None, :])
        stats.frames.index_add_(0, pdfs, torch.ones(len(pdfs), dtype=torch.float64))
        stay = torch.zeros(len(pdfs), dtype=torch.float64)
        if len(pdfs) > 1:
            stay[:-1] = (pdfs[1:] == pdfs[:-1]).to(torch.float64)
        stats.stays.index_add_(0, pdfs, stay)
        stats.loglik += float(ll.sum())
        stats.num_frames += len(pdfs)

    def update(self, stats: GmmStats, min_count: float = 3.0, min_self: float = 0.05,
               max_self: float = 0.97) -> None:
        """M-step from ``stats``: weights, means and floored variances of components with at least
        ``min_count`` frames (the others are dropped); self-loop probabilities from the counts. A pdf
        that saw no frames keeps its parameters."""
        occ = stats.occ
        tot = occ.sum(1, keepdim=True)
        seen = tot[:, 0] > 0
        keep = occ >= min_count
        # a seen pdf keeps at least its heaviest component, however few frames it had
        top = occ.argmax(1)
        keep[torch.arange(len(top)), top] |= seen
        safe = occ.clamp_min(1e-10)[:, :, None]
        mean = stats.x / safe
        var = stats.xx / safe - mean ** 2
        floor = self.var_floor.to(torch.float64) if self.var_floor is not None else 1e-4
        var = torch.maximum(var, torch.as_tensor(floor))
        upd = keep & seen[:, None]
        w = torch.where(upd, occ, torch.zeros_like(occ))
        logw = torch.log(w / w.sum(1, keepdim=True).clamp_min(1e-300))
        self.means = torch.where(upd[:, :, None], mean, self.means.double()).float()
        self.variances = torch.where(upd[:, :, None], var, self.variances.double()).float()
        self.log_weights = torch.where(seen[:, None], logw, self.log_weights.double()).float()
        stay = (stats.stays / stats.frames.clamp_min(1.0)).clamp(min_self, max_self)
        self.log_self = torch.where(stats.frames > 0, torch.log(stay), self.log_self.double()).float()
        self._compact()

    def _compact(self) -> None:
        """Move live components to the front and drop all-dead columns."""
        live = torch.isfinite(self.log_weights)
        order = torch.argsort((~live).to(torch.int8), dim=1, stable=True)
        self.log_weights = torch.gather(self.log_weights, 1, order)
        idx = order[:, :, None].expand_as(self.means)
        self.means = torch.gather(self.means, 1, idx)
        self.variances = torch.gather(self.variances, 1, idx)
        width = max(int(live.sum(1).max()), 1)
        self.means, self.variances = self.means[:, :width], self.variances[:, :width]
        self.log_weights = self.log_weights[:, :width]
        self._cache = None

    def split(self, target: int, occupancy: torch.Tensor, power: float = 0.2) -> None:
        """Mix up towards ``target`` Gaussians in all: each pdf's share is proportional to its
        occupancy to the ``power`` (Kaldi's ``--power``), and a pdf grows by splitting its heaviest
        components (means moved apart by ±0.2 standard deviations, HTK's rule)."""
        live = torch.isfinite(self.log_weights).sum(1)
        share = occupancy.clamp_min(0).to(torch.float64) ** power
        want = torch.floor(target * share / share.sum().clamp_min(1e-300)).long().clamp_min(1)
        want = torch.maximum(want, live)
        grow = want - live
        if int(grow.sum()) == 0:
            return
        width = int(want.max())
        p, m, d = self.means.shape
        pad = width - m
        means = torch.cat([self.means, self.means.new_zeros(p, pad, d)], 1)
        variances = torch.cat([self.variances, self.variances.new_ones(p, pad, d)], 1)
        logw = torch.cat([self.log_weights, self.log_weights.new_full((p, pad), -math.inf)], 1)
        # split the heaviest components, one new component each, heaviest first; the number of
        # splits per pdf is at most its live count per round, so loop rounds (a few), not pdfs
        while True:
            live = torch.isfinite(logw).sum(1)
            need = (want - live).clamp_min(0)
            if int(need.sum()) == 0:
                break
            k = torch.minimum(need, live)                                       # splits this round
            ranks = torch.argsort(torch.argsort(logw, dim=1, descending=True), dim=1)
            chosen = (ranks < k[:, None]) & torch.isfinite(logw)                # [P, W]
            pi, ci = torch.nonzero(chosen, as_tuple=True)
            # new slot for the j-th chosen component of a pdf: live + j
            j = torch.cumsum(chosen.to(torch.long), 1)[pi, ci] - 1
            slot = live[pi] + j
            sd = variances[pi, ci].sqrt()
            means[pi, slot] = means[pi, ci] + _SPLIT_EPS * sd
            means[pi, ci] = means[pi, ci] - _SPLIT_EPS * sd
            variances[pi, slot] = variances[pi, ci]
            half = logw[pi, ci] - math.log(2.0)
            logw[pi, ci] = half
            logw[pi, slot] = half
        self.means, self.variances, self.log_weights = means, variances, logw
        self._cache = None

    # ------------------------------------------------------------------------------------------- io
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one safetensors file (tensors + JSON header), atomically."""
        from voxa.utils.serialization import save_model

        header = {"class": _CLASS, "config": {"phones": self.phones, "n_states": self.n_states,
                                              "silence": self.silence}, "info": self.info}
        if self.tree is not None:
            header["tree"] = self.tree.to_json()
        tensors = {"means": self.means, "variances": self.variances, "log_weights": self.log_weights,
                   "log_self": self.log_self}
        if self.var_floor is not None:
            tensors["var_floor"] = self.var_floor
        return save_model(path, tensors, header)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AcousticModel:
        """Read a model written by :meth:`save`."""
        from voxa.utils.serialization import load_model

        t, h = load_model(path, expected_class=_CLASS)
        try:
            c = h["config"]
            tree = None
            if h.get("tree"):
                from voxa.asr.tree import DecisionTree

                tree = DecisionTree.from_json(h["tree"])
            return cls(list(c["phones"]), [int(n) for n in c["n_states"]], t["means"], t["variances"],
                       t["log_weights"], t["log_self"], c.get("silence", "SIL"), t.get("var_floor"),
                       dict(h.get("info") or {}), tree)
        except KeyError as e:
            raise VoxaError(f"{path}: acoustic model file lacks {e}") from None
