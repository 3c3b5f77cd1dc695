"""The names infra adds to schemas.naming: what the traffic function derives to find a variant's alarms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.naming import VARIANT_ALARM_KINDS, VARIANTS, Names, NamingError


def test_variant_alarm_names_are_derivable_and_distinct() -> None:
    names = Names("tidewater", "dev")
    endpoint = names.endpoint("model")
    assert names.variant_alarm(endpoint, "challenger", "5xx-rate") == "tidewater-dev-model-challenger-5xx-rate"
    every = [names.variant_alarm(endpoint, v, k) for v in VARIANTS for k in VARIANT_ALARM_KINDS]
    assert len(set(every)) == len(VARIANTS) * len(VARIANT_ALARM_KINDS)
    assert names.variant_alarms(endpoint, "champion") == {
        "5xx-rate": "tidewater-dev-model-champion-5xx-rate",
        "latency-p99": "tidewater-dev-model-champion-latency-p99",
    }


@given(kind=st.text(max_size=12).filter(lambda k: k not in VARIANT_ALARM_KINDS))
def test_unknown_alarm_kind_is_refused(kind: str) -> None:
    with pytest.raises(NamingError, match="unknown alarm kind"):
        Names().variant_alarm("tidewater-dev-model", "champion", kind)


@pytest.mark.parametrize("variant", ["", "Champion", "a", "with space", "x" * 40])
def test_invalid_variant_is_refused(variant: str) -> None:
    with pytest.raises(NamingError, match="variant"):
        Names().variant_alarm("tidewater-dev-model", variant, "5xx-rate")


def test_queue_and_log_names_follow_the_prefix() -> None:
    names = Names("tidewater", "prod")
    assert names.retraining_queue == "tidewater-prod-retraining"
    assert names.retraining_dlq == "tidewater-prod-retraining-dlq"
    assert names.schedules_dlq == "tidewater-prod-schedules-dlq"
    assert names.function_log_group("drift") == "/aws/lambda/tidewater-prod-drift"
    with pytest.raises(NamingError):
        names.function_log_group("train")
