"""Separation / target-speech-extraction metrics: SDR, BSS-eval SDR, SI-SDR, SDRi, iSDR, PESQ.

All signal metrics work on ``[..., samples]`` (any leading batch dims) and return one value per
item, shape ``[...]``. Inputs may be torch tensors or numpy arrays; the work is done in float64
(energies of long signals and the Toeplitz solve of :func:`bss_sdr` need it). A torch input gives a
float64 tensor back, a numpy input a float64 ndarray. Arguments follow voxa's ``(est, ref)`` order
(not bss_eval's ``(ref, est)``).

Definitions follow Shi, Yen & Nakadai (2024), "Distance Based Single-Channel Target Speech
Extraction", section II.C and III.C: SDR is the plain energy ratio of their active loss (without the
soft threshold), iSDR is the value of their inactive loss (see :func:`inactive_sdr`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from voxa.errors import VoxaError

__all__ = [
    "bss_sdr", "inactive_sdr", "output_attenuation_db", "pesq_batch", "pesq_score", "sdr",
    "sdr_improvement", "si_sdr",
]

_EPS = 1e-12


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise VoxaError(f"{name} must be numeric audio, got dtype {arr.dtype}")
        t = torch.as_tensor(arr)
    if t.is_complex():
        raise VoxaError(f"{name} must be real audio, got a complex tensor")
    return t.to(device="cpu", dtype=torch.float64)


def _pair(a: Any, b: Any, name_a: str, name_b: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate two signals of equal shape ``[..., samples]``; returns float64 tensors and whether
    the caller passed numpy (so the result goes back as numpy)."""
    as_numpy = not isinstance(a, torch.Tensor)
    ta, tb = _to_tensor(a, name_a), _to_tensor(b, name_b)
    if ta.ndim == 0 or tb.ndim == 0:
        raise VoxaError(f"{name_a} and {name_b} must be signals [..., samples], got a scalar")
    if ta.shape != tb.shape:
        raise VoxaError(f"{name_a} has shape {tuple(ta.shape)} but {name_b} has shape {tuple(tb.shape)}")
    if ta.shape[-1] == 0:
        raise VoxaError(f"{name_a} and {name_b} are empty (0 samples)")
    if ta.numel() == 0:
        raise VoxaError(f"{name_a} and {name_b} hold no items (shape {tuple(ta.shape)})")
    return ta, tb, as_numpy


def _out(x: torch.Tensor, as_numpy: bool) -> torch.Tensor | np.ndarray:
    return x.numpy() if as_numpy else x


def energy(x: torch.Tensor) -> torch.Tensor:
    """Energy ``sum(x ** 2)`` over the last (samples) axis: ``[..., samples] -> [...]``.

    A sum of squares, not a norm, so its gradient is finite at zero (the losses use it too).
    """
    return (x * x).sum(dim=-1)


def inactive_level(est_energy: torch.Tensor, mix_energy: torch.Tensor | float, tau_inactive: float = 1e-2,
                   eps: float = _EPS) -> torch.Tensor:
    """``10 log10(E_est + tau_inactive * E_mix)``: the inactive SDR from energies (see :func:`inactive_sdr`),
    shared by the metric, the inactive loss and the distance sweep."""
    return 10.0 * torch.log10((est_energy + tau_inactive * mix_energy).clamp_min(eps))


def _db_ratio(num: torch.Tensor, den: torch.Tensor, eps: float) -> torch.Tensor:
    # clamp rather than add, so ordinary signals get the exact ratio and only silence is floored
    return 10.0 * torch.log10(num.clamp_min(eps) / den.clamp_min(eps))


def sdr(est: Any, ref: Any, eps: float = _EPS) -> torch.Tensor | np.ndarray:
    """Plain signal-to-distortion ratio ``10 log10(||ref||^2 / ||ref - est||^2)`` in dB.

    This is the paper's SDR (its active loss, eq. 8, without the soft threshold tau): scale errors
    count as distortion, so it rewards getting the level right, unlike :func:`si_sdr`.

    Args:
        est: estimate, ``[..., samples]``.
        ref: reference, same shape.
        eps: floor on both energies so silence gives a large finite value instead of inf.

    Returns:
        SDR per item, shape ``[...]`` (float64; numpy if ``est`` was numpy).

    Example:
        >>> import torch
        >>> ref = torch.randn(2, 16000)
        >>> sdr(ref + 0.1 * ref, ref)  # 20 dB for a 10 % gain error
        tensor([20.0000, 20.0000], dtype=torch.float64)
    """
    e, r, as_numpy = _pair(est, ref, "est", "ref")
    return _out(_db_ratio(energy(r), energy(r - e), eps), as_numpy)


