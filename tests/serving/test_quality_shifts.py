"""Quality vs drift on a really trained, really served model: the generator's concept shift leaves the inputs'
marginals (nearly) unchanged, so the drift check stays silent while the quality check, once the labels have
arrived, catches it; a covariate shift the model does not depend on raises drift and no quality alarm.

The model is trained here (the real path: Dask build, torchrun) on 30,000 rows rather than taken from the
serving fixture: at a 2% fraud rate the baseline needs a validation split with ~100 positives for its
intervals to say anything (the decision compares interval with interval)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from functions.common.events import RecordingPublisher
from functions.drift.check import Window
from functions.drift.check import run_check as drift_check
from functions.drift.state import MemoryBreachStore
from functions.drift.storage import LocalObjectStore
from functions.quality.check import QualityOutcome
from functions.quality.check import run_check as quality_check
from functions.quality.decision import QualityConfig
from jobs import datagen
from jobs.batch.build import build_dataset
from jobs.batch.cluster import ClusterSpec, dask_client
from jobs.batch.inputs import BuildParams
from jobs.launch.base import JobSpec
from jobs.launch.local import LocalTorchrun
from jobs.train.config import TrainConfig
from schemas.events import ModelQualityDegraded
from schemas.naming import curated_prefix
from schemas.profile import Profile
from serving.inference import Predictor
from serving.package import unpack
from tests.jobs.helpers import DAYS, commit_curated
from tests.quality_support import (
    ENDPOINT,
    MODEL,
    NAMES,
    copy_model_baseline,
    labels_table,
    write_captures,
    write_curated_labels,
)
from tests.serving.conftest import TrainedModel

DAY = dt.date(2026, 11, 10)
START = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)
ROWS = 6000


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    root = tmp_path_factory.mktemp("quality-model")
    for offset, day in enumerate(DAYS):
        folder = root / "curated" / curated_prefix("transactions", day)
        folder.mkdir(parents=True)
        pq.write_table(datagen.generate(15_000, day, seed=3 + offset), folder / "part-0.parquet")
        commit_curated(root / "curated", f"raw/transactions/{day:%Y/%m/%d}/part-0.csv",
                       [f"{curated_prefix('transactions', day)}part-0.parquet"])  # the ingest function's commit
    with dask_client(ClusterSpec(n_workers=1, processes=True)) as client:
        built = build_dataset(f"file://{root}/curated", f"file://{root}/datasets",
                              BuildParams(rows_per_shard=10_000, validation_fraction=0.3), client)  # fmt: skip
    config = TrainConfig(
        manifest_url=built.url, output_url=f"file://{root}/artifacts", steps=150, checkpoint_every=150,
        batch_size=256, hidden=(32,), cache_dir=str(root / "cache"),
    )  # fmt: skip
    LocalTorchrun(workdir=root).launch(config, JobSpec(name="quality-fixture", procs_per_node=1, max_restarts=0))
    return TrainedModel(Path(config.model_url.removeprefix("file://")), config)


@pytest.fixture(scope="module")
def predictor(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    return Predictor.load(unpack(trained_model.archive, tmp_path_factory.mktemp("unpacked")))


def _served_day(root: Path, predictor: Predictor, trained: TrainedModel, shift: datagen.Shift) -> LocalObjectStore:
    """A day of traffic served by the model and captured; its labels land two days later through curation."""
    store = LocalObjectStore(root)
    table = datagen.generate(ROWS, DAY, seed=21, shift=shift)
    rows = [{f.name: r[f.name] for f in predictor.spec.features} for r in table.to_pylist()]
    keys = write_captures(store, rows, table["transaction_id"].to_pylist(), START + dt.timedelta(hours=9),
                          lambda body: predictor.handle(body, "application/json", None)[0], batch=4)  # fmt: skip
    write_curated_labels(store, labels_table(keys, table["is_fraud"].to_pylist(), START + dt.timedelta(days=2)))
    copy_model_baseline(store, trained.folder, predictor.spec.version)
    return store


def _checks(store: LocalObjectStore, trained: TrainedModel) -> tuple[str, QualityOutcome]:
    window = Window(ENDPOINT, START, START + dt.timedelta(days=1))
    drift = drift_check(
        store=store, names=NAMES, baseline=Profile.from_json((trained.folder / "baseline.json").read_bytes()),
        window=window, breach_store=MemoryBreachStore(), publisher=RecordingPublisher(),
    )  # fmt: skip
    quality = quality_check(
        store=store, names=NAMES, model=MODEL, window=window, as_of=START + dt.timedelta(days=3),
        breach_store=MemoryBreachStore(), publisher=RecordingPublisher(), config=QualityConfig(sustained_windows=1),
    )  # fmt: skip
    return drift.result.verdict, quality


def test_concept_shift_is_silent_for_drift_and_caught_by_quality(
    predictor: Predictor, trained_model: TrainedModel, tmp_path: Path
) -> None:
    store = _served_day(tmp_path, predictor, trained_model, datagen.Shift(concept=1.0))

    drift, quality = _checks(store, trained_model)

    assert drift == "no_drift"
    [result] = quality.results
    assert result.version == predictor.spec.version and result.coverage == 1.0 and result.labelled == ROWS
    assert result.verdict == "degraded" and "recall" in result.degraded, result.reasons
    [event] = quality.events
    assert isinstance(event, ModelQualityDegraded) and event.model_version == predictor.spec.version
    assert event.window_start == START and event.report == quality.report_json


def test_covariate_shift_the_model_ignores_raises_drift_not_a_quality_alarm(
    predictor: Predictor, trained_model: TrainedModel, tmp_path: Path
) -> None:
    # avg_amount_30d is drawn the same way for both classes: moving it moves P(x), not P(y | x).
    store = _served_day(tmp_path, predictor, trained_model, datagen.Shift(covariate={"avg_amount_30d": 1.5}))

    drift, quality = _checks(store, trained_model)

    assert drift == "drift"
    [result] = quality.results
    assert result.verdict == "ok", result.reasons
    assert quality.events == []


def test_without_the_shift_neither_check_alarms(
    predictor: Predictor, trained_model: TrainedModel, tmp_path: Path
) -> None:
    store = _served_day(tmp_path, predictor, trained_model, datagen.Shift())

    drift, quality = _checks(store, trained_model)

    assert drift == "no_drift"
    assert [r.verdict for r in quality.results] == ["ok"] and quality.events == []
