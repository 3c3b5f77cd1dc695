"""Generated malformed files: whatever a producer drops ends curated or quarantined with a reason, never
as a crash or a retry, and every raw object is accounted for (raw == curated + quarantined + handed off)."""

from __future__ import annotations

import csv
import io
import itertools
import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jobs.datagen import generate, to_bytes
from schemas.contract import load_contract
from schemas.events import Event, FileQuarantined, LargeFileHandedOff, PartitionIngested
from tests.functions.ingest_support import DAY, NAMES, Ingest, ingest_fixture  # noqa: F401  (fixture)

BASE = generate(40, DAY, seed=41)
CONTRACT = load_contract("transactions")
COLUMNS = CONTRACT.column_names
FORMATS = ("csv", "jsonl", "parquet", "csv.gz")
_names = itertools.count()


def _serialise(fmt: str, table: pa.Table) -> bytes:
    return to_bytes(table, fmt.split(".")[0], compress=fmt.endswith(".gz"))  # type: ignore[arg-type]


@st.composite
def byte_mutations(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(FORMATS))
    data = bytearray(_serialise(fmt, BASE))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(("flip", "delete", "insert", "truncate")))
        if op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos:]
        if not data:
            break
    return fmt, bytes(data)


@st.composite
def column_drops(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(FORMATS))
    dropped = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
    return fmt, _serialise(fmt, BASE.drop_columns(dropped))


@st.composite
def renamed_columns(draw: st.DrawFn) -> tuple[str, bytes]:
    """Headers renamed: to another contract column (a duplicate), to a near miss, or to random text."""
    names = list(COLUMNS)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(names) - 1))
        names[i] = draw(st.sampled_from(COLUMNS) | st.text(min_size=1, max_size=10) | st.just(names[i].upper()))
    fmt = draw(st.sampled_from(("csv", "jsonl", "parquet")))
    return fmt, to_bytes(BASE.rename_columns(names), fmt)  # type: ignore[arg-type]


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


@st.composite
def random_values(draw: st.DrawFn) -> tuple[str, bytes]:
    """Cells replaced by random values of any type, written as JSON Lines or CSV text."""
    rows = BASE.to_pylist()
    for _ in range(draw(st.integers(1, 6))):
        row = draw(st.integers(0, len(rows) - 1))
        rows[row][draw(st.sampled_from(COLUMNS))] = draw(_values)
    if draw(st.booleans()):
        text = "".join(json.dumps(r, default=str) + "\n" for r in rows)
        return "jsonl", text.encode()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows)
    return "csv", out.getvalue().encode()


def _typed_value(column: str) -> st.SearchStrategy[Any]:
    kind = CONTRACT.column(column).type
    if kind.startswith("int"):
        bits = int(kind[3:])
        return st.none() | st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if kind.startswith("float"):
        return st.none() | st.floats(allow_nan=True, allow_infinity=True)
    if kind == "string":
        return st.none() | st.text(max_size=8) | st.sampled_from(["US", "pos", "fuel", "other"])
    return st.none()


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[str, bytes]:
    """Values of the right type but anything else (nulls, out of range, unknown categories, duplicate ids)."""
    rows = BASE.to_pylist()
    for _ in range(draw(st.integers(1, 6))):
        column = draw(st.sampled_from(COLUMNS))
        rows[draw(st.integers(0, len(rows) - 1))][column] = draw(_typed_value(column))
    schema = pa.schema([f.with_nullable(True) for f in CONTRACT.arrow_schema()])
    fmt = draw(st.sampled_from(("parquet", "csv", "jsonl")))
    return fmt, to_bytes(pa.Table.from_pylist(rows, schema=schema), fmt)  # type: ignore[arg-type]


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.one_of(byte_mutations(), column_drops(), renamed_columns(), random_values(), typed_values()))
def test_malformed_files_end_curated_or_quarantined(ingest: Ingest, case: tuple[str, bytes]) -> None:
    fmt, data = case
    put = ingest.put(f"fuzz-{next(_names)}.{fmt}", data)

    response = ingest.invoke(ingest.sqs_event(put))

    assert response["batchItemFailures"] == []
    [terminal] = [e for e in ingest.events.events if e.source.endswith(str(put.version_id)) and _terminal(e)]
    event(
        f"{type(terminal).__name__}: {getattr(terminal, 'reason', 'curated')}"
    )  # shown by --hypothesis-show-statistics
    if isinstance(terminal, FileQuarantined):
        reason = ingest.reason(terminal.quarantine)
        assert reason["reason"] == terminal.reason and reason["detail"]
    else:
        assert isinstance(terminal, PartitionIngested)
        assert terminal.rows_curated + terminal.rows_rejected == terminal.rows_in > 0 and terminal.curated
    # Accounted for in storage: every raw object is curated, quarantined (whole file) or handed off.
    curated = [k for k in ingest.keys("curated") if k.startswith("transactions/_validation/")]
    quarantined = [
        k
        for k in ingest.keys("quarantine")
        if k.endswith("/reason.json")
        and ingest.reason(f"s3://{NAMES.bucket('quarantine')}/{k[:-11]}")["reason"] != "bad_rows"
    ]
    handed_off = [e for e in ingest.events.events if isinstance(e, LargeFileHandedOff)]
    assert len(ingest.keys("raw")) == len(curated) + len(quarantined) + len(handed_off)


def _terminal(event: Event) -> bool:
    """The one event that ends an object's story (a bad_rows FileQuarantined accompanies a curation)."""
    return not (isinstance(event, FileQuarantined) and event.reason == "bad_rows")
