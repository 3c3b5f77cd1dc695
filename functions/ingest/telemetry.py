"""An outcome as CloudWatch metrics (EMF through Powertools Metrics)."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from functions.ingest.outcomes import Outcome

_FILE_METRIC = {
    "curated": "FilesCurated",
    "quarantined": "FilesQuarantined",
    "handed_off": "FilesHandedOff",
    "gone": "FilesGone",
}


def record(metrics: Metrics, outcome: Outcome) -> None:
    metrics.add_metric(name=_FILE_METRIC[outcome.status], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RowsIn", unit=MetricUnit.Count, value=outcome.rows_in)
    metrics.add_metric(name="RowsCurated", unit=MetricUnit.Count, value=outcome.rows_curated)
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=outcome.rows_rejected)
    if outcome.rows_rejected and outcome.status == "curated":
        metrics.add_metric(name="FilesQuarantined", unit=MetricUnit.Count, value=1)  # its bad rows were
    metrics.add_metric(name="ParseSeconds", unit=MetricUnit.Seconds, value=outcome.parse_seconds)
    metrics.add_metric(name="ValidationSeconds", unit=MetricUnit.Seconds, value=outcome.validation_seconds)
