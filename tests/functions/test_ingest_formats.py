"""One meaning per value whatever the format, and the file-content bugs of issue 16, each through the parse
and validation the handler runs (pure, fast), the handler itself where the outcome's wiring matters."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest.policy import Policy, Verdict, decide
from functions.ingest.readers import BatchReader, Limits, Rejected, read_table
from functions.ingest.scan import scan
from functions.ingest.validation import load_validators
from jobs.datagen import generate, to_bytes
from schemas.contract import Column, Contract, load_contract
from schemas.events import FileQuarantined, PartitionIngested
from tests.functions.ingest_support import DAY, Ingest, ingest_fixture  # noqa: F401  (fixture)

CONTRACT = load_contract("transactions")
VALIDATOR = load_validators(["transactions"], warm=False)["transactions"]
LIMITS = Limits()
FORMATS = ("csv", "jsonl", "parquet")


def _outcome(
    data: bytes, filename: str, contract: Contract = CONTRACT, limits: Limits = LIMITS
) -> tuple[str, Verdict | None, pa.Table | None]:
    """What the handler decides for these bytes: (reason, verdict, table), without the cloud."""
    try:
        table = read_table(data, filename, contract, limits)
    except Rejected as err:
        return err.reason, None, None
    summary, _ = VALIDATOR.validate(table)
    verdict = decide(summary, Policy(max_bad_row_share=0.5))
    return verdict.reason, verdict, table


def _set(table: pa.Table, column: str, rows: list[int], value: Any) -> pa.Table:
    values = table[column].to_pylist()
    for row in rows:
        values[row] = value
    field = table.schema.field(column).with_nullable(True)
    return table.set_column(table.schema.get_field_index(column), field, pa.array(values, field.type))


# --- same data, same outcome -------------------------------------------------------------------------------

CELLS = st.sampled_from(
    [
        ("transaction_id", None), ("transaction_id", ""), ("transaction_id", "NA"), ("transaction_id", "null"),
        ("hour", None), ("amount", None), ("is_fraud", None), ("customer_tenure_days", None),
        ("channel", None), ("channel", ""), ("channel", "NA"), ("device_age_days", None), ("event_time", None),
    ]
)  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), edits=st.lists(st.tuples(st.integers(0, 29), CELLS), max_size=6))
def test_one_table_has_the_same_outcome_row_by_row_in_every_format(seed: int, edits: list[Any]) -> None:
    table = generate(30, DAY, seed=seed)
    for row, (column, value) in edits:
        table = _set(table, column, [row], value)

    outcomes = {}
    for fmt in FORMATS:
        reason, verdict, _read = _outcome(to_bytes(table, fmt), f"f.{fmt}")  # type: ignore[arg-type]
        outcomes[fmt] = (reason, sorted(verdict.bad_rows) if verdict else None)

    assert outcomes["csv"] == outcomes["jsonl"] == outcomes["parquet"], outcomes


SMALL_BATCHES = Limits(block_bytes=1024)  # a few rows a batch: every file below is read in several


def _streamed(data: bytes, filename: str, tmp: Path) -> tuple[str, list[int], list[str]]:
    """What the handler's streaming path decides: (reason, rows a split quarantines, curated ids in order)."""
    try:
        scanned = scan(data, filename, VALIDATOR, SMALL_BATCHES, Policy(max_bad_row_share=0.5), DAY, tmp)
    except Rejected as err:
        return err.reason, [], []
    ids = [] if scanned.staged is None else [
        i for _, path in scanned.staged.curated for i in pq.read_table(path)["transaction_id"].to_pylist()
    ]  # fmt: skip
    return scanned.verdict.reason, sorted(scanned.verdict.bad_rows), ids


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 1000),
    edits=st.lists(st.tuples(st.integers(0, 39), CELLS), max_size=6),
    repeats=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=2),
)
def test_a_file_read_in_many_batches_has_the_whole_tables_outcome_in_every_format(
    seed: int, edits: list[Any], repeats: list[tuple[int, int]]
) -> None:
    """Batch by batch, as the handler reads, with ids repeated across batches (uniqueness is whole-file):
    the same reason, the same bad rows and the same curated rows as the whole table, whatever the format."""
    table = pa.concat_tables([generate(25, DAY, seed=seed), generate(15, DAY.replace(day=3), seed=seed + 1)])
    for row, (column, value) in edits:
        table = _set(table, column, [row], value)
    for source, target in repeats:
        table = _set(table, "transaction_id", [target], table["transaction_id"][source].as_py())

    outcomes = {}
    for fmt in FORMATS:
        data = to_bytes(table, fmt)  # type: ignore[arg-type]
        assert len(list(BatchReader(data, f"f.{fmt}", CONTRACT, SMALL_BATCHES))) > 2, fmt
        with tempfile.TemporaryDirectory() as tmp:
            outcomes[fmt] = _streamed(data, f"f.{fmt}", Path(tmp))
        reason, verdict, read = _outcome(data, f"f.{fmt}")
        whole_ids = [] if read is None or verdict is None or verdict.action == "reject" else [
            v for i, v in enumerate(read["transaction_id"].to_pylist()) if i not in verdict.bad_rows
        ]  # fmt: skip
        assert outcomes[fmt][:2] == (reason, sorted(verdict.bad_rows) if verdict else []), fmt
        assert sorted(outcomes[fmt][2], key=str) == sorted(whole_ids, key=str), fmt

    assert outcomes["csv"] == outcomes["jsonl"] == outcomes["parquet"], outcomes


