"""`tide retrain` on the embedded cloud: the retraining queue (SQS), datasets and progress records (S3), training
jobs and the endpoint (SageMaker), guards (CloudWatch, Auto Scaling) and the rollout table (DynamoDB), in moto.

The training job itself does not run in moto: where a test needs the trained model it writes what the worker
writes last (metadata.json, the completion marker, and the package), as a finished job would.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.common.events import EventBridgePublisher, RecordingPublisher
from functions.traffic.adapters.cloudwatch import CloudWatchMetrics
from functions.traffic.adapters.sagemaker import SageMakerBackend
from functions.traffic.adapters.store import DynamoDBStateStore
from functions.traffic.service import Rollouts
from jobs.deploy.guards import VariantGuards
from jobs.embedded_cloud import EmbeddedCloud
from jobs.launch.base import JobSpec, Submitted
from jobs.retrain.records import Record, RecordStore
from jobs.retrain.runner import Retrainer, RetrainError
from jobs.retrain.serving import SageMakerChallenger, TrafficRollouts
from jobs.retrain.training import KubernetesTraining, SageMakerTraining
from jobs.retrain.triggers import QueueTriggers
from jobs.train.config import TrainConfig
from schemas.events import (
    RETRAINING_TRIGGERS,
    DriftDetected,
    LargeFileHandedOff,
    ModelQualityDegraded,
    RetrainingScheduled,
    parse_event,
    rule_pattern,
)
from schemas.naming import Names, retraining_record_key, variant_alarm
from tests.functions.test_traffic import create_table
from tests.jobs.test_deploy import MotoWithUpdateEndpoint
from tests.jobs.test_deploy_guards import CHAMPION, ENDPOINT, stack_first_variant

NAMES = Names("tidewater", "dev")
DATASETS, ARTIFACTS = NAMES.bucket("datasets"), NAMES.bucket("artifacts")
TRAIN_ROLE = "arn:aws:iam::123456789012:role/tidewater-dev-training"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tidewater-dev-train:1"
SERVE_ROLE = "arn:aws:iam::123456789012:role/tide-serve"
ROLLOUT = {"strategy": {"kind": "canary", "steps": [0.1, 1.0]}}


class Faults:
    """Counts every cloud call through the wrapped clients and fails the k-th one (a throttle AWS can return)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at, self.calls = fail_at, 0

    def tick(self, operation: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, operation)


class Flaky:
    def __init__(self, client: Any, faults: Faults) -> None:
        self._client, self._faults = client, faults

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "get_waiter" or not callable(attr):
            return attr
        if name == "get_paginator":
            return lambda op: _FlakyPaginator(attr(op), self._faults, op)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._faults.tick(name)
            return attr(*args, **kwargs)

        return call


@dataclass
class _FlakyPaginator:
    paginator: Any
    faults: Faults
    operation: str

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.faults.tick(self.operation)
        return iter(list(self.paginator.paginate(**kwargs)))


class MotoTrainingLauncher:
    """Stands in for the sagemaker SDK's ModelTrainer (tested on moto in test_launchers): one CreateTrainingJob
    named <base name>-<suffix>, as the SDK names it."""

    def __init__(self, sagemaker: Any) -> None:
        self.sm = sagemaker

    def launch(self, config: TrainConfig, spec: JobSpec) -> Submitted:
        name = f"{spec.name}-20261130"
        self.sm.create_training_job(
            TrainingJobName=name, RoleArn=TRAIN_ROLE, HyperParameters={"config": f"{config.model_url}/job.json"},
            AlgorithmSpecification={"TrainingImage": spec.image, "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": config.model_url}, StoppingCondition={"MaxRuntimeInSeconds": 3600},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": spec.nodes, "VolumeSizeInGB": 30},
        )  # fmt: skip
        return Submitted("sagemaker", name, {"model_url": config.model_url})


def drift_envelope(dataset: str = "transactions", event_id: str = "evt-1") -> str:
    event = DriftDetected(endpoint=ENDPOINT, dataset=dataset, window_start=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
                          window_end=dt.datetime(2026, 11, 30, tzinfo=dt.UTC), drifted_features=["amount"],
                          report="s3://reports/drift.html", evidence={"amount": {"psi": 0.4}})  # fmt: skip
    return json.dumps({"id": event_id, "source": "tidewater", "detail-type": "DriftDetected",
                       "detail": event.detail()})  # fmt: skip


