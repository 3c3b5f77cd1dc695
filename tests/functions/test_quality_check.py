"""The scheduled quality check through its real entry points: labels through the ingest gate on the embedded
cloud, the handler's `handle` on S3/DynamoDB, the sustained-breach rule, late labels, every write failing in
turn, and `tide quality check`."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from functions.common.events import RecordingPublisher
from functions.drift.check import Window
from functions.drift.state import DynamoBreachStore, MemoryBreachStore
from functions.drift.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from functions.quality import handler
from functions.quality.check import run_check
from functions.quality.decision import QualityConfig
from jobs.cli import main
from jobs.datagen import to_bytes
from schemas.events import ModelQualityDegraded
from schemas.naming import DRIFT_STATE_TABLE_KEYS, raw_key
from tests.functions.ingest_support import Ingest, ingest_fixture  # noqa: F401  (fixture)
from tests.quality_support import (
    ENDPOINT,
    MODEL,
    NAMES,
    commit_labels,
    labels_table,
    write_baseline,
    write_captures,
    write_curated_labels,
)

VERSION = "v1"
THRESHOLD = 0.5
DAY1 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
CONFIG = QualityConfig(min_labelled=300, min_per_class=20, replicates=100)


def serve(body: bytes) -> bytes:
    """A stand-in predictor: each instance carries the score it is to get (`s`)."""
    rows = json.loads(body)["instances"]
    answers = [{"score": r["s"], "label": int(r["s"] >= THRESHOLD), "model_version": VERSION} for r in rows]
    return json.dumps({"predictions": answers}).encode()


def scored(n: int, seed: int, separation: float) -> tuple[list[dict[str, Any]], np.ndarray]:
    """n rows at a 20% positive rate whose scores separate the classes by `separation` (0: not at all)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + separation * (y - 0.5) * 2 - 1.4)))
    return [{"s": float(v)} for v in s], y


def served_day(
    store: ObjectStore, start: dt.datetime, separation: float, seed: int, labels_after: dt.timedelta
) -> None:
    rows, y = scored(600, seed, separation)
    ids = [f"{start:%Y%m%d}-{i}" for i in range(len(rows))]
    keys = write_captures(store, rows, ids, start + dt.timedelta(hours=1), serve, batch=3)
    write_curated_labels(store, labels_table(keys, y.tolist(), start + labels_after), name=f"{start:%Y%m%d}")


def baseline(store: ObjectStore) -> None:
    rows, y = scored(3000, 99, 2.0)
    write_baseline(store, VERSION, y, np.array([r["s"] for r in rows]), THRESHOLD)


