"""report.html of one quality check: the report.json document, for people. Pure: a dict in, a page out.

Rendered from the Jinja2 template beside this module (templates/report.html.j2) with autoescaping on: a model
version is whatever the predictor's response called it, so every name is text, never markup. The page is
self-contained (inline CSS, no scripts, no external resources) so it opens from the reports bucket as it is.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from functions.quality.decision import HIGHER_IS_BETTER
from functions.quality.metrics import METRICS

TEMPLATES = Path(__file__).resolve().parent / "templates"
LABELS = {
    "auc": "ROC AUC",
    "precision": "precision at the threshold",
    "recall": "recall at the threshold",
    "log_loss": "log-loss",
    "ece": "expected calibration error",
}


@functools.cache
def _template() -> Template:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined
    )
    return env.get_template("report.html.j2")


def _number(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _estimate(side: dict[str, Any] | None, metric: str) -> str:
    """'0.812 [0.790, 0.833]', or 'n/a' where the metric is undefined (one class only, nothing flagged)."""
    if side is None:
        return "n/a"
    e = side["metrics"][metric]
    if e["value"] is None:
        return "n/a"
    return f"{_number(e['value'])} [{_number(e['low'])}, {_number(e['high'])}]"


def _version(doc: dict[str, Any]) -> dict[str, Any]:
    window, baseline = doc["window"], doc["baseline"]
    return {
        "version": doc["version"],
        "verdict": doc["verdict"],
        "reasons": doc["reasons"],
        "predictions": doc["predictions"],
        "labelled": doc["labelled"],
        "coverage": f"{100 * doc['coverage']:.1f}%",
        "threshold": _number((baseline or window or {}).get("threshold")),
        "baseline_rows": baseline["rows"] if baseline else None,
        "metrics": [
            {
                "name": LABELS[m],
                "better": "higher" if HIGHER_IS_BETTER[m] else "lower",
                "window": _estimate(window if doc["labelled"] else None, m),
                "baseline": _estimate(baseline, m),
                "degraded": m in doc["degraded"],
            }
            for m in METRICS
        ],
    }


def render_html(doc: dict[str, Any], level: float) -> str:
    """The page for a report.json document (functions.quality.check writes both); `level` names the intervals."""
    return _template().render(
        endpoint=doc["window"]["endpoint"],
        start=doc["window"]["start"],
        end=doc["window"]["end"],
        as_of=doc["as_of"],
        model=doc["model"],
        level=f"{100 * level:g}%",
        captures=doc["captures"],
        account=sorted(doc["account"].items()),
        versions=[_version(v) for v in doc["versions"]],
    )
