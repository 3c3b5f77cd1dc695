"""`tide train --backend kubernetes` against what the stack creates: the PyTorchJob it submits lands in the
training namespace the stack made, runs as its IRSA service account with its PriorityClass, requests the
configured GPUs and tolerates the GPU node group's taint. The stack runs under Pulumi's mocks; its outputs go to
the CLI as the `pulumi stack output --json` file a user would write; the Kubernetes client is a recorder."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pytest
from click.testing import CliRunner

from infra.k8s import build_kubernetes_stack
from jobs.cli import main
from schemas.naming import Names
from tests.infra import k8s_harness as h

KMS = "arn:aws:kms:eu-west-1:123456789012:key/data"


class RecordingCustomObjects:
    created: ClassVar[list[dict[str, Any]]] = []

    def create_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        RecordingCustomObjects.created.append(kwargs)
        return {"metadata": {"uid": "uid-1"}}


@pytest.fixture
def kubernetes_client(monkeypatch: pytest.MonkeyPatch) -> type[RecordingCustomObjects]:
    """The `kubernetes` package (not a dependency) as the launcher uses it: load_config + CustomObjectsApi."""
    RecordingCustomObjects.created = []
    package = types.ModuleType("kubernetes")
    package.client = types.SimpleNamespace(CustomObjectsApi=RecordingCustomObjects)  # type: ignore[attr-defined]
    package.config = types.SimpleNamespace(load_config=lambda: None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kubernetes", package)
    return RecordingCustomObjects


def deployed(overrides: dict[str, Any]) -> tuple[h.RecordingMocks, dict[str, Any]]:
    """The aws target's compute under mocks; returns the registrations and the stack outputs file's content."""
    mocks = h.start("dev", h.stack_config(None, overrides))
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[None]:
        component = build_kubernetes_stack(Names("tidewater", "dev"), kms_key_arn=KMS)
        # As infra/program.py exports them: every compute output prefixed k8s_.
        return h.after_all(component, lambda: outputs.update({f"k8s_{k}": v for k, v in component.outputs.items()}))

    run()
    stack = {"project": "tidewater", "stack": "dev", "stage": "platform", "model_name": "fraud",
             "buckets": {"artifacts": "tidewater-dev-artifacts"}}  # fmt: skip
    return mocks, stack | {k: v for k, v in outputs.items() if k == "k8s_training_job"}


def submit(tmp_path: Path, outputs: dict[str, Any]) -> dict[str, Any]:
    file = tmp_path / "dev.json"
    file.write_text(json.dumps(outputs))
    result = CliRunner().invoke(main, [
        "train", "--backend", "kubernetes", "--stack-outputs", str(file), "--manifest", "s3://d/m.json",
        "--output", f"file://{tmp_path}/artifacts", "--nodes", "2", "--image", "img:1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    (call,) = RecordingCustomObjects.created
    return call


def _one(mocks: h.RecordingMocks, typ: str) -> list[dict[str, Any]]:
    return [r.inputs for r in mocks.of_type(typ)]


def test_the_submitted_gpu_job_matches_what_the_stack_created(
    tmp_path: Path, kubernetes_client: type[RecordingCustomObjects]
) -> None:
    mocks, outputs = deployed({"k8s_training_gpus": 2, "k8s_training_quota_gpus": 8})
    call = submit(tmp_path, outputs)
    body = call["body"]
    pod = body["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    (container,) = pod["containers"]

    namespaces = {ns["metadata"]["name"] for ns in _one(mocks, "kubernetes:core/v1:Namespace")}
    assert call["namespace"] == body["metadata"]["namespace"] and call["namespace"] in namespaces
    accounts = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"]): sa["metadata"].get("annotations", {})
        for sa in _one(mocks, "kubernetes:core/v1:ServiceAccount")
    }
    annotations = accounts[(call["namespace"], pod["serviceAccountName"])]
    irsa = mocks.named("aws:iam/role:Role", "training-irsa")
    assert annotations["eks.amazonaws.com/role-arn"] == f"arn:aws:iam::{h.ACCOUNT}:role/{irsa.name}"
    trust = json.loads(irsa.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert f"system:serviceaccount:{call['namespace']}:{pod['serviceAccountName']}" in trust.values()
    priority = {pc["metadata"]["name"] for pc in _one(mocks, "kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    assert pod["priorityClassName"] in priority

    (gpu_group,) = [g for g in _one(mocks, "aws:eks/nodeGroup:NodeGroup") if g.get("taints")]
    (taint,) = gpu_group["taints"]
    assert {"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert taint["effect"] == "NO_SCHEDULE"
    assert pod["nodeSelector"].items() <= gpu_group["labels"].items()
    assert container["resources"]["limits"][taint["key"]] == 2 == container["resources"]["requests"][taint["key"]]
    assert body["spec"]["nprocPerNode"] == "2"  # one NCCL rank per GPU


def test_without_gpus_the_job_stays_off_the_gpu_pool(
    tmp_path: Path, kubernetes_client: type[RecordingCustomObjects]
) -> None:
    _, outputs = deployed({"k8s_training_gpus": 0})
    body = submit(tmp_path, outputs)["body"]
    pod = body["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "tolerations" not in pod and "nodeSelector" not in pod
    assert pod["serviceAccountName"] == "tidewater-training"
    assert body["metadata"]["namespace"] == "tidewater-dev-training"


def test_kubernetes_training_without_stack_outputs_is_one_clear_line(
    tmp_path: Path, kubernetes_client: type[RecordingCustomObjects]
) -> None:
    result = CliRunner().invoke(main, ["train", "--backend", "kubernetes", "--manifest", "s3://d/m.json",
                                       "--output", f"file://{tmp_path}"])  # fmt: skip
    assert result.exit_code == 1 and "--backend kubernetes needs --stack-outputs" in result.output
    assert "Traceback" not in result.output and RecordingCustomObjects.created == []


def test_a_stack_without_the_platform_stage_names_the_stage_to_deploy(
    tmp_path: Path, kubernetes_client: type[RecordingCustomObjects]
) -> None:
    file = tmp_path / "lake.json"
    file.write_text(json.dumps({"project": "tidewater", "stack": "dev", "stage": "lake", "model_name": "fraud"}))
    result = CliRunner().invoke(main, ["train", "--backend", "kubernetes", "--stack-outputs", str(file),
                                       "--manifest", "s3://d/m.json", "--output", f"file://{tmp_path}"])  # fmt: skip
    assert result.exit_code == 1
    assert "no output 'k8s_training_job'" in result.output and "stage platform" in result.output
