"""Output units of end-to-end recognisers: characters with a word separator, or whole transcript tokens.

``chars``: every word is spelled, and ``|`` separates words (wav2letter's and fairseq's convention), so
a character model can output words it never saw. ``words``: each transcript token is one unit, which
for TIMIT's phone transcripts means phones and for Kaldi's yes/no means the two words.

Example:
    >>> u = Units.from_texts([["yes", "no"]], "chars")
    >>> u.symbols
    ['e', 'n', 'o', 's', 'y', '|']
    >>> u.decode(u.encode(["no", "yes"]))
    ['no', 'yes']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from voxa.errors import ConfigError, VoxaError

WORD_SEP = "|"


@dataclass
class Units:
    """An inventory of units (``symbols``) of one ``kind`` (``chars`` or ``words``); ids count from
    ``offset`` (the ids below it are the model's special symbols: CTC's blank, an attention model's
    pad/sos/eos)."""

    symbols: list[str]
    kind: str = "chars"
    offset: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("chars", "words"):
            raise ConfigError(f"units={self.kind!r}: chars or words")
        self._index = {s: i + self.offset for i, s in enumerate(self.symbols)}

    @classmethod
    def from_texts(cls, texts: Iterable[Sequence[str]], kind: str = "chars", offset: int = 0) -> Units:
        """The units of training transcripts (lists of words)."""
        if kind == "chars":
            syms = sorted({c for words in texts for w in words for c in w} | {WORD_SEP})
        else:
            syms = sorted({w for words in texts for w in words})
        units = cls(syms, kind, offset)
        return units

    @property
    def separator(self) -> int | None:
        """Id of the word separator (``chars``), else ``None``."""
        return self._index.get(WORD_SEP) if self.kind == "chars" else None

    def covers(self, words: Sequence[str]) -> bool:
        """Whether every unit of ``words`` is in the inventory."""
        if self.kind == "chars":
            return all(c in self._index for w in words for c in w)
        return all(w in self._index for w in words)

    def encode(self, words: Sequence[str]) -> list[int]:
        """Unit ids of a transcript.

        Raises:
            VoxaError: a unit is not in the inventory.
        """
        seq = list(WORD_SEP.join(words)) if self.kind == "chars" else list(words)
        try:
            return [self._index[s] for s in seq]
        except KeyError as e:
            raise VoxaError(f"unit {e.args[0]!r} is not in the model's inventory") from None

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Words of unit ids (ids outside the inventory, e.g. special symbols, are dropped)."""
        n = len(self.symbols)
        syms = [self.symbols[i - self.offset] for i in ids if 0 <= i - self.offset < n]
        if self.kind == "words":
            return syms
        return [w for w in "".join(syms).split(WORD_SEP) if w]

    def vocab(self, specials: Sequence[str]) -> list[str]:
        """``specials + symbols`` (``len(specials)`` must be ``offset``)."""
        if len(specials) != self.offset:
            raise VoxaError(f"{len(specials)} special symbols for unit ids offset by {self.offset}")
        return list(specials) + list(self.symbols)


__all__ = ["WORD_SEP", "Units"]
