"""Validation metrics in numpy. Written here (a few lines) because the jobs extra carries neither
scikit-learn nor torchmetrics, and pulling either in for two formulas is not worth a dependency."""

from __future__ import annotations

import numpy as np


def roc_auc(label: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic, with ties given their average rank."""
    label = np.asarray(label).astype(bool)
    positives, negatives = int(label.sum()), int((~label).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes in the labels")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = np.asarray(score)[order]
    ranks = np.empty(len(score), dtype=np.float64)
    # Average rank per block of equal scores.
    _, starts, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = starts + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[label].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def log_loss(label: np.ndarray, probability: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(probability, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(label, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def f1_threshold(label: np.ndarray, score: np.ndarray) -> float:
    """The score threshold that maximises F1 on the validation split: serving's label cut-off.

    With no positive label, 0.5 (there is nothing to trade precision against recall on).
    """
    y = np.asarray(label).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if not y.any():
        return 0.5
    order = np.argsort(-s, kind="mergesort")
    sorted_scores, sorted_labels = s[order], y[order]
    true_pos = np.cumsum(sorted_labels)
    predicted = np.arange(1, len(s) + 1)
    f1 = 2 * true_pos / (predicted + y.sum())
    # A cut can only fall where the next score differs: the last index of each block of equal scores.
    last_of_block = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    best = int(np.argmax(np.where(last_of_block, f1, -1.0)))
    return float(sorted_scores[best])