SERVING_VERSION = "00c0ffee00c0ffee"  # the version the endpoint serves, trained on transactions


def quality_envelope(version: str = SERVING_VERSION, event_id: str = "evt-q", dataset: str | None = None) -> str:
    """ModelQualityDegraded as functions/quality publishes it: the version, no dataset."""
    event = ModelQualityDegraded(endpoint=ENDPOINT, model_version=version, window_start=dt.datetime(2026, 11, 27,
                                 tzinfo=dt.UTC), window_end=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
                                 degraded_metrics=["auc"], labelled=4000, coverage=0.8, report="s3://reports/q.json",
                                 evidence={"auc": 0.7}, dataset=dataset)  # fmt: skip
    return json.dumps({"id": event_id, "source": "tidewater", "detail-type": "ModelQualityDegraded",
                       "detail": event.detail()})  # fmt: skip


def scheduled_envelope(model: str = "fraud", dataset: str = "transactions", event_id: str = "evt-s") -> str:
    """RetrainingScheduled as the stack's schedule puts it on the bus (infra: the scheduler's input as detail)."""
    detail = {"model": model, "dataset": dataset, "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/"
              "default/tidewater-dev-retraining", "occurred_at": "2026-11-30T06:00:00Z"}  # fmt: skip
    RetrainingScheduled.model_validate(detail)
    return json.dumps({"id": event_id, "source": "tidewater", "detail-type": "RetrainingScheduled", "detail": detail})


@dataclass
class World:
    cloud: EmbeddedCloud
    queue_url: str
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)

    def retrainer(self, faults: Faults | None = None, policy: str = "auto", serving: bool = True) -> Retrainer:
        faults = faults or Faults()

        def client(service: str) -> Any:
            raw = self.cloud.client(service)
            return Flaky(MotoWithUpdateEndpoint(raw) if service == "sagemaker" else raw, faults)

        s3, sm = client("s3"), client("sagemaker")
        spec = JobSpec(name="retrain", image=IMAGE)
        deploy = rollouts = None
        if serving:
            settings = {"endpoint": ENDPOINT, "image": "img", "role_arn": SERVE_ROLE, "instance_type": "ml.m5.large",
                        "capture_destination": f"s3://{NAMES.bucket('captures')}/datacapture"}  # fmt: skip
            guards = VariantGuards(client("cloudwatch"), client("application-autoscaling"))
            deploy = SageMakerChallenger(s3, sm, guards, settings)
            rollouts = TrafficRollouts(Rollouts(
                store=DynamoDBStateStore(client("dynamodb"), NAMES.rollout_table), backend=SageMakerBackend(sm),
                metrics=CloudWatchMetrics(client("cloudwatch")), publisher=self.publisher,
            ))  # fmt: skip
        return Retrainer(
            triggers=[QueueTriggers(client("sqs"), self.queue_url, receive_wait_seconds=0)], s3=s3,
            datasets_bucket=DATASETS, artifacts_bucket=ARTIFACTS,
            records=RecordStore(s3, ARTIFACTS, "fraud"), training=SageMakerTraining(MotoTrainingLauncher(sm), sm, spec),
            deploy=deploy, rollouts=rollouts, policy=policy, rollout_template=ROLLOUT,  # type: ignore[arg-type]
            model_name="fraud", echo=lambda line: None,
        )  # fmt: skip

    def send(self, body: str) -> None:
        self.cloud.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)

    def queued(self) -> int:
        counts = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self.cloud.client("sqs").get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=counts)
        return sum(int(attrs["Attributes"][c]) for c in counts)

    def jobs(self) -> list[str]:
        found = self.cloud.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
        return sorted(j["TrainingJobName"] for j in found)

    def records(self) -> list[Record]:
        s3 = self.cloud.client("s3")
        listed = s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="retraining/").get("Contents", [])
        bodies = [s3.get_object(Bucket=ARTIFACTS, Key=o["Key"])["Body"].read() for o in listed]
        return [Record.model_validate_json(body) for body in bodies]

    def finish_training(self) -> None:
        """What the worker writes at the end of every launched job whose model is not there yet."""
        s3 = self.cloud.client("s3")
        for record in self.records():
            prefix = record.model_url.removeprefix(f"s3://{ARTIFACTS}/")
            s3.put_object(Bucket=ARTIFACTS, Key=f"{prefix}/model.tar.gz", Body=b"tarball")
            metadata = {"model": record.model, "version": record.version, "artifacts": {"package": "model.tar.gz"},
                        "serving": {"entry_point": "inference.py"}}  # fmt: skip
            s3.put_object(Bucket=ARTIFACTS, Key=f"{prefix}/metadata.json", Body=json.dumps(metadata).encode())

    def rollouts(self) -> Rollouts:
        """The traffic function's service over the same cloud."""
        return Rollouts(
            store=DynamoDBStateStore(self.cloud.client("dynamodb"), NAMES.rollout_table),
            backend=SageMakerBackend(MotoWithUpdateEndpoint(self.cloud.client("sagemaker"))),
            metrics=CloudWatchMetrics(self.cloud.client("cloudwatch")),
            publisher=self.publisher,
        )

    def variants(self) -> dict[str, float]:
        return SageMakerBackend(self.cloud.client("sagemaker")).weights(ENDPOINT)


