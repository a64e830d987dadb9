"""Classifier heads on utterance embeddings: plain softmax and additive angular margin (AAM, ArcFace).

Both take ``(x [B, in_dim], labels [B] | None)`` and return logits ``[B, n_classes]`` for a
cross-entropy loss.

Example:
    >>> import torch
    >>> head = AAMSoftmaxHead(4, 3, margin=0.2, scale=30).eval()
    >>> x = torch.randn(2, 4)
    >>> torch.allclose(head(x), 30 * head.cosine(x))
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["HEADS", "AAMSoftmaxHead", "SoftmaxHead"]


class SoftmaxHead(nn.Module):
    """An affine layer to class logits (``labels`` is accepted and ignored, for a common interface).

    Shapes:
        ``x [B, in_dim]`` -> ``[B, n_classes]``.

    Example:
        >>> SoftmaxHead(4, 3)(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(x)


class AAMSoftmaxHead(nn.Module):
    """Additive angular margin softmax (ArcFace, Deng et al. 2019).

    Logits are ``scale * cos(theta_c)``, the cosine between the length-normalised embedding and class
    ``c``'s normalised weight vector. In training, when ``labels`` are given, the target class's angle
    is widened by ``margin`` (``scale * cos(theta_y + margin)``), which forces classes apart on the
    sphere; at inference (or without labels) no margin is applied.

    Args:
        in_dim: Embedding dims.
        n_classes: Classes.
        margin: Additive angular margin in radians.
        scale: Multiplier of the cosines (the softmax's inverse temperature).

    Shapes:
        ``x [B, in_dim]``, ``labels [B]`` (long) or ``None`` -> ``[B, n_classes]``.

    Example:
        >>> head = AAMSoftmaxHead(4, 3, margin=0.3, scale=10).train()
        >>> x, y = torch.randn(2, 4), torch.tensor([0, 2])
        >>> bool((head(x, y).gather(1, y[:, None]) < head(x).gather(1, y[:, None])).all())
        True
    """

    def __init__(self, in_dim: int, n_classes: int, margin: float = 0.2, scale: float = 30.0) -> None:
        super().__init__()
        self.margin, self.scale = float(margin), float(scale)
        self.weight = nn.Parameter(torch.empty(n_classes, in_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, x: torch.Tensor) -> torch.Tensor:
        """Cosines ``[B, n_classes]`` between the embeddings and the class weight vectors."""
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cos = self.cosine(x)
        if labels is None or not self.training or self.margin == 0:
            return self.scale * cos
        target = cos.gather(1, labels[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
        sin = torch.sqrt(1 - target ** 2)
        phi = target * math.cos(self.margin) - sin * math.sin(self.margin)
        # beyond theta = pi - margin, cos(theta + m) would start rising again; keep the target logit
        # monotone in theta there (the usual ArcFace fallback)
        th, mm = math.cos(math.pi - self.margin), math.sin(math.pi - self.margin) * self.margin
        phi = torch.where(target > th, phi, target - mm)
        return self.scale * cos.scatter(1, labels[:, None], phi)


#: short names (the models' ``head`` setting) to classes
HEADS: dict[str, type[nn.Module]] = {"softmax": SoftmaxHead, "aam": AAMSoftmaxHead}