def si_sdr(est: Any, ref: Any, zero_mean: bool = True, eps: float = _EPS) -> torch.Tensor | np.ndarray:
    """Scale-invariant SDR (Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019).

    ``alpha = <est, ref> / ||ref||^2``, target ``alpha ref``, noise ``est - alpha ref``,
    ``SI-SDR = 10 log10(||alpha ref||^2 / ||est - alpha ref||^2)``.

    Args:
        est: estimate, ``[..., samples]``.
        ref: reference, same shape.
        zero_mean: subtract each signal's mean first (as in the paper's reference code).
        eps: floor on the energies.

    Returns:
        SI-SDR per item, shape ``[...]``.

    Example:
        >>> import torch
        >>> ref = torch.randn(16000)
        >>> float(si_sdr(3.0 * ref, ref)) > 100  # a rescaled reference is perfect
        True
    """
    e, r, as_numpy = _pair(est, ref, "est", "ref")
    if zero_mean:
        e = e - e.mean(dim=-1, keepdim=True)
        r = r - r.mean(dim=-1, keepdim=True)
    alpha = (e * r).sum(dim=-1, keepdim=True) / energy(r).clamp_min(eps).unsqueeze(-1)
    target = alpha * r
    return _out(_db_ratio(energy(target), energy(e - target), eps), as_numpy)


def _xcorr_stats(ref: torch.Tensor, est: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Autocorrelation of ref and cross-correlation ``sum_n ref[n] est[n + k]`` for lags
    ``0..length-1`` via one zero-padded FFT (no circular wrap-around)."""
    n = ref.shape[-1]
    n_fft = 2 ** math.ceil(math.log2(2 * n - 1)) if n > 1 else 2
    r_f = torch.fft.rfft(ref, n=n_fft, dim=-1)
    e_f = torch.fft.rfft(est, n=n_fft, dim=-1)
    acf = torch.fft.irfft(r_f.real**2 + r_f.imag**2, n=n_fft, dim=-1)[..., :length]
    xcorr = torch.fft.irfft(r_f.conj() * e_f, n=n_fft, dim=-1)[..., :length]
    return acf, xcorr


def bss_sdr(
    est: Any,
    ref: Any,
    filter_length: int = 512,
    zero_mean: bool = False,
    load_diag: float | None = None,
    clamp_db: float | None = None,
) -> torch.Tensor | np.ndarray:
    """BSS-eval v4 style SDR of each estimate against its own single reference.

    The estimate is projected onto the span of ``filter_length`` delayed copies of the reference
    (the time-invariant distortion filter BSS-eval allows); SDR is the energy of that projection
    over the energy of the residual. The projection solves the Toeplitz normal equations built from
    the reference's autocorrelation, the same computation as ``fast_bss_eval.sdr(ref, est,
    filter_length)`` (defaults ``zero_mean=False``, ``clamp_db=None``, ``load_diag=None``) for a
    single source. Multi-source permutation solving is not done: each item ``[..., samples]`` is one
    estimate scored against one reference, so with several sources pass them as leading dims in
    matching order.

    Args:
        est: estimate, ``[..., samples]``.
        ref: reference, same shape.
        filter_length: taps of the allowed distortion filter (``<= samples``).
        zero_mean: subtract the means first.
        load_diag: if given, added to the Toeplitz diagonal (regularises an all-zero reference).
        clamp_db: if given, clamp the result to ``[-clamp_db, clamp_db]`` dB as fast_bss_eval does.

    Returns:
        SDR per item, shape ``[...]``.

    Example:
        >>> import torch
        >>> ref = torch.randn(16000)
        >>> est = torch.nn.functional.conv1d(ref.view(1, 1, -1), torch.ones(1, 1, 8) / 8,
        ...                                  padding=7)[0, 0, :16000] + 0.01 * torch.randn(16000)
        >>> float(bss_sdr(est, ref)) > 15  # the filtering is forgiven, only the noise counts
        True
    """
    e, r, as_numpy = _pair(est, ref, "est", "ref")
    n = r.shape[-1]
    if not 1 <= filter_length <= n:
        raise VoxaError(f"filter_length must be in [1, {n}] for {n}-sample signals, got {filter_length}")
    if zero_mean:
        e = e - e.mean(dim=-1, keepdim=True)
        r = r - r.mean(dim=-1, keepdim=True)
    # unit-norm signals make the coherence the fraction of est's energy in the projection; the
    # 1e-6 norm floor matches fast_bss_eval so silent signals score identically
    e = e / torch.linalg.vector_norm(e, dim=-1, keepdim=True).clamp_min(1e-6)
    r = r / torch.linalg.vector_norm(r, dim=-1, keepdim=True).clamp_min(1e-6)
    acf, xcorr = _xcorr_stats(r, e, filter_length)
    if load_diag is not None:
        acf = acf.clone()
        acf[..., 0] += load_diag
    lags = torch.arange(filter_length)
    toeplitz = acf[..., (lags[:, None] - lags[None, :]).abs()]
    sol = _solve_psd(toeplitz, xcorr)
    coh = (xcorr * sol).sum(dim=-1)
    lim = 0.0 if clamp_db is None else 10.0 ** (-clamp_db / 10.0) / (1.0 + 10.0 ** (-clamp_db / 10.0))
    coh = coh.clamp(min=lim, max=1.0 - lim)
    return _out(10.0 * torch.log10(coh / (1.0 - coh)), as_numpy)


def _solve_psd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``a x = b`` for symmetric positive semi-definite ``a`` ``[..., n, n]``, ``b`` ``[..., n]``.

    Cholesky rather than ``torch.linalg.solve``: MKL's batched LU solve fails on several threads for
    n above ~150 (pytorch/pytorch#142815: "Parameter 6 was incorrect on entry to DLASWP"), and the
    autocorrelation Toeplitz matrix is symmetric anyway. Items that are not numerically positive
    definite (a silent reference) fall back to a one-at-a-time least-squares solve.
    """
    chol, info = torch.linalg.cholesky_ex(a)
    sol = torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
    bad = info != 0
    if bool(bad.any()):
        flat_a, flat_b = a[bad], b[bad]
        fixed = torch.stack([torch.linalg.lstsq(x, y.unsqueeze(-1)).solution.squeeze(-1)
                             for x, y in zip(flat_a, flat_b)])
        sol = sol.clone()
        sol[bad] = fixed
    return sol


