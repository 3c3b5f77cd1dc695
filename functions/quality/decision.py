"""The quality decision of one model version's window: labelled quality vs the model's validation quality.

The baseline is what training stored with the model: validation_predictions.parquet (label, score) and the
serving threshold (metadata.json metrics.threshold, the one in serving.json). Its metrics are recomputed with
the same functions as the window's, so both sides mean the same thing.

A metric is degraded when the window's whole confidence interval lies past the baseline's whole interval by
more than the metric's tolerance (AUC, precision, recall lower; log-loss, ECE higher): a degradation that
either side's sample cannot tell from noise (a small validation split with few positives has wide intervals),
or one smaller than the tolerance, raises nothing. The window is judged only with at least
`min_labelled` labelled predictions holding `min_per_class` of each class; otherwise it is
"insufficient_labels", which neither extends nor resets the sustained-breach count (the window is judged
again when more labels have arrived). `ModelQualityDegraded` waits for `sustained_windows` degraded windows
in a row, like DriftDetected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from functions.quality.metrics import METRICS, Estimate, Quality

QualityVerdict = Literal["degraded", "ok", "insufficient_labels"]
HIGHER_IS_BETTER = {"auc": True, "precision": True, "recall": True, "log_loss": False, "ece": False}


@dataclass(frozen=True)
class QualityConfig:
    min_labelled: int = 1000
    min_per_class: int = 20
    auc_drop: float = 0.05  # absolute
    precision_drop: float = 0.15  # absolute
    recall_drop: float = 0.15  # absolute
    log_loss_rise: float = 0.5  # relative: 0.5 = 50% above the baseline's
    ece_rise: float = 0.05  # absolute
    replicates: int = 200
    level: float = 0.95
    sustained_windows: int = 2
    label_delay_hours: int = 48  # the scheduled check judges the window that ended this long ago

    def __post_init__(self) -> None:
        if self.min_labelled < 1 or self.min_per_class < 1:
            raise ValueError("min_labelled and min_per_class must be >= 1")
        if self.sustained_windows < 1:
            raise ValueError(f"sustained_windows must be >= 1, got {self.sustained_windows}")
        if not 0 < self.level < 1 or self.replicates < 20:
            raise ValueError("level must be in (0, 1) and replicates >= 20")
        for name in ("auc_drop", "precision_drop", "recall_drop", "log_loss_rise", "ece_rise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def bound(self, metric: str, baseline: Estimate) -> float:
        """The value past which the window's whole interval must lie to count as degraded: the baseline
        interval's end nearest the window, moved by the tolerance."""
        if metric == "log_loss":
            return baseline.high * (1 + self.log_loss_rise)
        tolerance = {"auc": self.auc_drop, "precision": self.precision_drop, "recall": self.recall_drop,
                     "ece": self.ece_rise}[metric]  # fmt: skip
        return baseline.low - tolerance if HIGHER_IS_BETTER[metric] else baseline.high + tolerance


@dataclass
class VersionResult:
    version: str
    predictions: int
    labelled: int
    verdict: QualityVerdict
    window: Quality | None
    baseline: Quality | None
    degraded: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.labelled / self.predictions if self.predictions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "predictions": self.predictions, "labelled": self.labelled,
            "coverage": self.coverage, "verdict": self.verdict, "degraded": self.degraded, "reasons": self.reasons,
            "window": self.window.to_dict() if self.window else None,
            "baseline": self.baseline.to_dict() if self.baseline else None,
        }  # fmt: skip


def decide(
    version: str, predictions: int, window: Quality, baseline: Quality | None, config: QualityConfig
) -> VersionResult:
    result = VersionResult(version, predictions, window.rows, "ok", window, baseline)
    negatives = window.rows - window.positives
    if window.rows < config.min_labelled or min(window.positives, negatives) < config.min_per_class:
        result.verdict = "insufficient_labels"
        result.reasons.append(
            f"{window.rows} labelled ({window.positives} positive, {negatives} negative); needs "
            f"{config.min_labelled} with {config.min_per_class} of each class"
        )
        return result
    if baseline is None:
        result.verdict = "insufficient_labels"
        result.reasons.append(f"no validation baseline found for model version {version}")
        return result
    for metric in METRICS:
        base, now = baseline.estimates[metric], window.estimates[metric]
        if math.isnan(base.low) or math.isnan(now.low):
            continue  # undefined on one side (no positive flagged, one class only)
        bound = config.bound(metric, base)
        if HIGHER_IS_BETTER[metric] and now.high < bound:
            result.degraded.append(metric)
            result.reasons.append(f"{metric} {now.value:.3f} [{now.low:.3f}, {now.high:.3f}] < {bound:.3f} "
                                  f"(validation {base.value:.3f} [{base.low:.3f}, {base.high:.3f}])")  # fmt: skip
        elif not HIGHER_IS_BETTER[metric] and now.low > bound:
            result.degraded.append(metric)
            result.reasons.append(f"{metric} {now.value:.3f} [{now.low:.3f}, {now.high:.3f}] > {bound:.3f} "
                                  f"(validation {base.value:.3f} [{base.low:.3f}, {base.high:.3f}])")  # fmt: skip
    result.verdict = "degraded" if result.degraded else "ok"
    return result
