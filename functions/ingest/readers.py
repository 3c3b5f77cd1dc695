"""Bytes of a raw object -> an Arrow table typed by the contract, or a Rejected with a specific reason.

The compressed object (at most the hand-off size) is in memory. A gzip file is first decompressed once
without keeping the output, stopping at the decompressed-size limit (a bomb costs at most the limit); then
CSV and JSON Lines are parsed in blocks from the decompressing stream, Parquet in row-group batches whose
decoded size is counted against the same limit.
Types are imposed while parsing (CSV, the JSON columns seen in the first line) or by a safe cast
(Parquet), so a cell of the wrong type is a `wrong_type` rejection of the whole file.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from schemas.contract import Contract

Format = Literal["csv", "jsonl", "parquet"]
_FORMATS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_JSON_COLUMN_TYPE = re.compile(r"Column\(/[^)]+\) changed from")


class Rejected(Exception):
    """A file that cannot become curated data; `reason` is a stable code, `detail` says what was found."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Limits:
    max_object_bytes: int = 64 << 20  # larger objects go to the batch job
    max_decoded_bytes: int = 512 << 20  # after decompression: the gzip-bomb guard
    block_bytes: int = 4 << 20  # parse block (CSV/JSON) ; Parquet reads row-group batches


def file_format(filename: str) -> tuple[Format, bool]:
    """('csv' | 'jsonl' | 'parquet', gzipped) from the file name; anything else is rejected."""
    name = filename.lower()
    gzipped = name.endswith(".gz")
    stem = name.removesuffix(".gz")
    for suffix, fmt in _FORMATS.items():
        if stem.endswith(suffix):
            return fmt, gzipped
    raise Rejected("unsupported_format", f"{filename!r} is not .csv, .jsonl or .parquet (optionally .gz)")


def _check_gzip(data: bytes, limit: int) -> None:
    """Decompress once without keeping the output, stopping at the limit: a bomb costs `limit` bytes of work."""
    decoded = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
            while chunk := stream.read(1 << 20):
                decoded += len(chunk)
                if decoded > limit:
                    raise Rejected("decompression_limit", f"more than {limit} bytes after decompression")
    except (gzip.BadGzipFile, zlib.error, EOFError) as err:
        raise Rejected("corrupt_gzip", f"gzip stream cannot be decompressed: {err}") from None


def _decoded(data: bytes, gzipped: bool, limits: Limits) -> io.BufferedReader:
    if gzipped:
        _check_gzip(data, limits.max_decoded_bytes)
        return io.BufferedReader(gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"), buffer_size=1 << 20)
    return io.BufferedReader(io.BytesIO(data))


def _peek(stream: io.BufferedReader) -> bytes:
    head = stream.peek(4096)[:4096]
    if not head:
        raise Rejected("empty_file", "the file has no content")
    if head.startswith(_UTF16_BOMS):
        raise Rejected("bad_encoding", "UTF-16 byte-order mark; files must be UTF-8")
    return head


def _csv(stream: BinaryIO, contract: Contract, limits: Limits) -> pa.Table:
    schema = contract.arrow_schema()
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=limits.block_bytes, use_threads=False),
        convert_options=pacsv.ConvertOptions(column_types={f.name: f.type for f in schema}, strings_can_be_null=True),
    )
    table = pa.Table.from_batches(list(reader), schema=reader.schema)
    if table.num_columns == 1 and any(sep in table.column_names[0] for sep in (";", "\t", "|")):
        raise Rejected("wrong_delimiter", f"one column named {table.column_names[0][:80]!r}; the delimiter is ','")
    return table


def _jsonl(stream: BinaryIO, head: bytes, contract: Contract, limits: Limits) -> pa.Table:
    first_line = head.split(b"\n", 1)[0]
    try:
        first = json.loads(first_line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise Rejected("unparseable", f"first line is not JSON: {err}") from None
    if not isinstance(first, dict):
        raise Rejected("unparseable", f"first line is a JSON {type(first).__name__}, not an object")
    # Type the contract's columns that the file has; a column the file lacks must stay missing (not null-filled).
    schema = pa.schema([f for f in contract.arrow_schema() if f.name in first])
    reader = pajson.open_json(
        stream,
        read_options=pajson.ReadOptions(block_size=limits.block_bytes, use_threads=False),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
    )
    return pa.Table.from_batches(list(reader), schema=reader.schema)


def _parquet(stream: BinaryIO, limits: Limits) -> pa.Table:
    data = stream.read()
    parquet = pq.ParquetFile(io.BytesIO(data))
    batches, decoded = [], 0
    for batch in parquet.iter_batches(batch_size=64_000):
        decoded += batch.nbytes
        if decoded > limits.max_decoded_bytes:  # Parquet compresses internally too
            raise Rejected("decompression_limit", f"more than {limits.max_decoded_bytes} bytes decoded")
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=parquet.schema_arrow)


def conform(table: pa.Table, contract: Contract) -> pa.Table:
    """Cast the contract's columns to their declared types (safe casts only); extra columns stay as read."""
    schema = contract.arrow_schema()
    for name in table.column_names:
        if name not in schema.names:
            continue
        wanted = schema.field(name).type
        column = table[name]
        if column.type == wanted:
            continue
        try:
            cast = pc.cast(column, wanted, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise Rejected("wrong_type", f"column {name}: {column.type} cannot be read as {wanted}: {err}") from None
        table = table.set_column(table.schema.get_field_index(name), name, cast)
    return table


def _explain(err: pa.ArrowException, fmt: Format, contract: Contract, limits: Limits) -> Rejected:
    message = str(err)
    if "conversion error" in message or _JSON_COLUMN_TYPE.search(message):
        return Rejected("wrong_type", f"{message} (contract {contract.ref})")
    if "straddles" in message:
        return Rejected("unparseable", f"a row longer than {limits.block_bytes} bytes: {message}")
    if "UTF8" in message or "UTF-8" in message:
        return Rejected("bad_encoding", message)
    if fmt == "parquet":
        return Rejected("corrupt_parquet", message)
    return Rejected("unparseable", message)


def read_table(data: bytes, filename: str, contract: Contract, limits: Limits) -> pa.Table:
    """Parse one raw file; every problem with the bytes is a Rejected with a specific reason."""
    fmt, gzipped = file_format(filename)
    if not data:
        raise Rejected("empty_file", "the object has 0 bytes")
    stream = _decoded(data, gzipped, limits)
    try:
        head = _peek(stream)
        if fmt == "csv":
            table = _csv(stream, contract, limits)
        elif fmt == "jsonl":
            table = _jsonl(stream, head, contract, limits)
        else:
            table = _parquet(stream, limits)
        repeated = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
        if repeated:
            raise Rejected("duplicate_columns", f"column(s) named more than once: {', '.join(repeated)}")
        if table.num_rows == 0:
            raise Rejected("no_rows", f"{table.num_columns} column(s) but no rows")
        return conform(table, contract)
    except Rejected:
        raise
    except pa.ArrowException as err:
        raise _explain(err, fmt, contract, limits) from None
    except OSError as err:  # pyarrow's IO errors on a malformed file (in memory: never a network error)
        raise Rejected("corrupt_parquet" if fmt == "parquet" else "unparseable", str(err)) from None
    except UnicodeDecodeError as err:  # e.g. a Parquet column name that is not UTF-8
        raise Rejected("bad_encoding", f"not UTF-8: {err}") from None
