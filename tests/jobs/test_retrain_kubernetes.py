"""`tide retrain` on the kubernetes target: the schedule's CronJob run is the trigger, a PyTorchJob the training,
the stack's InferenceService's canary at 0 % the challenger, the ConfigMap store the rollout. The API server is
tests/kube_fake.py, the object store moto's S3 (the embedded cloud), the steps the aws runner's own.

The PyTorchJob does not run: a test sets its status as the training operator would and writes what the worker
writes last (metadata.json, the completion marker, and the model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from functions.traffic.adapters.configmap_store import ConfigMapStateStore
from jobs import rollout_target
from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from jobs.launch.base import JobSpec
from jobs.launch.kubernetes import PLURAL
from jobs.retrain.kubernetes import kubernetes_retrainer
from jobs.retrain.records import Record
from jobs.retrain.triggers import ScheduleFiring
from jobs.stack_outputs import StackOutputs
from schemas import manifests
from schemas.naming import Names
from tests.kube_fake import FakeKubeApi, api_error

NAMES = Names("tidewater", "onprem")
TRAINING, SERVING = NAMES.k8s_namespace("training"), NAMES.k8s_namespace("serving")
DATASETS, ARTIFACTS = NAMES.bucket("datasets"), NAMES.bucket("artifacts")
ISVC = NAMES.inference_service("fraud")
CHAMPION = "00c0ffee00c0ffee"
IMAGE, SERVING_IMAGE = "registry.example/tidewater:train-1", "registry.example/tidewater:serve-1"
ROLLOUT = {"strategy": {"kind": "canary", "steps": [0.1, 1.0]}}


def stack_outputs(stage: str = "serving") -> dict[str, Any]:
    """What `pulumi stack output --json` gives for the kubernetes target (infra/program.py, ClusterPlatform)."""
    values: dict[str, Any] = {
        "target": "kubernetes", "stage": stage, "project": "tidewater", "stack": "onprem", "model_name": "fraud",
        "buckets": {zone: NAMES.bucket(zone) for zone in ("datasets", "artifacts")},
        "retraining": {"backend": "kubernetes", "policy": "auto", "rollout": ROLLOUT, "training_image": IMAGE},
        "k8s_namespaces": {role: NAMES.k8s_namespace(role) for role in ("training", "ingestion", "serving")},
        "k8s_training_job": {"namespace": TRAINING, "service_account": NAMES.k8s_service_account("training"),
                             "priority_class": NAMES.priority_class("training"), "gpus_per_worker": 1,
                             "gpu_vendor": "nvidia", "node_selector": {}, "storage_endpoint": "",
                             "storage_secret": NAMES.k8s_storage_secret("training")},
        "k8s_serving_image": SERVING_IMAGE,
    }  # fmt: skip
    if stage == "serving":
        values["k8s_inference_service"] = ISVC
    return values


class World:
    def __init__(self, cloud: EmbeddedCloud, tmp_path: Path, stage: str = "serving") -> None:
        self.cloud, self.api = cloud, FakeKubeApi((TRAINING, SERVING))
        s3 = cloud.client("s3")
        for bucket in (DATASETS, ARTIFACTS):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=DATASETS, Key="transactions/0a1b/manifest.json", Body=b'{"version": "0a1b"}')
        isvc = manifests.inference_service(ISVC, namespace=SERVING, image=SERVING_IMAGE,
                                           storage_uri=f"s3://{ARTIFACTS}/models/fraud/{CHAMPION}")  # fmt: skip
        isvc["metadata"]["uid"] = "uid-isvc"
        self.api.objects[(SERVING, ISVC)] = isvc
        self.outputs = tmp_path / "stack.json"
        self.outputs.write_text(json.dumps(stack_outputs(stage)))

    def tide(self, *args: str) -> Any:
        original = rollout_target.kube_clients
        rollout_target.kube_clients = lambda kubeconfig, context: (self.api, self.api)  # the pod's account
        try:
            return CliRunner().invoke(main, ["retrain", "--stack-outputs", str(self.outputs), *args])
        finally:
            rollout_target.kube_clients = original

    def fire(self, firing: str = "f1") -> dict[str, list[str]]:
        """A run of the schedule's CronJob."""
        result = self.tide("--scheduled-dataset", "transactions", "--firing-id", firing)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {name: obj for (plural, ns, name), obj in self.api.custom.items() if plural == PLURAL and ns == TRAINING}

    def records(self) -> list[Record]:
        s3 = self.cloud.client("s3")
        listed = s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="retraining/").get("Contents", [])
        return [Record.model_validate_json(s3.get_object(Bucket=ARTIFACTS, Key=o["Key"])["Body"].read())
                for o in listed]  # fmt: skip

    def finish(self, outcome: str = "Succeeded", message: str = "") -> None:
        """The operator marks every job; on success the worker has written the model."""
        s3 = self.cloud.client("s3")
        for name, job in self.jobs().items():
            job["status"] = {"conditions": [{"type": outcome, "status": "True", "message": message}]}
            self.api.custom[(PLURAL, TRAINING, name)] = job
        if outcome != "Succeeded":
            return
        for record in self.records():
            prefix = record.model_url.removeprefix(f"s3://{ARTIFACTS}/")
            metadata = {"model": record.model, "version": record.version}
            s3.put_object(Bucket=ARTIFACTS, Key=f"{prefix}/metadata.json", Body=json.dumps(metadata).encode())

    def store(self) -> ConfigMapStateStore:
        return ConfigMapStateStore(self.api, SERVING, NAMES.rollout_store)

    def storage_uri(self) -> str | None:
        return manifests.predictor_storage_uri(self.api.objects[(SERVING, ISVC)])


