"""Forced-alignment quality: the share of phone boundaries placed within a tolerance of the reference.

The standard measure for aligners (e.g. the share of TIMIT boundaries within 20 ms of the manual
ones). Segments are ``(start_s, end_s, label)``, as :mod:`voxa.asr.ctm` reads them.

Which boundaries count: every phone's start, and its end where the next phone does not start there
(the end of the last phone, or of one followed by a gap), so ``N`` contiguous phones have ``N + 1``
boundaries. Pairing: when the two label sequences are equal, phone ``i`` of the reference is paired with
phone ``i`` of the hypothesis; otherwise phones are paired by a minimum edit-distance alignment of the
labels and only phones aligned as matches (same label) count, so ``total`` is the number of reference
boundaries of matched phones. A paired reference boundary is compared with the same boundary (start with
start, end with end) of its hypothesised phone.

Label folding (TIMIT's 61 phones to 39, Lee & Hon 1989) is the caller's choice: pass ``label_map``, a
mapping or function applied to both sides; a label mapped to ``None`` or ``""`` (TIMIT's ``q``) drops
the phone from both sequences before pairing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["boundary_accuracy", "match_phones"]

LabelMap = Mapping[str, "str | None"] | Callable[[str], "str | None"]

# float times such as 0.12 + 0.02 miss an exact 20 ms tolerance by ~1e-17 s
_EPS = 1e-9


def _apply(segments: Sequence[Sequence], label_map: LabelMap | None) -> list[tuple[float, float, str]]:
    out = []
    for seg in segments:
        label = str(seg[2])
        if label_map is not None:
            label = label_map.get(label, label) if isinstance(label_map, Mapping) else label_map(label)
        if label:
            out.append((float(seg[0]), float(seg[1]), label))
    return out


def match_phones(ref_labels: Sequence[str], hyp_labels: Sequence[str]) -> np.ndarray:
    """Index pairs ``[[i_ref, i_hyp], ...]`` of phones a minimum edit-distance alignment matches.

    Substitutions, insertions and deletions cost 1, matches 0; among equal-cost alignments matches are
    preferred. Rows of the dynamic programme are vectorised with numpy.

    Example:
        >>> match_phones(["sil", "n", "ow", "sil"], ["n", "ao", "sil"]).tolist()
        [[1, 0], [3, 2]]
    """
    ref = np.asarray(ref_labels, dtype=object)
    hyp = np.asarray(hyp_labels, dtype=object)
    n, m = len(ref), len(hyp)
    if n == m and (n == 0 or bool(np.all(ref == hyp))):
        return np.stack([np.arange(n), np.arange(n)], axis=1)
    d = np.empty((n + 1, m + 1), dtype=np.int64)
    d[0] = np.arange(m + 1)
    cols = np.arange(m + 1)
    for i in range(1, n + 1):
        cand = np.empty(m + 1, dtype=np.int64)
        cand[0] = i
        cand[1:] = np.minimum(d[i - 1, :-1] + (ref[i - 1] != hyp), d[i - 1, 1:] + 1)
        # insertions chain along the row: d[i, j] = min_k<=j (cand[k] + j - k)
        d[i] = np.minimum.accumulate(cand - cols) + cols
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        same = ref[i - 1] == hyp[j - 1]
        if d[i, j] == d[i - 1, j - 1] + (0 if same else 1):
            if same:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return np.array(pairs[::-1], dtype=np.int64).reshape(-1, 2)


def boundary_accuracy(ref_segments: Sequence[Sequence], hyp_segments: Sequence[Sequence],
                      tolerance: float = 0.02, label_map: LabelMap | None = None) -> dict[str, float]:
    """Share of reference phone boundaries whose hypothesised counterpart lies within ``tolerance``.

    See the module docstring for which boundaries count and how they are paired.

    Args:
        ref_segments: reference ``[(start_s, end_s, label), ...]`` in time order.
        hyp_segments: the alignment to score, same form.
        tolerance: largest allowed ``|t_hyp - t_ref|`` in seconds (inclusive).
        label_map: optional folding applied to both label sequences first.

    Returns:
        ``{"within": n, "total": n, "share": within / total}`` (``share`` is NaN when nothing is paired;
        ``within`` and ``total`` are ints).

    Example:
        >>> ref = [(0.0, 0.1, "n"), (0.1, 0.3, "ow")]
        >>> boundary_accuracy(ref, [(0.0, 0.11, "n"), (0.11, 0.36, "ow")])
        {'within': 2, 'total': 3, 'share': 0.6666666666666666}
    """
    ref = _apply(ref_segments, label_map)
    hyp = _apply(hyp_segments, label_map)
    pairs = match_phones([s[2] for s in ref], [s[2] for s in hyp])
    if len(pairs) == 0:
        return {"within": 0, "total": 0, "share": float("nan")}
    r = np.array([s[:2] for s in ref], dtype=np.float64)
    h = np.array([s[:2] for s in hyp], dtype=np.float64)
    # an end counts unless the next reference phone starts at the same time (one shared boundary)
    end_counts = np.ones(len(ref), dtype=bool)
    end_counts[:-1] = np.abs(r[1:, 0] - r[:-1, 1]) > _EPS
    ri, hi = pairs[:, 0], pairs[:, 1]
    start_ok = np.abs(h[hi, 0] - r[ri, 0]) <= tolerance + _EPS
    end_ok = np.abs(h[hi, 1] - r[ri, 1]) <= tolerance + _EPS
    ends = end_counts[ri]
    within = int(start_ok.sum() + (end_ok & ends).sum())
    total = int(len(pairs) + ends.sum())
    return {"within": within, "total": total, "share": within / total}
