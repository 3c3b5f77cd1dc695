"""report.html in a real browser: headless Chromium renders it and the charts and copied figures are drawn."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from functions.drift.report import svg_bars
from jobs.rehearsal import charts
from jobs.rehearsal.lifecycle import Summary
from jobs.rehearsal.report import render_html, rollout_view, write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START = dt.datetime(2026, 11, 6, 8, 0, tzinfo=dt.UTC)
BLUE, ORANGE = (0x4C, 0x78, 0xA8), (0xF5, 0x85, 0x18)  # the drift figures' baseline / window colours


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _summary(workdir: Path) -> tuple[Summary, dict[str, object]]:
    figure = workdir / "drift" / "2026-11-05" / "figures" / "000-amount.svg"
    figure.parent.mkdir(parents=True)
    labels = ["< 1", "1", "2", "3", ">= 4"]
    figure.write_text(svg_bars(labels, np.array([0.1, 0.3, 0.4, 0.15, 0.05]), np.array([0.05, 0.2, 0.3, 0.3, 0.15])))
    (figure.parent.parent / "report.html").write_text("<!doctype html><title>drift</title>")
    summary = Summary(
        workdir=workdir,
        files={"raw files": 6, "curated files": 5, "quarantined files": 1},
        models=[{"model": "v1", "auc": 0.81, "log_loss": 0.11}, {"model": "v2", "auc": 0.83, "log_loss": 0.10}],
        drift=[{"window": "2026-11-05", "verdict": "drift", "drifted": ["amount"], "alarm": True, "report": "s3://r"}],
        rollouts=[{"challenger": "v2", "decision": "promote", "minutes": 12, "reason": "non-inferior"}],
        events={"DriftDetected": 1, "RolloutPromoted": 1},
    )
    minutes = [(START + dt.timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M") for m in range(12)]
    weight = [0.05] * 6 + [0.5] * 6

    def metrics(share: list[float], errors: float) -> dict[str, dict[str, float]]:
        return {
            "Invocations": {m: 1000 * s for m, s in zip(minutes, share, strict=True)},
            "Invocation5XXErrors": {m: 1000 * s * errors for m, s in zip(minutes, share, strict=True)},
            "ModelLatency": dict.fromkeys(minutes, 21_000.0),
        }

    timeline = {
        "models": [{"model": "v1", "history": {"step": [10, 20, 30], "loss": [0.7, 0.4, 0.3]},
                    "metrics": {"auc": 0.81}}],
        "drift": [{
            **summary.drift[0], "html": "drift/2026-11-05/report.html", "rows": 4000,
            "features": [{"name": "amount", "verdict": "drift", "reasons": ["shift"], "test": "ks", "effect": 0.31,
                          "missing": [0.0, 0.0], "figure": str(figure.relative_to(workdir))}],
        }],
        "rollouts": [{
            **summary.rollouts[0], "labels": {"fraud-abc": "v1", "fraud-def": "v2"}, "start": START.isoformat(),
            "trail": [{"at": (START + dt.timedelta(minutes=6)).isoformat(), "action": "advance", "reason": "ok",
                       "weights": {"fraud-abc": 0.5, "fraud-def": 0.5}}],
            "metrics": {"fraud-abc": metrics([1 - w for w in weight], 0.01), "fraud-def": metrics(weight, 0.02)},
        }],
    }  # fmt: skip
    return summary, timeline


def test_rollout_view_names_variants_by_model_and_puts_units_on_numbers(tmp_path: Path) -> None:
    _, timeline = _summary(tmp_path)
    view = rollout_view(timeline["rollouts"][0])  # type: ignore[index]
    share, errors, latency = view["charts"]
    assert [s.name for s in share.series] == ["v1", "v2"]
    assert share.unit == "%" and latency.unit == "ms" and share.x_unit == "minutes"
    assert errors.series[1].last == "2%" and latency.series[0].last == "21 ms"
    assert view["decisions"][0]["weights"] == "v1 50%, v2 50%" and view["decisions"][0]["minute"] == 6
    assert [m.label for m in share.markers] == ["advance"]


def test_training_loss_curve_is_drawn_per_model_with_units(tmp_path: Path) -> None:
    summary, timeline = _summary(tmp_path)
    page = render_html(summary, timeline)
    assert "Training loss per step" in page and "v1 (validation AUC 0.810)" in page and "last 0.3 nats/row" in page
    assert page.count('class="line"') == 1 + 3 * 2  # the loss curve; 3 rollout charts x 2 variants


def test_nice_max_rounds_axes_up() -> None:
    assert [charts.nice_max(v) for v in (0.0, 0.7, 1.0, 3.2, 101.0)] == [1.0, 1.0, 1.0, 5.0, 200.0]


def _pixels_near(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 10) -> int:
    return int(np.all(np.abs(image.astype(int) - np.array(colour)) <= tolerance, axis=-1).sum())


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (`make test` and .ci/run install it)")
def test_report_renders_its_charts_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    summary, timeline = _summary(tmp_path)
    write_reports(summary, timeline)  # type: ignore[arg-type]
    page = tmp_path / "report.html"
    assert "<script" not in page.read_text()
    shot = tmp_path / "shot.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,5000", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    image = np.asarray(Image.open(shot).convert("RGB"))
    # The copied drift figure is an <img>: its blue and orange bars are on screen only if the browser loaded it.
    assert _pixels_near(image, BLUE) > 300 and _pixels_near(image, ORANGE) > 300
    # Inline SVG charts: bars of the ingest/training charts and the rollout lines, in the report's own palette.
    assert _pixels_near(image, _hex(charts.PALETTE[0])) > 1000  # first bar of each chart, first line
    assert _pixels_near(image, _hex(charts.PALETTE[1])) > 300  # second series: v2's line
    json.loads((tmp_path / "summary.json").read_text())


def test_a_rollout_without_its_audit_trail_is_said_not_dropped(tmp_path: Path) -> None:
    summary, timeline = _summary(tmp_path)
    timeline["rollouts"] = [{**summary.rollouts[0], "missing": "no audit trail for rollout id None in t"}]
    page = render_html(summary, timeline)
    assert "No timeline: no audit trail for rollout id None in t." in page and "No rollout ran" not in page