def build_world(cloud: EmbeddedCloud) -> World:
    s3 = cloud.client("s3")
    for bucket in (DATASETS, ARTIFACTS):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=DATASETS, Key="transactions/0a1b/manifest.json", Body=b'{"version": "0a1b"}')
    # Visibility 0: a message a failed run received is visible again at once (the redelivery after its timeout).
    url = cloud.client("sqs").create_queue(QueueName=NAMES.retraining_queue,
                                          Attributes={"VisibilityTimeout": "0"})["QueueUrl"]  # fmt: skip
    served = {"model": "fraud", "version": SERVING_VERSION, "dataset": {"name": "transactions", "version": "0a1b"}}
    s3.put_object(Bucket=ARTIFACTS, Key=f"models/fraud/{SERVING_VERSION}/metadata.json", Body=json.dumps(served))
    stack_first_variant(cloud.client("sagemaker"), cloud.client("cloudwatch"), cloud.client("application-autoscaling"))
    create_table(cloud.client("dynamodb"))
    return World(cloud, url)


@pytest.fixture
def world(cloud: EmbeddedCloud) -> World:
    return build_world(cloud)


def test_drift_launches_training_then_the_model_joins_as_challenger_and_the_rollout_starts(world: World) -> None:
    world.send(drift_envelope())
    first = world.retrainer().run()
    (version,) = first.launched
    assert world.jobs() == [f"retrain-{version}-20261130"] and world.queued() == 0
    (record,) = world.records()
    assert record.state == "launched" and record.model_url == f"s3://{ARTIFACTS}/models/fraud/{version}"
    assert record.manifest_url == f"s3://{DATASETS}/transactions/0a1b/manifest.json" and record.events == ["evt-1"]

    waiting = world.retrainer().run()  # the job runs: nothing to deploy yet
    assert waiting.training == [version] and world.variants() == {CHAMPION: 1.0}

    world.finish_training()
    done = world.retrainer().run()
    challenger = f"fraud-{version}"
    assert done.deployed == [version] and done.rollouts == [f"retrain-{version}"]
    assert world.variants() == pytest.approx({CHAMPION: 0.9, challenger: 0.1})  # the canary's first step, applied
    (record,) = world.records()
    assert (record.state, record.champion, record.challenger) == ("rollout_started", CHAMPION, challenger)
    alarms = world.cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix=variant_alarm(ENDPOINT, challenger, ""))
    assert len(alarms["MetricAlarms"]) == 2  # the champion's guards, copied to the challenger
    assert world.retrainer().run().to_dict() == {k: [] for k in done.to_dict()}  # nothing left to do


def test_policy_manual_stops_at_the_challenger_and_says_so(world: World) -> None:
    world.send(drift_envelope())
    world.retrainer(policy="manual").run()
    world.finish_training()
    lines: list[str] = []
    runner = world.retrainer(policy="manual")
    runner.echo = lines.append
    summary = runner.run()
    (version,) = summary.awaiting_approval
    assert world.variants() == {CHAMPION: 1.0, f"fraud-{version}": 0.0} and summary.rollouts == []
    assert any("policy manual" in line and "tide rollout start" in line for line in lines)
    assert world.cloud.client("dynamodb").scan(TableName=NAMES.rollout_table)["Items"] == []


def test_the_same_drift_twice_launches_once(world: World) -> None:
    world.send(drift_envelope(event_id="evt-1"))
    world.send(drift_envelope(event_id="evt-2"))
    summary = world.retrainer().run()
    assert len(summary.launched) == 1 and summary.duplicates == summary.launched
    world.send(drift_envelope(event_id="evt-3"))
    assert world.retrainer().run().duplicates == summary.launched
    assert len(world.jobs()) == 1 and world.queued() == 0


