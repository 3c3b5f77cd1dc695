"""Drift on a table no contract declares: `tide drift baseline|compare|check` and the scheduled function,
end to end, with column names the contract's name pattern would refuse."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.common.events import RecordingPublisher
from functions.drift import captures, handler
from functions.drift.check import profile_features
from functions.drift.decision import DriftConfig
from functions.drift.state import DynamoBreachStore
from functions.drift.storage import S3ObjectStore
from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from schemas.naming import Names, capture_hour_prefix
from schemas.profile import Profile

NAMES = Names("tidewater", "anytable")
DAY = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
TEMP, SITE, CODE, NOTE = "Temp (°C)", "Sensor-Site", "2nd code", "région"


def sensors(rows: int, seed: int, warmer: float = 0.0, empty_note: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed)
    note = [None] * rows if empty_note else [str(x) for x in rng.choice(["ok", "dusty", "wet"], rows)]
    return pa.table({
        TEMP: rng.normal(20.0 + warmer, 3.0, rows),
        SITE: [str(x) for x in rng.choice(["north", "south", "east"], rows, p=[0.5, 0.3, 0.2])],
        CODE: rng.integers(1, 4, rows),  # an integer code: a category, by --kind
        NOTE: pa.array(note, pa.string()),
        "read_at": pa.array([DAY] * rows, pa.timestamp("us", tz="UTC")),  # no kind fits: reported, skipped
    })  # fmt: skip


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["drift", *args])


def _baseline(tmp_path: Path) -> Path:
    pq.write_table(sensors(8000, seed=1), tmp_path / "reference.parquet")
    out = tmp_path / "profile.json"
    made = _cli("baseline", "--data", str(tmp_path / "reference.parquet"), "--kind", f"{CODE}=categorical",
                "--name", "sensors", "--out", str(out), "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["skipped"] == {"read_at": "timestamp[us, tz=UTC]"}
    return out


def test_baseline_infers_kinds_and_compare_flags_each_reason(tmp_path: Path) -> None:
    profile = Profile.from_json(_baseline(tmp_path).read_bytes())
    assert profile.contract == "sensors" and profile.dataset == "sensors"
    assert profile.kinds == {TEMP: "numerical", SITE: "categorical", CODE: "categorical", NOTE: "categorical"}

    pq.write_table(sensors(5000, seed=2), tmp_path / "same.parquet")
    same = _cli("compare", "--baseline", str(tmp_path / "profile.json"), "--data", str(tmp_path / "same.parquet"))
    assert same.exit_code == 0, same.output
    assert same.output.startswith("verdict: no_drift")

    pacsv.write_csv(sensors(5000, seed=3, warmer=1.5, empty_note=True), tmp_path / "shifted.csv")
    shifted = _cli("compare", "--baseline", str(tmp_path / "profile.json"), "--data", str(tmp_path / "shifted.csv"))
    assert shifted.exit_code == 3, shifted.output  # drift found
    row = {line.split()[0]: line for line in shifted.output.splitlines()[2:]}
    assert "shift" in row["Temp"] and "W/sd" in row["Temp"]  # the reason and the effect size, with its unit
    as_json = _cli("compare", "--baseline", str(tmp_path / "profile.json"), "--data", str(tmp_path / "shifted.csv"),
                   "--json")  # fmt: skip
    assert as_json.exit_code == 3
    features = {f["name"]: f for f in json.loads(as_json.output)["features"]}
    assert features[TEMP]["reason_codes"] == ["shift"]
    assert features[NOTE]["reason_codes"] == ["missing_rate"]  # a column that empties is drift
    assert features[SITE]["verdict"] == features[CODE]["verdict"] == "no_drift"


def _captures(table: pa.Table, profile: Profile, when: dt.datetime) -> bytes:
    rows = table.drop_columns(["read_at"]).to_pylist()
    features = profile_features(profile)
    records = [
        captures.sagemaker_record(
            rows[i : i + 25], [0.5] * len(rows[i : i + 25]), features, content_type=kind, inference_time=when
        )
        for n, i in enumerate(range(0, len(rows), 25))
        for kind in ["csv" if n % 2 else "json"]
    ]
    return captures.jsonl(records)


def test_local_check_works_from_the_profile_alone(tmp_path: Path) -> None:
    profile_path = _baseline(tmp_path)
    profile = Profile.from_json(profile_path.read_bytes())
    root = tmp_path / "root"
    when = DAY.replace(hour=10)
    path = root / Names("tidewater", "local").bucket("captures") / capture_hour_prefix("ep", "v1", when) / "c.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(_captures(sensors(3000, seed=4, warmer=1.5), profile, when))
    checked = _cli("check", "--baseline", str(profile_path), "--root", str(root), "--endpoint", "ep",
                   "--window-end", "2026-11-01T11", "--json")  # fmt: skip
    assert checked.exit_code == 3, checked.output
    result = json.loads(checked.output)
    assert result["captures"]["rows"] == 3000 and result["captures"]["malformed"] == {}
    assert result["drifted"] == [TEMP]


def test_scheduled_handler_on_the_embedded_cloud_with_an_inferred_profile(tmp_path: Path, cloud: EmbeddedCloud) -> None:
    profile_path = _baseline(tmp_path)
    profile = Profile.from_json(profile_path.read_bytes())
    s3 = cloud.client("s3")
    for zone in ("captures", "reports", "datasets"):
        s3.create_bucket(Bucket=NAMES.bucket(zone))
    cloud.client("dynamodb").create_table(
        TableName=NAMES.drift_state_table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
    )  # fmt: skip
    s3.put_object(Bucket=NAMES.bucket("datasets"), Key="sensors/profile.json", Body=profile_path.read_bytes())
    publisher = RecordingPublisher()
    deps = handler.Deps(
        names=NAMES, store=S3ObjectStore(s3), publisher=publisher, config=DriftConfig(sustained_windows=2),
        breach_store=DynamoBreachStore(cloud.client("dynamodb"), NAMES.drift_state_table),
    )  # fmt: skip
    outcomes = []
    for hour in (10, 11):
        when = DAY.replace(hour=hour)
        key = capture_hour_prefix("sensors-ep", "AllTraffic", when) + "c.jsonl"
        body = _captures(sensors(3000, seed=hour, warmer=1.5), profile, when)
        s3.put_object(Bucket=NAMES.bucket("captures"), Key=key, Body=body)
        detail = {"endpoint": "sensors-ep", "baseline": f"s3://{NAMES.bucket('datasets')}/sensors/profile.json",
                  "window_end": when.replace(hour=hour + 1).isoformat()}  # fmt: skip
        outcomes.append(handler.handle(detail, deps))
    assert [o.result.verdict for o in outcomes] == ["drift", "drift"]
    assert outcomes[1].result.drifted == [TEMP] and outcomes[1].decoded.rows == 3000
    (event,) = publisher.events
    assert event.detail()["dataset"] == "sensors" and event.detail()["drifted_features"] == [TEMP]


names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.dictionaries(names, st.sampled_from(["float", "int", "text", "empty"]), min_size=1, max_size=4))
def test_any_column_names_and_types_profile_and_compare(tmp_path: Path, columns: dict[str, str]) -> None:
    rng = np.random.default_rng(0)
    make = {
        "float": lambda: pa.array(rng.normal(size=600)),
        "int": lambda: pa.array(rng.integers(0, 5, 600)),
        "text": lambda: pa.array([str(x) for x in rng.choice(["a", "b"], 600)]),
        "empty": lambda: pa.nulls(600, pa.float64()),
    }
    pq.write_table(pa.table({name: make[kind]() for name, kind in columns.items()}), tmp_path / "t.parquet")
    made = _cli("baseline", "--data", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "p.json"))
    assert made.exit_code == 0, made.output
    assert set(Profile.from_json((tmp_path / "p.json").read_bytes()).features) == set(columns)
    compared = _cli("compare", "--baseline", str(tmp_path / "p.json"), "--data", str(tmp_path / "t.parquet"), "--json")
    assert compared.exit_code == 0, compared.output  # the same data never drifts
    assert {f["name"] for f in json.loads(compared.output)["features"]} == set(columns)


class FailingPuts:
    """An object store whose k-th put fails (a crash between two writes of one check)."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner, self.fail_at, self.puts = inner, fail_at, 0

    def list(self, bucket: str, prefix: str) -> list[str]:
        return list(self.inner.list(bucket, prefix))

    def get(self, bucket: str, key: str) -> bytes:
        return bytes(self.inner.get(bucket, key))

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.puts += 1
        if self.puts == self.fail_at:
            raise ConnectionError(f"put {self.puts} failed")
        self.inner.put(bucket, key, body, content_type)


