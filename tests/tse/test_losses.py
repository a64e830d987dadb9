"""TSE losses (paper eq. 8 and 9): bounds, batching, mixed presence and finite gradients."""

from __future__ import annotations

import math

import pytest
import torch

from voxa.errors import VoxaError
from voxa.tse.losses import active_loss, inactive_loss, tse_loss


def _batch(seed: int = 0, b: int = 4, n: int = 8000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = 0.1 * torch.randn(b, n, generator=g)
    mix = target + 0.1 * torch.randn(b, n, generator=g)
    est = target + 0.05 * torch.randn(b, n, generator=g)
    return est, target, mix


def test_active_loss_bounds() -> None:
    _, target, _ = _batch()
    torch.testing.assert_close(active_loss(target, target), torch.full((4,), -30.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(active_loss(target, target, tau_db=20.0), torch.full((4,), -20.0),
                               atol=1e-5, rtol=0)
    zeros = active_loss(torch.zeros_like(target), target)
    torch.testing.assert_close(zeros, torch.full((4,), 10 * math.log10(1 + 1e-3)), atol=1e-5, rtol=0)


def test_active_loss_matches_formula() -> None:
    est, target, _ = _batch(1)
    x, xh = target.double(), est.double()
    tau = 10 ** -3
    want = -10 * torch.log10((x**2).sum(-1) / (((x - xh) ** 2).sum(-1) + tau * (x**2).sum(-1)))
    torch.testing.assert_close(active_loss(est, target).double(), want, atol=1e-4, rtol=0)


def test_inactive_loss_of_zeros_is_mixture_floor() -> None:
    _, _, mix = _batch(2)
    got = inactive_loss(torch.zeros_like(mix), mix)
    torch.testing.assert_close(got, 10 * torch.log10(1e-2 * (mix**2).sum(-1)), atol=1e-5, rtol=0)
    assert torch.all(inactive_loss(mix, mix) > got)


def test_batched_equals_per_item() -> None:
    est, target, mix = _batch(3)
    act, ina = active_loss(est, target), inactive_loss(est, mix)
    for i in range(est.shape[0]):
        torch.testing.assert_close(active_loss(est[i:i + 1], target[i:i + 1])[0], act[i])
        torch.testing.assert_close(inactive_loss(est[i], mix[i]), ina[i])


def test_tse_loss_mixed_presence_equals_mean_of_items() -> None:
    est, target, mix = _batch(4)
    present = torch.tensor([True, False, True, False])
    target = torch.where(present[:, None], target, torch.zeros_like(target))
    per_item = torch.stack([
        active_loss(est[i], target[i]) if present[i] else inactive_loss(est[i], mix[i]) for i in range(4)
    ])
    torch.testing.assert_close(tse_loss(est, target, mix, present), per_item.mean())
    torch.testing.assert_close(tse_loss(est, target, mix, present, reduction="sum"), per_item.sum())
    torch.testing.assert_close(tse_loss(est, target, mix, present, reduction="none"), per_item)
    torch.testing.assert_close(tse_loss(est, target, mix, present.long(), reduction="none"), per_item)


def test_gradients_finite_for_zero_targets_and_zero_estimates() -> None:
    _, target, mix = _batch(5)
    present = torch.tensor([True, False, True, False])
    target = torch.where(present[:, None], target, torch.zeros_like(target))
    for est0 in (torch.zeros_like(mix), 0.01 * mix):
        est = est0.clone().requires_grad_(True)
        loss = tse_loss(est, target, mix, present)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(est.grad).all()
    # all-absent batch with all-zero targets and outputs, and the bare losses on silence
    est = torch.zeros_like(mix, requires_grad=True)
    tse_loss(est, torch.zeros_like(mix), mix, torch.zeros(4, dtype=torch.bool)).backward()
    assert torch.isfinite(est.grad).all()
    est = torch.zeros_like(mix, requires_grad=True)
    loss = active_loss(est, torch.zeros_like(mix)).sum() + inactive_loss(est, torch.zeros_like(mix)).sum()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(est.grad).all()


def test_gradient_pushes_toward_target() -> None:
    est, target, mix = _batch(6, b=2)
    est = est.clone().requires_grad_(True)
    tse_loss(est, target, mix, torch.tensor([True, False])).backward()
    # present item: descent direction reduces the error; absent item: descent shrinks the output
    assert torch.sum(est.grad[0] * (est[0] - target[0])) > 0
    assert torch.sum(est.grad[1] * est[1]) > 0


def test_bad_inputs() -> None:
    est, target, mix = _batch(7)
    with pytest.raises(VoxaError, match="shape"):
        active_loss(est, target[:, :-1])
    with pytest.raises(VoxaError, match="present"):
        tse_loss(est, target, mix, torch.ones(3, dtype=torch.bool))
    with pytest.raises(VoxaError, match="reduction"):
        tse_loss(est, target, mix, torch.ones(4, dtype=torch.bool), reduction="max")
    with pytest.raises(VoxaError, match="non-empty"):
        inactive_loss(torch.zeros(2, 0), torch.zeros(2, 0))
