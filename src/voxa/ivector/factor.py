"""EM for low-rank factor analysis of Baum-Welch statistics, shared by the TV model and JFA.

Model (Kenny, Boulianne & Dumouchel 2005; Dehak et al. 2011): the supervector of a recording
(an utterance, or all of a speaker's utterances) is ``mu + o + T w`` with ``mu`` the UBM means,
``o [K, d]`` a fixed offset, ``T [K, d, R]`` the loading matrix, ``w ~ N(0, I_R)`` and the UBM's
covariances ``Sigma``. Given centred statistics ``N [K]``, ``F [K, d]`` (``F' = F - N o``):

    posterior precision  L = I + sum_k N_k T_k^T Sigma_k^-1 T_k          [R, R]
    posterior mean       E[w] = L^-1 T^T Sigma^-1 F'                       [R]
    posterior moment     E[w w^T] = L^-1 + E[w] E[w]^T

and the M-step is ``T_k = C_k A_k^-1`` with ``C_k = sum_u F'_uk E[w_u]^T`` and
``A_k = sum_u N_uk E[w_u w_u^T]``. Batched over ``B`` recordings, ``L`` is one GEMM of
``N [B, K]`` with the ``K`` precomputed ``T_k^T Sigma_k^-1 T_k`` (stored as packed upper triangles,
which halves that GEMM and the ``A`` accumulator), ``T^T Sigma^-1 F'`` is one GEMM
``[B, K d] x [K d, R]``, and the solves are batched Cholesky factorisations.

The statistics accumulate in float64 (GEMMs run in the compute dtype, per batch); under
``torch.distributed`` they are summed over ranks with one all-reduce per iteration.

Example:
    >>> import torch
    >>> K, d, R = 4, 3, 2
    >>> sigma = torch.ones(K, d, dtype=torch.float64)
    >>> T = init_loading(sigma, "diag", R, seed=0)
    >>> prep = prepare(T, sigma, "diag", None, torch.float32)
    >>> w, chol, b = posterior(prep, torch.full((5, K), 10.0), torch.randn(5, K, d))
    >>> w.shape
    torch.Size([5, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from voxa.errors import VoxaError
from voxa.gmm import distributed as dist_utils
from voxa.gmm.em import LOG_2PI, cholesky_safe, floor_covariances
from voxa.ivector.stats import BaumWelchStats, as_stats, check_stats

# Elements of the widest per-batch temporary ([B, R, R] precisions); sets the default batch size.
_BUDGET = 1 << 24
# Components per chunk when [k, R, R] float64 matrices are built (M-step, precomputation).
_K_CHUNK = 64


def default_batch_size(R: int) -> int:
    """Utterances per batch so that one ``[B, R, R]`` temporary holds about 16M values."""
    return int(max(1, min(4096, _BUDGET // (R * R))))


class TriuPacker:
    """Pack symmetric ``[..., R, R]`` matrices into their ``R (R + 1) / 2`` upper triangle."""

    def __init__(self, R: int, device: torch.device | str) -> None:
        i, j = torch.triu_indices(R, R, device=device)
        self.R = R
        self.flat = i * R + j
        self.flat_t = j * R + i
        self.size = int(i.shape[0])

    def pack(self, M: torch.Tensor) -> torch.Tensor:
        """``[..., R, R]`` -> ``[..., R (R + 1) / 2]``."""
        return M.reshape(*M.shape[:-2], self.R * self.R).index_select(-1, self.flat)

    def unpack(self, p: torch.Tensor) -> torch.Tensor:
        """``[..., R (R + 1) / 2]`` -> symmetric ``[..., R, R]``."""
        out = p.new_zeros(*p.shape[:-1], self.R * self.R)
        out.index_copy_(out.dim() - 1, self.flat, p)
        out.index_copy_(out.dim() - 1, self.flat_t, p)
        return out.view(*p.shape[:-1], self.R, self.R)


def prec_apply(sigma: torch.Tensor, X: torch.Tensor, kind: str) -> torch.Tensor:
    """``Sigma_k^-1 X_k`` for ``X [K, d, m]`` and ``sigma`` ``[K, d]`` (diag) or ``[K, d, d]``."""
    if kind == "diag":
        return X / sigma[:, :, None]
    return torch.cholesky_solve(X, cholesky_safe(sigma))


def logdet_sigma(sigma: torch.Tensor, kind: str) -> torch.Tensor:
    """``[K]`` log-determinants of the covariances."""
    if kind == "diag":
        return torch.log(sigma).sum(1)
    return 2.0 * torch.log(cholesky_safe(sigma).diagonal(dim1=-2, dim2=-1)).sum(-1)


def init_loading(sigma: torch.Tensor, kind: str, R: int, seed: int, scale: float = 1.0
                 ) -> torch.Tensor:
    """Random ``[K, d, R]`` float64 loading matrix scaled by the UBM's standard deviations.

    ``T_k = scale * Sigma_k^{1/2} G_k / sqrt(R)`` with ``G`` standard normal from a CPU generator
    seeded with ``seed``, so every rank and device starts from the same matrix; dividing by
    ``sqrt(R)`` makes the prior spread of ``T w`` about ``scale`` UBM standard deviations whatever
    the rank.
    """
    K, d = sigma.shape[:2]
    if R == 0:
        return torch.zeros(K, d, 0, dtype=torch.float64, device=sigma.device)
    g = torch.Generator().manual_seed(int(seed))
    G = torch.randn(K, d, R, generator=g, dtype=torch.float64).to(sigma.device)
    s64 = sigma.to(torch.float64)
    if kind == "diag":
        T = torch.sqrt(s64)[:, :, None] * G
    else:
        T = cholesky_safe(s64) @ G
    return T * (float(scale) / math.sqrt(R))


@dataclass
class Prepared:
    """Per-model constants of the E-step in the compute dtype.

    Attributes:
        P: ``[K d, R]`` ``Sigma^-1 T`` (flattened over components).
        G: ``[K, R (R + 1) / 2]`` packed ``T_k^T Sigma_k^-1 T_k``.
        q: ``[K, R]`` ``o_k^T Sigma_k^-1 T_k`` for an offset ``o`` (else ``None``).
        packer: The triangle packer of size ``R``.
    """

    P: torch.Tensor
    G: torch.Tensor
    q: torch.Tensor | None
    packer: TriuPacker

    @property
    def rank(self) -> int:
        return self.packer.R


def prepare(T: torch.Tensor, sigma: torch.Tensor, kind: str, offset: torch.Tensor | None,
            dtype: torch.dtype) -> Prepared:
    """Precompute the E-step constants of loading ``T [K, d, R]`` (float64) for ``dtype``."""
    K, d, R = T.shape
    PT = prec_apply(sigma.to(torch.float64), T.to(torch.float64), kind)  # [K, d, R]
    packer = TriuPacker(R, T.device)
    G = torch.empty(K, packer.size, dtype=dtype, device=T.device)
    Tc, PTc = T.to(dtype), PT.to(dtype)
    for k0 in range(0, K, _K_CHUNK):  # bounds the [k, R, R] temporary for large K and R
        k1 = min(K, k0 + _K_CHUNK)
        G[k0:k1] = packer.pack(Tc[k0:k1].transpose(1, 2) @ PTc[k0:k1])
    q = None
    if offset is not None:
        q = torch.einsum("kd,kdr->kr", offset.to(torch.float64), PT).to(dtype)
    return Prepared(PTc.reshape(K * d, R), G, q, packer)


def precision(prep: Prepared, N: torch.Tensor) -> torch.Tensor:
    """Posterior precisions ``L = I + sum_k N_k T_k^T Sigma_k^-1 T_k`` as ``[B, R, R]``."""
    L = prep.packer.unpack(N @ prep.G)
    L.diagonal(dim1=1, dim2=2).add_(1.0)
    return L


def projection(prep: Prepared, N: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """``b = T^T Sigma^-1 (F - N o)`` as ``[B, R]``."""
    b = F.reshape(F.shape[0], -1) @ prep.P
    if prep.q is not None:
        b = b - N @ prep.q
    return b


def solve(L: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means ``L^-1 b`` and the Cholesky factors of ``L`` (batched)."""
    chol, info = torch.linalg.cholesky_ex(L)
    if bool((info != 0).any()):
        raise VoxaError("posterior precision is not positive definite: the statistics hold "
                        "negative occupancies or non-finite values")
    return torch.cholesky_solve(b[:, :, None], chol)[:, :, 0], chol