def test_only_a_repeated_id_costs_a_second_read(tmp_path: Path) -> None:
    table = generate(40, DAY, seed=21)
    policy = Policy(max_bad_row_share=0.5)
    within = _set(table, "transaction_id", [1], table["transaction_id"][0].as_py())
    across = _set(table, "transaction_id", [39], table["transaction_id"][0].as_py())

    clean = scan(to_bytes(table, "csv"), "f.csv", VALIDATOR, SMALL_BATCHES, policy, DAY, tmp_path / "a")
    near = scan(to_bytes(within, "csv"), "f.csv", VALIDATOR, SMALL_BATCHES, policy, DAY, tmp_path / "b")
    far = scan(to_bytes(across, "csv"), "f.csv", VALIDATOR, SMALL_BATCHES, policy, DAY, tmp_path / "c")

    assert (clean.reads, clean.verdict.reason) == (1, "valid")
    assert (near.verdict.bad_rows, far.verdict.bad_rows) == ({0, 1}, {0, 39})
    assert near.reads == far.reads == 2 and far.staged is not None and far.staged.rows_curated == 38
    assert [r["_source_row"] for r in far.sample] == [0, 39]


def test_empty_and_null_ids_are_missing_and_na_is_a_string_in_every_format() -> None:
    table = _set(_set(_set(generate(30, DAY, seed=1), "transaction_id", [3], ""), "transaction_id", [5], None),
                 "transaction_id", [7], "NA")  # fmt: skip
    for fmt in FORMATS:
        reason, verdict, read = _outcome(to_bytes(table, fmt), f"f.{fmt}")  # type: ignore[arg-type]
        assert reason == "bad_rows" and verdict is not None and verdict.bad_rows == {3, 5}, fmt
        assert read is not None and read["transaction_id"][7].as_py() == "NA"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_timestamp_without_a_zone_is_wrong_type_in_every_format(fmt: str) -> None:
    table = generate(10, DAY, seed=2)
    naive = table.set_column(1, "event_time", table["event_time"].cast(pa.timestamp("us")))
    assert _outcome(to_bytes(naive, fmt), f"f.{fmt}")[0] == "wrong_type"  # type: ignore[arg-type]


# --- the bugs of issue 16 ----------------------------------------------------------------------------------


