"""Checkpoint store, shard assignment, caching, encoding and metrics, each on its own (no processes)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import datagen
from jobs.train import data, metrics
from jobs.train.checkpoint import MARKER, STATE, CheckpointStore
from schemas.contract import load_contract
from serving.encoding import UNKNOWN


def _state(value: float) -> dict[str, Any]:
    return {"model": {"w": torch.full((3,), value)}, "step": int(value)}


def test_latest_is_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(f"file://{tmp_path}/ckpt")
    assert store.latest() is None
    store.save(10, _state(10))
    store.save(20, _state(20))
    # A writer killed mid-way: state written, marker never written.
    (tmp_path / "ckpt/step-000000030").mkdir()
    (tmp_path / "ckpt/step-000000030" / STATE).write_bytes(b"half")
    latest = store.latest()
    assert latest is not None and latest.step == 20 and torch.equal(latest.state["model"]["w"], torch.full((3,), 20.0))
    assert store.steps() == [20, 10]


def test_a_checkpoint_whose_bytes_do_not_match_its_marker_is_skipped(tmp_path: Path) -> None:
    store = CheckpointStore(f"file://{tmp_path}/ckpt")
    store.save(10, _state(10))
    store.save(20, _state(20))
    (tmp_path / "ckpt/step-000000020" / STATE).write_bytes(b"corrupted after the marker was written")
    latest = store.latest()
    assert latest is not None and latest.step == 10
    marker = json.loads((tmp_path / "ckpt/step-000000010" / MARKER).read_text())
    assert marker["step"] == 10 and len(marker["sha256"]) == 64


def _shards(n: int) -> list[dict[str, Any]]:
    splits = ("train", "validation")
    return [{"key": f"{split}/part-{i:05d}-000.parquet", "split": split} for i in range(n) for split in splits]


@settings(max_examples=40, deadline=None)
@given(shards=st.integers(1, 9), world=st.integers(1, 6))
def test_every_train_row_goes_to_exactly_one_rank(shards: int, world: int) -> None:
    assignments = [data.assign(_shards(shards), "train", rank, world) for rank in range(world)]
    rows_per_shard = 5
    seen: list[tuple[str, int]] = []
    for a in assignments:
        assert all(s["split"] == "train" for s in a.shards)
        rows = [(s["key"], r) for s in a.shards for r in range(rows_per_shard)]
        seen += rows[a.row_offset :: a.row_stride] if a.row_stride > 1 else rows
    expected = [(s["key"], r) for s in _shards(shards) if s["split"] == "train" for r in range(rows_per_shard)]
    assert sorted(seen) == sorted(expected)


def test_assign_without_shards_of_the_split_is_an_error() -> None:
    with pytest.raises(data.DataError, match="no validation shards"):
        data.assign([{"key": "train/a", "split": "train"}], "validation", 0, 1)


def test_fetch_caches_and_rejects_a_shard_that_does_not_match_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "ds/train").mkdir(parents=True)
    (tmp_path / "ds/train/p.parquet").write_bytes(b"shard bytes")
    import hashlib

    shard = {"key": "train/p.parquet", "sha256": hashlib.sha256(b"shard bytes").hexdigest()}
    manifest = f"file://{tmp_path}/ds/manifest.json"
    local = data.fetch(manifest, shard, tmp_path / "cache", None)
    assert local.read_bytes() == b"shard bytes"
    (tmp_path / "ds/train/p.parquet").write_bytes(b"changed")  # the cache is served without re-reading the store
    assert data.fetch(manifest, shard, tmp_path / "cache", None).read_bytes() == b"shard bytes"
    with pytest.raises(data.DataError, match="does not match the manifest"):
        data.fetch(manifest, {**shard, "key": "train/p.parquet", "sha256": "0" * 64}, tmp_path / "other", None)
    assert not list((tmp_path / "other").rglob("*.parquet*"))


def test_encoder_maps_unknown_and_missing_to_reserved_values() -> None:
    import datetime as dt

    contract = load_contract("transactions")
    table = datagen.generate(50, dt.date(2026, 11, 1), 1)
    table = table.set_column(table.schema.get_field_index("channel"), "channel", pa.array(["teleport"] + ["pos"] * 49))
    encoder = data.Encoder(contract)
    encoded = encoder.encode(table)
    channel = [f.name for f in encoder.categorical].index("channel")
    assert encoded.categorical[0, channel] == UNKNOWN and encoded.categorical[1, channel] == 1
    assert encoded.numerical.shape == (50, encoder.numerical_width) and np.isfinite(encoded.numerical).all()
    device_age = [f.name for f in encoder.numerical].index("device_age_days")
    indicator = len(encoder.numerical) + [f.name for f in encoder.indicators].index("device_age_days")
    missing = np.array(table.column("device_age_days").is_null())
    assert (encoded.numerical[missing, device_age] == 0).all() and (encoded.numerical[:, indicator] == missing).all()


def test_summed_moments_standardise_like_the_whole_array() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(3, 2, size=(n, 4)).astype(np.float32) for n in (10, 25, 7)]
    mean, std = data.standardiser(sum(data.moments(p) for p in parts))  # type: ignore[arg-type]
    whole = np.concatenate(parts).astype(np.float64)
    np.testing.assert_allclose(mean, whole.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, whole.std(axis=0), rtol=1e-4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=30))
def test_auc_equals_the_pairwise_definition(pairs: list[tuple[bool, int]]) -> None:
    label = np.array([p[0] for p in pairs])
    score = np.array([p[1] for p in pairs], dtype=float)
    if label.all() or not label.any():
        with pytest.raises(ValueError, match="both classes"):
            metrics.roc_auc(label, score)
        return
    wins = [1.0 if p > n else 0.5 if p == n else 0.0
            for p, n in itertools.product(score[label], score[~label])]  # fmt: skip
    assert metrics.roc_auc(label, score) == pytest.approx(sum(wins) / len(wins))


def test_log_loss_of_perfect_and_uninformed_predictions() -> None:
    y = np.array([0, 1, 1, 0])
    assert metrics.log_loss(y, y.astype(float)) < 1e-6
    assert metrics.log_loss(y, np.full(4, 0.5)) == pytest.approx(np.log(2))
