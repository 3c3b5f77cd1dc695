"""The drift report's HTML and SVG come from Jinja2 templates: whatever a column is called, the page and the
figures are well-formed markup that shows the name as text, never as markup."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.drift import report
from functions.drift.decision import compare
from schemas.profile import Profile, ProfileBuilder


def _profile(name: str, shift: float) -> Profile:
    rng = np.random.default_rng(1)
    builder = ProfileBuilder("adhoc", {name: "numerical", "colour": "categorical"})
    builder.update_columns({name: rng.normal(shift, 1.0, 2000), "colour": rng.choice(["red", "blue"], 2000)})
    return builder.finalize()


names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=16).filter(
    lambda n: n != "colour"
)


@settings(max_examples=25, deadline=None)
@given(name=names)
def test_any_feature_name_is_text_in_the_page_and_its_figure(name: str) -> None:
    baseline, current = _profile(name, 0.0), _profile(name, 3.0)
    result = compare(baseline, current)
    assert result.drifted == [name]
    page = report.report_html(result, baseline, current, title=f"drift of {name}")
    assert page.startswith("<!doctype html>")
    body = page.split("<body>", 1)[1].removesuffix("</html>")
    root = ET.fromstring(f"<body>{body.replace('&rarr;', '&#8594;').replace('&mdash;', '&#8212;')}")
    assert root.find("h1").text == f"drift of {name}"  # type: ignore[union-attr]
    assert root.find("h3").text == name  # type: ignore[union-attr]  # the drifted feature's section
    cells = [row.find("td").text for row in root.iter("tr") if row.find("td") is not None]  # type: ignore[union-attr]
    assert sorted(cells) == sorted([name, "colour"])
    assert len(root.findall(".//{http://www.w3.org/2000/svg}svg")) == 1

    for feature, (key, svg) in report.figures(result, baseline, current).items():
        figure = ET.fromstring(svg)  # well-formed on its own, as the figures/ files are written
        assert figure.tag == "{http://www.w3.org/2000/svg}svg" and key.endswith(".svg")
        labels, _, _ = report.histogram(
            baseline.features[feature], current.features[feature], baseline.relative_accuracy
        )
        assert len(figure.findall("{http://www.w3.org/2000/svg}rect")) == 2 * len(labels)  # baseline + window


def test_the_figure_states_its_scale_and_every_bar() -> None:
    svg = report.svg_bars(["a<b", "c"], np.array([0.25, 0.75]), np.array([0.5, 0.5]), title="x & y")
    figure = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    titles = [r.find(f"{ns}title").text for r in figure.iter(f"{ns}rect")]  # type: ignore[union-attr]
    assert titles == ["a<b: 25.00%", "a<b: 50.00%", "c: 75.00%", "c: 50.00%"]
    assert "x & y, max 75.0%" in "".join(figure.find(f"{ns}text").itertext())  # type: ignore[union-attr]
    assert html.escape("a<b") in svg
