"""Linear prediction: autocorrelation, Levinson-Durbin, LPC to cepstrum, and LPCC features."""

from __future__ import annotations

import torch

from voxa.errors import ConfigError
from voxa.features.deltas import add_deltas, check_deltas
from voxa.features.mfcc import lifter_coeffs
from voxa.features.spectrum import as_batch, check_rate, frame_options, map_frames


def autocorrelation(frames: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Biased autocorrelation ``r[0..max_lag]`` of ``[..., length]`` frames, via the FFT."""
    n = frames.shape[-1]
    n_fft = 1 << (n + max_lag).bit_length()
    spec = torch.fft.rfft(frames, n=n_fft)
    r = torch.fft.irfft(spec.real.square() + spec.imag.square(), n=n_fft)
    return r[..., : max_lag + 1]


def levinson_durbin(r: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve the normal equations for ``A(z) = 1 + a_1 z^-1 + ... + a_p z^-p``, batched.

    Loops over the order only (not over frames). Reflection coefficients are kept inside the unit
    circle, as Kaldi does, so the filter stays stable for silent or clipped frames.

    Args:
        r: ``[..., >= order + 1]`` autocorrelation.
        order: ``p``.

    Returns:
        ``(a [..., order], error [...])`` with ``error`` the prediction-error energy.
    """
    r = r.double()
    batch = r.shape[:-1]
    a = r.new_zeros(*batch, order)
    err = r[..., 0].clamp(min=1e-30)
    for i in range(order):
        acc = r[..., i + 1] + (a[..., :i] * r[..., 1:i + 1].flip(-1)).sum(-1)
        k = acc / err
        err = err * (1.0 - k * k).clamp(min=1e-5)
        new = a.clone()
        new[..., i] = -k
        new[..., :i] = a[..., :i] - k.unsqueeze(-1) * a[..., :i].flip(-1)
        a = new
    return a.float(), err.float()


def lpc_to_cepstrum(a: torch.Tensor, num_ceps: int) -> torch.Tensor:
    """Cepstrum ``c_1..c_num_ceps`` of the all-pole model ``1 / A(z)`` (recursion also past the order)."""
    p = a.shape[-1]
    a64 = a.double()
    c = []
    for n in range(1, num_ceps + 1):
        acc = -a64[..., n - 1] if n <= p else torch.zeros_like(a64[..., 0])
        for k in range(max(1, n - p), n):
            acc = acc - (k / n) * c[k - 1] * a64[..., n - k - 1]
        c.append(acc)
    return torch.stack(c, dim=-1).float()


def lpc(waveform: torch.Tensor, sample_rate: int, order: int = 12, kaldi_compat: bool = False,
        **frame_kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame LPC coefficients ``[batch, frames, order]`` and prediction-error energies.

    Returns:
        ``(a, error)``; 1-D input drops the batch dimension.

    Raises:
        ConfigError: a bad setting. voxa.errors.AudioError: a bad or too short signal.

    Example:
        >>> a, err = lpc(torch.randn(8000), 8000)
        >>> a.shape, err.shape
        (torch.Size([98, 12]), torch.Size([98]))
    """
    _check_order("order", order)
    check_rate(sample_rate)
    x, squeeze = as_batch(waveform)
    opts = frame_options(kaldi_compat, **frame_kwargs)
    r, _ = _autocorrelations(x, sample_rate, opts, order)
    a, err = levinson_durbin(r, order)
    return (a[0], err[0]) if squeeze else (a, err)


def _check_order(name: str, v: object, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{name}={v!r} must be an integer >= {lo}")
    return v


def _autocorrelations(x: torch.Tensor, sample_rate: int, opts, order: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame autocorrelation ``[batch, T, order + 1]`` and log energy, block by block."""
    length = opts.lengths(sample_rate)[0]
    return map_frames(x, sample_rate, opts, lambda f, n_fft: autocorrelation(f[..., :length], order))


def lpcc(waveform: torch.Tensor, sample_rate: int, *, order: int | None = None, num_ceps: int = 13,
         use_energy: bool = True, cepstral_lifter: float = 22.0, deltas: int = 0,
         **frame_kwargs: object) -> torch.Tensor:
    """Linear prediction cepstral coefficients (13 static: C0 then c_1..c_12).

    C0 is the frame's log energy (``use_energy``) or the log prediction-error energy (the model's gain).

    Args:
        waveform: ``[samples]`` or ``[batch, samples]``.
        sample_rate: Hz.
        order: LPC order; default ``sample_rate / 1000 + 4`` capped to 12..20 (12 at 8 kHz, 20 at 16 kHz).
        num_ceps: coefficients including C0.
        use_energy: C0 := log frame energy.
        cepstral_lifter: sinusoidal lifter, 0 to disable.
        deltas: orders of deltas to append.

    Returns:
        ``[batch, frames, num_ceps * (deltas + 1)]`` or ``[frames, ...]``.

    Example:
        >>> lpcc(torch.randn(8000), 8000).shape
        torch.Size([98, 13])
    """
    check_rate(sample_rate)
    if order is None:
        order = int(min(20, max(12, sample_rate // 1000 + 4)))
    _check_order("order", order)
    _check_order("num_ceps", num_ceps)
    if not isinstance(cepstral_lifter, (int, float)) or cepstral_lifter < 0:
        raise ConfigError(f"cepstral_lifter={cepstral_lifter!r} must be >= 0 (0: no lifter)")
    check_deltas(deltas)
    x, squeeze = as_batch(waveform)
    opts = frame_options(False, **frame_kwargs)
    r, log_energy = _autocorrelations(x, sample_rate, opts, order)
    a, err = levinson_durbin(r, order)
    ceps = lpc_to_cepstrum(a, num_ceps - 1)
    c0 = log_energy if use_energy else err.clamp(min=1e-30).log()
    out = torch.cat([c0.unsqueeze(-1), ceps], dim=-1)
    if cepstral_lifter:
        out = out * lifter_coeffs(num_ceps, float(cepstral_lifter)).to(out.device, out.dtype)
        if use_energy:
            out[..., 0] = c0
    out = add_deltas(out, deltas) if deltas else out
    return out[0] if squeeze else out


__all__ = ["autocorrelation", "levinson_durbin", "lpc_to_cepstrum", "lpc", "lpcc"]
