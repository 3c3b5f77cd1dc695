"""The drift report: a JSON document, a self-contained HTML page (inline SVG, no scripts, no fetches) and one
SVG histogram per feature (baseline vs window), listed in the JSON under `figures` so other reports (the
rehearsal's report.html) can show every feature, not only the drifted ones."""

from __future__ import annotations

import functools
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


@functools.cache
def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    # Autoescape everything: feature names come from the data's columns, whatever they are called.
    return Environment(loader=PackageLoader("functions.drift", "templates"), autoescape=True, undefined=StrictUndefined)


def svg_bars(
    labels: list[str], ref: np.ndarray, cur: np.ndarray, width: int = 640, height: int = 180, title: str = ""
) -> str:
    top = float(max(ref.max(initial=0), cur.max(initial=0))) or 1.0
    slot = width / max(1, len(labels))
    bar = slot * 0.4
    bars = []
    for i, label in enumerate(labels):
        for j, (share, colour) in enumerate(((float(ref[i]), _REF), (float(cur[i]), _CUR))):
            h = share / top * height
            bars.append(
                {
                    "x": i * slot + j * bar + slot * 0.1,
                    "y": height - h,
                    "width": bar,
                    "height": h,
                    "colour": colour,
                    "label": label,
                    "share": share,
                }
            )
    # Every label when they fit, else every fifth.
    ticks = [
        {"x": i * slot + 2, "label": label[:12]}
        for i, label in enumerate(labels)
        if len(labels) <= MAX_BARS + 1 or i % 5 == 0
    ]
    return str(
        _templates()
        .get_template("bars.svg.j2")
        .render(
            width=width, height=height, title=title, top=top, bars=bars, ticks=ticks, ref_colour=_REF, cur_colour=_CUR
        )
    )


def _row(f: FeatureResult) -> dict[str, Any]:
    stats = ", ".join(f"{k}={v:.4g}" for k, v in f.statistics.items())
    return {
        "name": f.name,
        "role": f.role,
        "kind": f.kind,
        "verdict": f.verdict,
        "test": f.test,
        "qvalue": f.qvalue,
        "effect": f.effect,
        "missing_rate_reference": f.missing_rate_reference,
        "missing_rate_current": f.missing_rate_current,
        "stats": stats,
        "reasons": "; ".join(f.reasons),
    }


def report_html(result: DriftResult, baseline: Profile, current: Profile, title: str) -> str:
    from markupsafe import Markup

    sections = []
    for f in result.features:
        if f.verdict != "drift":
            continue
        pool = (baseline.features, current.features) if f.role == "feature" else (baseline.outputs, current.outputs)
        labels, ref, cur = histogram(pool[0][f.name], pool[1][f.name], baseline.relative_accuracy)
        # The figure was rendered (and escaped) by its own template.
        sections.append({"name": f.name, "reasons": "; ".join(f.reasons), "svg": Markup(svg_bars(labels, ref, cur))})
    return str(
        _templates()
        .get_template("report.html.j2")
        .render(
            title=title,
            result=result,
            sections=sections,
            rows=[_row(f) for f in result.features],
            ref_colour=_REF,
            cur_colour=_CUR,
        )
    )
