"""The rehearsal's summary: a console table, summary.json and a self-contained report.html in the work folder."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.rehearsal.lifecycle import Summary


def _rows(summary: Summary) -> list[tuple[str, str]]:
    rows = [("files", ", ".join(f"{n} {k}" for k, n in sorted(summary.files.items())))]
    rows += [(f"dataset for {d['model']}", f"{d['version']} ({d['rows']})") for d in summary.datasets]
    rows += [(f"model {m['model']}", f"AUC {m['auc']:.3f}, log-loss {m['log_loss']:.4f}") for m in summary.models]
    rows += [(f"drift {d['window']}", f"{d['verdict']}{' ' + ','.join(d['drifted']) if d['drifted'] else ''}"
              f"{' ALARM' if d['alarm'] else ''}") for d in summary.drift]  # fmt: skip
    if summary.shadow:
        s = summary.shadow
        rows.append((f"shadow {s['challenger']}", f"{s['pairs']} pairs, agreement {s['label_agreement']:.1%}"))
    rows += [(f"rollout {r['challenger']}", f"{r['decision']} after {r['minutes']} min: {r['reason']}")
             for r in summary.rollouts]  # fmt: skip
    rows += [(f"served by {v['model']}", f"{v['requests']} requests over HTTP, 5XX {v['error_rate']:.2%}, "
              f"p99 {v['p99_ms']:.1f} ms") for v in summary.serving]  # fmt: skip
    rows.append(("events", ", ".join(f"{n} {k}" for k, n in sorted(summary.events.items()))))
    return rows


def write_reports(summary: Summary) -> list[str]:
    rows = _rows(summary)
    width = max(len(k) for k, _ in rows)
    lines = [f"  {k.ljust(width)}  {v}" for k, v in rows]
    (summary.workdir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2, default=str))
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    rollouts = "".join(
        f"<h3>rollout {html.escape(r['challenger'])}: {html.escape(r['decision'])}</h3>"
        f"<pre>{html.escape(json.dumps(r['statistics'], indent=2, default=str))}</pre>"
        for r in summary.rollouts
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>Tidewater rehearsal</title>"
        "<style>body{font:14px sans-serif;margin:2em}th{text-align:left;padding-right:1em}</style>"
        f"<h1>Tidewater rehearsal</h1><table>{table}</table>{rollouts}"
    )
    (summary.workdir / "report.html").write_text(page)
    return [*lines, f"report: {summary.workdir / 'report.html'}", f"artifacts: {summary.workdir}"]