def test_a_schedule_firing_launches_one_pytorchjob_and_an_unchanged_dataset_nothing_more(
    cloud: EmbeddedCloud, tmp_path: Path
) -> None:
    world = World(cloud, tmp_path)
    (version,) = world.fire("f1")["launched"]
    (name,) = world.jobs()
    assert name == f"retrain-{version}"
    pod = world.jobs()[name]["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["serviceAccountName"] == NAMES.k8s_service_account("training")  # placed like `tide train`
    assert pod["priorityClassName"] == NAMES.priority_class("training")
    assert pod["containers"][0]["image"] == IMAGE
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": NAMES.k8s_storage_secret("training")}}]
    (record,) = world.records()
    assert (record.state, record.trigger, record.events) == ("launched", "RetrainingScheduled", ["f1"])
    assert record.job_id == f"{TRAINING}/{name}"

    again = world.fire("f2")  # the next firing, the dataset unchanged
    assert again["duplicates"] == [version] and again["launched"] == [] and list(world.jobs()) == [name]
    assert world.api.patches == [] and world.store().active() == []


def test_a_finished_job_becomes_the_canary_at_0_then_one_rollout_in_the_configmap_store(
    cloud: EmbeddedCloud, tmp_path: Path
) -> None:
    world = World(cloud, tmp_path)
    (version,) = world.fire()["launched"]
    result = world.tide()  # the runner's own CronJob run: no firing, only earlier retrainings moved on
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[-1])["training"] == [version]
    world.finish()
    result = world.tide()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["deployed"] == [version] and summary["rollouts"] == [f"retrain-{version}"]
    model_url = f"s3://{ARTIFACTS}/models/fraud/{version}"
    canary, step = world.api.patches  # the deploy (canary revision at 0 %), then the rollout's first step
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 0 and world.storage_uri() == model_url
    assert step == {"spec": {"predictor": {"canaryTrafficPercent": 10}}} and world.api.percent(SERVING, ISVC) == 10
    assert world.store().active() == [ISVC]
    state = world.store().load(ISVC)
    assert state is not None and state.rollout_id == f"retrain-{version}"
    assert (state.config.champion, state.config.challenger) == ("prev", "latest")
    assert state.reason == "retrained after RetrainingScheduled"
    (record,) = world.records()
    assert (record.state, record.endpoint, record.rollout_id) == ("rollout_started", ISVC, f"retrain-{version}")
    assert world.tide().exit_code == 0 and len(world.api.patches) == 2  # nothing left to do


