"""HMM estimators with hmmlearn's API: ``GaussianHMM``, ``GMMHMM`` and ``CategoricalHMM``.

``fit(X, lengths)`` takes the concatenated frames ``X [N, D]`` (symbols ``[N, 1]`` for
``CategoricalHMM``) and the length of each sequence (numpy or torch), as hmmlearn does, and trains
by Baum-Welch (EM) or Viterbi training; all sequences go through the batched recursions of
:mod:`voxa.hmm.inference` at once. Attributes have hmmlearn's names and shapes (``startprob_ [S]``,
``transmat_ [S, S]``, ``means_``, ``covars_``, ``weights_``, ``emissionprob_``) as float64 tensors
(numpy arrays may be assigned); ``history_`` holds the total log-likelihood of each iteration
(what hmmlearn's ``monitor_.history`` holds). A :class:`~voxa.hmm.topology.Topology` fixes which
transitions exist: its zeros stay zero through training, and its final weights (if any) constrain
where sequences end.

Example:
    >>> import numpy as np
    >>> from voxa.hmm import GaussianHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(m, 0.5, size=(50, 2)) for m in (0, 4, 0, 4)])
    >>> hmm = GaussianHMM(2, n_iter=5, random_state=0).fit(X, [100, 100])
    >>> hmm.predict(X, [100, 100]).shape
    torch.Size([200])
    >>> hmm.means_.shape, hmm.covars_.shape
    (torch.Size([2, 2]), torch.Size([2, 2]))
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxa.errors import VoxaError
from voxa.hmm.emissions import CategoricalEmission, GaussianEmission, GMMEmission
from voxa.hmm.inference import posteriors, viterbi
from voxa.hmm.topology import Topology
from voxa.utils.serialization import register

_F64 = torch.float64


def _to64(v) -> torch.Tensor:
    return torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v, dtype=_F64).clone()


class _Param:
    """An attribute stored as a float64 tensor whatever is assigned (numpy, lists, tensors)."""

    def __set_name__(self, owner, name):
        self.key = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.key]
        except KeyError:
            raise AttributeError(self.key[1:]) from None

    def __set__(self, obj, value):
        obj.__dict__[self.key] = _to64(value)


def _lengths(lengths, N: int) -> torch.Tensor:
    if lengths is None:
        return torch.tensor([N], dtype=torch.long)
    t = torch.as_tensor(np.asarray(lengths) if not isinstance(lengths, torch.Tensor) else lengths)
    if t.dim() != 1 or t.is_floating_point() or t.numel() == 0:
        raise VoxaError(f"lengths: expected a non-empty 1-D array of integers, got {tuple(t.shape)} "
                        f"{t.dtype}")
    t = t.long()
    if int(t.min()) < 1:
        raise VoxaError(f"lengths: every sequence needs at least one frame, got {int(t.min())}")
    if int(t.sum()) != N:
        raise VoxaError(f"lengths sum to {int(t.sum())} but X has {N} frames")
    return t


def _pad(flat: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, S]`` rows of concatenated sequences to ``[B, T, S]`` (zeros past each length), and the mask."""
    B, T = lengths.shape[0], int(lengths.max())
    mask = torch.arange(T)[None, :] < lengths[:, None]
    if B * T == flat.shape[0]:  # every sequence has the longest length: no padding
        return flat.reshape(B, T, flat.shape[1]), mask
    out = flat.new_zeros(B, T, flat.shape[1])
    out[mask] = flat  # row-major order of the mask is the concatenation order
    return out, mask