def test_before_stage_serving_the_trained_model_waits_for_the_endpoint(world: World) -> None:
    world.send(drift_envelope())
    (version,) = world.retrainer(serving=False).run().launched
    world.finish_training()
    summary = world.retrainer(serving=False).run()
    assert summary.training == [version] and summary.deployed == []
    assert world.records()[0].state == "launched" and world.variants() == {CHAMPION: 1.0}


def test_a_failed_training_job_is_recorded_as_failed_and_not_deployed(world: World) -> None:
    world.send(drift_envelope())
    runner = world.retrainer()
    (version,) = runner.run().launched

    class FailedJobs:
        def __init__(self, sm: Any) -> None:
            self.sm = sm

        def __getattr__(self, name: str) -> Any:
            return getattr(self.sm, name)

        def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
            return {"TrainingJobStatus": "Failed", "FailureReason": "OOM"}

    runner.training = SageMakerTraining(MotoTrainingLauncher(None), FailedJobs(world.cloud.client("sagemaker")),
                                        JobSpec(name="retrain", image=IMAGE))  # fmt: skip
    assert runner.run().failed == [version]
    (record,) = world.records()
    assert record.state == "failed" and "OOM" in record.reason and world.variants() == {CHAMPION: 1.0}
    assert world.retrainer().run().failed == []  # final: not looked at again


def test_a_model_the_endpoint_cannot_take_fails_its_record_and_the_queue_still_drains(world: World) -> None:
    world.send(drift_envelope())
    (first,) = world.retrainer().run().launched
    (record,) = world.records()
    prefix = record.model_url.removeprefix(f"s3://{ARTIFACTS}/")
    unpackaged = {"model": "fraud", "version": first, "artifacts": {}}  # trained before serving was packed
    s3 = world.cloud.client("s3")
    s3.put_object(Bucket=ARTIFACTS, Key=f"{prefix}/metadata.json", Body=json.dumps(unpackaged).encode())
    s3.put_object(Bucket=DATASETS, Key="payments/9f8e/manifest.json", Body=b"{}")
    world.send(drift_envelope(dataset="payments", event_id="evt-2"))
    summary = world.retrainer().run()
    assert summary.failed == [first] and len(summary.launched) == 1 and world.queued() == 0
    failed = next(r for r in world.records() if r.version == first)
    assert failed.state == "failed" and "no packaged model" in failed.reason
    assert world.variants() == {CHAMPION: 1.0}


def test_a_cloud_error_on_one_retraining_leaves_it_for_the_next_run(world: World) -> None:
    world.send(drift_envelope())
    world.retrainer().run()
    world.finish_training()
    world.cloud.client("dynamodb").delete_table(TableName=NAMES.rollout_table)  # the rollout cannot be stored
    summary = world.retrainer().run()
    (version,) = summary.deployed
    assert summary.retry and summary.retry[0].startswith(f"{version}: ") and summary.rollouts == []
    assert world.records()[0].state == "deployed"  # the challenger is in; the rollout is the step left
    create_table(world.cloud.client("dynamodb"))
    assert world.retrainer().run().rollouts == [f"retrain-{version}"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.text(max_size=40),
    st.dictionaries(st.sampled_from(["id", "detail-type", "detail"]), st.one_of(st.text(max_size=8), st.integers(),
                    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)), max_size=3).map(json.dumps),
    st.just(json.dumps({"detail-type": "DriftDetected", "detail": {"endpoint": "e"}})),
    st.just(json.dumps({"detail-type": "LargeFileHandedOff", "detail": LargeFileHandedOff(
        dataset="transactions", source="s3://raw/x", size_bytes=1).detail()})),
    st.just(drift_envelope(dataset="Not A Dataset")),
    st.just(drift_envelope(dataset="payments")),  # no version of it in the datasets bucket
    st.just(quality_envelope(version="ffffffffffffffff")),  # a version with no metadata.json: dataset unknown
    st.just(quality_envelope(version="../../other/x")),
    st.just(quality_envelope(dataset="payments")),
    st.just(scheduled_envelope(model="other")),  # another stack's model
    st.just(scheduled_envelope(dataset="payments")),
    st.text(max_size=12).map(lambda v: quality_envelope(version=v or "x")),
))  # fmt: skip
def test_a_message_that_cannot_start_training_stays_for_the_dlq(cloud: EmbeddedCloud, body: str) -> None:
    cloud.reset()
    world = build_world(cloud)
    world.send(body)
    summary = world.retrainer().run()
    assert len(summary.rejected) == 1 and summary.launched == [] and world.jobs() == []
    assert world.queued() == 1  # not deleted: the queue's redrive moves it to the DLQ after maxReceiveCount