def test_policy_manual_leaves_the_canary_at_0_and_starts_no_rollout(cloud: EmbeddedCloud, tmp_path: Path) -> None:
    world = World(cloud, tmp_path)
    outputs = stack_outputs()
    outputs["retraining"]["policy"] = "manual"
    world.outputs.write_text(json.dumps(outputs))
    (version,) = world.fire()["launched"]
    world.finish()
    result = world.tide()
    assert json.loads(result.stdout.splitlines()[-1])["awaiting_approval"] == [version]
    assert world.api.percent(SERVING, ISVC) == 0 and world.storage_uri() == f"s3://{ARTIFACTS}/models/fraud/{version}"
    assert world.store().active() == [] and "tide rollout start" in result.stderr


def test_a_failed_pytorchjob_is_recorded_failed_and_never_deployed(cloud: EmbeddedCloud, tmp_path: Path) -> None:
    world = World(cloud, tmp_path)
    (version,) = world.fire()["launched"]
    world.finish("Failed", "worker-0 OOMKilled")
    result = world.tide()
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[-1])["failed"] == [version]
    (record,) = world.records()
    assert record.state == "failed" and "OOMKilled" in record.reason
    assert f"PyTorchJob {TRAINING}/retrain-{version} failed" in record.reason
    assert world.api.patches == [] and world.store().active() == []
    assert world.fire("f2")["duplicates"] == [version]  # not launched again on the same data


def test_before_stage_serving_the_model_waits_and_a_bad_dataset_is_named(cloud: EmbeddedCloud, tmp_path: Path) -> None:
    world = World(cloud, tmp_path, stage="platform")
    (version,) = world.fire()["launched"]
    world.finish()
    result = world.tide()
    assert json.loads(result.stdout.splitlines()[-1])["training"] == [version] and world.api.patches == []
    assert "the stack has no endpoint yet" in result.stderr
    bad = world.tide("--scheduled-dataset", "payments", "--firing-id", "f9")
    assert bad.exit_code == 0 and "scheduled retraining f9 started nothing" in bad.stderr
    assert "no version of dataset 'payments'" in bad.stderr and len(world.jobs()) == 1


def test_the_sagemaker_backend_on_the_kubernetes_target_is_one_line(cloud: EmbeddedCloud, tmp_path: Path) -> None:
    result = World(cloud, tmp_path).tide("--backend", "sagemaker")
    assert result.exit_code == 2 and "kubernetes target trains on the cluster" in result.output
    assert "Traceback" not in result.output