def test_report_json_lists_every_figure_and_a_reader_sees_all_or_none(tmp_path: Path) -> None:
    """Through `tide drift check`'s run on a local store: for every k, failing the k-th write leaves either no
    report.json or one whose figures all exist."""
    from functions.drift.check import Window, run_check
    from functions.drift.state import MemoryBreachStore
    from functions.drift.storage import LocalObjectStore

    profile = Profile.from_json(_baseline(tmp_path).read_bytes())
    names = Names("tidewater", "local")
    when = DAY.replace(hour=10)
    window = Window.hours_before("ep", DAY.replace(hour=11), 1)
    writes = len(profile.features) + 2  # one figure per feature, report.json, report.html
    for k in range(1, writes + 2):
        root = tmp_path / f"root-{k}"
        path = root / names.bucket("captures") / capture_hour_prefix("ep", "v1", when) / "c.jsonl"
        path.parent.mkdir(parents=True)
        path.write_bytes(_captures(sensors(1000, seed=4), profile, when))
        store = FailingPuts(LocalObjectStore(root), fail_at=k)
        try:
            run_check(store=store, names=names, baseline=profile, window=window, breach_store=MemoryBreachStore(),
                      publisher=RecordingPublisher())  # fmt: skip
        except ConnectionError:
            assert k <= writes
        else:
            assert k == writes + 1  # no failure: every write happened
        reports = root / names.bucket("reports")
        found = list(reports.rglob("report.json"))
        if not found:
            continue
        (doc,) = [json.loads(p.read_text()) for p in found]
        assert set(doc["figures"]) == set(profile.features)
        for key in doc["figures"].values():
            assert (found[0].parent / key).read_text().startswith("<svg")
