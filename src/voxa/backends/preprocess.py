"""Linear pre-processing of utterance vectors: length normalisation, Fisher LDA, WCCN and NAP.

Each is a scikit-learn transformer (``fit(X, y)`` returns self, ``transform(X)``,
``fit_transform``) working on ``[n, d]`` numpy arrays in float64, so they chain in a
:class:`sklearn.pipeline.Pipeline`, and each saves to a safetensors file without pickle.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(10), 20)
    >>> X = rng.normal(size=(10, 8))[y] + 0.3 * rng.normal(size=(200, 8))
    >>> Z = LengthNorm().fit_transform(LDA(n_components=5).fit_transform(X, y))
    >>> Z.shape, bool(np.allclose(np.linalg.norm(Z, axis=1), 1.0))
    ((200, 5), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from sklearn.base import TransformerMixin

from voxa.backends._common import SavableBackend, as_labels, as_matrix
from voxa.errors import ConfigError, VoxaError

# Eigenvalues of the covariance below this fraction of the largest are treated as this
# fraction: whitening a (near-)null direction would otherwise blow noise up without bound.
_EIG_FLOOR = 1e-10


def _class_stats(X: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class counts ``[k]`` and means ``[k, d]``."""
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, codes, X)
    return counts, sums / counts[:, None]


def _sign_fix(V: np.ndarray) -> np.ndarray:
    """Flip columns so each one's largest-magnitude entry is positive (eigenvector signs are
    arbitrary; fixing them makes the projection reproducible across LAPACK builds)."""
    idx = np.argmax(np.abs(V), axis=0)
    return V * np.sign(V[idx, np.arange(V.shape[1])])


