"""Hidden Markov models: batched forward-backward and Viterbi in torch, emission models and
hmmlearn-style estimators (``GaussianHMM``, ``GMMHMM``, ``CategoricalHMM``) trained by Baum-Welch
or Viterbi training.

Example:
    >>> import torch
    >>> from voxa.hmm import Topology, forward
    >>> topo = Topology.left_to_right(3)
    >>> loglik, log_alpha = forward(torch.randn(2, 8, 3), torch.tensor([8, 5]), topo.log_pi, topo.log_A)
    >>> log_alpha.shape
    torch.Size([2, 8, 3])
"""

from __future__ import annotations

from voxa.hmm.emissions import CategoricalEmission, GaussianEmission, GMMEmission
from voxa.hmm.inference import backward, forward, posteriors, viterbi
from voxa.hmm.models import GMMHMM, CategoricalHMM, GaussianHMM
from voxa.hmm.topology import Topology

__all__ = ["GMMHMM", "CategoricalEmission", "CategoricalHMM", "GMMEmission", "GaussianEmission",
           "GaussianHMM", "Topology", "backward", "forward", "posteriors", "viterbi"]