_METRICS: dict[str, Callable[..., Any]] = {"sdr": sdr, "si_sdr": si_sdr, "bss_sdr": bss_sdr}


def sdr_improvement(
    est: Any, ref: Any, mix: Any, metric: str = "sdr", **kwargs: Any
) -> torch.Tensor | np.ndarray:
    """Improvement of a metric over the unprocessed mixture: ``metric(est, ref) - metric(mix, ref)``.

    With ``metric="sdr"`` this is the paper's SDRi; ``"si_sdr"`` gives SI-SDRi, ``"bss_sdr"`` the
    BSS-eval SDRi.

    Args:
        est: estimate, ``[..., samples]``.
        ref: reference, same shape.
        mix: the mixture the estimate came from, same shape.
        metric: ``"sdr"``, ``"si_sdr"`` or ``"bss_sdr"``.
        **kwargs: passed to the metric (e.g. ``filter_length``, ``zero_mean``).

    Returns:
        improvement in dB per item, shape ``[...]``.

    Example:
        >>> import torch
        >>> ref, noise = torch.randn(16000), torch.randn(16000)
        >>> round(float(sdr_improvement(ref + 0.1 * noise, ref, ref + noise)), 4)
        20.0
    """
    if metric not in _METRICS:
        raise VoxaError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    _pair(est, mix, "est", "mix")
    fn = _METRICS[metric]
    return fn(est, ref, **kwargs) - fn(mix, ref, **kwargs)


def inactive_sdr(
    est: Any, mix: Any, tau_inactive: float = 1e-2, eps: float = _EPS
) -> torch.Tensor | np.ndarray:
    """Inactive SDR (iSDR) of an output when no target is present; **lower is better**.

    ``iSDR = 10 log10(||est||^2 + tau_inactive * ||mix||^2)``, energies summed over samples (not
    averaged) - exactly the value of the paper's inactive loss (eq. 9), which is how its Table I/II
    "iSDR (dB) down-arrow" column reads: an absolute output level with a floor set by the mixture.
    A silent output scores ``10 log10(tau ||mix||^2)``: for a two-talker mixture whose talkers are
    at -25..-20 dB RMS and 3-4 s at 16 kHz that floor is about 5-11 dB, matching the paper's best
    values (8.65-9.59 dB on D1); passing the mixture through gives ~25-30 dB, so the 14-37 dB of
    weaker systems mean partly leaked speech. It is not a ratio, so it depends on the signal level
    and length - compare systems only on the same test set. For a level-free number see
    :func:`output_attenuation_db`.

    Args:
        est: the output for a query with no target present, ``[..., samples]``.
        mix: the mixture input, same shape.
        tau_inactive: the soft threshold (the paper's ``10^-2``).
        eps: floor on the summed energy so an all-zero mixture and output gives a finite value.

    Returns:
        iSDR in dB per item, shape ``[...]``.

    Example:
        >>> import torch
        >>> mix = torch.full((64000,), 0.1)  # 4 s at -20 dB RMS
        >>> round(float(inactive_sdr(torch.zeros(64000), mix)), 2)  # the silent-output floor
        8.06
    """
    e, y, as_numpy = _pair(est, mix, "est", "mix")
    return _out(inactive_level(energy(e), energy(y), tau_inactive, eps), as_numpy)