class LengthNorm(TransformerMixin, SavableBackend):
    """Centre, optionally whiten, then scale every vector to unit length.

    The recipe of Garcia-Romero & Espy-Wilson (Interspeech 2011) that makes i-vectors /
    x-vectors nearly Gaussian for PLDA: subtract the training mean, whiten with the training
    covariance (symmetric ``Sigma^-1/2``), and project onto the unit sphere. Kaldi's
    ``ivector-normalize-length`` scales to radius ``sqrt(d)`` instead; that constant factor is
    absorbed by any back-end trained afterwards.

    Args:
        whiten: Whiten with the training covariance before normalising (otherwise centre only).

    Attributes:
        mean_: ``[d]`` training mean.
        whitening_: ``[d, d]`` symmetric whitening matrix (identity when ``whiten=False``).

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 4))
        >>> Z = LengthNorm().fit(X).transform(X)
        >>> bool(np.allclose(np.linalg.norm(Z, axis=1), 1.0))
        True
    """

    _arrays = ("mean_", "whitening_")

    def __init__(self, whiten: bool = True) -> None:
        self.whiten = whiten

    def fit(self, X: Any, y: Any = None) -> LengthNorm:
        """Estimate the mean (and whitening matrix) from ``X [n, d]``; ``y`` is ignored."""
        X = as_matrix(X)
        d = X.shape[1]
        self.mean_ = X.mean(axis=0)
        if self.whiten:
            if X.shape[0] < 2:
                raise VoxaError("LengthNorm: whitening needs at least 2 training vectors")
            evals, U = np.linalg.eigh(np.cov(X, rowvar=False, bias=True).reshape(d, d))
            if evals[-1] <= 0:
                raise VoxaError("LengthNorm: the training vectors are all identical")
            evals = np.maximum(evals, _EIG_FLOOR * evals[-1])
            self.whitening_ = (U / np.sqrt(evals)) @ U.T
        else:
            self.whitening_ = np.eye(d)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``[n, d]`` unit-length vectors. A vector equal to the training mean has no direction
        and stays zero."""
        self._check_fitted()
        Z = (as_matrix(X, dim=self.mean_.shape[0]) - self.mean_) @ self.whitening_
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        return Z / np.where(norms > 0, norms, 1.0)


class LDA(TransformerMixin, SavableBackend):
    """Fisher linear discriminant analysis: the projection maximising between- over
    within-class scatter.

    Solves ``S_b v = lambda S_w v`` (generalised symmetric eigenproblem, ``scipy.linalg.eigh``)
    with scatters weighted by class size: ``S_b = sum_c n_c (m_c - m)(m_c - m)^T / n`` and
    ``S_w = sum_c sum_{i in c} (x_i - m_c)(x_i - m_c)^T / n``. ``S_w`` is regularised by
    ``reg * trace(S_w) / d`` on its diagonal so that fewer vectors than dimensions still give a
    solution. The eigenvectors are ``S_w``-orthonormal, so projected data have (regularised)
    within-class covariance equal to the identity.

    Args:
        n_components: Output dimension; default ``min(classes - 1, d)``. Directions beyond
            ``classes - 1`` have zero between-class variance.
        reg: Relative diagonal loading of the within-class scatter (``>= 0``).

    Attributes:
        classes_: ``[k]`` sorted class labels.
        mean_: ``[d]`` training mean (subtracted before projecting).
        scalings_: ``[d, n_components]`` projection, columns by decreasing Fisher ratio.
        eigenvalues_: ``[n_components]`` Fisher ratios of the columns.
        explained_variance_ratio_: ``[n_components]`` each eigenvalue over their total over all
            ``d`` directions.

    Example:
        >>> import numpy as np
        >>> y = np.repeat([0, 1, 2], 30)
        >>> X = np.random.default_rng(1).normal(size=(90, 6)) + 3.0 * np.eye(6)[y]
        >>> LDA().fit(X, y).transform(X).shape
        (90, 2)
    """

    _arrays = ("classes_", "mean_", "scalings_", "eigenvalues_", "explained_variance_ratio_")

    def __init__(self, n_components: int | None = None, reg: float = 1e-6) -> None:
        if n_components is not None and (isinstance(n_components, bool) or
                                         not isinstance(n_components, (int, np.integer))
                                         or n_components < 1):
            raise ConfigError(f"LDA: n_components must be a positive int or None, got {n_components!r}")
        if not (isinstance(reg, (int, float)) and reg >= 0):
            raise ConfigError(f"LDA: reg must be a number >= 0, got {reg!r}")
        self.n_components = n_components
        self.reg = reg

    def fit(self, X: Any, y: Any) -> LDA:
        """Fit on ``X [n, d]`` with class labels ``y [n]`` (at least two classes)."""
        X = as_matrix(X)
        n, d = X.shape
        self.classes_, codes = as_labels(y, n)
        k = self.classes_.size
        n_out = min(k - 1, d) if self.n_components is None else int(self.n_components)
        if n_out > d:
            raise ConfigError(f"LDA: n_components={n_out} exceeds the input dimension {d}")
        counts, means = _class_stats(X, codes, k)
        self.mean_ = X.mean(axis=0)
        dm = means - self.mean_
        s_b = (dm * counts[:, None]).T @ dm / n
        dev = X - means[codes]
        s_w = dev.T @ dev / n
        s_w += (self.reg * np.trace(s_w) / d) * np.eye(d)
        try:
            evals, V = scipy.linalg.eigh(s_b, s_w)
        except np.linalg.LinAlgError as e:
            raise VoxaError("LDA: the within-class scatter is singular (every class is a single "
                            "point?); set reg > 0") from e
        evals, V = np.maximum(evals[::-1], 0.0), V[:, ::-1]
        self.scalings_ = _sign_fix(V[:, :n_out])
        self.eigenvalues_ = evals[:n_out]
        total = evals.sum()
        self.explained_variance_ratio_ = self.eigenvalues_ / total if total > 0 \
            else np.zeros(n_out)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Project ``X [n, d]`` to ``[n, n_components]``."""
        self._check_fitted()
        return (as_matrix(X, dim=self.mean_.shape[0]) - self.mean_) @ self.scalings_