def test_degraded_quality_retrains_on_the_dataset_the_degraded_version_was_trained_on(world: World) -> None:
    world.send(quality_envelope())
    lines: list[str] = []
    runner = world.retrainer()
    runner.echo = lines.append
    (version,) = runner.run().launched
    (record,) = world.records()
    assert record.manifest_url == f"s3://{DATASETS}/transactions/0a1b/manifest.json"
    assert (record.trigger, record.events) == ("ModelQualityDegraded", ["evt-q"]) and world.queued() == 0
    assert any(line.startswith("ModelQualityDegraded evt-q: launched retrain-") for line in lines)
    world.send(drift_envelope())  # drift on the same data: the same training
    assert world.retrainer().run().duplicates == [version] and len(world.jobs()) == 1
    world.finish_training()
    summary = world.retrainer().run()
    assert summary.rollouts == [f"retrain-{version}"]
    state = DynamoDBStateStore(world.cloud.client("dynamodb"), NAMES.rollout_table).load(ENDPOINT)
    assert state is not None and state.reason == "retrained after ModelQualityDegraded"


def test_a_degraded_version_whose_dataset_cannot_be_told_stays_for_the_dlq_with_the_reason(world: World) -> None:
    s3 = world.cloud.client("s3")
    for version, body in (("1111111111111111", b"{not json"), ("2222222222222222", b'{"model": "fraud"}')):
        s3.put_object(Bucket=ARTIFACTS, Key=f"models/fraud/{version}/metadata.json", Body=body)
        world.send(quality_envelope(version=version, event_id=f"evt-{version}"))
    world.send(quality_envelope(version="3333333333333333"))
    summary = world.retrainer().run()
    assert summary.launched == [] and world.queued() == 3 and len(summary.rejected) == 3
    reasons = " | ".join(summary.rejected)
    assert reasons.count("names no dataset") == 2 and "3333333333333333' has no s3://" in reasons
    world.send(quality_envelope(version="3333333333333333", dataset="transactions", event_id="evt-4"))
    assert len(world.retrainer().run().launched) == 1  # a producer that names the dataset needs no metadata


def test_a_version_trained_before_by_tide_train_is_not_trained_again(world: World) -> None:
    """Degraded quality with no new data asks for the degraded version itself: nothing launched, nothing
    overwritten, the message done."""
    config = TrainConfig(manifest_url=f"s3://{DATASETS}/transactions/0a1b/manifest.json",
                         output_url=f"s3://{ARTIFACTS}", model_name="fraud")  # fmt: skip
    served = {"model": "fraud", "version": config.version, "dataset": {"name": "transactions", "version": "0a1b"}}
    key = f"models/fraud/{config.version}/metadata.json"
    world.cloud.client("s3").put_object(Bucket=ARTIFACTS, Key=key, Body=json.dumps(served).encode())
    world.send(quality_envelope(version=config.version))
    world.send(scheduled_envelope())
    lines: list[str] = []
    runner = world.retrainer()
    runner.echo = lines.append
    summary = runner.run()
    assert summary.launched == [] and summary.duplicates == [config.version] * 2 and world.queued() == 0
    assert world.jobs() == [] and world.records() == []
    assert all("exists already" in line and "nothing new launched" in line for line in lines), lines


def test_a_schedule_firing_on_an_unchanged_dataset_launches_nothing_new_and_says_so(world: World) -> None:
    world.send(scheduled_envelope(event_id="evt-s1"))
    (first,) = world.retrainer().run().launched
    assert world.records()[0].trigger == "RetrainingScheduled"
    world.send(scheduled_envelope(event_id="evt-s2"))
    lines: list[str] = []
    runner = world.retrainer()
    runner.echo = lines.append
    assert runner.run().duplicates == [first] and world.queued() == 0 and len(world.jobs()) == 1
    (line,) = [line for line in lines if line.startswith("RetrainingScheduled evt-s2")]
    assert "nothing new launched" in line and "transactions/0a1b/manifest.json" in line and first in line
    # A new dataset version (`tide ingest`): the next firing trains on it.
    world.cloud.client("s3").put_object(Bucket=DATASETS, Key="transactions/0b2c/manifest.json", Body=b"{}")
    world.send(scheduled_envelope(event_id="evt-s3"))
    (second,) = world.retrainer().run().launched
    assert second != first and len(world.jobs()) == 2


