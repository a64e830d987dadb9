"""HMM topologies: which states may start, follow each other and end, as log probabilities.

Example:
    >>> topo = Topology.left_to_right(3)
    >>> topo.log_A.exp()
    tensor([[0.5000, 0.5000, 0.0000],
            [0.0000, 0.5000, 0.5000],
            [0.0000, 0.0000, 1.0000]], dtype=torch.float64)
    >>> Topology.ergodic(2).n_states
    2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from voxa.errors import ConfigError

_TOL = 1e-6  # how far a row of probabilities may sum from 1 (float32 inputs round)


@dataclass
class Topology:
    """Initial, transition and (optional) final log probabilities of an ``S``-state HMM.

    Zeros (``-inf`` in log space) are structural: training keeps them zero, since Baum-Welch and
    Viterbi counts of a forbidden transition are zero.

    Args:
        log_pi: ``[S]`` log initial probabilities (sum to 1 in probability space).
        log_A: ``[S, S]`` log transition matrix, rows sum to 1.
        log_final: Optional ``[S]`` log final weights: a sequence must end in a state with a finite
            weight (``Topology.left_to_right(n, final=True)`` forces the last state). ``None``: any.

    Raises:
        ConfigError: If shapes disagree, a value is NaN or ``+inf``, or a row does not sum to 1.
    """

    log_pi: torch.Tensor
    log_A: torch.Tensor
    log_final: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.log_pi = torch.as_tensor(self.log_pi, dtype=torch.float64)
        self.log_A = torch.as_tensor(self.log_A, dtype=torch.float64)
        if self.log_final is not None:
            self.log_final = torch.as_tensor(self.log_final, dtype=torch.float64)
        S = self.log_pi.shape[0] if self.log_pi.dim() == 1 else -1
        if S < 1:
            raise ConfigError(f"topology: log_pi must be a non-empty 1-D [S] tensor, got shape "
                              f"{tuple(self.log_pi.shape)}")
        if tuple(self.log_A.shape) != (S, S):
            raise ConfigError(f"topology: log_A must be [{S}, {S}] to match log_pi, got "
                              f"{tuple(self.log_A.shape)}")
        if self.log_final is not None and tuple(self.log_final.shape) != (S,):
            raise ConfigError(f"topology: log_final must be [{S}], got {tuple(self.log_final.shape)}")
        for name, t in (("log_pi", self.log_pi), ("log_A", self.log_A), ("log_final", self.log_final)):
            if t is not None and bool((torch.isnan(t) | (t == math.inf)).any()):
                raise ConfigError(f"topology: {name} holds NaN or +inf (log probabilities are <= 0)")
        if abs(float(torch.logsumexp(self.log_pi, 0).exp()) - 1.0) > _TOL:
            raise ConfigError("topology: initial probabilities exp(log_pi) do not sum to 1")
        rows = torch.logsumexp(self.log_A, 1).exp()
        bad = torch.nonzero((rows - 1.0).abs() > _TOL).flatten()
        if bad.numel():
            raise ConfigError(f"topology: row {int(bad[0])} of exp(log_A) sums to "
                              f"{float(rows[bad[0]]):.6g}, not 1")
        if self.log_final is not None and not bool((self.log_final > -math.inf).any()):
            raise ConfigError("topology: log_final forbids ending in every state")

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return int(self.log_pi.shape[0])

    @classmethod
    def from_probs(cls, pi, A, final=None) -> Topology:
        """From probabilities (zeros allowed) instead of log probabilities."""
        def lg(p):
            return None if p is None else torch.as_tensor(p, dtype=torch.float64).log()
        return cls(lg(pi), lg(A), lg(final))

    @classmethod
    def ergodic(cls, n: int) -> Topology:
        """Every state may start and follow every state, uniformly."""
        if int(n) < 1:
            raise ConfigError(f"topology: need at least one state, got {n}")
        n = int(n)
        return cls(torch.full((n,), -math.log(n), dtype=torch.float64),
                   torch.full((n, n), -math.log(n), dtype=torch.float64))

    @classmethod
    def left_to_right(cls, n: int, skips: bool = False, final: bool = False) -> Topology:
        """Start in state 0; each state loops or moves to the next (and, with ``skips``, the one after).

        Args:
            n: Number of states.
            skips: Also allow ``i -> i + 2``.
            final: Sequences must end in the last state (``log_final``); otherwise any end is allowed.
        """
        if int(n) < 1:
            raise ConfigError(f"topology: need at least one state, got {n}")
        n = int(n)
        A = torch.zeros(n, n, dtype=torch.float64)
        idx = torch.arange(n)
        A[idx, idx] = 1.0
        A[idx[:-1], idx[1:]] = 1.0
        if skips:
            A[idx[:-2], idx[2:]] = 1.0
        A = A / A.sum(1, keepdim=True)
        pi = torch.zeros(n, dtype=torch.float64)
        pi[0] = 1.0
        fin = None
        if final:
            fin = torch.zeros(n, dtype=torch.float64)
            fin[-1] = 1.0
        return cls.from_probs(pi, A, fin)

    def to(self, dtype: torch.dtype = torch.float64, device: str | torch.device | None = None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(log_pi, log_A, log_final)`` in ``dtype`` on ``device``."""
        def cv(t):
            return None if t is None else t.to(device=device, dtype=dtype)

        return cv(self.log_pi), cv(self.log_A), cv(self.log_final)
