"""A back-end chain: pre-processing steps (``lnorm``, ``lda``, ``wccn``) ending in one scorer.

The scorer is ``plda`` or ``cosine`` for verification (enrolment models against test vectors) or
``svm`` / ``logreg`` for closed-set classes. A chain trains every step on the output of the ones
before it, and saves as one safetensors file: each step's tensors under ``<i>.<name>`` and the steps'
headers in the chain's header.

Example:
    >>> import numpy as np, os, tempfile, voxa
    >>> rng = np.random.default_rng(0)
    >>> spk = np.repeat(np.arange(20), 5)
    >>> X = rng.normal(size=(20, 8))[spk] + 0.3 * rng.normal(size=(100, 8))
    >>> chain = BackendChain.fit_steps(["lnorm", "lda", "plda"], X, spk, {"lda": {"n_components": 5}})
    >>> path = voxa.save(chain, os.path.join(tempfile.mkdtemp(), "plda.safetensors"))
    >>> voxa.load(path).score(X[:2], X[:3]).shape
    (2, 3)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxa.errors import ConfigError, VoxaError
from voxa.utils.serialization import register

PRE = ("lnorm", "lda", "wccn")
VERIFY = ("plda", "cosine")
CLASSIFY = ("svm", "logreg")
_CLASS = "voxa.backends.BackendChain"


def check_steps(steps: Sequence[str]) -> list[str]:
    """``steps`` if they are pre-processing steps then one scorer, else a one-line ConfigError."""
    steps = [s.strip() for s in steps if s.strip()]
    bad = [s for s in steps if s not in PRE + VERIFY + CLASSIFY]
    if bad or not steps or any(s not in PRE for s in steps[:-1]):
        raise ConfigError(f"chain {','.join(steps)!r}: pre-processing steps ({', '.join(PRE)}) then one "
                          f"scorer ({', '.join(VERIFY + CLASSIFY)})")
    return steps


@register(_CLASS)
class BackendChain:
    """Fitted back-end steps applied in order; the last one scores.

    Attributes:
        names: step names, e.g. ``["lnorm", "lda", "plda"]``.
        steps: the fitted estimators.
        label: the label the chain was trained on (``speaker``, ``language``, ...).
    """

    def __init__(self, names: Sequence[str], steps: Sequence[Any], label: str = "speaker") -> None:
        self.names = check_steps(names)
        if len(steps) != len(self.names):
            raise VoxaError(f"chain of {len(self.names)} names holds {len(steps)} estimators")
        self.steps = list(steps)
        self.label = label

    @classmethod
    def fit_steps(cls, names: Sequence[str], X: np.ndarray, y: Sequence[Any],
                  params: dict[str, dict[str, Any]] | None = None, label: str = "speaker") -> BackendChain:
        """Train each step on the output of the ones before it.

        Args:
            names: step names (see :func:`check_steps`).
            X: ``[n, dim]`` training vectors.
            y: their labels.
            params: per-step constructor settings, e.g. ``{"lda": {"n_components": 100}}``.
            label: what ``y`` is, recorded in the file.

        Raises:
            ConfigError: For an unknown step, settings for a step not in the chain, or a setting the
                step does not take.
        """
        from voxa.backends import BACKENDS

        names = check_steps(names)
        params = dict(params or {})
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ConfigError(f"settings for step(s) not in the chain: {', '.join(unknown)}; its steps are: "
                              f"{', '.join(names)}")
        X = np.asarray(X)
        steps = []
        for i, name in enumerate(names):
            klass = BACKENDS[name]
            try:
                est = klass(**(params.get(name) or {}))
            except TypeError as e:
                valid = ", ".join(sorted(klass().get_params()))
                raise ConfigError(f"{name}: {e}; it takes: {valid}") from None
            est.fit(X, y)
            if i < len(names) - 1:
                X = est.transform(X)
            steps.append(est)
        return cls(names, steps, label)

    @property
    def scorer_name(self) -> str:
        return self.names[-1]

    @property
    def scorer(self) -> Any:
        return self.steps[-1]

    @property
    def verifies(self) -> bool:
        """Whether the chain scores trials (``plda``, ``cosine``) rather than classes."""
        return self.scorer_name in VERIFY

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``[n, dim]`` vectors through the pre-processing steps (all but the scorer)."""
        for est in self.steps[:-1]:
            X = est.transform(X)
        return X

    def score(self, enroll: np.ndarray, test: np.ndarray, n_enroll: np.ndarray | None = None) -> np.ndarray:
        """Verification scores ``[n_enroll_models, n_test]`` of enrolment vectors (already averaged per
        model, ``n_enroll`` utterances each) against test vectors, both raw (not yet transformed)."""
        if not self.verifies:
            raise VoxaError(f"a {self.scorer_name} chain classifies; it scores no trials")
        E, T = self.transform(enroll), self.transform(test)
        if self.scorer_name == "plda":
            return self.scorer.score(E, T, n_enroll=n_enroll)
        from voxa.backends.cosine import cosine_scores

        return cosine_scores(E, T)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores ``[n, classes]`` (``svm`` and ``logreg`` chains)."""
        if self.verifies:
            raise VoxaError(f"a {self.scorer_name} chain scores trials, not classes")
        return self.scorer.decision_function(self.transform(X))

    @property
    def classes_(self) -> np.ndarray:
        return self.scorer.classes_

    def score_trials(self, enroll_ids: Sequence[str], E: np.ndarray, enroll_labels: dict[str, dict[str, str]],
                     test_ids: Sequence[str], T: np.ndarray, trials: Sequence[Any]) -> list[float]:
        """Scores of Kaldi ``trials`` (``.enroll``, ``.test``): an enrolment id is an utterance id of
        ``E`` or a label (``self.label``) shared by several, whose vectors are averaged.

        Raises:
            VoxaError: If a trial names an id in neither set.
        """
        groups: dict[str, list[int]] = {}
        id_set = set(enroll_ids)
        for i, u in enumerate(enroll_ids):
            groups.setdefault(u, []).append(i)
            lab = enroll_labels.get(u, {}).get(self.label)
            if lab is not None and lab not in id_set:
                groups.setdefault(lab, []).append(i)
        t_row = {u: i for i, u in enumerate(test_ids)}
        models = sorted({t.enroll for t in trials})
        bad = [m for m in models if m not in groups] or [t.test for t in trials if t.test not in t_row]
        if bad:
            raise VoxaError(f"trial id {bad[0]!r} is in neither vectors file")
        E = self.transform(np.asarray(E))
        means = np.stack([E[groups[m]].mean(0) for m in models])
        counts = np.array([len(groups[m]) for m in models])
        T = self.transform(np.asarray(T))
        if self.scorer_name == "plda":
            M = self.scorer.score(means, T, n_enroll=counts)
        else:
            from voxa.backends.cosine import cosine_scores

            M = cosine_scores(means, T)
        col = {m: i for i, m in enumerate(models)}
        return [float(M[col[t.enroll], t_row[t.test]]) for t in trials]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the chain to one safetensors file, atomically."""
        from voxa.utils.serialization import save_model

        tensors, headers = {}, []
        for i, (name, est) in enumerate(zip(self.names, self.steps)):
            t, h = est.state()
            tensors.update({f"{i}.{name}.{k}": v for k, v in t.items()})
            headers.append({"step": name, **h})
        return save_model(path, tensors, {"class": _CLASS, "label": self.label, "steps": headers})

    @classmethod
    def load(cls, path: str | os.PathLike) -> BackendChain:
        """Read a chain written by :meth:`save` (or a folder with ``chain.json`` from older voxa)."""
        from voxa.backends import BACKENDS
        from voxa.utils.serialization import load_model

        path = Path(path)
        if path.is_dir():
            return cls._load_folder(path)
        tensors, header = load_model(path, expected_class=_CLASS)
        names, steps = [], []
        try:
            for i, h in enumerate(header["steps"]):
                name = h["step"]
                prefix = f"{i}.{name}."
                own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
                steps.append(BACKENDS[name].from_state(own, h, f"{path} step {i} ({name})"))
                names.append(name)
        except (KeyError, TypeError) as e:
            raise VoxaError(f"{path}: malformed back-end chain ({e!r})") from None
        return cls(names, steps, header.get("label", "speaker"))

    @classmethod
    def _load_folder(cls, path: Path) -> BackendChain:
        from voxa.backends import BACKENDS

        spec_file = path / "chain.json"
        if not spec_file.is_file():
            raise VoxaError(f"{path}: no back-end chain here (no chain.json)")
        try:
            spec = json.loads(spec_file.read_text())
            pairs = [(s["step"], BACKENDS[s["step"]].load(path / s["file"])) for s in spec["steps"]]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise VoxaError(f"{spec_file}: malformed back-end chain ({e!r})") from None
        return cls([n for n, _ in pairs], [e for _, e in pairs], spec.get("label", "speaker"))