def test_an_invalid_surrogate_in_jsonl_is_bad_encoding(ingest: Ingest) -> None:
    lines = to_bytes(generate(20, DAY, seed=3), "jsonl").split(b"\n")
    lines[4] = lines[4].replace(b'"channel": "', b'"channel": "\xed\xa0\x80', 1)
    put = ingest.put("surrogate.jsonl", b"\n".join(lines))

    assert ingest.invoke(ingest.sqs_event(put))["batchItemFailures"] == []

    [event] = ingest.events.events
    assert isinstance(event, FileQuarantined) and event.reason == "bad_encoding"


@pytest.mark.parametrize("index", ["unnamed", "named"])
def test_parquet_index_columns_are_undeclared_columns(index: str) -> None:
    frame = generate(10, DAY, seed=4).to_pandas()
    if index == "unnamed":
        frame.index = pd.Index([7, 3, 9, 1, 0, 2, 8, 6, 5, 4])  # stored as __index_level_0__
    else:
        frame = frame.assign(ssn=[f"{i:09d}" for i in range(10)]).set_index("ssn")
    sink = io.BytesIO()
    frame.to_parquet(sink)

    reason, _, _ = _outcome(sink.getvalue(), "indexed.parquet")

    assert reason == "schema_mismatch"


def _with_unit(unit: str) -> Contract:
    columns = tuple(c.model_copy(update={"unit": unit}) if c.name == "event_time" else c for c in CONTRACT.columns)
    return CONTRACT.model_copy(update={"columns": columns})


@pytest.mark.parametrize("fmt", FORMATS)
def test_epoch_integers_in_a_timestamp_column_need_a_declared_unit(fmt: str) -> None:
    table = generate(10, DAY, seed=5)
    seconds = pa.array([int(v.timestamp()) for v in table["event_time"].to_pylist()], pa.int64())
    epoch = table.set_column(1, "event_time", seconds)

    assert _outcome(to_bytes(epoch, fmt), f"f.{fmt}")[0] == "wrong_type"  # type: ignore[arg-type]
    read = read_table(to_bytes(epoch, fmt), f"f.{fmt}", _with_unit("s"), LIMITS)  # type: ignore[arg-type]
    assert read["event_time"].to_pylist() == [v.replace(microsecond=0) for v in table["event_time"].to_pylist()]


def test_a_unit_is_only_for_timestamps() -> None:
    with pytest.raises(ValueError, match="unit applies to timestamp columns only"):
        Column(name="hour", type="int32", role="feature", unit="s")


