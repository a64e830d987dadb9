"""Gaussian mixture models: EM training (chunked, GPU, distributed), MAP adaptation and LLR scoring.

Example:
    >>> import torch
    >>> from voxa.gmm import GaussianMixture, llr
    >>> ubm = GaussianMixture(16, init="split").fit(torch.randn(10000, 4))
    >>> spk = ubm.map_adapt(torch.randn(500, 4) + 0.3)
    >>> score = llr(spk, ubm, torch.randn(300, 4) + 0.3, top_c=5)
"""

from __future__ import annotations

from voxa.gmm.map import map_estimate, parse_adapt
from voxa.gmm.mixture import GaussianMixture
from voxa.gmm.scoring import llr, llr_many

__all__ = ["GaussianMixture", "llr", "llr_many", "map_estimate", "parse_adapt"]