class WCCN(TransformerMixin, SavableBackend):
    """Within-class covariance normalisation (Hatch, Kajarekar & Stolcke, ICSLP 2006).

    ``W = (1/C) sum_c cov(class c)`` is the average of the per-class (biased) covariances over
    the classes with at least two vectors (a singleton carries no within-class information).
    With ``W^{-1} = B B^T`` (Cholesky), vectors map to ``x -> B^T x``, after which ``W`` becomes
    the identity. Vectors are not centred, so the map suits cosine scoring directly.

    Args:
        reg: Relative diagonal loading of ``W``: ``W + reg * trace(W) / d * I`` (``>= 0``).

    Attributes:
        within_covariance_: ``[d, d]`` the (regularised) ``W``.
        projection_: ``[d, d]`` lower-triangular ``B``; ``transform(X) = X @ B``.

    Example:
        >>> import numpy as np
        >>> y = np.repeat(np.arange(5), 40)
        >>> X = np.random.default_rng(2).normal(size=(200, 3)) * [1.0, 5.0, 0.2]
        >>> WCCN().fit(X, y).transform(X).shape
        (200, 3)
    """

    _arrays = ("within_covariance_", "projection_")

    def __init__(self, reg: float = 0.0) -> None:
        if not (isinstance(reg, (int, float)) and reg >= 0):
            raise ConfigError(f"WCCN: reg must be a number >= 0, got {reg!r}")
        self.reg = reg

    def fit(self, X: Any, y: Any) -> WCCN:
        """Fit on ``X [n, d]`` with class labels ``y [n]``."""
        X = as_matrix(X)
        d = X.shape[1]
        classes, codes = as_labels(y, X.shape[0], min_classes=1)
        counts, means = _class_stats(X, codes, classes.size)
        keep = counts >= 2
        if not keep.any():
            raise VoxaError("WCCN: every class has a single vector; the within-class covariance "
                            "cannot be estimated")
        dev = X - means[codes]
        # each class's covariance gets weight 1/C regardless of its size (Hatch's definition)
        w = np.where(keep, 1.0 / np.maximum(counts, 1.0), 0.0)[codes] / keep.sum()
        W = (dev * w[:, None]).T @ dev
        W += (self.reg * np.trace(W) / d) * np.eye(d)
        try:
            chol_w = scipy.linalg.cholesky(W, lower=True)
        except np.linalg.LinAlgError as e:
            raise VoxaError("WCCN: the within-class covariance is singular (fewer vectors than "
                            "dimensions?); set reg > 0") from e
        # inverting through W's Cholesky factor is cheaper and better conditioned than inv(W)
        w_inv = scipy.linalg.cho_solve((chol_w, True), np.eye(d))
        self.within_covariance_ = W
        self.projection_ = np.linalg.cholesky((w_inv + w_inv.T) / 2)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Map ``X [n, d]`` to ``X @ B`` (``[n, d]``)."""
        self._check_fitted()
        return as_matrix(X, dim=self.projection_.shape[0]) @ self.projection_


class NAP(TransformerMixin, SavableBackend):
    """Nuisance attribute projection (Solomonoff, Campbell & Boardman, 2005).

    Removes the ``n_components`` directions along which vectors of the same *group* differ most: with
    groups that share the class but not the nuisance (an utterance and its voice-perturbed copies, or
    one speaker's sessions when the channel is the nuisance), those are the nuisance's directions.
    ``P = I - U U^T`` with ``U`` the leading eigenvectors of the within-group scatter; vectors map to
    ``x -> x P``.

    Args:
        n_components: directions removed (``>= 1``).

    Attributes:
        nuisance_: ``[d, n_components]`` the removed directions ``U`` (orthonormal columns).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> g = np.repeat(np.arange(50), 3)                     # 50 utterances x 3 voices
        >>> X = rng.normal(size=(50, 4))[g] + np.outer(rng.normal(size=150) * 5, [1, 0, 0, 0])
        >>> nap = NAP(n_components=1).fit(X, g)
        >>> bool(abs(nap.nuisance_[0, 0]) > 0.99)
        True
    """

    _arrays = ("nuisance_",)

    def __init__(self, n_components: int = 10) -> None:
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
            raise ConfigError(f"NAP: n_components must be an integer >= 1, got {n_components!r}")
        self.n_components = n_components

    def fit(self, X: Any, y: Any) -> NAP:
        """Fit on ``X [n, d]`` with nuisance groups ``y [n]`` (vectors alike but for the nuisance)."""
        X = as_matrix(X)
        d = X.shape[1]
        groups, codes = as_labels(y, X.shape[0], min_classes=1, name="groups")
        counts, means = _class_stats(X, codes, groups.size)
        if (counts >= 2).sum() == 0:
            raise VoxaError("NAP: every group has a single vector; there is no within-group variability")
        if self.n_components >= d:
            raise ConfigError(f"NAP: n_components={self.n_components} must be below the dimension {d}")
        dev = X - means[codes]
        evals, evecs = np.linalg.eigh(dev.T @ dev)
        self.nuisance_ = _sign_fix(evecs[:, ::-1][:, : self.n_components])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Project ``X [n, d]`` off the nuisance directions (``[n, d]``)."""
        self._check_fitted()
        X = as_matrix(X, dim=self.nuisance_.shape[0])
        return X - (X @ self.nuisance_) @ self.nuisance_.T