@pytest.mark.parametrize("column", ["transaction_id", "event_time", "amount", "channel", "hour", "is_fraud"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_null_in_a_required_column_splits_the_file_in_every_type(column: str, fmt: str) -> None:
    table = _set(generate(40, DAY, seed=6), column, [11], None)

    reason, verdict, _ = _outcome(to_bytes(table, fmt), f"f.{fmt}")  # type: ignore[arg-type]

    assert reason == "bad_rows" and verdict is not None and verdict.bad_rows == {11}


def test_jsonl_nulls_and_missing_keys_in_later_lines_are_rows_not_a_broken_file() -> None:
    records = generate(3000, DAY, seed=7).to_pylist()
    lines = [json.dumps(r, default=str) for r in records]
    late = dict(records[2500])
    del late["device_age_days"]  # an optional key left out, far beyond the first parse block
    lines[2500] = json.dumps(late, default=str)
    lines[2600] = json.dumps({**records[2600], "distance_from_home_km": None}, default=str)
    first = dict(records[0])
    del first["distance_from_home_km"]  # missing from the first line, null through the first parse block
    lines[0] = json.dumps(first, default=str)
    for i in range(1, 200):
        lines[i] = json.dumps({**records[i], "distance_from_home_km": None}, default=str)
    data = ("\n".join(lines) + "\n").encode()

    reason, _verdict, read = _outcome(data, "late.jsonl", limits=Limits(block_bytes=64 << 10))

    assert reason == "valid" and read is not None and read.num_rows == 3000
    assert read["device_age_days"][2500].as_py() is None and read["distance_from_home_km"][0].as_py() is None


def test_jsonl_keys_are_judged_over_the_whole_file_when_read_in_batches(tmp_path: Path) -> None:
    """A key left out of every line is missing (schema_mismatch); one named only in a late batch is a column."""
    records = generate(40, DAY, seed=20).to_pylist()
    without = [{k: v for k, v in r.items() if k != "device_age_days"} for r in records]
    late = [*without[:35], *records[35:]]
    as_bytes = lambda rows: ("\n".join(json.dumps(r, default=str) for r in rows) + "\n").encode()  # noqa: E731

    assert _streamed(as_bytes(without), "f.jsonl", tmp_path / "a")[0] == "schema_mismatch"
    reason, _, ids = _streamed(as_bytes(late), "f.jsonl", tmp_path / "b")
    assert reason == "valid" and len(ids) == 40
    assert len(list(BatchReader(as_bytes(late), "f.jsonl", CONTRACT, SMALL_BATCHES))) > 5


def test_jsonl_whose_first_record_is_over_4_kib_parses() -> None:
    records = generate(5, DAY, seed=8).to_pylist()
    records[0]["transaction_id"] = "x" * 6000
    data = "\n".join(json.dumps(r, default=str) for r in records).encode()

    assert _outcome(data, "wide.jsonl")[0] == "valid"


def test_jsonl_missing_a_column_in_every_line_is_a_schema_mismatch() -> None:
    table = generate(10, DAY, seed=9).drop_columns(["device_age_days"])
    assert _outcome(to_bytes(table, "jsonl"), "f.jsonl")[0] == "schema_mismatch"
    assert _outcome(to_bytes(generate(10, DAY, seed=9), "jsonl"), "f.jsonl")[0] == "valid"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_latin_1_or_invalid_utf8_is_bad_encoding(fmt: str) -> None:
    table = generate(20, DAY, seed=10)
    text = to_bytes(table, fmt)  # type: ignore[arg-type]
    latin = text.decode().replace("grocery", "épicerie").replace("restaurants", "épicerie").encode("latin-1")

    assert _outcome(latin, f"f.{fmt}")[0] == "bad_encoding"
    assert _outcome(gzip.compress(latin), f"f.{fmt}.gz")[0] == "bad_encoding"


def test_a_duplicated_csv_column_is_named_whatever_its_values() -> None:
    header, rest = to_bytes(generate(10, DAY, seed=11), "csv").split(b"\n", 1)
    # "hour" again, in place of "channel" (strings in an integer column): not a wrong_type
    data = header.replace(b'"channel"', b'"hour"') + b"\n" + rest

    with pytest.raises(Rejected) as err:
        read_table(data, "dup.csv", CONTRACT, LIMITS)

    assert err.value.reason == "duplicate_columns" and "'hour'" in err.value.detail


def test_wide_headers_are_checked_in_linear_time_against_the_contract_limit() -> None:
    names = [f"c{i}" for i in range(200_000)]
    wide = (",".join(names) + "\n" + ",".join("1" for _ in names) + "\n").encode()
    with pytest.raises(Rejected, match="too_many_columns: 200000 columns; the contract allows at most 1000"):
        read_table(wide, "wide.csv", CONTRACT, LIMITS)
    roomy = CONTRACT.model_copy(update={"limits": CONTRACT.limits.model_copy(update={"max_columns": 300_000})})
    repeated = (",".join(names + names[:3]) + "\n").encode()
    with pytest.raises(Rejected, match="duplicate_columns: the header names 'c0', 'c1', 'c2' more than once"):
        read_table(repeated, "wide.csv", roomy, LIMITS)


def test_an_integer_id_cell_is_the_same_in_csv_and_parquet() -> None:
    """A CSV cell that looks like a number is still a string where the contract says string."""
    table = _set(generate(10, DAY, seed=12), "transaction_id", [2], "0012")
    for fmt in FORMATS:
        _, _, read = _outcome(to_bytes(table, fmt), f"f.{fmt}")  # type: ignore[arg-type]
        assert read is not None and read["transaction_id"][2].as_py() == "0012", fmt


# --- keys: every object under raw gets an outcome, quarantine keys stay under 1,024 bytes ---------------------


@pytest.mark.parametrize(
    "name,status",
    [("UPPER.CSV", "curated"), ("Mixed.Parquet", "curated"), ("data.JSONL.GZ", "curated"),
     ("data.json", "quarantined"), ("data.gz", "quarantined"), ("no-extension", "quarantined")],
)  # fmt: skip
def test_every_suffix_and_case_gets_an_outcome(ingest: Ingest, name: str, status: str) -> None:
    table = generate(20, DAY, seed=13)
    fmt = name.lower().removesuffix(".gz").rsplit(".", 1)[-1]
    data = to_bytes(table, fmt if fmt in FORMATS else "csv", name.lower().endswith(".gz"))  # type: ignore[arg-type]
    put = ingest.put(name, data)

    assert ingest.invoke(ingest.sqs_event(put))["batchItemFailures"] == []

    [commit] = ingest.commits()
    assert commit["outcome"]["status"] == status
    if status == "quarantined":
        assert commit["outcome"]["reason"] == "unsupported_format"


@pytest.mark.parametrize("prefix", ["raw/transactions/2026/11/02/", "raw/", "elsewhere/"])
def test_quarantine_keys_stay_under_s3s_limit_for_the_longest_raw_keys(ingest: Ingest, prefix: str) -> None:
    key = prefix + "é" * ((1024 - len(prefix) - len(".xlsx")) // 2) + ".xlsx"  # 1,023 bytes: S3 accepts it
    assert len(key.encode()) <= 1024
    put = ingest.put("", b"not a table", key=key)

    assert ingest.invoke(ingest.sqs_event(put))["batchItemFailures"] == []

    [event] = ingest.events.events
    assert isinstance(event, FileQuarantined)
    assert all(len(k.encode()) <= 1024 for k in ingest.keys("quarantine"))
    assert ingest.reason(event.quarantine)["key"] == key


# --- versions of a key, identical bytes --------------------------------------------------------------------


def test_a_new_version_supersedes_the_old_rows_and_identical_bytes_count_once(ingest: Ingest) -> None:
    first, second = generate(350, DAY, seed=14), generate(150, DAY, seed=15)
    v1 = ingest.put("daily.csv", to_bytes(first, "csv"))
    ingest.invoke(ingest.sqs_event(v1))
    v2 = ingest.put("daily.csv", to_bytes(second, "csv"))
    ingest.invoke(ingest.sqs_event(v2))

    assert sorted(ingest.curated_frame()["transaction_id"]) == sorted(second["transaction_id"].to_pylist())

    again = ingest.put("daily.csv", to_bytes(second, "csv"))  # the same bytes re-uploaded: a third version
    copy = ingest.put("copy-of-daily.csv", to_bytes(second, "csv"))  # and under another name
    ingest.invoke(ingest.sqs_event(again, copy))

    assert len(ingest.curated_frame()) == 150
    assert {c["source"]["version_id"] for c in ingest.commits()} == {v.version_id for v in (v1, v2, again, copy)}
    assert len([e for e in ingest.events.events if isinstance(e, PartitionIngested)]) == 4  # each has an outcome


def test_a_quarantined_new_version_leaves_its_key_without_rows(ingest: Ingest) -> None:
    ingest.invoke(ingest.sqs_event(ingest.put("daily.csv", to_bytes(generate(50, DAY, seed=16), "csv"))))
    bad = to_bytes(generate(50, DAY, seed=17).drop_columns(["amount"]), "csv")
    ingest.invoke(ingest.sqs_event(ingest.put("daily.csv", bad)))
    ingest.invoke(ingest.sqs_event(ingest.put("other.csv", to_bytes(generate(20, DAY, seed=18), "csv"))))

    assert len(ingest.curated_frame()) == 20


def test_parquet_metadata_of_pandas_is_not_carried_into_validation() -> None:
    frame = generate(10, DAY, seed=19).to_pandas()
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    assert _outcome(sink.getvalue(), "plain.parquet")[0] == "valid"