class _BaseHMM:
    """Shared training and decoding; subclasses supply the emission model."""

    _emission_params = ""
    startprob_ = _Param()
    transmat_ = _Param()

    def __init__(self, n_components: int = 1, n_iter: int = 10, tol: float = 1e-2,
                 topology: Topology | None = None, init: str = "kmeans", random_state: int | None = None,
                 algorithm: str = "viterbi", training: str = "baum-welch", startprob_prior: float = 1.0,
                 transmat_prior: float = 1.0, params: str | None = None, init_params: str | None = None,
                 dtype: torch.dtype = torch.float32, verbose: bool = False) -> None:
        if int(n_components) < 1:
            raise VoxaError(f"n_components must be >= 1, got {n_components}")
        if algorithm not in ("viterbi", "map"):
            raise VoxaError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        if training not in ("baum-welch", "viterbi"):
            raise VoxaError(f"training must be 'baum-welch' or 'viterbi', got {training!r}")
        if init not in ("kmeans", "random"):
            raise VoxaError(f"init must be 'kmeans' or 'random', got {init!r}")
        if dtype not in (torch.float32, torch.float64):
            raise VoxaError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if topology is not None and topology.n_states != int(n_components):
            raise VoxaError(f"topology has {topology.n_states} states but n_components is {n_components}")
        self.n_components = int(n_components)
        self.n_iter, self.tol = int(n_iter), float(tol)
        self.topology, self.init, self.random_state = topology, init, random_state
        self.algorithm, self.training = algorithm, training
        self.startprob_prior, self.transmat_prior = float(startprob_prior), float(transmat_prior)
        all_params = "st" + self._emission_params
        self.params = all_params if params is None else params
        self.init_params = all_params if init_params is None else init_params
        self.dtype, self.verbose = dtype, verbose

    # ------------------------------------------------------------------ subclass hooks
    def _emission(self):
        raise NotImplementedError

    def _set_emission(self, em) -> None:
        raise NotImplementedError

    def _check_X(self, X) -> torch.Tensor:
        raise NotImplementedError

    def _init_emission(self, X: torch.Tensor, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _emission_tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _logs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        fin = self.topology.log_final if self.topology is not None else None
        return self.startprob_.log(), self.transmat_.log(), fin

    def _check_fitted(self) -> None:
        if "_startprob_" not in self.__dict__ or "_transmat_" not in self.__dict__:
            raise VoxaError(f"{type(self).__name__} is not fitted: call fit() or load() first")
        S = self.n_components
        if tuple(self.startprob_.shape) != (S,) or tuple(self.transmat_.shape) != (S, S):
            raise VoxaError(f"startprob_/transmat_ must be [{S}] and [{S}, {S}], got "
                            f"{tuple(self.startprob_.shape)} and {tuple(self.transmat_.shape)}")

    def _log_b(self, X: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _pad(self._emission().log_likelihood(X), lengths)

    def _init(self, X: torch.Tensor, lengths: torch.Tensor) -> None:
        S = self.n_components
        rng = np.random.default_rng(self.random_state)
        if "s" in self.init_params or "_startprob_" not in self.__dict__:
            self.startprob_ = (self.topology.log_pi.exp() if self.topology is not None
                               else torch.full((S,), 1.0 / S))
        if "t" in self.init_params or "_transmat_" not in self.__dict__:
            self.transmat_ = (self.topology.log_A.exp() if self.topology is not None
                              else torch.full((S, S), 1.0 / S))
        self._init_emission(X, rng)

    def _kmeans(self, X: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
        """``[k, D]`` centres: k-means (scikit-learn) or random frames (``init="random"``)."""
        Xn = X.numpy()
        if self.init == "random" or k >= X.shape[0]:
            idx = rng.choice(X.shape[0], size=k, replace=k > X.shape[0])
            return torch.from_numpy(Xn[idx].copy())
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit(Xn)
        return torch.from_numpy(km.cluster_centers_.astype(np.float64))

    # ------------------------------------------------------------------ E-steps
    def _estep(self, X: torch.Tensor, lengths: torch.Tensor):
        """``(total log-likelihood, gamma [N, S] of the valid frames, start [S], trans [S, S])``."""
        log_b, mask = self._log_b(X, lengths)
        lpi, lA, lfin = self._logs()
        if self.training == "viterbi":
            score, paths = viterbi(log_b, lengths, lpi, lA, lfin)
            s = paths[mask]
            gamma = torch.zeros(s.shape[0], self.n_components, dtype=_F64)
            gamma[torch.arange(s.shape[0]), s] = 1.0
            nxt = paths[:, 1:]
            ok = nxt >= 0
            S = self.n_components
            trans = torch.bincount(paths[:, :-1][ok] * S + nxt[ok], minlength=S * S).reshape(S, S).to(_F64)
            start = torch.bincount(paths[:, 0], minlength=S).to(_F64)
            return float(score.sum()), gamma, start, trans
        loglik, gamma, xi = posteriors(log_b, lengths, lpi, lA, lfin)
        return float(loglik.sum()), gamma[mask], gamma[:, 0].sum(0), xi.sum(0)

    def _mstep_transitions(self, start: torch.Tensor, trans: torch.Tensor) -> None:
        # hmmlearn's Dirichlet-prior update; zeros of the current parameters stay zero
        if "s" in self.params:
            sp = (self.startprob_prior - 1 + start).clamp_min(0)
            sp = torch.where(self.startprob_ == 0, torch.zeros_like(sp), sp)
            if float(sp.sum()) > 0:
                self.startprob_ = sp / sp.sum()
        if "t" in self.params:
            tm = (self.transmat_prior - 1 + trans).clamp_min(0)
            tm = torch.where(self.transmat_ == 0, torch.zeros_like(tm), tm)
            rows = tm.sum(1, keepdim=True)
            self.transmat_ = torch.where(rows > 0, tm / rows.clamp_min(1e-300), self.transmat_)

    def _mstep_emission(self, X: torch.Tensor, gamma: torch.Tensor) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ public
    def fit(self, X, lengths=None) -> _BaseHMM:
        """Train by Baum-Welch (``training="baum-welch"``) or Viterbi training.

        Args:
            X: ``[N, D]`` concatenated frames of every sequence (numpy or torch).
            lengths: ``[n_sequences]`` frames per sequence, summing to ``N`` (``None``: one sequence).

        Returns:
            ``self``. Parameters named in ``init_params`` are initialised first (k-means or random
            frames for the means, the global (co)variance, uniform or topology transitions);
            iterations stop after ``n_iter`` or when the log-likelihood gains less than ``tol``.

        Raises:
            VoxaError: On frames of the wrong shape or lengths that do not sum to ``N``.
        """
        X = self._check_X(X)
        lengths = _lengths(lengths, X.shape[0])
        self._init(X, lengths)
        self._check_fitted()
        self.history_: list[float] = []
        self.converged_ = False
        for _ in range(self.n_iter):
            ll, gamma, start, trans = self._estep(X, lengths)
            self.history_.append(ll)
            if len(self.history_) > 1 and self.history_[-1] - self.history_[-2] < self.tol:
                self.converged_ = True
                break
            self._mstep_transitions(start, trans)
            self._mstep_emission(X, gamma)
        self.n_iter_ = len(self.history_)
        return self

    def _prep(self, X, lengths) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        X = self._check_X(X)
        return X, _lengths(lengths, X.shape[0])

    def score(self, X, lengths=None) -> float:
        """Total log-likelihood ``log P(X)`` of all sequences (forward algorithm)."""
        X, lengths = self._prep(X, lengths)
        from voxa.hmm.inference import _loglik

        log_b, _ = self._log_b(X, lengths)
        return float(_loglik(log_b, lengths, *self._logs()).sum())

    def score_samples(self, X, lengths=None) -> tuple[float, torch.Tensor]:
        """``(total log-likelihood, posteriors [N, S])`` (hmmlearn's ``score_samples``)."""
        X, lengths = self._prep(X, lengths)
        log_b, mask = self._log_b(X, lengths)
        loglik, gamma, _ = posteriors(log_b, lengths, *self._logs())
        return float(loglik.sum()), gamma[mask]

    def predict_proba(self, X, lengths=None) -> torch.Tensor:
        """State posteriors ``[N, S]`` of every frame."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm: str | None = None) -> tuple[float, torch.Tensor]:
        """``(log probability, states [N] int64)``.

        ``"viterbi"``: the best path and the sum of its log scores; ``"map"``: the most probable state
        of each frame and the total log-likelihood.
        """
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise VoxaError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        X, lengths = self._prep(X, lengths)
        log_b, mask = self._log_b(X, lengths)
        if algorithm == "viterbi":
            score, paths = viterbi(log_b, lengths, *self._logs())
            return float(score.sum()), paths[mask]
        loglik, gamma, _ = posteriors(log_b, lengths, *self._logs())
        return float(loglik.sum()), gamma[mask].argmax(1)

    def predict(self, X, lengths=None) -> torch.Tensor:
        """The state of every frame ``[N]`` (int64) by :meth:`decode`."""
        return self.decode(X, lengths)[1]

    # ------------------------------------------------------------------ I/O
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style)."""
        keys = ("n_components", "n_iter", "tol", "topology", "init", "random_state", "algorithm",
                "training", "startprob_prior", "transmat_prior", "params", "init_params", "dtype",
                "verbose")
        out = {k: getattr(self, k) for k in keys}
        out.update(self._config())
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one safetensors file (tensors + JSON header), atomically."""
        from voxa.utils.serialization import save_model

        self._check_fitted()
        cfg = {k: v for k, v in self.get_params().items() if k != "topology"}
        cfg["dtype"] = str(self.dtype).replace("torch.", "")
        tensors = {"startprob": self.startprob_, "transmat": self.transmat_, **self._emission_tensors()}
        if self.topology is not None:
            tensors["topology_log_pi"] = self.topology.log_pi
            tensors["topology_log_A"] = self.topology.log_A
            if self.topology.log_final is not None:
                tensors["topology_log_final"] = self.topology.log_final
        header = {"class": self.voxa_tag, "config": cfg,
                  "fitted": {"history": [float(h) for h in getattr(self, "history_", [])]}}
        return save_model(path, tensors, header)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> _BaseHMM:
        """Read a model written by :meth:`save` (parameters on CPU; ``device`` is accepted for
        ``voxa.load``'s uniform call)."""
        from voxa.utils.serialization import load_model

        tensors, header = load_model(path, expected_class=cls.voxa_tag)
        try:
            cfg = dict(header["config"])
            cfg["dtype"] = {"float32": torch.float32, "float64": torch.float64}[cfg["dtype"]]
            if "topology_log_pi" in tensors:
                cfg["topology"] = Topology(tensors["topology_log_pi"], tensors["topology_log_A"],
                                           tensors.get("topology_log_final"))
            model = cls(**cfg)
            model.startprob_, model.transmat_ = tensors["startprob"], tensors["transmat"]
            model._load_emission(tensors)
        except (KeyError, TypeError, ValueError) as e:
            raise VoxaError(f"{path}: malformed {cls.__name__} file ({e!r})") from e
        model.history_ = [float(h) for h in header.get("fitted", {}).get("history", [])]
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_components={self.n_components}, training={self.training!r})"


def _float_frames(X, D: int | None) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    except (TypeError, ValueError, RuntimeError) as e:
        raise VoxaError(f"X: cannot convert {type(X).__name__} to an array ({e})") from e
    if t.dim() != 2:
        raise VoxaError(f"X: expected a 2-D [frames, dims] array, got shape {tuple(t.shape)}")
    if D is not None and t.shape[1] != D:
        raise VoxaError(f"X: frames have {t.shape[1]} dims, the model has {D}")
    if t.shape[0] == 0:
        raise VoxaError("X: no frames")
    t = t.to(_F64)
    # a finite sum means every value is finite (NaN and inf propagate); only an overflowing sum of
    # finite values needs the elementwise check, which is several times slower
    if not math.isfinite(float(t.sum())) and not bool(torch.isfinite(t).all()):
        raise VoxaError("X: frames contain NaN or infinite values")
    return t


@register("voxa.hmm.GaussianHMM")
class GaussianHMM(_BaseHMM):
    """HMM with one Gaussian per state (hmmlearn's ``GaussianHMM``).

    Args:
        n_components: Number of states ``S``.
        covariance_type: ``"diag"`` (``covars_ [S, D]``) or ``"full"`` (``[S, D, D]``).
        min_covar: Added to the global (co)variance that initialises ``covars_``.
        covars_prior, covars_weight: hmmlearn's covariance prior (``covars_prior`` is added to each
            state's scatter; the defaults are hmmlearn's).
        n_iter, tol: At most ``n_iter`` iterations; stop when the log-likelihood gains ``< tol``.
        topology: Optional :class:`Topology` (its zeros stay zero; ``None``: ergodic).
        init: ``"kmeans"`` or ``"random"`` (random frames) initial means.
        random_state: Seed of the initialisation.
        algorithm: Decoder of ``decode``/``predict``: ``"viterbi"`` or ``"map"``.
        training: ``"baum-welch"`` (EM) or ``"viterbi"`` (hard-assignment) training.
        startprob_prior, transmat_prior: hmmlearn's Dirichlet priors (1: none).
        params, init_params: Letters of what ``fit`` updates and initialises: ``s`` start,
            ``t`` transitions, ``m`` means, ``c`` covariances (default all).
        dtype: Dtype of the emission log-likelihoods (float32: recursions are float64 anyway).

    Attributes:
        startprob_: ``[S]``; transmat_: ``[S, S]``; means_: ``[S, D]``; covars_: see above.
        history_: Total log-likelihood of each iteration (Viterbi score under Viterbi training).
    """

    _emission_params = "mc"
    means_ = _Param()
    covars_ = _Param()

    def __init__(self, n_components: int = 1, covariance_type: str = "diag", min_covar: float = 1e-3,
                 covars_prior: float = 1e-2, covars_weight: float = 1.0, **kwargs: Any) -> None:
        if covariance_type not in ("diag", "full"):
            raise VoxaError(f"covariance_type must be 'diag' or 'full', got {covariance_type!r}")
        super().__init__(n_components, **kwargs)
        self.covariance_type, self.min_covar = covariance_type, float(min_covar)
        self.covars_prior, self.covars_weight = float(covars_prior), float(covars_weight)

    def _config(self):
        return {"covariance_type": self.covariance_type, "min_covar": self.min_covar,
                "covars_prior": self.covars_prior, "covars_weight": self.covars_weight}

    def _emission(self):
        return GaussianEmission(self.means_, self.covars_, self.covariance_type, self.dtype)

    def _check_X(self, X):
        return _float_frames(X, self.means_.shape[1] if "_means_" in self.__dict__ else None)

    def _init_emission(self, X, rng):
        S, D = self.n_components, X.shape[1]
        if "m" in self.init_params or "_means_" not in self.__dict__:
            self.means_ = self._kmeans(X, S, rng)
        if "c" in self.init_params or "_covars_" not in self.__dict__:
            cv = torch.cov(X.T, correction=0).reshape(D, D) + self.min_covar * torch.eye(D, dtype=_F64)
            self.covars_ = (cv.diagonal().expand(S, D) if self.covariance_type == "diag"
                            else cv.expand(S, D, D))

    def _mstep_emission(self, X, gamma):
        em = self._emission()
        em.m_step(X, gamma, self.covars_prior, self.covars_weight, "m" in self.params, "c" in self.params)
        self.means_, self.covars_ = em.means, em.covars

    def _emission_tensors(self):
        return {"means": self.means_, "covars": self.covars_}

    def _load_emission(self, t):
        self.means_, self.covars_ = t["means"], t["covars"]


@register("voxa.hmm.GMMHMM")
class GMMHMM(_BaseHMM):
    """HMM with a mixture of ``n_mix`` diagonal Gaussians per state (hmmlearn's ``GMMHMM``).

    Args:
        n_components: Number of states ``S``.
        n_mix: Gaussians per state ``M``.
        covariance_type: ``"diag"`` (the one supported).
        min_covar: Added to the global variance that initialises ``covars_``.
        **kwargs: As :class:`GaussianHMM` (``params``/``init_params`` letters add ``w``: weights).

    Attributes:
        weights_: ``[S, M]``; means_: ``[S, M, D]``; covars_: ``[S, M, D]``; plus ``startprob_``,
        ``transmat_``, ``history_``.
    """

    _emission_params = "mcw"
    weights_ = _Param()
    means_ = _Param()
    covars_ = _Param()

    def __init__(self, n_components: int = 1, n_mix: int = 1, covariance_type: str = "diag",
                 min_covar: float = 1e-3, **kwargs: Any) -> None:
        if covariance_type != "diag":
            raise VoxaError(f"GMMHMM supports covariance_type='diag' only, got {covariance_type!r}")
        if int(n_mix) < 1:
            raise VoxaError(f"n_mix must be >= 1, got {n_mix}")
        super().__init__(n_components, **kwargs)
        self.n_mix, self.covariance_type, self.min_covar = int(n_mix), covariance_type, float(min_covar)

    def _config(self):
        return {"n_mix": self.n_mix, "covariance_type": self.covariance_type, "min_covar": self.min_covar}

    def _emission(self):
        return GMMEmission(self.weights_, self.means_, self.covars_, self.dtype)

    def _check_X(self, X):
        return _float_frames(X, self.means_.shape[2] if "_means_" in self.__dict__ else None)

    def _init_emission(self, X, rng):
        S, M, D = self.n_components, self.n_mix, X.shape[1]
        if "w" in self.init_params or "_weights_" not in self.__dict__:
            self.weights_ = torch.full((S, M), 1.0 / M)
        var = X.var(0, correction=0) + self.min_covar
        if "m" in self.init_params or "_means_" not in self.__dict__:
            centres = self._kmeans(X, S, rng)
            # each state's Gaussians spread around its centre by a fraction of the global spread
            jitter = torch.from_numpy(rng.standard_normal((S, M, D))) * var.sqrt() * 0.1
            self.means_ = centres[:, None, :] + jitter
        if "c" in self.init_params or "_covars_" not in self.__dict__:
            self.covars_ = var.expand(S, M, D)

    def _mstep_emission(self, X, gamma):
        em = self._emission()
        em.m_step(X, gamma, "w" in self.params, "m" in self.params, "c" in self.params)
        self.weights_, self.means_, self.covars_ = em.weights, em.means, em.covars

    def _emission_tensors(self):
        return {"weights": self.weights_, "means": self.means_, "covars": self.covars_}

    def _load_emission(self, t):
        self.weights_, self.means_, self.covars_ = t["weights"], t["means"], t["covars"]


@register("voxa.hmm.CategoricalHMM")
class CategoricalHMM(_BaseHMM):
    """HMM with a categorical distribution over ``n_features`` symbols per state (hmmlearn's
    ``CategoricalHMM``); ``X`` is ``[N, 1]`` integer symbols.

    Args:
        n_components: Number of states ``S``.
        n_features: Number of symbols ``K`` (``None``: ``max(X) + 1`` at ``fit``).
        emissionprob_prior: hmmlearn's Dirichlet prior (1: none).
        **kwargs: As :class:`GaussianHMM` (``params``/``init_params`` letter ``e``: emissions).

    Attributes:
        emissionprob_: ``[S, K]``; plus ``startprob_``, ``transmat_``, ``history_``.
    """

    _emission_params = "e"
    emissionprob_ = _Param()

    def __init__(self, n_components: int = 1, n_features: int | None = None,
                 emissionprob_prior: float = 1.0, **kwargs: Any) -> None:
        super().__init__(n_components, **kwargs)
        self.n_features = None if n_features is None else int(n_features)
        self.emissionprob_prior = float(emissionprob_prior)

    def _config(self):
        return {"n_features": self.n_features, "emissionprob_prior": self.emissionprob_prior}

    def _emission(self):
        return CategoricalEmission(self.emissionprob_, self.dtype)

    def _check_X(self, X):
        t = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
        if t.dim() != 2 or t.shape[1] != 1:
            raise VoxaError(f"X: expected [N, 1] integer symbols, got shape {tuple(t.shape)}")
        if t.is_floating_point() and not bool((t == t.round()).all()):
            raise VoxaError("X: categorical symbols must be integers")
        t = t.long()
        if t.shape[0] == 0:
            raise VoxaError("X: no symbols")
        K = self.n_features or (self.emissionprob_.shape[1] if "_emissionprob_" in self.__dict__ else None)
        if int(t.min()) < 0 or (K is not None and int(t.max()) >= K):
            raise VoxaError(f"X: symbols must be in 0..{(K or 0) - 1}, got {int(t.min())}..{int(t.max())}")
        return t

    def _init_emission(self, X, rng):
        if self.n_features is None:
            self.n_features = int(X.max()) + 1
        if "e" in self.init_params or "_emissionprob_" not in self.__dict__:
            p = rng.random((self.n_components, self.n_features))
            self.emissionprob_ = p / p.sum(1, keepdims=True)

    def _mstep_emission(self, X, gamma):
        if "e" in self.params:
            em = self._emission()
            em.m_step(X, gamma, self.emissionprob_prior)
            self.emissionprob_ = em.emissionprob

    def _emission_tensors(self):
        return {"emissionprob": self.emissionprob_}

    def _load_emission(self, t):
        self.emissionprob_ = t["emissionprob"]


__all__ = ["CategoricalHMM", "GMMHMM", "GaussianHMM"]
