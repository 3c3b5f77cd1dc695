"""The drift report: a JSON document, a self-contained HTML page (inline SVG, no scripts, no fetches) and one
SVG histogram per feature (baseline vs window), listed in the JSON under `figures` so other reports (the
rehearsal's report.html) can show every feature, not only the drifted ones."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

from functions.drift.decision import DriftResult, FeatureResult
from schemas.profile import CategoricalProfile, NumericalProfile, Profile

HIST_BINS = 30
MAX_BARS = 20
_REF, _CUR = "#4c78a8", "#f58518"


def report_json(
    result: DriftResult, window: dict[str, Any], captures: dict[str, Any], figures: dict[str, str] | None = None
) -> str:
    """`figures`: feature -> key of its SVG relative to the report's folder."""
    doc = {"window": window, "captures": captures, **result.to_dict(), "figures": figures or {}}
    return json.dumps(doc, indent=1, allow_nan=False)


def figure_key(index: int, name: str) -> str:
    """A key that is safe whatever the feature is called (any name a table may have): its position + a slug."""
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name)[:40]
    return f"figures/{index:03d}-{slug}.svg"


def figures(result: DriftResult, baseline: Profile, current: Profile) -> dict[str, tuple[str, str]]:
    """feature -> (relative key, SVG) for every feature and output compared in the window."""
    out: dict[str, tuple[str, str]] = {}
    for i, f in enumerate(result.features):
        pool = (baseline.features, current.features) if f.role == "feature" else (baseline.outputs, current.outputs)
        labels, ref, cur = histogram(pool[0][f.name], pool[1][f.name], baseline.relative_accuracy)
        out[f.name] = (figure_key(i, f.name), svg_bars(labels, ref, cur, title=f"{f.name}: share of rows (%)"))
    return out


def histogram(
    ref: NumericalProfile | CategoricalProfile, cur: NumericalProfile | CategoricalProfile, relative_accuracy: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels and the two samples' shares per bar: equal-width bins over the baseline's 1st-99th percentile
    (plus under/overflow) for numbers, the most frequent categories (plus the rest) otherwise."""
    if isinstance(ref, NumericalProfile) and isinstance(cur, NumericalProfile):
        from schemas.profile import BucketScheme

        scheme = BucketScheme(relative_accuracy)
        lo, hi = (ref.quantiles[1], ref.quantiles[99]) if ref.quantiles else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, HIST_BINS + 1)

        def shares(p: NumericalProfile) -> np.ndarray:
            idx = np.searchsorted(edges, scheme.values(p.keys), side="right")  # 0 = underflow, BINS+1 = over
            counts = np.bincount(idx, weights=p.counts, minlength=HIST_BINS + 2)
            return counts / max(1, p.count)

        labels = [f"< {lo:.4g}"] + [f"{edges[i]:.4g}" for i in range(HIST_BINS)] + [f">= {hi:.4g}"]
        return labels, shares(ref), shares(cur)
    assert isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile)
    names = sorted(
        set(ref.frequencies) | set(cur.frequencies),
        key=lambda k: -(ref.frequencies.get(k, 0) / max(1, ref.count) + cur.frequencies.get(k, 0) / max(1, cur.count)),
    )
    top, rest = names[:MAX_BARS], names[MAX_BARS:]

    def cat_shares(p: CategoricalProfile) -> np.ndarray:
        values = [p.frequencies.get(k, 0) for k in top] + ([sum(p.frequencies.get(k, 0) for k in rest)] if rest else [])
        return np.asarray(values, np.float64) / max(1, p.count)

    return top + (["(rest)"] if rest else []), cat_shares(ref), cat_shares(cur)


def svg_bars(
    labels: list[str], ref: np.ndarray, cur: np.ndarray, width: int = 640, height: int = 180, title: str = ""
) -> str:
    top = float(max(ref.max(initial=0), cur.max(initial=0))) or 1.0
    slot = width / max(1, len(labels))
    bar = slot * 0.4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" role="img">']
    if title:  # a standalone figure says what it shows and which colour is which; the y scale tops at `top`
        parts.append(
            f'<text x="2" y="10" font-size="10">{html.escape(title)}, max {top:.1%}: '
            f'<tspan fill="{_REF}">&#9632; baseline</tspan> <tspan fill="{_CUR}">&#9632; window</tspan></text>'
        )
    for i, label in enumerate(labels):
        for j, (share, colour) in enumerate(((ref[i], _REF), (cur[i], _CUR))):
            h = share / top * height
            x = i * slot + j * bar + slot * 0.1
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{html.escape(label)}: {share:.2%}</title></rect>'
            )
        if len(labels) <= MAX_BARS + 1 or i % 5 == 0:
            parts.append(
                f'<text x="{i * slot + 2:.1f}" y="{height + 14}" font-size="9">{html.escape(label[:12])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _row(f: FeatureResult) -> str:
    stats = ", ".join(f"{k}={v:.4g}" for k, v in f.statistics.items())
    return (
        f"<tr class='{f.verdict}'><td>{html.escape(f.name)}</td><td>{f.role}</td><td>{f.kind}</td><td>{f.verdict}</td>"
        f"<td>{f.test}</td><td>{f.qvalue:.3g}</td><td>{f.effect:.4g}</td>"
        f"<td>{f.missing_rate_reference:.3f} &rarr; {f.missing_rate_current:.3f}</td><td>{html.escape(stats)}</td>"
        f"<td>{html.escape('; '.join(f.reasons))}</td></tr>"
    )


def report_html(result: DriftResult, baseline: Profile, current: Profile, title: str) -> str:
    sections = []
    for f in result.features:
        if f.verdict != "drift":
            continue
        pool = (baseline.features, current.features) if f.role == "feature" else (baseline.outputs, current.outputs)
        labels, ref, cur = histogram(pool[0][f.name], pool[1][f.name], baseline.relative_accuracy)
        sections.append(
            f"<h3>{html.escape(f.name)}</h3><p>{html.escape('; '.join(f.reasons))}</p>{svg_bars(labels, ref, cur)}"
        )
    rows = "".join(_row(f) for f in result.features)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px}}tr.drift{{background:#fde2e2}}tr.insufficient_data{{color:#888}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>Verdict: <b>{result.verdict}</b> &mdash; {len(result.drifted)} drifted of {len(result.features)};
baseline {result.contract}, {result.rows_reference} rows; window {result.rows_current} rows.
<span style="color:{_REF}">&#9632; baseline</span> <span style="color:{_CUR}">&#9632; window</span></p>
{"".join(sections)}
<h2>All features</h2><table><tr><th>feature</th><th>role</th><th>kind</th><th>verdict</th><th>test</th><th>q (BH)</th>
<th>effect</th><th>missing</th><th>statistics</th><th>reasons</th></tr>{rows}</table></body></html>"""