def test_the_stacks_rule_takes_each_trigger_from_the_bus_to_the_runner(world: World) -> None:
    """The bus rule's pattern (the one infra declares) on the embedded cloud's EventBridge: each trigger, published
    as its producer publishes it, reaches the queue and is used; other platform events do not reach it."""
    events, sqs = world.cloud.client("events"), world.cloud.client("sqs")
    events.create_event_bus(Name=NAMES.event_bus)
    arn = sqs.get_queue_attributes(QueueUrl=world.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="retraining", EventBusName=NAMES.event_bus,
                    EventPattern=json.dumps(rule_pattern(RETRAINING_TRIGGERS)))  # fmt: skip
    events.put_targets(Rule="retraining", EventBusName=NAMES.event_bus, Targets=[{"Id": "q", "Arn": arn}])
    publisher = EventBridgePublisher(events, NAMES.event_bus)
    bodies = [drift_envelope(), quality_envelope(), scheduled_envelope()]
    for body in bodies:
        envelope = json.loads(body)
        publisher.publish(parse_event(envelope["detail-type"], envelope["detail"]))
    publisher.publish(LargeFileHandedOff(dataset="transactions", source="s3://raw/x", size_bytes=1))
    assert world.queued() == 3
    summary = world.retrainer().run()
    assert len(summary.launched) == 1 and summary.duplicates == summary.launched * 2 and world.queued() == 0
    (record,) = world.records()
    assert record.trigger in RETRAINING_TRIGGERS and len(world.jobs()) == 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadata=st.one_of(
    st.binary(max_size=40),
    _JSON.map(lambda v: json.dumps(v).encode()),
    _JSON.map(lambda v: json.dumps({"dataset": {"name": v}}).encode()),
    st.sampled_from(["transactions", "payments", "Bad Name", ""]).map(
        lambda n: json.dumps({"dataset": {"name": n, "version": "0a1b"}}).encode()),
))  # fmt: skip
def test_any_metadata_of_a_degraded_version_launches_or_leaves_the_message_with_a_reason(
    cloud: EmbeddedCloud, metadata: bytes
) -> None:
    cloud.reset()
    world = build_world(cloud)
    cloud.client("s3").put_object(Bucket=ARTIFACTS, Key=f"models/fraud/{SERVING_VERSION}/metadata.json", Body=metadata)
    world.send(quality_envelope())
    summary = world.retrainer().run()  # never raises on what the metadata holds
    try:
        names_transactions = json.loads(metadata)["dataset"]["name"] == "transactions"  # the one with a version
    except (ValueError, TypeError, KeyError):
        names_transactions = False
    assert len(summary.launched) == (1 if names_transactions else 0)
    assert len(summary.rejected) == (0 if names_transactions else 1) and world.queued() == len(summary.rejected)


def test_a_rollout_config_that_sets_the_variants_is_refused_up_front(world: World) -> None:
    runner = world.retrainer()
    with pytest.raises(RetrainError, match="must not set champion"):
        Retrainer(**{**runner.__dict__, "rollout_template": {**ROLLOUT, "champion": "x"}})
    with pytest.raises(RetrainError, match="invalid rollout config"):
        Retrainer(**{**runner.__dict__, "rollout_template": {"strategy": {"kind": "canary", "steps": [2]}}})


def _until_done(world: World, faults: Faults) -> None:
    """Runs as the CronJob would, one fault among all their calls; after each run, what a reader sees is whole:
    never two jobs, never a deleted message without its record, a record's model at its recorded state."""
    for _ in range(6):
        try:
            world.retrainer(faults).run()
        except ClientError as err:
            assert "injected" in str(err)
        jobs, records = world.jobs(), world.records()
        assert len(jobs) <= 1 and len(records) <= 1
        if world.queued() == 0:
            assert len(records) == 1 and records[0].job_id in jobs
        if records and records[0].state == "rollout_started":
            return
        if records:
            world.finish_training()
    raise AssertionError("the retraining did not finish in six runs")


def send_every_trigger(world: World) -> None:
    """Drift, degraded quality of the served version and the schedule: all three ask for the same training."""
    world.send(drift_envelope())
    world.send(quality_envelope())
    world.send(scheduled_envelope())