class Faults:
    """Counts the runner's calls to the object store and the API server together and fails the k-th."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at, self.calls = fail_at, 0

    def tick(self, operation: str, kube: bool) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            if kube:
                raise api_error(500, "InternalError", f"injected failure of {operation}")
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}}, operation)


class Flaky:
    def __init__(self, client: Any, faults: Faults, kube: bool) -> None:
        self._client, self._faults, self._kube = client, faults, kube

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        if name == "get_paginator":

            def paginator(op: str) -> Any:
                inner = attr(op)

                class Pages:
                    def paginate(_self, **kwargs: Any) -> Any:
                        self._faults.tick(op, self._kube)
                        return iter(list(inner.paginate(**kwargs)))

                return Pages()

            return paginator

        def call(*args: Any, **kwargs: Any) -> Any:
            self._faults.tick(name, self._kube)
            return attr(*args, **kwargs)

        return call


def _run(world: World, faults: Faults, firing: str) -> None:
    outputs = StackOutputs(stack_outputs(), "stack.json")
    api = Flaky(world.api, faults, kube=True)
    runner = kubernetes_retrainer(
        outputs, s3=Flaky(world.cloud.client("s3"), faults, kube=False), core=api, custom_objects=api,
        triggers=[ScheduleFiring("fraud", "transactions", firing)], spec=JobSpec(name="retrain", image=IMAGE),
        policy="auto", rollout_template=ROLLOUT, train_options={}, echo=lambda line: None,
    )  # fmt: skip
    try:
        runner.run()
    except (ClientError, ApiException) as err:
        assert "injected" in str(err) or "InternalError" in str(err)


def _until_done(world: World, faults: Faults) -> None:
    """The schedule's CronJob runs again and again, one fault among all their calls; after each run, never two
    jobs, never two records; the job finishes once launched."""
    for run in range(8):
        _run(world, faults, f"f{run}")
        jobs, records = world.jobs(), world.records()
        assert len(jobs) <= 1 and len(records) <= 1
        if records and records[0].state == "rollout_started":
            return
        if jobs:
            world.finish()
    raise AssertionError("the retraining did not finish in eight runs")


def test_a_failed_call_at_any_point_is_completed_by_the_next_run_with_one_job_canary_and_rollout(
    cloud: EmbeddedCloud, tmp_path: Path
) -> None:
    counted = Faults()
    _until_done(World(cloud, tmp_path), counted)
    total = counted.calls
    assert total > 15, total
    for k in range(1, total + 1):
        cloud.reset()
        world = World(cloud, tmp_path)
        _until_done(world, Faults(fail_at=k))
        (record,) = world.records()
        assert list(world.jobs()) == [record.job_name] and record.job_id == f"{TRAINING}/{record.job_name}", k
        model_uri = [p for p in world.api.patches if "containers" in p["spec"]["predictor"]]
        assert len(model_uri) == 1 and world.storage_uri() == record.model_url, k  # one canary revision
        assert model_uri[0]["spec"]["predictor"]["canaryTrafficPercent"] == 0, k
        states = [o for o in world.api.config_maps.values() if o["metadata"]["labels"].get("tidewater.io/rollout-part")
                  == "state"]  # fmt: skip
        assert len(states) == 1, k  # one rollout
        state = world.store().load(ISVC)
        assert state is not None and state.rollout_id == record.rollout_id == f"retrain-{record.version}", k
        assert state.weights == pytest.approx({"prev": 0.9, "latest": 0.1}), k
        # A fault while the InferenceService took the first step can leave it committed and not marked applied
        # (the patch or its read-back failed): the stack's rollout tick converges it, as after `tide rollout start`.
        assert world.api.percent(SERVING, ISVC) in ((10,) if state.applied_at else (0, 10)), k


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dataset=st.one_of(st.text(max_size=30), st.sampled_from(["transactions", "payments", "../transactions", ""])))
def test_any_scheduled_dataset_launches_or_starts_nothing_with_a_reason(
    cloud: EmbeddedCloud, tmp_path: Path, dataset: str
) -> None:
    cloud.reset()
    world = World(cloud, tmp_path)
    lines: list[str] = []
    runner = kubernetes_retrainer(
        StackOutputs(stack_outputs(), "stack.json"), s3=cloud.client("s3"), core=world.api, custom_objects=world.api,
        triggers=[ScheduleFiring("fraud", dataset, "f1")], spec=JobSpec(name="retrain", image=IMAGE), policy="auto",
        rollout_template=ROLLOUT, train_options={}, echo=lines.append,
    )  # fmt: skip
    summary = runner.run()  # never raises on the dataset it is given
    launched = dataset == "transactions"  # the one dataset with a version
    assert len(summary.launched) == len(world.jobs()) == (1 if launched else 0)
    assert len(summary.rejected) == (0 if launched else 1)
    assert launched or any(line.startswith("scheduled retraining f1 started nothing") for line in lines)
