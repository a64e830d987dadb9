"""Phone-boundary accuracy of forced alignments on hand-made cases."""

from __future__ import annotations

import math

import pytest

from voxa.metrics.boundaries import boundary_accuracy, match_phones

# "no yes" with silences: 7 contiguous phones -> 8 boundaries
REF = [(0.0, 0.12, "sil"), (0.12, 0.2, "n"), (0.2, 0.45, "ow"), (0.45, 0.6, "sil"),
       (0.6, 0.7, "y"), (0.7, 0.85, "eh"), (0.85, 1.0, "s")]


def _shift(segments, dt):
    return [(s + dt, e + dt, lab) for s, e, lab in segments]


def test_exact_alignment_is_all_within():
    assert boundary_accuracy(REF, REF) == {"within": 8, "total": 8, "share": 1.0}


def test_shift_by_30_ms_is_none_within_20_ms():
    assert boundary_accuracy(REF, _shift(REF, 0.03))["share"] == 0.0


def test_shift_of_exactly_the_tolerance_counts():
    assert boundary_accuracy(REF, _shift(REF, 0.02))["share"] == 1.0


def test_mixed_shifts_count_each_boundary():
    # the boundary at 0.45 moves 30 ms, the one at 0.7 moves 10 ms, the final end 25 ms
    hyp = [(0.0, 0.12, "sil"), (0.12, 0.2, "n"), (0.2, 0.48, "ow"), (0.48, 0.6, "sil"),
           (0.6, 0.71, "y"), (0.71, 0.85, "eh"), (0.85, 1.025, "s")]
    assert boundary_accuracy(REF, hyp) == {"within": 6, "total": 8, "share": 0.75}


def test_tolerance_is_a_parameter():
    assert boundary_accuracy(REF, _shift(REF, 0.03), tolerance=0.05)["share"] == 1.0


def test_gap_before_a_phone_counts_the_end_and_the_start():
    ref = [(0.0, 0.1, "n"), (0.3, 0.5, "ow")]
    assert boundary_accuracy(ref, ref)["total"] == 4


def test_different_labels_pair_only_matched_phones():
    # hyp drops the first silence and substitutes ow -> ao: n, sil, y, eh, s are matched
    hyp = [(0.12, 0.2, "n"), (0.2, 0.45, "ao"), (0.45, 0.6, "sil"), (0.6, 0.7, "y"),
           (0.7, 0.85, "eh"), (0.85, 1.0, "s")]
    # starts of n, sil, y, eh, s plus the final end; n's end is shared with the unmatched ow's start
    assert boundary_accuracy(REF, hyp) == {"within": 6, "total": 6, "share": 1.0}


def test_match_phones_prefers_matches():
    assert match_phones(["a", "b", "c"], ["a", "x", "b", "c"]).tolist() == [[0, 0], [1, 2], [2, 3]]


def test_label_map_folds_both_sides_before_pairing():
    fold = {"ax-h": "ah", "ax": "ah", "q": None}
    ref = [(0.0, 0.1, "ax-h"), (0.1, 0.2, "q"), (0.2, 0.3, "t")]
    hyp = [(0.0, 0.1, "ax"), (0.2, 0.3, "t")]
    assert boundary_accuracy(ref, hyp, label_map=fold) == {"within": 4, "total": 4, "share": 1.0}


def test_nothing_matched_is_nan():
    result = boundary_accuracy([(0.0, 0.1, "a")], [(0.0, 0.1, "b")])
    assert result["total"] == 0 and math.isnan(result["share"])


def test_callable_label_map():
    assert boundary_accuracy([(0.0, 0.1, "AA")], [(0.0, 0.1, "aa")], label_map=str.lower)["share"] == 1.0


@pytest.mark.parametrize("n", [0, 1])
def test_empty_or_single_sequences(n):
    segs = REF[:n]
    assert boundary_accuracy(segs, segs)["total"] == 2 * n