def test_a_failed_cloud_call_at_any_point_is_resumed_by_the_next_run_and_launches_once(cloud: EmbeddedCloud) -> None:
    world = build_world(cloud)
    send_every_trigger(world)
    counted = Faults()
    _until_done(world, counted)
    total = counted.calls
    assert total > 20, total
    expected_weights = world.variants()
    for k in range(1, total + 1):
        cloud.reset()
        world = build_world(cloud)
        send_every_trigger(world)
        _until_done(world, Faults(fail_at=k))
        (record,) = world.records()
        assert world.jobs() == [record.job_id] and world.queued() == 0, k
        state = DynamoDBStateStore(cloud.client("dynamodb"), NAMES.rollout_table).load(ENDPOINT)
        assert state is not None and state.rollout_id == record.rollout_id, k
        assert state.weights == pytest.approx(expected_weights), k
        # A fault while the endpoint took the first weights leaves them committed, not applied: the traffic
        # function's next tick applies them, as after `tide rollout start`.
        world.rollouts().tick(ENDPOINT)
        assert world.variants() == pytest.approx(expected_weights), k
        items = world.cloud.client("dynamodb").scan(TableName=NAMES.rollout_table)["Items"]
        assert {i["rollout_id"]["S"] for i in items if "rollout_id" in i} == {record.rollout_id}, k


def test_records_are_read_back_and_a_broken_one_is_named(world: World) -> None:
    store = RecordStore(world.cloud.client("s3"), ARTIFACTS, "fraud")
    assert store.get("0123456789abcdef") is None
    world.cloud.client("s3").put_object(Bucket=ARTIFACTS, Key=retraining_record_key("fraud", "0123456789abcdef"),
                                        Body=b"{not json")  # fmt: skip
    with pytest.raises(Exception, match=r"retraining/fraud/0123456789abcdef.json is not a retraining record"):
        store.unfinished()


