import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.naming import RAW_PREFIX, ZONES, Names, NamingError, parse_raw_key, raw_key


def test_bucket_names_are_distinct_per_zone_and_stack() -> None:
    dev, prod = Names("tidewater", "dev"), Names("tidewater", "prod")
    assert len(set(dev.buckets().values())) == len(ZONES)
    assert not set(dev.buckets().values()) & set(prod.buckets().values())
    assert dev.bucket("raw") == "tidewater-dev-raw"


@pytest.mark.parametrize("stack", ["", "Dev", "1dev", "dev_1", "d" * 40, "dev-"])
def test_invalid_stack_names_are_refused(stack: str) -> None:
    with pytest.raises(NamingError, match="stack"):
        Names("tidewater", stack)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(NamingError, match="unknown zone"):
        Names().bucket("scratch")  # type: ignore[arg-type]


@given(
    dataset=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
    name=st.from_regex(r"[A-Za-z0-9_.-]{1,30}", fullmatch=True),
)
def test_raw_key_round_trips(dataset: str, day: dt.date, name: str) -> None:
    key = raw_key(dataset, day, name)
    assert key.startswith(RAW_PREFIX)
    parsed = parse_raw_key(key)
    assert (parsed.dataset, parsed.day, parsed.filename) == (dataset, day, name)


@pytest.mark.parametrize(
    "key",
    ["transactions/2026/11/01/a.csv", "raw/transactions/2026/13/01/a.csv", "raw/Trans/2026/11/01/a.csv",
     "raw/transactions/2026/11/01/", "raw/transactions/26/11/01/a.csv"],
)  # fmt: skip
def test_keys_outside_the_layout_are_refused(key: str) -> None:
    with pytest.raises(NamingError):
        parse_raw_key(key)
