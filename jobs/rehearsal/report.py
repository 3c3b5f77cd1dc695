"""The rehearsal's summary: a console table, summary.json and report.html (Jinja2 templates, inline SVG).

report.html shows the lifecycle as pictures: ingest outcomes, each model's learning curve and validation
metrics, every drift
check with the drift function's per-feature histograms (copied out of the embedded cloud by
jobs.rehearsal.collect), and each rollout's timeline (traffic share, error rate and latency per variant per
minute, the judge's decisions marked).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.rehearsal import charts
from jobs.rehearsal.compression import comparison_table, savings_lines

if TYPE_CHECKING:
    from jobs.rehearsal.lifecycle import Summary

TEMPLATES = Path(__file__).parent / "templates"


def _rows(summary: Summary) -> list[tuple[str, str]]:
    rows = [("files", ", ".join(f"{n} {k}" for k, n in sorted(summary.files.items())))]
    rows += [(f"dataset for {d['model']}", f"{d['version']} ({d['rows']})") for d in summary.datasets]
    rows += [(f"model {m['model']}", f"AUC {m['auc']:.3f}, log-loss {m['log_loss']:.4f} nats/row")
             for m in summary.models]  # fmt: skip
    rows += [(f"drift {d['window']}", f"{d['verdict']}{' ' + ','.join(d['drifted']) if d['drifted'] else ''}"
              f"{' ALARM' if d['alarm'] else ''}") for d in summary.drift]  # fmt: skip
    if summary.shadow:
        s = summary.shadow
        rows.append((f"shadow {s['challenger']}", f"{s['pairs']} pairs, agreement {s['label_agreement']:.1%}"))
    rows += [(f"rollout {r['challenger']}", f"{r['decision']} after {r['minutes']} min: {r['reason']}")
             for r in summary.rollouts]  # fmt: skip
    if summary.compression:
        rows += savings_lines(summary.compression)
    rows += [(f"quality {q['window']} ({q['model']})", f"{q['verdict']}, AUC {q['auc']:.3f} vs validation "
              f"{q['validation_auc']:.3f}, {q['labelled']}/{q['predictions']} labelled")
             for q in summary.quality]  # fmt: skip
    rows += [(f"served by {v['model']}", f"{v['requests']} requests over HTTP, 5XX {v['error_rate']:.2%}, "
              f"p99 {v['p99_ms']:.1f} ms") for v in summary.serving]  # fmt: skip
    rows.append(("events", ", ".join(f"{n} {k}" for k, n in sorted(summary.events.items()))))
    return rows


def _effect_text(feature: dict[str, Any]) -> str:
    if feature["verdict"] == "insufficient_data" or feature.get("effect") is None:
        return "-"
    return f"{feature['effect']:.3f} {'W/sd' if feature['test'] == 'ks' else 'JS distance'}"


def _minutes(start: dt.datetime, iso: str) -> float:
    return (dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC) - start).total_seconds() / 60


def rollout_view(rollout: dict[str, Any]) -> dict[str, Any]:
    """Charts and the decision table of one rollout, variants named by their model (v1, v2) where known."""
    if rollout.get("missing"):
        return {**rollout, "decisions": [], "charts": []}
    labels: dict[str, str] = rollout.get("labels") or {}
    start = dt.datetime.fromisoformat(rollout["start"])
    metrics: dict[str, dict[str, dict[str, float]]] = rollout["metrics"]
    minutes = sorted({m for per in metrics.values() for m in per["Invocations"]})
    total = {m: sum(per["Invocations"].get(m, 0.0) for per in metrics.values()) for m in minutes}
    share, errors, latency = [], [], []
    for variant, per in sorted(metrics.items(), key=lambda kv: labels.get(kv[0], kv[0])):
        name = labels.get(variant, variant)
        calls = per["Invocations"]
        share.append((name, [(_minutes(start, m), 100 * calls.get(m, 0.0) / total[m]) for m in minutes if total[m]]))
        errors.append((name, [(_minutes(start, m), 100 * per["Invocation5XXErrors"].get(m, 0.0) / calls[m])
                              for m in minutes if calls.get(m)]))  # fmt: skip
        latency.append((name, [(_minutes(start, m), v / 1000) for m, v in sorted(per["ModelLatency"].items())]))
    decisions = [
        {"minute": _minutes(start, d["at"][:16]), "action": d["action"], "reason": d["reason"],
         "weights": ", ".join(f"{labels.get(v, v)} {100 * w:.0f}%" for v, w in sorted(d["weights"].items()))}
        for d in rollout["trail"]
        if d["action"] != "wait"  # a tick that changed nothing: in the audit trail, not worth a row here
    ]  # fmt: skip
    markers = [(d["minute"], d["action"]) for d in decisions]
    return {
        **rollout,
        "decisions": decisions,
        "charts": [
            charts.line_chart("Traffic share per variant (%)", share, "%", "minutes", markers, y_max=100.0),
            charts.line_chart("5XX error rate per variant (%)", errors, "%", "minutes", markers),
            charts.line_chart("Model latency per variant (ms, minute average)", latency, "ms", "minutes", markers),
        ],
    }


def render_html(summary: Summary, timeline: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined
    )
    drift = [
        {**check, "features": [{**f, "effect_text": _effect_text(f)} for f in check["features"]]}
        for check in timeline.get("drift", [])
    ]
    models = summary.models
    return env.get_template("report.html.j2").render(
        rows=_rows(summary),
        ingest_chart=charts.bar_chart(
            "Files in the lake after the last ingest (files)", sorted(summary.files.items()), "files"
        ),
        events_chart=charts.bar_chart("Platform events published (events)", sorted(summary.events.items()), "events"),
        training_charts=[
            charts.line_chart(
                "Training loss per step (binary cross-entropy of rank 0's batch, nats/row)",
                [
                    (
                        f"{c['model']} (validation AUC {c['metrics']['auc']:.3f})",
                        list(zip(c["history"]["step"], c["history"]["loss"], strict=True)),
                    )
                    for c in timeline.get("models", [])
                ],
                "nats/row",
                "steps",
            ),
            charts.bar_chart("Validation AUC per model (0-1)", [(m["model"], m["auc"]) for m in models], ""),
            charts.bar_chart(
                "Validation log-loss per model (nats/row)", [(m["model"], m["log_loss"]) for m in models], "nats/row"
            ),
        ],
        drift=drift,
        rollouts=[rollout_view(r) for r in timeline.get("rollouts", [])],
        compression=summary.compression,
        compression_table=comparison_table(summary.compression) if summary.compression else [],
    )


def remove_stale_training_folders(workdir: Path) -> list[Path]:
    """A finished rehearsal's own training runs leave no folder (the launcher removes it on success): any
    tide-train-* folder left is from an earlier, failed run."""
    stale = sorted(p for p in workdir.glob("tide-train-*") if p.is_dir())
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def write_reports(summary: Summary, timeline: dict[str, Any] | None = None) -> list[str]:
    rows = _rows(summary)
    width = max(len(k) for k, _ in rows)
    lines = [f"  {k.ljust(width)}  {v}" for k, v in rows]
    (summary.workdir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2, default=str))
    (summary.workdir / "report.html").write_text(render_html(summary, timeline or {}))
    remove_stale_training_folders(summary.workdir)
    return [*lines, f"report: {summary.workdir / 'report.html'}", f"artifacts: {summary.workdir}"]