class FakePyTorchJobs:
    """kubernetes.client.CustomObjectsApi for PyTorchJobs: create, get (404 when absent)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        self.jobs[body["metadata"]["name"]] = body
        return {"metadata": {"uid": "u-1"}}

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
        if name not in self.jobs:
            err = RuntimeError("Not Found")
            err.status = 404  # type: ignore[attr-defined]
            raise err
        return self.jobs[name]


def test_on_kubernetes_the_retraining_is_a_pytorchjob_in_the_training_namespace(world: World) -> None:
    from jobs.launch.kubernetes import KubernetesPyTorchJob, Placement

    api = FakePyTorchJobs()
    placement = Placement(namespace=NAMES.k8s_namespace("training"), service_account="sa", priority_class="pc",
                          gpus_per_worker=1, gpu_vendor="nvidia")  # fmt: skip
    training = KubernetesTraining(KubernetesPyTorchJob(api, placement), api, placement.namespace,
                                  JobSpec(name="retrain", image=IMAGE))  # fmt: skip
    runner = world.retrainer(serving=False)
    runner.training = training
    world.send(drift_envelope())
    (version,) = runner.run().launched
    name = f"retrain-{version}"
    assert set(api.jobs) == {name} and world.records()[0].job_id == f"{placement.namespace}/{name}"
    job = api.jobs[name]
    assert job["metadata"]["namespace"] == placement.namespace
    assert training.find(name) == f"{placement.namespace}/{name}" and training.find("other") is None
    assert training.state(f"{placement.namespace}/{name}")[0] == "running"
    job["status"] = {"conditions": [{"type": "Failed", "status": "True", "message": "OOMKilled"}]}
    assert training.state(f"{placement.namespace}/{name}") == ("failed", f"PyTorchJob {placement.namespace}/{name} "
                                                               "failed: OOMKilled")  # fmt: skip
    job["status"] = {"conditions": [{"type": "Succeeded", "status": "True"}]}
    assert training.state(f"{placement.namespace}/{name}") == ("succeeded", "")


def test_the_cli_without_its_outputs_file_is_one_line(tmp_path: Any) -> None:
    from jobs.cli import main

    result = CliRunner().invoke(main, ["retrain", "--stack-outputs", str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "cannot read stack outputs" in result.output
    assert "Traceback" not in result.output
    lake = tmp_path / "lake.json"
    lake.write_text(json.dumps({"project": "tidewater", "stack": "dev", "stage": "lake", "model_name": "fraud",
                                "buckets": {z: NAMES.bucket(z) for z in ("datasets", "artifacts")},
                                "retraining": {"training_image": IMAGE}}))  # fmt: skip
    result = CliRunner().invoke(main, ["retrain", "--stack-outputs", str(lake)])
    assert result.exit_code == 1 and "training_role_arn" in result.output and "stage platform" in result.output


@pytest.mark.slow
def test_the_cli_launches_a_sagemaker_job_through_the_sdk_and_resumes_from_its_record(
    world: World, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tide retrain` as the CronJob runs it, against the embedded cloud, at stage platform (no endpoint yet)."""
    from jobs.cli import main

    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")  # moto has no iam:SimulatePrincipalPolicy
    outputs = tmp_path / "stack.json"
    outputs.write_text(json.dumps({
        "project": "tidewater", "stack": "dev", "stage": "platform", "model_name": "fraud",
        "buckets": {z: NAMES.bucket(z) for z in ("datasets", "artifacts")}, "training_role_arn": TRAIN_ROLE,
        "retraining_queue_url": world.queue_url,
        "retraining": {"backend": "sagemaker", "policy": "auto", "rollout": ROLLOUT, "training_image": IMAGE,
                       "instance_type": "ml.g5.xlarge"},
    }))  # fmt: skip
    world.send(drift_envelope())
    result = CliRunner().invoke(main, ["retrain", "--stack-outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    (version,) = summary["launched"]
    (job,) = world.jobs()
    assert job.startswith(f"retrain-{version}-") and world.queued() == 0
    described = world.cloud.client("sagemaker").describe_training_job(TrainingJobName=job)
    assert described["RoleArn"] == TRAIN_ROLE and described["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert described["OutputDataConfig"]["S3OutputPath"] == f"s3://{ARTIFACTS}/models/fraud/{version}"

    world.send(drift_envelope(event_id="evt-2"))  # the same drift again, and the model written meanwhile
    world.finish_training()
    again = CliRunner().invoke(main, ["retrain", "--stack-outputs", str(outputs)])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["duplicates"] == [version] and summary["training"] == [version] and len(world.jobs()) == 1
    assert "the stack has no endpoint yet" in again.stderr


@pytest.mark.slow
def test_the_cli_retrains_on_degraded_quality_and_on_schedule_and_leaves_what_it_cannot_use(
    world: World, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tide retrain` as the CronJob runs it, on the new triggers: the degraded version's dataset read from its
    metadata, the schedule's firing on unchanged data a duplicate, the unusable messages left with their reason."""
    from jobs.cli import main

    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")  # moto has no iam:SimulatePrincipalPolicy
    outputs = tmp_path / "stack.json"
    outputs.write_text(json.dumps({
        "project": "tidewater", "stack": "dev", "stage": "platform", "model_name": "fraud",
        "buckets": {z: NAMES.bucket(z) for z in ("datasets", "artifacts")}, "training_role_arn": TRAIN_ROLE,
        "retraining_queue_url": world.queue_url,
        "retraining": {"backend": "sagemaker", "policy": "manual", "training_image": IMAGE},
    }))  # fmt: skip
    world.send(quality_envelope())
    world.send(quality_envelope(version="ffffffffffffffff", event_id="evt-unknown"))
    world.send(scheduled_envelope(model="payments-model", event_id="evt-other"))
    result = CliRunner().invoke(main, ["retrain", "--stack-outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    (version,) = summary["launched"]
    (job,) = world.jobs()
    assert job.startswith(f"retrain-{version}-") and len(summary["rejected"]) == 2 and world.queued() == 2
    assert "'ffffffffffffffff' has no s3://" in result.stderr and "this runner retrains 'fraud'" in result.stderr
    described = world.cloud.client("sagemaker").describe_training_job(TrainingJobName=job)
    assert described["OutputDataConfig"]["S3OutputPath"] == f"s3://{ARTIFACTS}/models/fraud/{version}"

    world.cloud.client("sqs").purge_queue(QueueUrl=world.queue_url)  # the two left for the DLQ
    world.send(scheduled_envelope())  # the schedule fires; the dataset has no new version
    again = CliRunner().invoke(main, ["retrain", "--stack-outputs", str(outputs)])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["duplicates"] == [version] and summary["launched"] == [] and len(world.jobs()) == 1
    assert f"RetrainingScheduled evt-s: nothing new launched: dataset version s3://{DATASETS}/transactions/0a1b/" in (
        again.stderr
    )
