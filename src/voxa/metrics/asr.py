"""Speech-recognition error rates: word, character and phone error rates from a Levenshtein alignment.

An alignment is a list of ``(op, ref_token, hyp_token)`` with ``op`` one of ``'C'`` (correct), ``'S'``
(substitution), ``'I'`` (insertion: no reference token) and ``'D'`` (deletion: no hypothesis token). The
number of errors ``S + I + D`` is the edit distance whatever the alignment, but when several alignments are
equally short the split between S, I and D depends on how ties are broken. ``style="kaldi"`` (the
default) breaks them as Kaldi's ``compute-wer`` and ``kaldialign.edit_distance`` do; ``style="jiwer"`` as
``jiwer.process_words`` (rapidfuzz's Levenshtein opcodes) does, so that either tool's counts are reproduced
exactly.

Example:
    >>> r = wer(["the cat sat on the mat"], ["the cat sat on mat today"])
    >>> r.errors, r.deletions, r.insertions, r.ref_words, round(r.wer, 4)
    (2, 1, 1, 6, 0.3333)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from voxa.errors import VoxaError

__all__ = [
    "TIMIT_61_TO_39", "UtteranceErrors", "WerResult", "align", "cer", "fold_phones", "format_alignment",
    "per", "wer",
]

Alignment = list[tuple[str, "str | None", "str | None"]]

# Lee & Hon (1989) folding as in Kaldi's egs/timit/s5/conf/phones.60-48-39.map (third column); the
# glottal stop q has no column there and is deleted.
TIMIT_61_TO_39: dict[str, str | None] = {
    "aa": "aa", "ae": "ae", "ah": "ah", "ao": "aa", "aw": "aw", "ax": "ah", "ax-h": "ah", "axr": "er",
    "ay": "ay", "b": "b", "bcl": "sil", "ch": "ch", "d": "d", "dcl": "sil", "dh": "dh", "dx": "dx",
    "eh": "eh", "el": "l", "em": "m", "en": "n", "eng": "ng", "epi": "sil", "er": "er", "ey": "ey",
    "f": "f", "g": "g", "gcl": "sil", "h#": "sil", "hh": "hh", "hv": "hh", "ih": "ih", "ix": "ih",
    "iy": "iy", "jh": "jh", "k": "k", "kcl": "sil", "l": "l", "m": "m", "n": "n", "ng": "ng", "nx": "n",
    "ow": "ow", "oy": "oy", "p": "p", "pau": "sil", "pcl": "sil", "q": None, "r": "r", "s": "s",
    "sh": "sh", "t": "t", "tcl": "sil", "th": "th", "uh": "uh", "uw": "uw", "ux": "uw", "v": "v",
    "w": "w", "y": "y", "z": "z", "zh": "sh",
}


@dataclass(frozen=True)
class UtteranceErrors:
    """Error counts of one reference/hypothesis pair; ``wer`` is None when the reference is empty."""

    errors: int
    substitutions: int
    insertions: int
    deletions: int
    correct: int
    ref_words: int
    wer: float | None
    alignment: Alignment = field(repr=False, compare=False, default_factory=list)


@dataclass(frozen=True)
class WerResult:
    """Totals over a test set: ``wer = (substitutions + insertions + deletions) / ref_words``."""

    errors: int
    substitutions: int
    insertions: int
    deletions: int
    correct: int
    ref_words: int
    wer: float
    per_utterance: list[UtteranceErrors] = field(repr=False, default_factory=list)

    def __str__(self) -> str:
        # the line Kaldi's compute-wer prints
        return (f"%WER {100 * self.wer:.2f} [ {self.errors} / {self.ref_words}, {self.insertions} ins, "
                f"{self.deletions} del, {self.substitutions} sub ]")


def _check_style(style: str) -> None:
    if style not in ("kaldi", "jiwer"):
        raise VoxaError(f"alignment style must be 'kaldi' or 'jiwer', got {style!r}")


def _align_kaldi(ref: Sequence, hyp: Sequence) -> Alignment:
    # Kaldi's LevenshteinEditDistance: a forward pass that keeps, per cell, the first of
    # substitution/match (only if strictly cheapest), deletion (if cheaper than insertion), insertion.
    n, m = len(ref), len(hyp)
    cost = list(range(m + 1))
    back = [["I"] * (m + 1)]
    for i in range(1, n + 1):
        cur = [cost[0] + 1] + [0] * m
        row = ["D"] + [""] * m
        for j in range(1, m + 1):
            ins = cur[j - 1] + 1
            dele = cost[j] + 1
            sub = cost[j - 1] + (ref[i - 1] != hyp[j - 1])
            if sub < ins and sub < dele:
                cur[j], row[j] = sub, "M"
            elif dele < ins:
                cur[j], row[j] = dele, "D"
            else:
                cur[j], row[j] = ins, "I"
        back.append(row)
        cost = cur
    out: Alignment = []
    i, j = n, m
    while i or j:
        step = back[i][j] if i and j else ("D" if i else "I")
        if step == "M":
            i, j = i - 1, j - 1
            out.append(("C" if ref[i] == hyp[j] else "S", ref[i], hyp[j]))
        elif step == "D":
            i -= 1
            out.append(("D", ref[i], None))
        else:
            j -= 1
            out.append(("I", None, hyp[j]))
    return out[::-1]


def _align_jiwer(ref: Sequence, hyp: Sequence) -> Alignment:
    # rapidfuzz (behind jiwer) strips the common prefix and suffix, then traces the full cost matrix
    # back from the end preferring deletion, then insertion, then match/substitution.
    p = 0
    while p < len(ref) and p < len(hyp) and ref[p] == hyp[p]:
        p += 1
    s = 0
    while s < len(ref) - p and s < len(hyp) - p and ref[-1 - s] == hyp[-1 - s]:
        s += 1
    a, b = ref[p:len(ref) - s], hyp[p:len(hyp) - s]
    n, m = len(a), len(b)
    d = [list(range(m + 1))]
    for i in range(1, n + 1):
        row = [i] + [0] * m
        prev = d[-1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (a[i - 1] != b[j - 1]), prev[j] + 1, row[j - 1] + 1)
        d.append(row)
    core: Alignment = []
    i, j = n, m
    while i and j:
        if d[i][j] - d[i - 1][j] == 1:
            i -= 1
            core.append(("D", a[i], None))
            continue
        j -= 1
        if j and d[i][j] - d[i - 1][j] == -1:
            core.append(("I", None, b[j]))
        else:
            i -= 1
            core.append(("C" if a[i] == b[j] else "S", a[i], b[j]))
    core += [("D", a[k], None) for k in range(i - 1, -1, -1)]
    core += [("I", None, b[k]) for k in range(j - 1, -1, -1)]
    return ([("C", t, t) for t in ref[:p]] + core[::-1]
            + [("C", t, t) for t in ref[len(ref) - s:]])


def align(ref: Sequence[str], hyp: Sequence[str], style: str = "kaldi") -> Alignment:
    """A minimum-edit alignment of two token sequences.

    Args:
        ref: reference tokens.
        hyp: hypothesis tokens.
        style: tie-breaking among equally short alignments, ``"kaldi"`` or ``"jiwer"`` (module docstring).

    Returns:
        ``[(op, ref_token | None, hyp_token | None), ...]`` with ``op`` in ``C S I D``.

    Example:
        >>> align(["a", "b", "c"], ["a", "x", "c", "d"])
        [('C', 'a', 'a'), ('S', 'b', 'x'), ('C', 'c', 'c'), ('I', None, 'd')]
    """
    _check_style(style)
    ref, hyp = list(ref), list(hyp)
    return _align_kaldi(ref, hyp) if style == "kaldi" else _align_jiwer(ref, hyp)


def _counts(alignment: Alignment) -> UtteranceErrors:
    c = {"C": 0, "S": 0, "I": 0, "D": 0}
    for op, _, _ in alignment:
        c[op] += 1
    n = c["C"] + c["S"] + c["D"]
    e = c["S"] + c["I"] + c["D"]
    return UtteranceErrors(e, c["S"], c["I"], c["D"], c["C"], n, e / n if n else None, alignment)


def _as_lists(seqs, tokenize) -> list[list[str]]:
    if isinstance(seqs, str):
        seqs = [seqs]
    return [tokenize(s) if isinstance(s, str) else list(s) for s in seqs]


def _error_rate(refs, hyps, tokenize, style: str, unit: str) -> WerResult:
    _check_style(style)
    r, h = _as_lists(refs, tokenize), _as_lists(hyps, tokenize)
    if len(r) != len(h):
        raise VoxaError(f"{len(r)} references but {len(h)} hypotheses: give one hypothesis per reference")
    utts = [_counts(align(a, b, style)) for a, b in zip(r, h)]
    n = sum(u.ref_words for u in utts)
    if n == 0:
        raise VoxaError(f"the references hold no {unit}s: the error rate (errors / {unit}s) is undefined")
    tot = [sum(getattr(u, k) for u in utts)
           for k in ("errors", "substitutions", "insertions", "deletions", "correct")]
    return WerResult(*tot, ref_words=n, wer=tot[0] / n, per_utterance=utts)


def wer(refs, hyps, style: str = "kaldi") -> WerResult:
    """Word error rate over a test set.

    Args:
        refs: reference utterances, each a string (split on whitespace) or a list of tokens; a single
            string is one utterance.
        hyps: the hypotheses, in the same order and form.
        style: tie-breaking of the alignment, ``"kaldi"`` or ``"jiwer"``.

    Returns:
        :class:`WerResult` with totals and ``per_utterance`` counts (each with its alignment).

    Raises:
        VoxaError: when the numbers of references and hypotheses differ, or the references hold no word.

    Example:
        >>> str(wer(["a b c d"], ["a x c"]))
        '%WER 50.00 [ 2 / 4, 0 ins, 1 del, 1 sub ]'
    """
    return _error_rate(refs, hyps, str.split, style, "word")


def _chars(s: str) -> list[str]:
    return list(" ".join(s.split()))


def cer(refs, hyps, style: str = "kaldi") -> WerResult:
    """Character error rate; spaces between words count as characters, as in ``jiwer.cer``, but a run of
    whitespace counts as one space (jiwer counts each) and the ends are stripped. A token-list utterance
    is its tokens joined by single spaces.

    Example:
        >>> round(cer(["abcd"], ["abd"]).wer, 2)
        0.25
    """
    def chars(u):
        return _chars(u if isinstance(u, str) else " ".join(u))

    refs = [refs] if isinstance(refs, str) else refs
    hyps = [hyps] if isinstance(hyps, str) else hyps
    return _error_rate([chars(u) for u in refs], [chars(u) for u in hyps], list, style, "character")


def fold_phones(seq: Sequence[str], mapping: dict[str, str | None]) -> list[str]:
    """Map each phone through ``mapping``; a phone mapped to None (TIMIT's ``q``) is dropped, one not in
    the mapping is kept as it is.

    Example:
        >>> fold_phones(["h#", "q", "ix", "bcl", "b"], TIMIT_61_TO_39)
        ['sil', 'ih', 'sil', 'b']
    """
    out = []
    for p in seq:
        q = mapping.get(p, p)
        if q is not None:
            out.append(q)
    return out


def per(ref_phones, hyp_phones, fold: str | dict | None = None, style: str = "kaldi") -> WerResult:
    """Phone error rate, optionally after folding both sides (``fold="timit39"`` or a mapping).

    Example:
        >>> per(["h# ax b"], ["sil ah b"], fold="timit39").wer
        0.0
    """
    if fold is None:
        mapping = None
    elif isinstance(fold, dict):
        mapping = fold
    elif fold == "timit39":
        mapping = TIMIT_61_TO_39
    else:
        raise VoxaError(f"unknown phone folding {fold!r}: use None, 'timit39' or a dict")
    r, h = _as_lists(ref_phones, str.split), _as_lists(hyp_phones, str.split)
    if mapping is not None:
        r, h = [fold_phones(u, mapping) for u in r], [fold_phones(u, mapping) for u in h]
    return _error_rate(r, h, str.split, style, "phone")


def format_alignment(ref, hyp, style: str = "kaldi") -> str:
    """Kaldi-style three-line view (REF / HYP / EVAL), columns padded to the longer token; ``***`` marks
    the missing side of an insertion or deletion.

    Example:
        >>> print(format_alignment("a b c", "a x c d"))
        REF:  a b c ***
        HYP:  a x c d
        EVAL:   S   I
    """
    r = ref.split() if isinstance(ref, str) else list(ref)
    h = hyp.split() if isinstance(hyp, str) else list(hyp)
    rows: list[list[str]] = [[], [], []]
    for op, a, b in align(r, h, style):
        a, b = "***" if a is None else a, "***" if b is None else b
        w = max(len(a), len(b))
        rows[0].append(a.ljust(w))
        rows[1].append(b.ljust(w))
        rows[2].append(("" if op == "C" else op).ljust(w))
    labels = ("REF:", "HYP:", "EVAL:")
    return "\n".join(f"{lab:<6}" + " ".join(cols).rstrip() for lab, cols in zip(labels, rows))
