"""Raw bytes -> typed Arrow table or a specific rejection; no cloud involved."""

from __future__ import annotations

import datetime as dt
import gzip

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.ingest.readers import Limits, Rejected, file_format, read_table
from jobs.datagen import BAD_FILE_KINDS, BadFileKind, bad_file, generate, to_bytes
from schemas.contract import load_contract

CONTRACT = load_contract("transactions")
DAY = dt.date(2026, 11, 2)
TABLE = generate(500, DAY, seed=1)

# What the reader alone decides; missing/extra columns parse fine and are the validation gate's to reject.
READER_REASON: dict[BadFileKind, str | None] = {
    "empty": "empty_file",
    "header_only": "no_rows",
    "wrong_delimiter": "wrong_delimiter",
    "bad_encoding": "bad_encoding",
    "truncated_gzip": "corrupt_gzip",
    "corrupt_parquet": "corrupt_parquet",
    "missing_column": None,
    "extra_column": None,
    "wrong_type": "wrong_type",
    "decompression_bomb": "decompression_limit",
    "not_tabular": "unparseable",
}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("gz", [False, True])
def test_every_format_reads_back_the_contract_types(fmt: str, gz: bool) -> None:
    name = f"f.{fmt}" + (".gz" if gz else "")
    table = read_table(to_bytes(TABLE, fmt, gz), name, CONTRACT, Limits())  # type: ignore[arg-type]
    assert [f.type for f in table.schema] == [f.type for f in CONTRACT.arrow_schema()]
    assert table.to_pylist() == TABLE.to_pylist()


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_bad_files(kind: BadFileKind) -> None:
    suffix, data = bad_file(kind, DAY, seed=2, bomb_mib=16)
    expected = READER_REASON[kind]
    if expected is None:
        assert read_table(data, f"x{suffix}", CONTRACT, Limits(max_decoded_bytes=8 << 20)).num_rows == 50
        return
    with pytest.raises(Rejected) as caught:
        read_table(data, f"x{suffix}", CONTRACT, Limits(max_decoded_bytes=8 << 20))
    assert caught.value.reason == expected and caught.value.detail


def test_bomb_is_stopped_at_the_limit_not_after_inflating() -> None:
    bomb = gzip.compress(b"a,b\n" + b"0" * (64 << 20), mtime=0)
    with pytest.raises(Rejected, match="decompression_limit"):
        read_table(bomb, "x.csv.gz", CONTRACT, Limits(max_decoded_bytes=1 << 20))


def test_parquet_with_a_castable_type_is_conformed_and_an_uncastable_one_rejected() -> None:
    as_int64 = TABLE.set_column(TABLE.schema.get_field_index("hour"), "hour", TABLE["hour"].cast(pa.int64()))
    assert read_table(to_bytes(as_int64, "parquet"), "x.parquet", CONTRACT, Limits())["hour"].type == pa.int32()
    as_text = TABLE.set_column(2, "amount", pa.array(["twelve"] * TABLE.num_rows))
    with pytest.raises(Rejected, match="wrong_type: column amount"):
        read_table(to_bytes(as_text, "parquet"), "x.parquet", CONTRACT, Limits())


@pytest.mark.parametrize("name", ["x.xlsx", "x.csv.zip", "x", "x.gz"])
def test_unsupported_formats(name: str) -> None:
    with pytest.raises(Rejected, match="unsupported_format"):
        file_format(name)


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=2048),
    fmt=st.sampled_from(["x.csv", "x.jsonl", "x.parquet", "x.csv.gz"]),
    block=st.sampled_from([256, 1 << 20]),  # small: the bytes are read in several batches
)
def test_arbitrary_bytes_either_parse_or_are_rejected(data: bytes, fmt: str, block: int) -> None:
    try:
        table = read_table(data, fmt, CONTRACT, Limits(max_decoded_bytes=1 << 20, block_bytes=block))
    except Rejected as err:
        assert err.reason and err.detail
    else:
        assert table.num_rows > 0


def test_duplicate_column_names_and_non_utf8_names_are_rejected() -> None:
    header, rest = to_bytes(TABLE, "csv").split(b"\n", 1)
    with pytest.raises(Rejected, match=r"duplicate_columns: .*'transaction_id' more than once"):
        read_table(header.replace(b'"amount"', b'"transaction_id"') + b"\n" + rest, "x.csv", CONTRACT, Limits())
    with pytest.raises(Rejected, match="bad_encoding"):
        read_table(header.replace(b'"is_fraud"', b'"is_fraud\xff"') + b"\n" + rest, "x.csv", CONTRACT, Limits())
