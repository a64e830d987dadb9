"""Evaluation metrics: closed-set classification (accuracy, confusion matrix, UAR) and detection
(DET curve, EER, minDCF, actDCF, Cllr) with PNG plots of confusion matrices and DET curves;
language recognition (Cavg, minimum Cavg)."""

from __future__ import annotations

from voxa.metrics import separation as _separation
from voxa.metrics.classification import (
    accuracy,
    confusion_matrix,
    per_class_recall,
    plot_confusion_matrix,
    uar,
    unweighted_average_recall,
)
from voxa.metrics.detection import (
    act_dcf,
    bayes_threshold,
    cllr,
    det_curve,
    detection_metrics,
    eer,
    eer_threshold,
    min_cllr,
    min_dcf,
    plot_det,
)
from voxa.metrics.language import cavg, lid_metrics, min_cavg, scores_to_llr
from voxa.metrics.separation import *  # noqa: F403  (SDR, SI-SDR, BSS SDR, SDRi, iSDR, PESQ)

__all__ = [
    "accuracy", "act_dcf", "bayes_threshold", "cllr", "confusion_matrix", "det_curve",
    "detection_metrics", "eer", "eer_threshold", "min_cllr", "min_dcf", "per_class_recall",
    "plot_confusion_matrix", "plot_det", "uar", "unweighted_average_recall",
]
__all__ += _separation.__all__
__all__ += ["cavg", "lid_metrics", "min_cavg", "scores_to_llr"]
