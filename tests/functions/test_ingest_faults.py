"""All-or-nothing outcomes: the k-th cloud call of the ingest path fails, for every k, through the real handler.

Each scenario's path is counted (S3 reads and writes, event publishes); the test fails call k with a
permanent error, checks what readers see (the dataset build's inputs, the curated rows, the events), then
redelivers the message and checks the object is committed exactly once with every file its manifest names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from functions.ingest.readers import BatchReader, Limits
from jobs.datagen import generate, inject_bad_rows, to_bytes
from schemas.contract import load_contract
from schemas.events import Event, FileQuarantined, PartitionIngested
from tests.functions.ingest_support import DAY, NAMES, Ingest, ingest_fixture  # noqa: F401  (fixture)


@dataclass
class Faults:
    """Counts the path's cloud calls and fails the `fail_at`-th one (1-based; 0: none fails)."""

    fail_at: int = 0
    calls: list[str] = field(default_factory=list)

    def check(self, name: str) -> None:
        self.calls.append(name)
        if len(self.calls) == self.fail_at:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": f"injected fault at call {self.fail_at}: {name}"}},
                name,
            )


class FaultyPublisher:
    def __init__(self, inner: Any, faults: Faults) -> None:
        self.inner, self.faults = inner, faults

    def publish(self, event: Event) -> None:
        self.faults.check(f"publish:{event.detail_type}")
        self.inner.publish(event)


@pytest.fixture(name="faults")
def faults_fixture(ingest: Ingest, monkeypatch: pytest.MonkeyPatch) -> Any:
    faults = Faults()

    def hook(model: Any, **_: Any) -> None:
        faults.check(f"s3:{model.name}")

    events = ingest.handler.service.s3.meta.events
    events.register("before-call.s3", hook, unique_id="fault-injection")
    monkeypatch.setattr(ingest.handler.service, "publisher", FaultyPublisher(ingest.events, faults))
    yield faults
    events.unregister("before-call.s3", unique_id="fault-injection")


def _split_file() -> tuple[bytes, int]:
    """A CSV over two event dates with 2 bad rows: two partitions, a summary, bad rows, reason, two events."""
    two_days = pa.concat_tables([generate(40, DAY, seed=31), generate(20, DAY.replace(day=3), seed=32)])
    table, _ = inject_bad_rows(two_days, 2, seed=33, kinds=("out_of_range",))
    return to_bytes(table, "csv"), 58


def _split_in_batches() -> tuple[bytes, int]:
    """Read in many batches (SMALL_BATCHES): two dates, 2 bad rows and an id repeated 50 rows later, so the
    end of the file makes an early row bad and the file is read a second time before anything is uploaded."""
    two_days = pa.concat_tables([generate(60, DAY, seed=35), generate(40, DAY.replace(day=3), seed=36)])
    table, injected = inject_bad_rows(two_days, 2, seed=37, kinds=("out_of_range",))
    ids = table["transaction_id"].to_pylist()
    ids[55] = ids[5]
    table = table.set_column(0, "transaction_id", pa.array(ids))
    return to_bytes(table, "csv"), 100 - len(set(injected) | {5, 55})


def _rejected_file() -> tuple[bytes, int]:
    """Missing a column: the whole file is copied to the quarantine with its reason."""
    return to_bytes(generate(30, DAY, seed=34).drop_columns(["amount"]), "csv"), 0


# The number of calls each scenario's path makes, asserted on every clean redelivery below, so the
# parametrisation covers every call: get, 2 partitions, summary, bad rows, reason, manifest, 2 publishes;
# get, head + copy (the managed copy), reason, manifest, 1 publish.
SCENARIOS = {"split": (_split_file, 9), "split-batches": (_split_in_batches, 9), "rejected": (_rejected_file, 6)}
SMALL_BATCHES = Limits(block_bytes=1024)
CASES = [(name, k) for name, (_, calls) in SCENARIOS.items() for k in range(1, calls + 1)]


def _terminal(events: list[Event]) -> Counter[tuple[str, str]]:
    return Counter((e.detail_type, e.event_id) for e in events if isinstance(e, PartitionIngested | FileQuarantined))


