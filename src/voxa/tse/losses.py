"""Training losses of distance-based target speech extraction (Shi, Yen & Nakadai 2024, section II.C).

A query distance either has a talker near it (the model must output that talker) or none (the model
must output silence). Eq. 8, for present targets, is a negated SDR with a soft threshold tau that
caps it at ``-tau_db``; eq. 9, for absent targets, is the output's energy floored by a fraction of
the mixture's (the inactive SDR of Wisdom et al.). :func:`tse_loss` mixes both in one batch.

All losses are differentiable, act on ``[..., samples]`` (normally ``[batch, samples]``), sum
energies over samples (as the paper does), and are computed in the input's dtype.
"""

from __future__ import annotations

import torch

from voxa.errors import VoxaError
from voxa.metrics.separation import energy, inactive_level

__all__ = ["active_loss", "inactive_loss", "tse_loss"]

# floor on energies before a log or a division: keeps silence finite and its gradient zero
_EPS = 1e-10


def _check(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise VoxaError(f"{name_a} and {name_b} must be torch tensors")
    if a.shape != b.shape:
        raise VoxaError(f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}")
    if a.ndim == 0 or a.shape[-1] == 0:
        raise VoxaError(f"{name_a} and {name_b} must be non-empty signals [..., samples], "
                        f"got shape {tuple(a.shape)}")


def _active(est: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    num = energy(target)
    den = energy(target - est) + tau * num
    # a ratio before the log makes a perfect estimate give exactly -tau_db
    return -10.0 * torch.log10(num.clamp_min(_EPS) / den.clamp_min(_EPS))


def _inactive(est: torch.Tensor, mix: torch.Tensor, tau_inactive: float) -> torch.Tensor:
    return inactive_level(energy(est), energy(mix), tau_inactive, _EPS)


def active_loss(est: torch.Tensor, target: torch.Tensor, tau_db: float = 30.0) -> torch.Tensor:
    """Soft-thresholded negative SDR for a present target (the paper's eq. 8, negated to minimise).

    ``L = -10 log10(||x||^2 / (||x - x_hat||^2 + tau ||x||^2))``, ``tau = 10^(-tau_db / 10)``: once
    the SDR nears ``tau_db`` the loss saturates at ``-tau_db``, so easy items stop dominating.

    Args:
        est: estimated target ``x_hat``, ``[..., samples]``.
        target: reference target ``x``, same shape.
        tau_db: the SDR cap eta in dB (the paper's 30).

    Returns:
        loss per item, shape ``[...]`` (dB; a perfect estimate gives ``-tau_db``, zeros about 0).

    Example:
        >>> import torch
        >>> x = torch.randn(2, 16000)
        >>> active_loss(x, x)
        tensor([-30., -30.])
    """
    _check(est, target, "est", "target")
    return _active(est, target, 10.0 ** (-tau_db / 10.0))


def inactive_loss(est: torch.Tensor, mix: torch.Tensor, tau_inactive: float = 1e-2) -> torch.Tensor:
    """Inactive-SDR loss for an absent target (the paper's eq. 9): push the output to silence.

    ``L = 10 log10(||x_hat||^2 + tau_inactive ||y||^2)``; the mixture term bounds the loss below so
    the gradient fades once the output is well under the mixture level.

    Args:
        est: model output ``x_hat``, ``[..., samples]``.
        mix: the mixture ``y``, same shape.
        tau_inactive: the soft threshold (the paper's ``1e-2``).

    Returns:
        loss per item, shape ``[...]`` (dB, not normalised by length or level).

    Example:
        >>> import torch
        >>> mix = torch.full((1, 64000), 0.1)
        >>> inactive_loss(torch.zeros(1, 64000), mix)  # 10 log10(0.01 * 640)
        tensor([8.0618])
    """
    _check(est, mix, "est", "mix")
    return _inactive(est, mix, tau_inactive)


def tse_loss(
    est: torch.Tensor,
    target: torch.Tensor,
    mix: torch.Tensor,
    present: torch.Tensor,
    tau_db: float = 30.0,
    tau_inactive: float = 1e-2,
    reduction: str = "mean",
) -> torch.Tensor:
    """Batch loss mixing present-target items (:func:`active_loss`) and absent ones (:func:`inactive_loss`).

    Both losses are evaluated for every item and the presence mask picks one per item with
    ``torch.where``, so there is no per-item Python branching. Absent items usually carry an
    all-zero target; their active branch is fed safe denominators so the unused branch never sends
    NaN or inf into the gradient (``torch.where`` multiplies it by zero, and ``0 * nan`` is nan).

    Args:
        est: model outputs, ``[batch, samples]`` (or any ``[..., samples]``).
        target: reference targets, same shape (anything, e.g. zeros, where absent).
        mix: mixtures, same shape.
        present: bool (or 0/1) mask, ``[batch]`` (``est.shape[:-1]``): True where a talker is near
            the query distance.
        tau_db: cap of the active loss in dB.
        tau_inactive: soft threshold of the inactive loss.
        reduction: ``"mean"`` (scalar), ``"sum"`` (scalar) or ``"none"`` (per item ``[batch]``).

    Returns:
        the reduced loss.

    Example:
        >>> import torch
        >>> x, y = torch.randn(2, 16000), torch.randn(2, 16000)
        >>> present = torch.tensor([True, False])
        >>> tse_loss(torch.stack([x[0], torch.zeros(16000)]), x, y, present, reduction="none")[0]
        tensor(-30.)
    """
    _check(est, target, "est", "target")
    _check(est, mix, "est", "mix")
    if reduction not in ("mean", "sum", "none"):
        raise VoxaError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(present, torch.Tensor):
        present = torch.as_tensor(present)
    if present.shape != est.shape[:-1]:
        raise VoxaError(f"present has shape {tuple(present.shape)} but one flag per item "
                        f"{tuple(est.shape[:-1])} is needed")
    present = present.to(device=est.device, dtype=torch.bool)

    tau = 10.0 ** (-tau_db / 10.0)
    num = energy(target)
    den = energy(target - est) + tau * num
    # absent items get a ratio of 1 in the unused branch: finite value, finite (zero) gradient
    one = torch.ones_like(num)
    num_safe = torch.where(present, num.clamp_min(_EPS), one)
    den_safe = torch.where(present, den.clamp_min(_EPS), one)
    active = -10.0 * torch.log10(num_safe / den_safe)
    inactive = _inactive(est, mix, tau_inactive)
    loss = torch.where(present, active, inactive)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
