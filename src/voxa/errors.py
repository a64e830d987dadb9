"""Errors a user can cause. Each carries one clear line naming the file (if any) and the problem."""

from __future__ import annotations


class VoxaError(Exception):
    """Base of every error voxa raises for bad input; the CLI prints its message and exits non-zero."""


class AudioError(VoxaError):
    """An audio file is missing, unreadable, empty, truncated, non-finite or at the wrong rate."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ManifestError(VoxaError):
    """A manifest or Kaldi data directory is malformed or inconsistent."""


class ConfigError(VoxaError):
    """A configuration or recipe is malformed."""


class CorpusError(VoxaError):
    """A corpus root does not have the publisher's layout."""
