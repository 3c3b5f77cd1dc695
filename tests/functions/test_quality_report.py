"""report.html of the quality check: rendered from the report.json document (functions/quality/report.py and its
Jinja2 template), with every number of the document on the page and every name escaped."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from functions.common.events import RecordingPublisher
from functions.drift.check import Window
from functions.drift.state import MemoryBreachStore
from functions.drift.storage import LocalObjectStore
from functions.quality.check import run_check
from functions.quality.decision import QualityConfig, VersionResult, decide
from functions.quality.metrics import METRICS, quality
from functions.quality.report import render_html
from tests.quality_support import (
    ENDPOINT,
    MODEL,
    NAMES,
    labels_table,
    write_baseline,
    write_captures,
    write_curated_labels,
)

DAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
CONFIG = QualityConfig(min_labelled=300, min_per_class=20, replicates=50, sustained_windows=1)


def sample(n: int, seed: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    return y, 1 / (1 + np.exp(-(rng.normal(0, 1, n) + separation * (y - 0.5) * 2 - 1.4)))


def document(*results: VersionResult, account: dict[str, int] | None = None) -> dict[str, Any]:
    """A report.json document as check.py writes it (JSON round trip: NaN becomes null, as stored)."""
    doc = {
        "window": {"endpoint": ENDPOINT, "start": DAY.isoformat(), "end": (DAY + dt.timedelta(days=1)).isoformat()},
        "as_of": (DAY + dt.timedelta(days=3)).isoformat(),
        "model": MODEL,
        "captures": {"records": 400, "rows": 1000},
        "account": account or {},
        "versions": [r.to_dict() for r in results],
    }
    return json.loads(json.dumps(doc))


def text(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.split("</style>", 1)[1])).split())


def degraded_and_ok() -> tuple[VersionResult, VersionResult]:
    base_y, base_s = sample(3000, 1, 2.0)
    baseline = quality(base_y, base_s, 0.5, replicates=50)
    bad_y, bad_s = sample(750, 2, 0.0)
    good_y, good_s = sample(800, 3, 2.0)
    bad = decide("v1", 1000, quality(bad_y, bad_s, 0.5, replicates=50), baseline, CONFIG)
    good = decide("v2", 800, quality(good_y, good_s, 0.5, replicates=50), baseline, CONFIG)
    assert (bad.verdict, good.verdict) == ("degraded", "ok")
    return bad, good


def test_the_page_shows_each_versions_metrics_with_intervals_baseline_coverage_and_decision() -> None:
    bad, good = degraded_and_ok()
    doc = document(bad, good, account={"records without an inference id": 3})
    page = text(render_html(doc, CONFIG.level))

    assert f"Model quality of {MODEL} on {ENDPOINT}" in page
    assert f"{doc['window']['start']} to {doc['window']['end']}" in page and doc["as_of"] in page
    for version in doc["versions"]:
        section = page.split(f"Model version {version['version']}:", 1)[1].split("Model version", 1)[0]
        verdict = version["verdict"].replace("_", " ")
        assert section.startswith(f" {verdict} ")
        assert f"{version['labelled']} of {version['predictions']} predictions ({100 * version['coverage']:.1f}%" in (
            section
        )
        for metric in METRICS:  # the window's and the baseline's value with its interval, as report.json has them
            for side in ("window", "baseline"):
                e = version[side]["metrics"][metric]
                assert f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]" in section, (version["version"], metric)
        for reason in version["reasons"]:
            assert reason in section
    assert "75.0% have a label yet" in page and "100.0% have a label yet" in page
    assert "ROC AUC" in page and "95% interval" in page
    assert "records without an inference id 3" in page
    # Which rows are degraded is marked per metric.
    degraded_rows = re.findall(r'<tr class="degraded"><td>([^<]+)</td>', render_html(doc, CONFIG.level))
    assert len(degraded_rows) == len(bad.degraded) >= 1


def test_undefined_metrics_and_missing_baselines_read_as_such() -> None:
    y, s = sample(100, 4, 1.0)
    few = decide("v3", 400, quality(y, s, 0.5, replicates=50), None, CONFIG)
    nothing = decide("v4", 50, quality(np.zeros(0, int), np.zeros(0), 0.5), None, CONFIG)
    page = text(render_html(document(few, nothing), CONFIG.level))
    assert few.verdict == nothing.verdict == "insufficient_labels"
    assert "Model version v3: insufficient labels" in page and "validation split none found" in page
    assert "100 of 400 predictions (25.0% have a label yet)" in page
    assert "0 of 50 predictions (0.0% have a label yet)" in page
    v4 = page.split("Model version v4:", 1)[1]
    assert v4.count("n/a") >= 2 * len(METRICS) and "nan" not in v4.lower().replace("n/a", "")
    assert "No captured predictions" not in page
    assert "No captured predictions in this window." in text(render_html(document(), CONFIG.level))


@settings(max_examples=40, deadline=None)
@given(version=st.text(min_size=1, max_size=30), reason=st.text(max_size=40))
def test_names_and_reasons_are_text_never_markup(version: str, reason: str) -> None:
    """A model version is whatever the predictor's response said; a reason quotes it. Neither becomes markup."""
    bad, _ = degraded_and_ok()
    bad.version, bad.reasons = version, [reason]
    page = render_html(document(bad), CONFIG.level)
    assert str(escape(version)) in page and str(escape(reason)) in page
    assert "<script" not in page
    hostile = render_html(document(VersionResult('<script>alert("x")</script>', 1, 0, "ok", None, None)), 0.95)
    assert "<script>" not in hostile and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in hostile


def test_the_check_writes_the_page_beside_report_json(tmp_path: Path) -> None:
    """Through run_check: report.html is written next to report.json, which names it."""
    store = LocalObjectStore(tmp_path)
    y, s = sample(3000, 1, 2.0)
    write_baseline(store, "v1", y, s, 0.5)

    def serve(body: bytes) -> bytes:
        rows = json.loads(body)["instances"]
        return json.dumps({"predictions": [{"score": r["s"], "model_version": "v1"} for r in rows]}).encode()

    y, s = sample(600, 5, 0.0)
    keys = write_captures(store, [{"s": float(v)} for v in s], [f"i{i}" for i in range(600)],
                          DAY + dt.timedelta(hours=1), serve, batch=3)  # fmt: skip
    write_curated_labels(store, labels_table(keys, y.tolist(), DAY + dt.timedelta(days=1)))
    outcome = run_check(store=store, names=NAMES, model=MODEL, window=Window(ENDPOINT, DAY, DAY + dt.timedelta(days=1)),
                        as_of=DAY + dt.timedelta(days=2), breach_store=MemoryBreachStore(),
                        publisher=RecordingPublisher(), config=CONFIG)  # fmt: skip
    reports = tmp_path / NAMES.bucket("reports")
    doc = json.loads((reports / outcome.report_json.split("/", 3)[3]).read_text())
    assert doc["html"] == outcome.report_html and outcome.report_html.endswith("/2026/11/03/00/report.html")
    page = (reports / outcome.report_html.split("/", 3)[3]).read_text()
    assert page == render_html({k: v for k, v in doc.items() if k != "html"}, CONFIG.level)
    assert "Model version v1: degraded" in text(page)
