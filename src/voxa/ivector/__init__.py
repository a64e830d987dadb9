"""i-vectors and joint factor analysis: Baum-Welch statistics, the total-variability model, JFA.

Example:
    >>> import torch
    >>> from voxa.gmm import GaussianMixture
    >>> from voxa.ivector import TotalVariability, baum_welch_stats
    >>> ubm = GaussianMixture(8, max_iter=5, random_state=0).fit(torch.randn(5000, 4))
    >>> stats = baum_welch_stats(ubm, [torch.randn(100, 4) for _ in range(40)])
    >>> ivecs = TotalVariability(rank=3, n_iter=3, progress=False).fit(stats, ubm).transform(stats)
"""

from __future__ import annotations

from voxa.ivector.jfa import JointFactorAnalysis
from voxa.ivector.stats import BaumWelchStats, baum_welch_stats, iter_baum_welch_stats
from voxa.ivector.tv import TotalVariability

__all__ = ["BaumWelchStats", "JointFactorAnalysis", "TotalVariability", "baum_welch_stats",
           "iter_baum_welch_stats"]
