"""The retraining runner on the kubernetes target under Pulumi mocks: its RBAC exactly (any widening fails),
nothing cluster-wide, no Secret but the object store's keys, and its two CronJobs' commands run through the real
CLI against the fake API server and the embedded cloud, every call one its Roles allow in that namespace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from click.testing import CliRunner

from jobs import rollout_target
from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from schemas import manifests
from schemas.naming import Names
from tests.infra.stack_run import StackRun, run_stack
from tests.infra.stack_run import stack_config as file_config
from tests.kube_fake import FakeKubeApi

NAMES = Names("tidewater", "onprem")
TRAINING, SERVING = NAMES.k8s_namespace("training"), NAMES.k8s_namespace("serving")
RUNNER, SCHEDULE = NAMES.retraining_runner, NAMES.retraining_schedule
ISVC = NAMES.inference_service("fraud")
ROLE, BINDING = "kubernetes:rbac.authorization.k8s.io/v1:Role", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CRON_JOB, SECRET = "kubernetes:batch/v1:CronJob", "kubernetes:core/v1:Secret"
# The whole grant, per namespace, spelt out here rather than derived from the builder: a widened Role fails.
EXPECTED_RULES = {
    TRAINING: [{"apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"], "verbs": ["create", "get"]}],
    SERVING: [
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "resourceNames": [ISVC],
         "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]},
    ],
}  # fmt: skip
# What each call of the fake API server is, in RBAC terms: (namespace, group, resource, verb).
CALLS = {
    "get-pytorchjobs": (TRAINING, "kubeflow.org", "pytorchjobs", "get"),
    "create-pytorchjobs": (TRAINING, "kubeflow.org", "pytorchjobs", "create"),
    "get-isvc": (SERVING, "serving.kserve.io", "inferenceservices", "get"),
    "patch-isvc": (SERVING, "serving.kserve.io", "inferenceservices", "patch"),
    "read": (SERVING, "", "configmaps", "get"), "list": (SERVING, "", "configmaps", "list"),
    "create": (SERVING, "", "configmaps", "create"), "replace": (SERVING, "", "configmaps", "update"),
}  # fmt: skip
KEYS = {"AWS_ACCESS_KEY_ID": "minio-key", "AWS_SECRET_ACCESS_KEY": "minio-secret"}
SCHEDULED = {"tidewater:retrain_scheduled": "0 6 * * 1", "tidewater:retrain_policy": "auto",
             "tidewater:k8s_storage_access_key_id": KEYS["AWS_ACCESS_KEY_ID"],
             "tidewater:k8s_storage_secret_access_key": KEYS["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip


def _run(tmp: Path, **overrides: str) -> StackRun:
    return run_stack("onprem", tmp, file_config("onprem") | SCHEDULED | overrides)


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return _run(tmp_path_factory.mktemp("k8s-retrain"))


def _mine(run: StackRun, typ: str) -> list[Any]:
    return [d for d in run.of_type(typ) if d.inputs["metadata"]["name"] in (RUNNER, SCHEDULE)]


def _allowed(run: StackRun) -> set[tuple[str, str, str, str]]:
    return {(role.inputs["metadata"]["namespace"], g, r, v) for role in _mine(run, ROLE)
            for rule in role.inputs["rules"] for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}  # fmt: skip


def test_the_runner_has_exactly_its_roles_in_two_namespaces_and_nothing_cluster_wide(serving: StackRun) -> None:
    roles = {r.inputs["metadata"]["namespace"]: r.inputs["rules"] for r in _mine(serving, ROLE)}
    assert roles == EXPECTED_RULES
    assert not [d for d in serving.declared if "ClusterRole" in d.type]
    bindings = {b.inputs["metadata"]["namespace"]: b.inputs for b in _mine(serving, BINDING)}
    assert set(bindings) == {TRAINING, SERVING}
    for binding in bindings.values():  # both bind the runner's own account, in the training namespace
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RUNNER}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RUNNER, "namespace": TRAINING}]
    accounts = _mine(serving, "kubernetes:core/v1:ServiceAccount")
    assert [a.inputs["metadata"]["namespace"] for a in accounts] == [TRAINING]
    assert NAMES.k8s_service_account("training") != RUNNER  # not the training pods' account
    for rules in roles.values():
        assert not [r for r in rules if "secrets" in r["resources"] or "*" in json.dumps(r)]


def test_its_cronjobs_are_the_schedule_and_the_runner_with_only_the_stores_keys(serving: StackRun) -> None:
    jobs = {j.inputs["metadata"]["name"]: j.inputs for j in serving.of_type(CRON_JOB)
            if j.inputs["metadata"]["namespace"] == TRAINING}  # fmt: skip
    assert set(jobs) == {RUNNER, SCHEDULE}
    assert jobs[RUNNER]["spec"]["schedule"] == "*/15 * * * *" and jobs[SCHEDULE]["spec"]["schedule"] == "0 6 * * 1"
    secret = NAMES.k8s_storage_secret("training")
    for name, job in jobs.items():
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == RUNNER and pod["priorityClassName"] == NAMES.priority_class("training")
        (container,) = pod["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": secret}}]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["AWS_ENDPOINT_URL"] == "http://minio.minio.svc.cluster.local:9000"
        firing = ["--scheduled-dataset", "transactions"] if name == SCHEDULE else []
        assert container["command"] == ["tide", "retrain", "--stack-outputs", "/etc/tidewater/stack.json", *firing]
    (stored,) = [s.inputs for s in serving.of_type(SECRET) if s.inputs["metadata"]["namespace"] == TRAINING]
    assert stored["metadata"]["name"] == secret
    keys = stored["stringData"]
    assert len(keys) == 2 and keys["value"] == KEYS
    assert pulumi.runtime.rpc._special_sig_key in keys  # kept a Pulumi secret
    (config,) = [c.inputs for c in serving.of_type("kubernetes:core/v1:ConfigMap")
                 if c.inputs["metadata"]["name"] == RUNNER]  # fmt: skip
    document = json.loads(config["data"]["stack.json"])
    assert document["target"] == "kubernetes" and document["k8s_inference_service"] == ISVC
    assert document["retraining"] == serving.outputs["retraining"] and document["retraining"]["backend"] == "kubernetes"
    assert document["buckets"]["artifacts"] == NAMES.bucket("artifacts")
    assert serving.outputs["k8s_retraining"] == {"cron_job": RUNNER, "schedule": SCHEDULE, "namespace": TRAINING}


def test_before_stage_serving_it_reaches_nothing_in_serving(tmp_path: Path) -> None:
    run = _run(tmp_path, **{"tidewater:stage": "platform", "tidewater:champion_model_version": ""})
    roles = {r.inputs["metadata"]["namespace"]: r.inputs["rules"] for r in _mine(run, ROLE)}
    assert roles == {TRAINING: EXPECTED_RULES[TRAINING]} and {b.inputs["metadata"]["namespace"]
                                                              for b in _mine(run, BINDING)} == {TRAINING}  # fmt: skip


def test_without_a_schedule_there_is_no_runner(tmp_path: Path) -> None:
    run = run_stack("onprem", tmp_path, file_config("onprem"))
    assert _mine(run, CRON_JOB) == [] and _mine(run, ROLE) == [] and "k8s_retraining" not in run.outputs


def test_a_store_without_the_s3_api_is_refused_naming_the_keys(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="k8s_storage_protocol s3"):
        _run(tmp_path, **{"tidewater:k8s_storage_protocol": "gs", "tidewater:k8s_storage_endpoint": ""})


def test_the_deployed_cronjobs_run_the_loop_within_their_roles(
    serving: StackRun, cloud: EmbeddedCloud, tmp_path: Path
) -> None:
    """Both CronJobs' commands, with the ConfigMap the stack wrote as their stack outputs, through the real CLI:
    the schedule launches the PyTorchJob, the runner makes the finished model the canary and starts the rollout;
    every API call is one the runner's Roles allow in its namespace."""
    (config,) = [c.inputs for c in serving.of_type("kubernetes:core/v1:ConfigMap")
                 if c.inputs["metadata"]["name"] == RUNNER]  # fmt: skip
    outputs = tmp_path / "stack.json"
    outputs.write_text(config["data"]["stack.json"])
    s3 = cloud.client("s3")
    for zone in ("datasets", "artifacts"):
        s3.create_bucket(Bucket=NAMES.bucket(zone))
    s3.put_object(Bucket=NAMES.bucket("datasets"), Key="transactions/0a1b/manifest.json", Body=b"{}")
    api = FakeKubeApi((TRAINING, SERVING))
    served = f"s3://{NAMES.bucket('artifacts')}/models/fraud/3f9c2a71b04d8e65"
    api.objects[(SERVING, ISVC)] = manifests.inference_service(ISVC, namespace=SERVING, image="i", storage_uri=served)
    jobs = {j.inputs["metadata"]["name"]: j.inputs for j in serving.of_type(CRON_JOB)
            if j.inputs["metadata"]["namespace"] == TRAINING}  # fmt: skip

    def run(name: str) -> dict[str, Any]:
        (container,) = jobs[name]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        command = [outputs.as_posix() if c == "/etc/tidewater/stack.json" else c for c in container["command"]]
        original = rollout_target.kube_clients
        rollout_target.kube_clients = lambda kubeconfig, context: (api, api)  # in a pod: its service account
        try:
            result = CliRunner().invoke(main, command[1:])
        finally:
            rollout_target.kube_clients = original
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    (version,) = run(SCHEDULE)["launched"]
    job = api.custom[("pytorchjobs", TRAINING, f"retrain-{version}")]
    (worker,) = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    assert worker["envFrom"] == [{"secretRef": {"name": NAMES.k8s_storage_secret("training")}}]  # the store's keys
    job["status"] = {"conditions": [{"type": "Succeeded", "status": "True"}]}
    model = f"models/fraud/{version}/metadata.json"
    s3.put_object(Bucket=NAMES.bucket("artifacts"), Key=model, Body=json.dumps({"model": "fraud"}).encode())
    assert run(RUNNER)["rollouts"] == [f"retrain-{version}"]
    canary, step = api.patches  # the model as the canary revision at 0 %, then the rollout's first step
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert manifests.predictor_storage_uri(api.objects[(SERVING, ISVC)]) == served.replace("3f9c2a71b04d8e65", version)
    assert step["spec"]["predictor"]["canaryTrafficPercent"] == api.percent(SERVING, ISVC) > 0
    made = {CALLS[c] for c in api.calls}
    assert made <= _allowed(serving), made - _allowed(serving)
    assert ("", "configmaps", "create") in {m[1:] for m in made} and len(made) >= 6