def output_attenuation_db(est: Any, mix: Any, eps: float = _EPS) -> torch.Tensor | np.ndarray:
    """How far the output lies below the mixture, ``10 log10(||mix||^2 / ||est||^2)``; higher is better.

    voxa's goal for absent targets is an output at least 10 dB below the mixture. Unlike
    :func:`inactive_sdr` this is independent of signal level and length. A silent output gets
    ``10 log10(||mix||^2 / eps)`` (large and finite) rather than inf.

    Args:
        est: the output for a query with no target present, ``[..., samples]``.
        mix: the mixture input, same shape.
        eps: floor on both energies.

    Returns:
        attenuation in dB per item, shape ``[...]``.

    Example:
        >>> import torch
        >>> mix = torch.randn(16000)
        >>> round(float(output_attenuation_db(0.1 * mix, mix)), 4)
        20.0
    """
    e, y, as_numpy = _pair(est, mix, "est", "mix")
    return _out(_db_ratio(energy(y), energy(e), eps), as_numpy)


def _pesq_mode(rate: int, mode: str | None) -> tuple[int, str]:
    """The rate PESQ runs at and its mode: nb at 8 kHz, wb at 16 kHz, anything else resampled to 16 kHz."""
    if mode is not None and mode not in ("wb", "nb"):
        raise VoxaError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    if rate == 8000:
        if mode == "wb":
            raise VoxaError("wide-band PESQ needs 16 kHz audio, got 8000 Hz (use mode='nb')")
        return 8000, "nb"
    return 16000, mode or "wb"


def pesq_score(est: Any, ref: Any, rate: int, mode: str | None = None) -> float:
    """PESQ (ITU-T P.862 MOS-LQO) of an estimate against a clean reference via the ``pesq`` package.

    Narrow-band (P.862) at 8 kHz, wide-band (P.862.2) at 16 kHz; other rates are resampled to
    16 kHz with :func:`voxa.audio.resample.resample` and scored wide-band.

    Args:
        est: degraded / estimated signal, ``[samples]``.
        ref: clean reference, ``[samples]``.
        rate: their sample rate in Hz.
        mode: force ``"wb"`` or ``"nb"`` (``"nb"`` also works at 16 kHz); ``None`` picks by rate.

    Returns:
        the score (about -0.5..4.64 wb, -0.5..4.5 nb), or NaN with a warning when the pesq package
        finds no utterance in the reference (e.g. silence).

    Example:
        >>> import numpy as np
        >>> ref = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
        >>> pesq_score(ref, ref, 16000) > 4.0
        True
    """
    from pesq import NoUtterancesError, pesq

    e, r, _ = _pair(est, ref, "est", "ref")
    if e.ndim != 1:
        raise VoxaError(f"pesq_score takes 1-D signals [samples], got shape {tuple(e.shape)}; use pesq_batch")
    if not (torch.isfinite(e).all() and torch.isfinite(r).all()):
        raise VoxaError("PESQ inputs contain NaN or infinite samples")
    fs, md = _pesq_mode(int(rate), mode)
    e32, r32 = e.to(torch.float32), r.to(torch.float32)
    if fs != rate:
        from voxa.audio.resample import resample

        e32, r32 = resample(e32, int(rate), fs), resample(r32, int(rate), fs)
    try:
        return float(pesq(fs, r32.numpy(), e32.numpy(), md))
    except NoUtterancesError:
        warnings.warn("PESQ: no utterance detected in the reference; returning NaN", RuntimeWarning,
                      stacklevel=2)
        return float("nan")
    except Exception as exc:  # pesq's C core reports bad input (too short, ...) as generic errors
        raise VoxaError(f"PESQ failed on {e.shape[-1]} samples at {rate} Hz: {exc}") from exc


def pesq_batch(est: Any, ref: Any, rate: int, mode: str | None = None) -> np.ndarray:
    """:func:`pesq_score` for each item of ``[..., samples]`` signals.

    Args:
        est: estimates, ``[..., samples]``.
        ref: references, same shape.
        rate: sample rate in Hz.
        mode: as in :func:`pesq_score`.

    Returns:
        float64 array of shape ``[...]`` (NaN where no utterance was found).

    Example:
        >>> import numpy as np
        >>> ref = np.random.default_rng(0).standard_normal((2, 48000)).astype(np.float32) * 0.1
        >>> pesq_batch(ref, ref, 16000).shape
        (2,)
    """
    e, r, _ = _pair(est, ref, "est", "ref")
    lead = tuple(e.shape[:-1])
    e2, r2 = e.reshape(-1, e.shape[-1]), r.reshape(-1, r.shape[-1])
    scores = [pesq_score(e2[i], r2[i], rate, mode) for i in range(e2.shape[0])]
    return np.asarray(scores, dtype=np.float64).reshape(lead)