def _check_committed_files_exist(ingest: Ingest, commit: dict[str, Any]) -> None:
    for item in commit["files"]:
        assert item["key"] in ingest.keys(item["zone"]), f"the manifest names a missing file: {item}"


@pytest.mark.parametrize("scenario,k", CASES)
def test_failing_the_kth_call_leaves_all_or_nothing(
    ingest: Ingest, faults: Faults, scenario: str, k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, calls = SCENARIOS[scenario]
    if scenario == "split-batches":
        monkeypatch.setattr(ingest.handler.service, "limits", SMALL_BATCHES)
    data, rows_curated = make()
    put = ingest.put(f"faulty-{scenario}.csv", data)
    event = ingest.sqs_event(put)

    faults.fail_at = k
    failed = ingest.invoke(event)

    assert [f["itemIdentifier"] for f in failed["batchItemFailures"]] == [event["Records"][0]["messageId"]]
    commits = ingest.commits()
    inputs = ingest.committed_inputs()
    if not commits:  # the fault came before the commit: readers see nothing, nothing was announced
        assert inputs == [] and ingest.events.events == []
    else:  # it came after: readers see the whole outcome
        [commit] = commits
        _check_committed_files_exist(ingest, commit)
        assert len(ingest.curated_frame()) == rows_curated

    faults.fail_at, faults.calls = 0, []
    assert ingest.invoke(event)["batchItemFailures"] == []  # SQS redelivers; this time every call succeeds

    assert len(faults.calls) == calls, faults.calls
    [commit] = ingest.commits()
    _check_committed_files_exist(ingest, commit)
    assert len(ingest.curated_frame()) == rows_curated
    assert len(ingest.committed_inputs()) == (2 if rows_curated else 0)
    # Exactly one id per object version and event type; a redelivery may publish it again (at least once).
    terminal = _terminal(ingest.events.events)
    expected_types = {"PartitionIngested", "FileQuarantined"} if rows_curated else {"FileQuarantined"}
    assert {t for t, _ in terminal} == expected_types
    assert len(terminal) == len(expected_types)
    assert {e["detail"]["event_id"] for e in commit["events"]} == {i for _, i in terminal}


def test_the_batched_scenario_is_read_in_many_batches() -> None:
    data, _ = _split_in_batches()
    assert len(list(BatchReader(data, "f.csv", load_contract("transactions"), SMALL_BATCHES))) > 5


@pytest.mark.slow
def test_the_dataset_build_reads_only_committed_outputs(ingest: Ingest, faults: Faults, tmp_path: Any) -> None:
    """One object committed, one failed just before its commit (every other file written): the Dask build
    reads the first one's rows only."""
    from jobs.batch.build import build_dataset
    from jobs.batch.cluster import ClusterSpec, dask_client
    from jobs.batch.inputs import BuildParams

    committed = ingest.put("committed.csv", to_bytes(generate(40, DAY, seed=41), "csv"))
    assert ingest.invoke(ingest.sqs_event(committed))["batchItemFailures"] == []
    data, _ = _split_file()
    partial = ingest.put("partial.csv", data)
    faults.calls, faults.fail_at = [], 7  # the manifest write of the split scenario
    assert ingest.invoke(ingest.sqs_event(partial))["batchItemFailures"] != []
    assert faults.calls[-1] == "s3:PutObject" and len(ingest.keys("curated")) == 2 + 3  # written, not committed

    options = {**ingest.cloud.storage_options, "skip_instance_cache": True}
    with dask_client(ClusterSpec(n_workers=1, threads_per_worker=1, processes=True)) as client:
        built = build_dataset(
            f"s3://{NAMES.bucket('curated')}", f"file://{tmp_path}/datasets", BuildParams(), client, options
        )

    assert built.manifest["rows"]["input"] == 40
    assert [i["key"] for i in built.manifest["inputs"]] == [
        k for k in ingest.keys("curated") if k.endswith(".parquet") and "committed." in k
    ]
