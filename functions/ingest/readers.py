"""Bytes of a raw object -> Arrow batches typed by the contract, or a Rejected with a specific reason.

The compressed object (at most the hand-off size) is in memory; what is decoded from it is yielded a batch at
a time (BatchReader), never held whole. A gzip file is first decompressed once without keeping the output,
stopping at the decompressed-size limit (a bomb costs at most the limit); then CSV and JSON Lines are parsed
in blocks of `block_bytes` from the decompressing stream, Parquet in row-group batches of about as many
decoded bytes, counted against the same limit.
Types are imposed while parsing (CSV, JSON with the contract's full schema) or by a safe cast (Parquet),
so a cell of the wrong type is a `wrong_type` rejection of the whole file.

One meaning per value, whatever the format:
- null is a missing value; so is an empty string (a CSV cannot tell them apart); "NA", "null" are strings;
- a timestamp needs a zone (or offset): a naive one is `wrong_type`, as is an integer, unless the contract
  declares the column's epoch `unit`;
- a Parquet file's columns are its Arrow schema as stored (pandas index columns included);
- strings must be valid UTF-8 (`bad_encoding`), whichever reader produced them.
The CSV header is checked before parsing: more columns than the contract's `limits.max_columns` is
`too_many_columns`, a repeated name is `duplicate_columns` (both linear in the header's length).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import re
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from schemas.contract import Column, Contract

Format = Literal["csv", "jsonl", "parquet"]
_FORMATS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_JSON_COLUMN_TYPE = re.compile(r"Column\(/[^)]+\) changed from")
_MAX_HEADER_BYTES = 16 << 20


class Rejected(Exception):
    """A file that cannot become curated data; `reason` is a stable code, `detail` says what was found."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Limits:
    max_object_bytes: int = 64 << 20  # larger objects go to the batch job (the function: settings.handoff_bytes)
    max_decoded_bytes: int = 512 << 20  # after decompression: the gzip-bomb guard
    block_bytes: int = 4 << 20  # the batch: a CSV/JSON parse block; Parquet batches of about as many decoded bytes


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


def _check_columns(names: list[str], contract: Contract) -> None:
    """Linear: one pass to count, one over the repeated names."""
    limit = contract.limits.max_columns
    if len(names) > limit:
        raise Rejected("too_many_columns", f"{len(names)} columns; the contract allows at most {limit}")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        shown = ", ".join(repr(n) for n in repeated[:10]) + (
            f" and {len(repeated) - 10} more" if len(repeated) > 10 else ""
        )
        raise Rejected("duplicate_columns", f"the header names {shown} more than once")


def _csv_header(data: bytes, gzipped: bool, limits: Limits) -> list[str]:
    """The header's column names, read apart from the parse (a header can be longer than any peek)."""
    stream = _decoded(data, gzipped, limits)
    line = stream.readline(_MAX_HEADER_BYTES)
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise Rejected("bad_encoding", f"the header is not UTF-8: {err}") from None
    return next(csv.reader([text.rstrip("\r\n")]), [])


def _read_type(column: Column, wanted: pa.DataType) -> pa.DataType:
    """The type a text format is parsed as: epoch numbers as integers (conform converts them by `unit`)."""
    return pa.int64() if column.type == "timestamp" and column.unit else wanted


def _csv(stream: BinaryIO, contract: Contract, limits: Limits) -> Iterator[pa.Table]:
    schema = contract.arrow_schema()
    types = {c.name: _read_type(c, schema.field(c.name).type) for c in contract.columns}
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=limits.block_bytes, use_threads=True),
        convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True),
    )
    names = reader.schema.names
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        raise Rejected("wrong_delimiter", f"one column named {names[0][:80]!r}; the delimiter is ','")
    for batch in reader:
        yield pa.Table.from_batches([batch])


def _jsonl(stream: BinaryIO, contract: Contract, limits: Limits) -> Iterator[pa.Table]:
    """Every line against the contract's whole schema; a key it does not declare is a schema mismatch.
    Timestamps are read as text and converted by `conform`, which rejects a missing zone as CSV does."""
    schema = pa.schema(
        [
            pa.field(c.name, pa.string() if c.type == "timestamp" and not c.unit else _read_type(c, f.type))
            for c, f in zip(contract.columns, contract.arrow_schema(), strict=True)
        ]
    )
    reader = pajson.open_json(
        stream,
        read_options=pajson.ReadOptions(block_size=limits.block_bytes, use_threads=True),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])


def _absent_keys(names: list[str], stream: BinaryIO) -> list[str]:
    """Of `names` (columns null in every line), those no line names: missing from the file, not null.
    One streamed pass over the lines (bounded by a line): a substring test, a JSON parse only on a hit."""
    needles = {name: json.dumps(name).encode() for name in names}
    absent = set(names)
    for line in stream:
        for name in [n for n in absent if needles[n] in line]:
            if name in _object(line):
                absent.discard(name)
        if not absent:
            break
    return [n for n in names if n in absent]


def _object(line: bytes) -> dict[str, object]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parquet(stream: BinaryIO, data: bytes, gzipped: bool, contract: Contract, limits: Limits) -> Iterator[pa.Table]:
    """Row-group batches of about `block_bytes` decoded; the object stays the only copy of the file (a gzipped
    one is decompressed to a temporary file, Parquet needs random access)."""
    with contextlib.ExitStack() as stack:
        if gzipped:
            spool = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(stream, spool, 1 << 20)
            spool.seek(0)
            source: Any = spool
        else:
            source = pa.BufferReader(data)
        parquet = pq.ParquetFile(source)
        schema = parquet.schema_arrow  # as stored: pandas index columns are columns here
        _check_columns(schema.names, contract)
        meta = parquet.metadata
        row_bytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) / max(1, meta.num_rows)
        decoded = 0
        for batch in parquet.iter_batches(batch_size=max(1, int(limits.block_bytes / max(1.0, row_bytes)))):
            decoded += batch.nbytes
            if decoded > limits.max_decoded_bytes:  # Parquet compresses internally too
                raise Rejected("decompression_limit", f"more than {limits.max_decoded_bytes} bytes decoded")
            yield pa.Table.from_batches([batch], schema=schema).replace_schema_metadata(None)