def provision_quality(cloud: Any) -> None:
    s3 = cloud.client("s3")
    for zone in ("captures", "artifacts", "reports"):
        s3.create_bucket(Bucket=NAMES.bucket(zone))
    (key,) = DRIFT_STATE_TABLE_KEYS
    cloud.client("dynamodb").create_table(
        TableName=NAMES.drift_state_table, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip


def test_labels_through_the_ingest_gate_drive_the_scheduled_check(ingest: Ingest) -> None:
    provision_quality(ingest.cloud)
    s3 = ingest.cloud.client("s3")
    store = S3ObjectStore(s3)
    baseline(store)
    publisher = RecordingPublisher()
    deps = handler.Deps(NAMES, store, DynamoBreachStore(ingest.cloud.client("dynamodb"), NAMES.drift_state_table),
                        publisher, CONFIG, default_endpoint=ENDPOINT, default_model=MODEL)  # fmt: skip
    for offset in (0, 1):  # two served days whose scores no longer separate the classes (a concept shift)
        day = DAY1 + dt.timedelta(days=offset)
        rows, y = scored(600, offset, 0.0)
        keys = write_captures(store, rows, [f"{day:%Y%m%d}-{i}" for i in range(600)], day, serve, batch=3)
        # The labels land two days later as a CSV file in the raw zone, like any dataset.
        table = labels_table(keys, y.tolist(), day + dt.timedelta(days=2, hours=5))
        label_day = (day + dt.timedelta(days=2)).date()
        put = ingest.put("chargebacks.csv", to_bytes(table, "csv"), key=raw_key("labels", label_day, "chargebacks.csv"))
        assert ingest.invoke(ingest.sqs_event(put))["batchItemFailures"] == []

    # Day 1 judged before its labels arrived: too few labels, nothing counted.
    early = handler.handle({"window_end": "2026-11-03T00:00:00+00:00", "as_of": "2026-11-03T12:00:00+00:00"}, deps)
    [result] = early.results
    assert result.verdict == "insufficient_labels" and result.coverage == 0.0
    # Once they have arrived: degraded, but one window is not yet sustained.
    first = handler.handle({"window_end": "2026-11-03T00:00:00+00:00"}, deps, now=DAY1 + dt.timedelta(days=4))
    [result] = first.results
    assert result.verdict == "degraded" and result.coverage == 1.0 and result.labelled == 600
    assert "auc" in result.degraded and first.events == []
    # The scheduled run (empty detail) two days after day 2 judges day 2: the second window in a row alarms.
    second = handler.handle({}, deps, now=DAY1 + dt.timedelta(days=4))
    assert (second.window.start, second.window.end) == (DAY1 + dt.timedelta(days=1), DAY1 + dt.timedelta(days=2))
    [event] = publisher.events
    assert isinstance(event, ModelQualityDegraded) and event.model_version == VERSION and event.labelled > 0
    assert event.evidence["consecutive_windows"] == 2
    report = json.loads(s3.get_object(Bucket=NAMES.bucket("reports"), Key=second.report_json.split("/", 3)[3])["Body"]
                        .read())  # fmt: skip
    assert report["versions"][0]["verdict"] == "degraded"
    # The same window replayed is not counted twice.
    again = handler.handle({}, deps, now=DAY1 + dt.timedelta(days=4))
    assert again.events == [] and len(publisher.events) == 1


class _Failing:
    """Counts the check's writes across its three ports and fails the k-th one (a transient cloud error)."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at, self.calls = fail_at, 0

    def tick(self) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError(f"write {self.calls} failed")

    def wrap(self, write: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            self.tick()
            write(*args)

        return call


@pytest.mark.parametrize("k", [1, 2, 3, 4])  # report.html, report.json, the event, the state
def test_a_failed_write_loses_no_alarm_and_counts_no_window_twice(tmp_path: Path, k: int) -> None:
    store = LocalObjectStore(tmp_path)
    baseline(store)
    served_day(store, DAY1, 0.0, 5, dt.timedelta(days=1))
    failing, states, publisher = _Failing(k), MemoryBreachStore(), RecordingPublisher()
    store.put = failing.wrap(store.put)  # type: ignore[method-assign]
    publisher.publish = failing.wrap(publisher.publish)  # type: ignore[method-assign]
    states.put = failing.wrap(states.put)  # type: ignore[method-assign]
    config = QualityConfig(min_labelled=300, min_per_class=20, replicates=50, sustained_windows=1)
    window = Window(ENDPOINT, DAY1, DAY1 + dt.timedelta(days=1))

    def run() -> None:
        run_check(store=store, names=NAMES, model=MODEL, window=window, as_of=DAY1 + dt.timedelta(days=3),
                  breach_store=states, publisher=publisher, config=config)  # fmt: skip

    with pytest.raises(ConnectionError):
        run()
    state_key = f"quality#{ENDPOINT}#{VERSION}"
    # A reader of the state never sees the window counted without its event having gone out.
    assert states.get(state_key).consecutive == 0 or publisher.events
    run()  # the retry
    assert states.get(state_key).consecutive == 1
    assert 1 <= len(publisher.events) <= 2  # at least once; a repeat names the same window
    assert {(e.window_start, e.model_version) for e in publisher.events if isinstance(e, ModelQualityDegraded)} == {
        (DAY1, VERSION)
    }
    run()  # a further replay changes nothing
    assert states.get(state_key).consecutive == 1 and len(publisher.events) <= 2


def test_cli_check_prints_the_verdict_and_exits_4_when_degraded(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    baseline(store)
    served_day(store, DAY1, 0.0, 5, dt.timedelta(days=1))
    served_day(store, DAY1 + dt.timedelta(days=1), 2.0, 6, dt.timedelta(days=1))
    args = ["quality", "check", "--root", str(tmp_path), "--endpoint", ENDPOINT, "--model", MODEL, "--as-of",
            "2026-11-10", "--min-labelled", "300", "--sustained-windows", "1", "--stack", NAMES.stack]  # fmt: skip

    bad = CliRunner().invoke(main, [*args, "--window-end", "2026-11-03"])
    good = CliRunner().invoke(main, [*args, "--window-end", "2026-11-04", "--json"])

    assert bad.exit_code == 4, bad.output
    assert "version v1: degraded  labelled 600/600 (100.0% coverage)" in bad.output
    assert "event: ModelQualityDegraded v1" in bad.output
    assert good.exit_code == 0, good.output
    doc = json.loads(good.output)
    assert doc["versions"][0]["verdict"] == "ok" and doc["events"] == []


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--window-end", "2026-11-03", "--as-of", "2026-11-02"], "is before the window's end"),
        (["--window-end", "2026-11-03", "--root", "/nonexistent/x"], "does not exist"),
        (["--window-end", "yesterday"], "Invalid value for '--window-end'"),
    ],
)
def test_cli_mistakes_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["quality", "check", "--root", str(tmp_path), "--endpoint", ENDPOINT,
                                       "--model", MODEL, *extra])  # fmt: skip
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_cli_labels_missing_a_column_is_one_line(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    served_day(store, DAY1, 2.0, 5, dt.timedelta(days=1))
    table = labels_table(["x"], [1], DAY1 + dt.timedelta(days=1)).drop_columns(["label_time"])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    store.put(NAMES.bucket("curated"), "labels/event_date=2026-11-03/bad.parquet", sink.getvalue(), "")
    commit_labels(store, "labels/event_date=2026-11-03/bad.parquet")
    args = ["--model", MODEL, "--window-end", "2026-11-03", "--as-of", "2026-11-05", "--stack", NAMES.stack]
    result = CliRunner().invoke(main, ["quality", "check", "--root", str(tmp_path), "--endpoint", ENDPOINT, *args])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "label_time" in result.output


def test_lambda_handler_runs_the_check_and_emits_metrics_per_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.functions.ingest_support import FakeContext

    store = LocalObjectStore(tmp_path)
    baseline(store)
    served_day(store, DAY1, 0.0, 5, dt.timedelta(days=1))
    config = QualityConfig(min_labelled=300, min_per_class=20, replicates=50, sustained_windows=1)
    deps = handler.Deps(NAMES, store, MemoryBreachStore(), RecordingPublisher(), config, ENDPOINT, MODEL)
    monkeypatch.setattr(handler, "_deps", lambda: deps)

    event = {"detail-type": "Scheduled Event", "detail": {"window_end": "2026-11-03T00:00:00+00:00",
                                                           "as_of": "2026-11-05T00:00:00+00:00"}}  # fmt: skip
    result = handler.lambda_handler(event, FakeContext())  # type: ignore[arg-type]

    assert result["verdicts"] == {VERSION: "degraded"} and result["alarms"] == [VERSION]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    coverage = [m for m in emf if "LabelCoverage" in m]
    assert coverage and coverage[0]["ModelVersion"] == VERSION and coverage[0]["LabelCoverage"] in (100.0, [100.0])


def test_config_from_env_overrides_the_dataclass_defaults() -> None:
    config = handler.config_from_env({"QUALITY_MIN_LABELLED": "50", "QUALITY_AUC_DROP": "0.1"})
    assert (config.min_labelled, config.auc_drop, config.sustained_windows) == (50, 0.1, 2)


def test_uncommitted_label_files_are_not_read(tmp_path: Path) -> None:
    """A labels file the gate wrote without its commit manifest (a crash before the commit) is invisible."""
    store = LocalObjectStore(tmp_path)
    served_day(store, DAY1, 2.0, 5, dt.timedelta(days=1))
    table = labels_table(["x"], [1], DAY1 + dt.timedelta(days=1)).drop_columns(["label_time"])
    sink = io.BytesIO()
    pq.write_table(table, sink)  # it would fail the check for its missing column, were it read
    store.put(NAMES.bucket("curated"), "labels/event_date=2026-11-03/half-written.parquet", sink.getvalue(), "")
    args = ["--model", MODEL, "--window-end", "2026-11-03", "--as-of", "2026-11-05", "--stack", NAMES.stack]
    result = CliRunner().invoke(main, ["quality", "check", "--root", str(tmp_path), "--endpoint", ENDPOINT, *args])
    assert result.exit_code == 0 and "half-written" not in result.output, result.output
