"""The shadow (quality) guardrail: its config is checked, and its verdict follows the pairs' score difference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.traffic.config import ConfigError, Guardrail, load_config
from functions.traffic.machine import shadow_guardrail
from functions.traffic.model import ShadowReport

QUALITY: dict[str, Any] = {"name": "q", "kind": "shadow", "metric": "score_difference", "margin": 0.05}


def _config(*guardrails: dict[str, Any]) -> dict[str, Any]:
    return {"endpoint": "e", "champion": "a", "challenger": "b",
            "strategy": {"kind": "canary", "steps": [0.1, 1.0]}, "judge": {"guardrails": list(guardrails)}}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"metric": "latency"}, "kind shadow goes with score_difference"),
        ({"kind": "mean"}, "kind shadow goes with score_difference"),
        ({"margin": 1.0}, "absolute margin < 1"),
        ({"lower_is_better": False}, "lower-is-better"),
        ({"min_pairs": 0}, "min_pairs"),
        ({"lookback_minutes": 0}, "lookback_minutes"),
    ],
)
def test_bad_shadow_guardrails_name_the_problem(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(_config({**QUALITY, **change}))


def test_score_difference_is_reserved() -> None:
    raw = _config(QUALITY) | {"business_metrics": {"score_difference": {"namespace": "n", "metric_name": "m"}}}
    with pytest.raises(ConfigError, match="'score_difference' is a built-in metric name"):
        load_config(raw)


@given(
    pairs=st.integers(0, 5000), errors=st.integers(0, 500), difference=st.floats(0.0, 1.0),
    margin=st.floats(0.001, 0.999), min_pairs=st.integers(1, 1000),
)  # fmt: skip
def test_verdict_follows_the_score_difference_with_failures_counted_as_the_largest(
    pairs: int, errors: int, difference: float, margin: float, min_pairs: int
) -> None:
    g = Guardrail(**{**QUALITY, "margin": margin, "min_pairs": min_pairs})
    result = shadow_guardrail(g, ShadowReport(pairs, 1.0, difference, errors))
    compared = pairs + errors
    if compared < min_pairs:
        assert result.verdict == "no_data"
        return
    effective = (difference * pairs + errors) / compared
    assert result.statistics["score_difference"] == pytest.approx(effective)
    assert result.verdict == ("non_inferior" if effective <= margin else "harm")
    assert difference - 1e-12 <= effective <= 1.0 + 1e-12  # a failed call never makes the challenger look better


def test_no_pairs_is_no_data() -> None:
    assert shadow_guardrail(Guardrail(**QUALITY), None).verdict == "no_data"


def test_pairs_name_their_challenger_and_older_pairs_still_load() -> None:
    import datetime as dt
    import json

    from functions.traffic.shadow import Answer, MemoryShadowLog, ShadowPair, pair_from_json, pair_to_json

    at = dt.datetime(2026, 11, 6, tzinfo=dt.UTC)
    pair = ShadowPair("e", "r1", at, Answer("ok", 0.1), Answer("ok", 0.2), "green")
    assert pair_from_json(pair_to_json(pair)) == pair
    older = {k: v for k, v in json.loads(pair_to_json(pair)).items() if k != "challenger_variant"}
    assert pair_from_json(json.dumps(older)).challenger_variant == ""  # logged before variants were recorded
    log = MemoryShadowLog()
    for p in (pair, pair_from_json(json.dumps(older)), ShadowPair("e", "r2", at, Answer("ok", 0.1), None, "teal")):
        log.record(p)
    everything, green = log.report("e", at), log.report("e", at, challenger="green")
    assert everything is not None and (everything.pairs, everything.challenger_errors) == (2, 1)
    assert green is not None and (green.pairs, green.challenger_errors) == (1, 0)
    assert log.report("e", at, challenger="blue") is None
