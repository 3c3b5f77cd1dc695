"""Seeded generator of `transactions` data, with knobs for the shifts and faults the platform must handle.

Rows are drawn label-first: y ~ Bernoulli(fraud_rate), then x | y. That makes each knob mean what the
literature means (Huyen, ch. 8):
- covariate shift: P(x) moves (a feature's values move by `k` of its standard deviations, or a category
  gains `pp` percentage points), the same way for both classes;
- label shift: P(y) moves (`fraud_rate`), P(x | y) stays;
- concept shift: P(y | x) moves: a share `concept` of fraud takes a new pattern (card-present, small
  amounts, near home) instead of the usual one (online, large, far away).
A share of the usual fraud (CAMOUFLAGED_FRAUD) looks exactly like legitimate traffic, so no model can
separate the classes perfectly (validation AUC lands near 0.85, not 1.0, as on a real fraud set).
Tables always satisfy the `transactions` contract; bad rows and bad files are injected on purpose.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from schemas.contract import Contract, load_contract

FileFormat = Literal["csv", "jsonl", "parquet"]
CAMOUFLAGED_FRAUD = 0.3  # share of the usual fraud drawn from the legitimate distributions
MERCHANTS = ("grocery", "restaurants", "travel", "electronics", "fashion", "fuel", "entertainment", "health",
             "digital_goods", "other")  # fmt: skip
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "BR", "IN", "JP", "AU", "MX", "NG", "other")
CHANNELS = ("pos", "online", "mobile", "atm")
_P_MERCHANT = {
    0: (0.24, 0.18, 0.05, 0.06, 0.09, 0.14, 0.07, 0.07, 0.05, 0.05),
    1: (0.05, 0.05, 0.15, 0.25, 0.10, 0.04, 0.06, 0.02, 0.23, 0.05),
}
_P_COUNTRY = {
    0: (0.55, 0.08, 0.06, 0.05, 0.03, 0.03, 0.02, 0.05, 0.03, 0.03, 0.02, 0.02, 0.01, 0.005, 0.015),
    1: (0.30, 0.05, 0.04, 0.04, 0.03, 0.02, 0.03, 0.03, 0.09, 0.07, 0.02, 0.02, 0.06, 0.08, 0.12),
}
_P_CHANNEL = {0: (0.55, 0.25, 0.15, 0.05), 1: (0.10, 0.55, 0.30, 0.05)}
_P_CHANNEL_NEW_FRAUD = (0.80, 0.05, 0.05, 0.10)
_P_HOUR_LEGIT = np.exp(-0.5 * ((np.arange(24) - 14.0) / 4.5) ** 2)
_P_HOUR_FRAUD = 0.5 / 24 + 0.5 * np.exp(-0.5 * ((np.arange(24) - 2.0) / 3.0) ** 2)


@dataclass(frozen=True)
class Shift:
    """What differs from the reference distribution. The default is no shift at all."""

    # numerical column -> shift in std units; values are then clipped to the contract range, so a shift
    # that pushes many values past a bound (e.g. amount below 0) moves the mean by less than asked.
    covariate: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # column -> {category: +pp}
    fraud_rate: float = 0.02  # P(y = 1): label shift
    concept: float = 0.0  # share of fraud drawn from the new pattern: concept shift

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraud_rate <= 1.0:
            raise ValueError(f"fraud_rate must be in [0, 1], got {self.fraud_rate}")
        if not 0.0 <= self.concept <= 1.0:
            raise ValueError(f"concept must be in [0, 1], got {self.concept}")
        numerical = {f.name for f in load_contract("transactions").features if f.kind == "numerical"}
        unknown = set(self.covariate) - numerical
        if unknown:
            raise ValueError(f"covariate shift on non-numerical or unknown columns: {sorted(unknown)}")
        for column, moves in self.categories.items():
            allowed = {"merchant_category": MERCHANTS, "country": COUNTRIES, "channel": CHANNELS}.get(column)
            if allowed is None:
                raise ValueError(f"category shift on unknown categorical column {column!r}")
            if set(moves) - set(allowed):
                raise ValueError(f"unknown categories for {column}: {sorted(set(moves) - set(allowed))}")


def _shift_probs(probs: tuple[float, ...], names: tuple[str, ...], moves: Mapping[str, float]) -> np.ndarray:
    """Add `pp` percentage points to the named categories, taking them from the others pro rata."""
    p = np.asarray(probs, dtype=float) / sum(probs)
    if not moves:
        return p
    moved = np.zeros_like(p)
    for name, pp in moves.items():
        moved[names.index(name)] = pp / 100.0
    rest = ~(moved != 0)
    p = p + moved
    p[rest] -= moved.sum() * p[rest] / p[rest].sum()
    if (p < 0).any():
        raise ValueError(f"category shift {dict(moves)} makes a probability negative")
    normalised: np.ndarray = p / p.sum()
    return normalised


def _choice(rng: np.random.Generator, names: tuple[str, ...], p: np.ndarray, size: int) -> np.ndarray:
    picked: np.ndarray = np.asarray(names, dtype=object)[rng.choice(len(names), size=size, p=p)]
    return picked


def generate(
    rows: int, day: dt.date, seed: int, shift: Shift | None = None, contract: Contract | None = None
) -> pa.Table:
    """`rows` transactions on `day`, reproducible from `seed`, valid under the contract."""
    shift = shift or Shift()
    contract = contract or load_contract("transactions")
    rng = np.random.default_rng([seed, day.toordinal()])
    y = (rng.random(rows) < shift.fraud_rate).astype(np.int8)
    fraud = y == 1
    new_pattern = fraud & (rng.random(rows) < shift.concept)
    # Drawn from their own stream, so the main stream (and every other value of a seeded table) is unchanged.
    camouflaged = np.random.default_rng([seed, day.toordinal(), 1]).random(rows) < CAMOUFLAGED_FRAUD
    old_fraud = fraud & ~new_pattern & ~camouflaged
    looks_fraud = fraud & ~camouflaged

    def by_class(legit: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        return np.where(new_pattern, new, np.where(old_fraud, old, legit))

    amount = by_class(rng.lognormal(3.4, 1.0, rows), rng.lognormal(5.0, 1.1, rows), rng.lognormal(2.3, 0.6, rows))
    distance = by_class(rng.exponential(12.0, rows), rng.exponential(900.0, rows), rng.exponential(3.0, rows))
    device_age = by_class(rng.exponential(420.0, rows), rng.exponential(6.0, rows), rng.exponential(420.0, rows))
    tenure = by_class(rng.gamma(2.0, 800.0, rows), rng.gamma(1.2, 250.0, rows), rng.gamma(2.0, 800.0, rows))
    count_24h = by_class(rng.poisson(2.0, rows), rng.poisson(7.0, rows), rng.poisson(9.0, rows)).astype(float)
    avg_30d = rng.lognormal(3.4, 0.6, rows)
    p_hour_legit = _P_HOUR_LEGIT / _P_HOUR_LEGIT.sum()
    p_hour_fraud = _P_HOUR_FRAUD / _P_HOUR_FRAUD.sum()
    hour = np.where(looks_fraud, rng.choice(24, rows, p=p_hour_fraud), rng.choice(24, rows, p=p_hour_legit))

    numeric = {
        "amount": amount,
        "hour": hour.astype(float),
        "device_age_days": device_age,
        "customer_tenure_days": tenure,
        "distance_from_home_km": distance,
        "txn_count_24h": count_24h,
        "avg_amount_30d": avg_30d,
    }
    for name, k in shift.covariate.items():
        values = numeric[name]
        numeric[name] = values + k * values.std()
    for name, values in numeric.items():
        col = contract.column(name)
        numeric[name] = np.clip(values, col.min, col.max)

    cats: dict[str, np.ndarray] = {}
    for name, names, table in (
        ("merchant_category", MERCHANTS, _P_MERCHANT),
        ("country", COUNTRIES, _P_COUNTRY),
        ("channel", CHANNELS, _P_CHANNEL),
    ):
        moves = shift.categories.get(name, {})
        legit = _choice(rng, names, _shift_probs(table[0], names, moves), rows)
        bad = _choice(rng, names, _shift_probs(table[1], names, moves), rows)
        cats[name] = np.where(looks_fraud, bad, legit)
    cats["channel"] = np.where(
        new_pattern, _choice(rng, CHANNELS, np.asarray(_P_CHANNEL_NEW_FRAUD), rows), cats["channel"]
    )

    card_present = np.isin(cats["channel"], ("pos", "atm"))
    hour_int = numeric["hour"].round().astype(np.int32)
    seconds = hour_int.astype(np.int64) * 3600 + rng.integers(0, 3600, rows)
    start_us = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000
    event_time = start_us + seconds * 1_000_000
    ids = np.char.add(f"{day:%Y%m%d}-{seed}-", np.arange(rows).astype(str))
    distance_missing = rng.random(rows) < 0.02

    columns: dict[str, pa.Array] = {
        "transaction_id": pa.array(ids, pa.string()),
        "event_time": pa.array(event_time, pa.timestamp("us", tz="UTC")),
        "amount": pa.array(numeric["amount"].round(2)),
        "merchant_category": pa.array(cats["merchant_category"], pa.string()),
        "country": pa.array(cats["country"], pa.string()),
        "channel": pa.array(cats["channel"], pa.string()),
        "hour": pa.array(hour_int),
        "device_age_days": pa.array(numeric["device_age_days"].round(1), mask=card_present),
        "customer_tenure_days": pa.array(numeric["customer_tenure_days"].round().astype(np.int32)),
        "distance_from_home_km": pa.array(numeric["distance_from_home_km"].round(2), mask=distance_missing),
        "txn_count_24h": pa.array(numeric["txn_count_24h"].round().astype(np.int32)),
        "avg_amount_30d": pa.array(numeric["avg_amount_30d"].round(2)),
        "is_fraud": pa.array(y, pa.int8()),
    }
    return pa.table(columns).cast(contract.arrow_schema())


# --- files -----------------------------------------------------------------------------------------------


def to_bytes(table: pa.Table, fmt: FileFormat, compress: bool = False) -> bytes:
    """Serialise a table as a producer would: CSV with a header, JSON Lines, or Parquet; gzip optional."""
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    elif fmt == "jsonl":
        for record in table.to_pylist():
            sink.write(json.dumps(record, default=_json_default).encode() + b"\n")
    elif fmt == "parquet":
        pq.write_table(table, sink)
    else:
        raise ValueError(f"unknown format {fmt!r}; formats are csv, jsonl, parquet")
    data = sink.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


BadRowKind = Literal["null_required", "out_of_range", "unknown_category", "duplicate_id", "bad_hour"]
BAD_ROW_KINDS: tuple[BadRowKind, ...] = (
    "null_required", "out_of_range", "unknown_category", "duplicate_id", "bad_hour"
)  # fmt: skip


def inject_bad_rows(
    table: pa.Table, count: int, seed: int, kinds: tuple[BadRowKind, ...] = BAD_ROW_KINDS
) -> tuple[pa.Table, dict[int, BadRowKind]]:
    """Corrupt `count` distinct rows (cycling through `kinds`); returns the table and {row: kind}.

    The result keeps the contract's column types (nullability aside), so it can be written in any format;
    every corrupted row breaks exactly one expectation of the contract.
    """
    if count > table.num_rows - 1:
        raise ValueError(f"cannot corrupt {count} rows of a {table.num_rows}-row table")
    rng = np.random.default_rng(seed)
    rows = sorted(int(r) for r in rng.choice(np.arange(1, table.num_rows), size=count, replace=False))
    data = table.to_pydict()
    injected: dict[int, BadRowKind] = {}
    for i, row in enumerate(rows):
        kind = kinds[i % len(kinds)]
        if kind == "null_required":
            data["amount"][row] = None
        elif kind == "out_of_range":
            data["amount"][row] = -abs(float(data["amount"][row])) - 1.0
        elif kind == "unknown_category":
            data["channel"][row] = "teleport"
        elif kind == "duplicate_id":
            data["transaction_id"][row] = data["transaction_id"][0]
        elif kind == "bad_hour":
            data["hour"][row] = 24 + int(rng.integers(0, 100))
        injected[row] = kind
    schema = pa.schema([f.with_nullable(True) for f in table.schema])
    return pa.Table.from_pydict(data, schema=schema), injected


BadFileKind = Literal[
    "empty", "header_only", "wrong_delimiter", "bad_encoding", "truncated_gzip", "corrupt_parquet",
    "missing_column", "extra_column", "wrong_type", "decompression_bomb", "not_tabular",
]  # fmt: skip
BAD_FILE_KINDS: tuple[BadFileKind, ...] = BadFileKind.__args__  # type: ignore[attr-defined]


def bad_file(kind: BadFileKind, day: dt.date, seed: int, rows: int = 50, bomb_mib: int = 256) -> tuple[str, bytes]:
    """A file a careless or hostile producer might drop: (file-name suffix, content)."""
    table = generate(rows, day, seed)
    csv = to_bytes(table, "csv")
    if kind == "empty":
        return ".csv", b""
    if kind == "header_only":
        return ".csv", csv.splitlines(keepends=True)[0]
    if kind == "wrong_delimiter":
        out = io.BytesIO()
        pacsv.write_csv(table, out, pacsv.WriteOptions(delimiter=";"))
        return ".csv", out.getvalue()
    if kind == "bad_encoding":
        return ".csv", csv.decode().replace("fuel", "fü\u00e9l").encode("utf-16")
    if kind == "truncated_gzip":
        packed = gzip.compress(csv, mtime=0)
        return ".csv.gz", packed[: len(packed) // 2]
    if kind == "corrupt_parquet":
        data = bytearray(to_bytes(table, "parquet"))
        data[len(data) // 3 : len(data) // 3 + 64] = b"\x00" * 64
        return ".parquet", bytes(data[: len(data) - 10])
    if kind == "missing_column":
        return ".csv", to_bytes(table.drop_columns(["amount"]), "csv")
    if kind == "extra_column":
        return ".csv", to_bytes(table.append_column("ssn", pa.array(["000-00-0000"] * rows)), "csv")
    if kind == "wrong_type":
        text = csv.decode().splitlines()
        head = text[0].split(",")
        cells = text[1].split(",")
        cells[head.index('"amount"') if '"amount"' in head else head.index("amount")] = "twelve"
        text[1] = ",".join(cells)
        return ".csv", ("\n".join(text) + "\n").encode()
    if kind == "decompression_bomb":
        # `bomb_mib` MiB of one repeated byte after the header: about 1 KiB compressed per MiB.
        body = io.BytesIO()
        with gzip.GzipFile(fileobj=body, mode="wb", mtime=0) as gz:
            gz.write(csv.splitlines(keepends=True)[0])
            block = b"0" * (1 << 20)
            for _ in range(bomb_mib):
                gz.write(block)
        return ".csv.gz", body.getvalue()
    if kind == "not_tabular":
        return ".jsonl", b'{"transaction_id": "x"}\n[1, 2, 3]\nnot json at all\n'
    raise ValueError(f"unknown bad file kind {kind!r}; kinds are {', '.join(BAD_FILE_KINDS)}")