def posterior(prep: Prepared, N: torch.Tensor, F: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Posterior means of a batch.

    Args:
        prep: From :func:`prepare`.
        N: ``[B, K]`` zeroth-order statistics.
        F: ``[B, K, d]`` first-order statistics centred on the UBM.

    Returns:
        ``(w [B, R], chol [B, R, R], b [B, R])``: means, Cholesky factors of the precisions and
        the projections ``T^T Sigma^-1 (F - N o)``.
    """
    b = projection(prep, N, F)
    w, chol = solve(precision(prep, N), b)
    return w, chol, b


# ------------------------------------------------------------------------------------ sources
class StatsSource:
    """Re-iterable statistics for EM: one :class:`BaumWelchStats` (or ``(N, F[, S])`` tuple), a list
    of them, or a zero-argument callable returning a fresh iterable of them on each call."""

    def __init__(self, stats: Any, K: int, d: int) -> None:
        self.K, self.d = K, d
        self._single: BaumWelchStats | None = None
        self._factory: Callable[[], Iterable[Any]] | None = None
        if isinstance(stats, BaumWelchStats) or (
                isinstance(stats, tuple) and stats and not isinstance(stats[0], BaumWelchStats)):
            self._single = as_stats(stats)
            check_stats(self._single, K, d)
        elif callable(stats):
            self._factory = stats
        elif isinstance(stats, Iterator):
            raise VoxaError("stats: EM needs several passes but got a one-shot iterator; pass a "
                            "list or a callable returning a fresh iterator")
        elif isinstance(stats, Iterable):
            parts = list(stats)
            self._factory = lambda: iter(parts)
        else:
            raise VoxaError(f"stats: expected BaumWelchStats, an (N, F) tuple, a list of them or a "
                            f"callable, got {type(stats).__name__}")

    def parts(self) -> Iterator[BaumWelchStats]:
        if self._single is not None:
            yield self._single
            return
        assert self._factory is not None
        seen = False
        for p in self._factory():
            s = as_stats(p)
            check_stats(s, self.K, self.d)
            seen = True
            yield s
        if not seen:
            raise VoxaError("stats: no utterances")

    def batches(self, batch_size: int, device: torch.device, dtype: torch.dtype,
                second_order: bool = False
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """``(N, F, S)`` batches of at most ``batch_size`` rows on ``device`` in ``dtype``; ``S`` is
        ``None`` where the statistics have none (an error if ``second_order`` requires it)."""
        for p in self.parts():
            if second_order and p.S is None:
                raise VoxaError("update_sigma needs second-order statistics: compute them with "
                                "baum_welch_stats(..., second_order=True)")
            for s in range(0, len(p), batch_size):
                S = p.S[s:s + batch_size].to(device, dtype) if p.S is not None else None
                yield (p.N[s:s + batch_size].to(device, dtype),
                       p.F[s:s + batch_size].to(device, dtype), S)


# ------------------------------------------------------------------------------------ EM
class Accumulator:
    """Float64 sufficient statistics of one E-step.

    Attributes:
        C: ``[K, d, R]`` ``sum_u F_u E[w_u]^T`` (F not yet offset-corrected, see ``Nw``).
        A: ``[K, R (R + 1) / 2]`` packed ``sum_u N_uk E[w_u w_u^T]``.
        Nw: ``[K, R]`` ``sum_u N_uk E[w_u]`` (for the offset correction of ``C``).
        w_sum: ``[R]``; ww_sum: ``[R (R + 1) / 2]`` packed; count: recordings.
        ll: ``sum_u (b_u^T E[w_u] - log det L_u) / 2``.
        N_tot, F_tot, S_tot: summed statistics; S_count: recordings that had ``S``.
    """

    def __init__(self, K: int, d: int, R: int, device: torch.device, S_shape: tuple) -> None:
        z = {"dtype": torch.float64, "device": device}
        self.C = torch.zeros(K, d, R, **z)
        self.A = torch.zeros(K, R * (R + 1) // 2, **z)
        self.Nw = torch.zeros(K, R, **z)
        self.w_sum = torch.zeros(R, **z)
        self.ww_sum = torch.zeros(R * (R + 1) // 2, **z)
        self.count = torch.zeros((), **z)
        self.ll = torch.zeros((), **z)
        self.N_tot = torch.zeros(K, **z)
        self.F_tot = torch.zeros(K, d, **z)
        self.S_tot = torch.zeros(*S_shape, **z)
        self.S_count = torch.zeros((), **z)

    def _fields(self) -> list[str]:
        return ["C", "A", "Nw", "w_sum", "ww_sum", "count", "ll", "N_tot", "F_tot", "S_tot",
                "S_count"]

    @property
    def has_second_order(self) -> bool:
        """Whether every recording came with second-order statistics."""
        return bool(self.count > 0) and bool(self.S_count == self.count)

    def add(self, prep: Prepared, N: torch.Tensor, F: torch.Tensor, S: torch.Tensor | None) -> None:
        """E-step on one batch."""
        f64 = torch.float64
        B, K, d = F.shape
        w, chol, b = posterior(prep, N, F)
        Eww = torch.cholesky_inverse(chol)
        Eww.add_(w[:, :, None] * w[:, None, :])
        Ep = prep.packer.pack(Eww)
        self.A += (N.T @ Ep).to(f64)
        self.C += (F.reshape(B, K * d).T @ w).to(f64).view(K, d, -1)
        self.Nw += (N.T @ w).to(f64)
        self.w_sum += w.sum(0, dtype=f64)
        self.ww_sum += Ep.sum(0, dtype=f64)
        self.count += B
        logdet = 2.0 * torch.log(chol.diagonal(dim1=1, dim2=2)).sum(1)
        self.ll += (0.5 * ((b * w).sum(1) - logdet)).sum(dtype=f64)
        self.N_tot += N.sum(0, dtype=f64)
        self.F_tot += F.sum(0, dtype=f64)
        if S is not None:
            self.S_tot += S.sum(0, dtype=f64)
            self.S_count += B

    def all_reduce(self) -> None:
        """Sum every field over the ranks of an initialised process group (one all-reduce)."""
        if not dist_utils.is_distributed():
            return
        names = self._fields()
        flat = torch.cat([getattr(self, n).reshape(-1) for n in names])
        dist_utils.all_reduce_sum_(flat)
        pos = 0
        for n in names:
            t = getattr(self, n)
            setattr(self, n, flat[pos:pos + t.numel()].view(t.shape).clone())
            pos += t.numel()


def e_step(source: StatsSource, T: torch.Tensor, sigma: torch.Tensor, kind: str,
           offset: torch.Tensor | None, dtype: torch.dtype, batch_size: int,
           second_order: bool = False) -> Accumulator:
    """One pass over the statistics; returns the (all-reduced) accumulators.

    ``second_order`` makes second-order statistics compulsory (they are summed whenever present).
    """
    K, d, R = T.shape
    prep = prepare(T, sigma, kind, offset, dtype)
    acc = Accumulator(K, d, R, T.device, tuple(sigma.shape))
    for N, F, S in source.batches(batch_size, T.device, dtype, second_order):
        acc.add(prep, N, F, S)
    acc.all_reduce()
    return acc


def log_likelihood(acc: Accumulator, sigma: torch.Tensor, kind: str,
                   offset: torch.Tensor | None) -> float:
    """Average per-frame log-likelihood of the statistics under the model of the E-step.

    ``log p = sum_k [-N_k/2 (d log 2 pi + log|Sigma_k|) - tr(Sigma_k^-1 S'_k)/2]
    + sum_u (b_u^T E[w_u] - log|L_u|)/2`` with ``S'`` centred on ``mu + o`` (Kenny et al. 2005).
    Unless every recording has second-order statistics ``tr(Sigma^-1 S)`` is left out: a constant
    while ``Sigma`` is fixed, so the values still compare across iterations.
    """
    s64 = sigma.to(torch.float64)
    d = acc.F_tot.shape[1]
    ll = acc.ll - 0.5 * (acc.N_tot * (d * LOG_2PI + logdet_sigma(s64, kind))).sum()
    if offset is not None:
        o = offset.to(torch.float64)
        Po = prec_apply(s64, o[:, :, None], kind)[:, :, 0]
        # -tr(Sigma^-1 S')/2 with S' = S - 2 sym(F o^T) + N o o^T, less the S term
        ll = ll + (acc.F_tot * Po).sum() - 0.5 * (acc.N_tot * (o * Po).sum(1)).sum()
    if acc.has_second_order:
        if kind == "diag":
            ll = ll - 0.5 * (acc.S_tot / s64).sum()
        else:
            ll = ll - 0.5 * prec_apply(s64, acc.S_tot, kind).diagonal(dim1=-2, dim2=-1).sum()
    total = float(acc.N_tot.sum().item())
    return float(ll.item()) / max(total, 1e-300)


def m_step(acc: Accumulator, T: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    """``T_k = C'_k A_k^-1`` in float64 (components without occupancy keep their rows)."""
    K, d, R = T.shape
    packer = TriuPacker(R, T.device)
    C = offset_corrected_C(acc, offset)
    out = T.to(torch.float64).clone()
    for k0 in range(0, K, _K_CHUNK):
        k1 = min(K, k0 + _K_CHUNK)
        A = packer.unpack(acc.A[k0:k1])
        chol, info = torch.linalg.cholesky_ex(A)
        ok = (info == 0) & (acc.N_tot[k0:k1] > 0)
        # Solving with an identity stand-in keeps the batch shape; those rows are discarded.
        eye = torch.eye(R, dtype=torch.float64, device=T.device)
        chol = torch.where(ok[:, None, None], chol, eye)
        Tk = torch.cholesky_solve(C[k0:k1].transpose(1, 2), chol).transpose(1, 2)
        out[k0:k1] = torch.where(ok[:, None, None], Tk, out[k0:k1])
    return out


def offset_corrected_C(acc: Accumulator, offset: torch.Tensor | None) -> torch.Tensor:
    """``C' = sum_u (F_u - N_u o) E[w_u]^T`` as ``[K, d, R]`` float64."""
    if offset is None:
        return acc.C
    return acc.C - offset.to(torch.float64)[:, :, None] * acc.Nw[:, None, :]


def min_divergence(acc: Accumulator, T: torch.Tensor, offset: torch.Tensor | None,
                   shift: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Minimum-divergence re-estimation (Kenny 2008; Brummer's PX-EM).

    The average posterior moments of ``w`` define a prior ``N(mu_w, Sigma_w)``; absorbing it into
    the model (``T <- T chol(Sigma_w)``, ``o <- o + T mu_w``) keeps the standard-normal prior and
    never decreases the likelihood.

    Returns:
        ``(T, offset)``; ``offset`` is unchanged when ``shift`` is False.
    """
    R = T.shape[2]
    n = acc.count.clamp_min(1.0)
    mu = acc.w_sum / n
    Sw = TriuPacker(R, T.device).unpack(acc.ww_sum) / n - mu[:, None] * mu[None, :]
    Lw = cholesky_safe(0.5 * (Sw + Sw.T))
    if shift:
        o = torch.zeros(T.shape[:2], dtype=torch.float64, device=T.device) if offset is None \
            else offset.to(torch.float64)
        offset = o + T @ mu
    return T @ Lw, offset


def update_sigma(acc: Accumulator, T: torch.Tensor, sigma: torch.Tensor, kind: str,
                 offset: torch.Tensor | None, floor: torch.Tensor) -> torch.Tensor:
    """Kenny's covariance update ``Sigma_k = (S'_k - sym(C'_k T_k^T)) / N_k``, floored."""
    if not acc.has_second_order:
        raise VoxaError("update_sigma needs second-order statistics")
    s64 = sigma.to(torch.float64)
    N, F, S = acc.N_tot, acc.F_tot, acc.S_tot
    C = offset_corrected_C(acc, offset)
    o = offset.to(torch.float64) if offset is not None else torch.zeros_like(F)
    alive = N > 0
    Nc = torch.where(alive, N, torch.ones_like(N))
    if kind == "diag":
        Sp = S - 2.0 * F * o + N[:, None] * o * o
        new = (Sp - (C * T).sum(-1)) / Nc[:, None]
        new = torch.maximum(new, floor.to(new))
        return torch.where(alive[:, None], new, s64)
    oF = o[:, :, None] * F[:, None, :]
    Sp = S - oF - oF.transpose(1, 2) + N[:, None, None] * o[:, :, None] * o[:, None, :]
    CT = C @ T.transpose(1, 2)
    new = (Sp - 0.5 * (CT + CT.transpose(1, 2))) / Nc[:, None, None]
    new = floor_covariances(0.5 * (new + new.transpose(1, 2)), floor.to(new), kind)
    return torch.where(alive[:, None, None], new, s64)


def fit_em(source: StatsSource, T: torch.Tensor, sigma: torch.Tensor, kind: str,
           offset: torch.Tensor | None, n_iter: int, dtype: torch.dtype, batch_size: int,
           min_div: bool = True, shift: bool = True, sigma_update: bool = False,
           floor: torch.Tensor | None = None, progress: bool = False, desc: str = "EM"
           ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, list[float]]:
    """Run ``n_iter`` EM iterations.

    Returns:
        ``(T, offset, sigma, history)``: float64 parameters and the average per-frame
        log-likelihood of each iteration's E-step.
    """
    history: list[float] = []
    bar = tqdm(range(n_iter), desc=desc, unit="it", disable=not progress, leave=False)
    for _ in bar:
        acc = e_step(source, T, sigma, kind, offset, dtype, batch_size, sigma_update)
        ll = log_likelihood(acc, sigma, kind, offset)
        history.append(ll)
        bar.set_postfix(ll=f"{ll:.4f}")
        T_new = m_step(acc, T, offset)
        if sigma_update:
            sigma = update_sigma(acc, T_new, sigma, kind, offset,
                                 floor if floor is not None else torch.full((T.shape[1],), 1e-10))
        if min_div:
            T_new, offset = min_divergence(acc, T_new, offset, shift)
        T = T_new
    return T, offset, sigma, history


# ---------------------------------------------------------------------------------------- saving
# TV and JFA save the same way: their own tensors, the UBM's tensors under ``ubm_*``, the config with
# the dtype spelled as text; these two helpers are that format.
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def save_factor_model(model: Any, path: Any, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> Any:
    """Write a factor model (``model.ubm_``, ``model.dtype``, ``model.get_params()``) with its UBM."""
    from voxa.utils.serialization import save_model

    cfg = {k: v for k, v in model.get_params().items() if k != "device"}
    cfg["dtype"] = str(model.dtype).replace("torch.", "")
    u = model.ubm_
    tensors = {**tensors, "ubm_weights": u.weights_, "ubm_means": u.means_,
               "ubm_covariances": u.covariances_, "ubm_var_floor": u.var_floor_}
    return save_model(path, tensors, {**header, "config": cfg})


def load_factor_model(cls: type, tag: str, path: Any, device: Any, covariance_type: str | None = None
                      ) -> tuple[Any, dict[str, torch.Tensor], dict[str, Any]]:
    """``(model, tensors as float64 on device, header)`` of a file :func:`save_factor_model` wrote, the
    model built from its config with its UBM restored (``covariance_type`` from the header if ``None``)."""
    from voxa.ivector.stats import ubm_from_tensors
    from voxa.utils.serialization import load_model

    tensors, header = load_model(path, expected_class=tag)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    try:
        cfg = dict(header["config"])
        cfg["dtype"] = _DTYPES[cfg["dtype"]]
        model = cls(**cfg, device=device)
        t = {k: v.to(dev, torch.float64) for k, v in tensors.items()}
        model.ubm_ = ubm_from_tensors(t["ubm_weights"], t["ubm_means"], t["ubm_covariances"],
                                      covariance_type or header["covariance_type"], model.dtype,
                                      t["ubm_var_floor"])
    except (KeyError, TypeError, ValueError) as e:
        raise VoxaError(f"{path}: malformed {cls.__name__} file ({e!r})") from e
    return model, t, header