def _timestamp(name: str, column: pa.ChunkedArray, spec: Column, wanted: pa.DataType) -> pa.ChunkedArray:
    found = column.type
    if pa.types.is_integer(found):
        if spec.unit is None:
            raise Rejected(
                "wrong_type",
                f"column {name}: integers where the contract expects timestamps; declare the epoch `unit` to accept"
                " them",
            )
        return pc.cast(pc.cast(column, pa.int64()).cast(pa.timestamp(spec.unit, tz="UTC")), wanted, safe=True)
    if pa.types.is_timestamp(found) and found.tz is None:
        raise Rejected("wrong_type", f"column {name}: timestamps without a time zone; the contract's are UTC instants")
    return pc.cast(column, wanted, safe=True)


def conform(table: pa.Table, contract: Contract) -> pa.Table:
    """Cast the contract's columns to their declared types (safe casts only); extra columns stay as read.
    Empty strings become nulls in every format."""
    schema = contract.arrow_schema()
    for name in table.column_names:
        if name not in schema.names:
            continue
        wanted, spec, column = schema.field(name).type, contract.column(name), table[name]
        try:
            if spec.type == "timestamp":
                column = _timestamp(name, column, spec, wanted)
            elif column.type != wanted:
                column = pc.cast(column, wanted, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise Rejected(
                "wrong_type", f"column {name}: {table[name].type} cannot be read as {wanted}: {err}"
            ) from None
        if pa.types.is_string(wanted):
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, wanted), column)
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def _explain(err: pa.ArrowException, fmt: Format, contract: Contract, limits: Limits) -> Rejected:
    message = str(err)
    if "UTF8" in message or "UTF-8" in message:
        return Rejected("bad_encoding", message)
    if "unexpected field" in message:
        return Rejected("schema_mismatch", f"a line has a key the contract does not declare: {message}")
    if "conversion error" in message or _JSON_COLUMN_TYPE.search(message):
        return Rejected("wrong_type", f"{message} (contract {contract.ref})")
    if "straddles" in message:
        return Rejected("unparseable", f"a row longer than {limits.block_bytes} bytes: {message}")
    if fmt == "parquet":
        return Rejected("corrupt_parquet", message)
    return Rejected("unparseable", message)


class BatchReader:
    """One raw file as a stream of typed Arrow tables (conformed to the contract), each about `block_bytes`.

    Iterate once; every problem with the bytes is a Rejected with a specific reason, raised when it is met (a
    cell of the wrong type in the last block rejects the file there). Whole-file checks stay whole-file: the
    header (column count, repeated names) before the first batch, `no_rows` at the end, and `columns`, final
    once the iteration ends: the file's columns, without the JSON Lines keys that no line names.
    """

    def __init__(self, data: bytes, filename: str, contract: Contract, limits: Limits) -> None:
        self.data, self.contract, self.limits = data, contract, limits
        self.fmt, self.gzipped = file_format(filename)
        self.columns: list[str] = []
        self.rows = 0

    def __iter__(self) -> Iterator[pa.Table]:
        fmt, contract, limits = self.fmt, self.contract, self.limits
        if not self.data:
            raise Rejected("empty_file", "the object has 0 bytes")
        stream = _decoded(self.data, self.gzipped, limits)
        try:
            _peek(stream)
            if fmt == "csv":
                self.columns = _csv_header(self.data, self.gzipped, limits)
                _check_columns(self.columns, contract)
                batches = _csv(stream, contract, limits)
            elif fmt == "jsonl":
                batches = _jsonl(stream, contract, limits)
            else:
                batches = _parquet(stream, self.data, self.gzipped, contract, limits)
            all_null: set[str] | None = None
            for table in batches:
                if all_null is None:
                    _check_columns(table.column_names, contract)
                    self.columns = table.column_names
                    all_null = set(self.columns)
                if fmt != "csv":  # the CSV reader checks UTF-8 as it parses; the JSON and Parquet readers do not
                    for column in table.columns:
                        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                            column.validate(full=True)
                all_null -= {name for name in all_null if table[name].null_count < table.num_rows}
                self.rows += table.num_rows
                yield conform(table, contract)
            if self.rows == 0:
                raise Rejected("no_rows", f"{len(self.columns)} column(s) but no rows")
            if fmt == "jsonl" and all_null:
                nulls = [n for n in self.columns if n in all_null]
                absent = _absent_keys(nulls, _decoded(self.data, self.gzipped, limits))
                self.columns = [n for n in self.columns if n not in absent]
        except Rejected:
            raise
        except pa.ArrowException as err:
            raise _explain(err, fmt, contract, limits) from None
        except OSError as err:  # pyarrow's IO errors on a malformed file (in memory: never a network error)
            raise Rejected("corrupt_parquet" if fmt == "parquet" else "unparseable", str(err)) from None
        except UnicodeDecodeError as err:  # e.g. a Parquet column name that is not UTF-8
            raise Rejected("bad_encoding", f"not UTF-8: {err}") from None


def read_table(data: bytes, filename: str, contract: Contract, limits: Limits) -> pa.Table:
    """The whole file as one table (tests and benchmarks; the function streams BatchReader's batches)."""
    reader = BatchReader(data, filename, contract, limits)
    batches = list(reader)
    return pa.concat_tables(batches).select(reader.columns)
