"""Predictions joined with the labels that had arrived by the check's as-of time (pyarrow, vectorised).

Rules, each counted in the join's account so nothing disappears silently:
- a label that arrived after `as_of` is not used yet (the same check replayed later gives the same answer);
- an inference id labelled more than once keeps its latest label (a chargeback reversed by a later review);
  the superseded rows are counted, and those whose label changed are counted apart;
- a prediction captured twice under one key (a retried capture) counts once: the earliest;
- a prediction with no label yet stays in, unlabelled: it is the coverage's denominator.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LABEL_COLUMNS = ("inference_id", "label", "label_time")


@dataclass
class Joined:
    table: pa.Table  # key, time, score, version, label (null: not labelled yet)
    account: Counter[str]


def _last_of_runs(table: pa.Table, key: str, order: str, keep: str) -> tuple[pa.Table, np.ndarray]:
    """Sort by (key, order) and keep the first or last row of each run of equal keys; also the kept mask."""
    table = table.sort_by([(key, "ascending"), (order, "ascending")])
    keys = table[key]
    if table.num_rows < 2:
        return table, np.ones(table.num_rows, dtype=bool)
    differs = pc.not_equal(keys.slice(1), keys.slice(0, table.num_rows - 1)).to_numpy(zero_copy_only=False)
    kept = np.r_[differs, True] if keep == "last" else np.r_[True, differs]
    return table.filter(pa.array(kept)), kept


def latest_labels(labels: pa.Table, as_of: dt.datetime, account: Counter[str]) -> pa.Table:
    missing = [c for c in LABEL_COLUMNS if c not in labels.column_names]
    if missing:
        raise ValueError(f"labels lack column(s) {', '.join(missing)} (schemas/datasets/labels/v1.yaml)")
    labels = labels.select(list(LABEL_COLUMNS))
    valid = pc.and_(
        pc.and_(pc.is_valid(labels["inference_id"]), pc.is_valid(labels["label_time"])),
        pc.is_in(labels["label"], value_set=pa.array([0, 1], labels.schema.field("label").type)),
    )
    valid = pc.fill_null(valid, False)
    account["labels unusable (null id or time, label not 0/1)"] += labels.num_rows - (pc.sum(valid).as_py() or 0)
    labels = labels.filter(valid)
    arrived = pc.less_equal(labels["label_time"], pa.scalar(as_of, labels.schema.field("label_time").type))
    account["labels arriving after the as-of time (not used yet)"] += labels.num_rows - (pc.sum(arrived).as_py() or 0)
    labels = labels.filter(arrived)
    account["labels read"] += labels.num_rows
    latest, kept = _last_of_runs(labels, "inference_id", "label_time", "last")
    if labels.num_rows > 1:
        sorted_labels = labels.sort_by([("inference_id", "ascending"), ("label_time", "ascending")])
        y = sorted_labels["label"].to_numpy()
        changed = (~kept[:-1]) & (y[:-1] != y[1:])  # a superseded label that differs from the one after it
        account["labels superseded by a later label for the same id"] += int((~kept).sum())
        account["labels changed by a later label"] += int(changed.sum())
    return latest


def join(predictions: pa.Table, labels: pa.Table, as_of: dt.datetime) -> Joined:
    """Every distinct prediction of the window with its latest arrived label (or null)."""
    account: Counter[str] = Counter()
    firsts, _ = _last_of_runs(predictions, "key", "time", "first")
    account["predictions captured more than once (counted once)"] += predictions.num_rows - firsts.num_rows
    latest = latest_labels(labels, as_of, account)
    joined = firsts.join(
        latest.select(["inference_id", "label"]).rename_columns(["key", "label"]), "key", join_type="left outer"
    )
    labelled = joined.num_rows - joined["label"].null_count
    account["labels of predictions outside this window (or never captured)"] += latest.num_rows - labelled
    return Joined(joined, account)
