"""Chart geometry for the rehearsal report: plain data in, pixel coordinates out (the template draws them).

Pure functions, no HTML: the Jinja2 template (templates/report.html.j2) turns these into inline SVG, so the
report needs no script and no network to render.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 200  # plot area of every chart, in px
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 84, 28, 14
# Not the drift figures' blue/orange (baseline/window), so a test can tell the inline charts from the copied figures.
PALETTE = ("#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#eeca3b")


@dataclass(frozen=True)
class Tick:
    at: float  # px along the axis
    label: str


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the value with its unit
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    last: str  # the last value with its unit


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    colour: str
    anchor: str = "start"  # "end" near the right edge, so the label stays inside the chart


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str  # of the y axis
    x_unit: str
    width: int = WIDTH + MARGIN_LEFT + 10
    height: int = HEIGHT + MARGIN_TOP + MARGIN_BOTTOM
    bars: list[Bar] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)

    @property
    def left(self) -> int:
        return MARGIN_LEFT

    @property
    def top(self) -> int:
        return MARGIN_TOP

    @property
    def bottom(self) -> int:
        return MARGIN_TOP + HEIGHT


def nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above `value` (an axis that ends on a round number)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    return float(next(m * exponent for m in (1, 2, 5, 10) if m * exponent >= value * (1 - 1e-12)))


def _format(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"
    return f"{text} {unit}".strip() if unit != "%" else f"{text}%"


def _y_ticks(top: float, unit: str) -> list[Tick]:
    return [Tick(MARGIN_TOP + HEIGHT * (1 - i / 4), _format(top * i / 4, unit)) for i in range(5)]


def bar_chart(title: str, values: Sequence[tuple[str, float]], unit: str) -> Chart:
    top = nice_max(max((v for _, v in values), default=0.0))
    slot = WIDTH / max(1, len(values))
    bars = []
    for i, (label, value) in enumerate(values):
        h = HEIGHT * max(0.0, value) / top
        bars.append(Bar(label, value, _format(value, unit), MARGIN_LEFT + i * slot + slot * 0.15,
                        MARGIN_TOP + HEIGHT - h, slot * 0.7, h, PALETTE[i % len(PALETTE)]))  # fmt: skip
    return Chart(title, unit, "", bars=bars, y_ticks=_y_ticks(top, unit))


def line_chart(
    title: str,
    lines: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    unit: str,
    x_unit: str,
    markers: Sequence[tuple[float, str]] = (),
    y_max: float | None = None,
) -> Chart:
    """Lines over a shared x axis (e.g. minutes since the rollout started), with labelled vertical markers."""
    xs = [x for _, pts in lines for x, _ in pts] + [x for x, _ in markers]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (x_hi - x_lo) or 1.0
    top = y_max if y_max is not None else nice_max(max((y for _, pts in lines for _, y in pts), default=0.0))

    def px(x: float) -> float:
        return MARGIN_LEFT + WIDTH * (x - x_lo) / span

    def py(y: float) -> float:
        return MARGIN_TOP + HEIGHT * (1 - min(max(y, 0.0), top) / top)

    series = [
        Series(
            name,
            PALETTE[i % len(PALETTE)],
            " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts),
            _format(pts[-1][1], unit) if pts else "-",
        )
        for i, (name, pts) in enumerate(lines)
    ]
    step = nice_max(span / 5)
    first = math.ceil(x_lo / step) * step
    x_ticks = [
        Tick(px(first + i * step), _format(first + i * step, x_unit)) for i in range(int((x_hi - first) / step) + 1)
    ]
    right = MARGIN_LEFT + WIDTH * 0.85
    return Chart(
        title, unit, x_unit, series=series, y_ticks=_y_ticks(top, unit), x_ticks=x_ticks,
        markers=[Marker(px(x), label, "#888", "end" if px(x) > right else "start") for x, label in markers],
    )  # fmt: skip
