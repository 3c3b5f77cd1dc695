"""The root Dockerfile, checked without a Docker engine: every COPY source exists, and every command the
images run — their own CMD/ENTRYPOINT and what the PyTorchJob, the Dask operator and the InferenceService
put on top — exists in this environment (built from the same pyproject and constraints) and starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.launch.base import JobSpec
from jobs.launch.kubernetes import KubernetesPyTorchJob, Placement
from schemas import manifests
from serving.main import parse_args

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _stages() -> dict[str, dict[str, list[str]]]:
    stages: dict[str, dict[str, list[str]]] = {}
    current = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if match := re.match(r"^FROM \S+ AS (\w+)$", line):
            current = match[1]
            stages[current] = {"copy": [], "entrypoint": [], "cmd": []}
        elif match := re.match(r"^COPY (\S+(?: \S+)*) \S+$", line):
            stages[current]["copy"] += match[1].split()
        elif match := re.match(r"^(ENTRYPOINT|CMD) (\[.*\])$", line):
            stages[current][match[1].lower()] = json.loads(match[2])
    return stages


def _starts(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """argv with its executable resolved in this environment's bin (where the image's pip puts scripts)."""
    exe = argv[0] if argv[0] != "python" else sys.executable
    resolved = exe if Path(exe).is_absolute() else str(BIN / exe)
    assert Path(resolved).exists(), f"{argv[0]} is not installed by the project's extras"
    return subprocess.run([resolved, *argv[1:]], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_both_targets_exist_and_copy_only_what_the_repository_has() -> None:
    stages = _stages()
    assert {"base", "train", "serving"} <= set(stages)
    for stage in stages.values():
        for source in stage["copy"]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


@pytest.mark.slow
def test_train_image_commands_exist_and_start() -> None:
    stage = _stages()["train"]
    assert stage["entrypoint"] == []  # Kubernetes' command/args replace CMD; an ENTRYPOINT would swallow them
    assert _starts([*stage["cmd"]]).returncode == 0
    job = KubernetesPyTorchJob(object(), Placement("training")).manifest("s3://b/run.json", JobSpec(name="t"))
    command = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["torchrun", "-m", "jobs.train.worker"]
    assert _starts(["torchrun", "--help"]).returncode == 0
    worker = subprocess.run([sys.executable, "-m", command[2], "--help"], capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0 and "--config" in worker.stdout
    cluster = manifests.dask_cluster("ingest", namespace="ingestion", image="tidewater/tidewater:train-0.1.0")
    for role in ("worker", "scheduler"):
        (container,) = cluster["spec"][role]["spec"]["containers"]
        args = [a for a in container["args"] if not a.startswith("$(")]
        assert _starts([args[0], args[1], "--help"]).returncode == 0, f"dask {role} does not start"


def test_serving_image_runs_the_predictor_with_the_inference_service_args(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _stages()["serving"]
    assert stage["entrypoint"] == ["python", "-m", "serving"]
    assert _starts([*stage["entrypoint"], "--help"]).returncode == 0
    container = manifests.predictor_container("tidewater/tidewater:serving-0.1.0", "s3://b/models/fraud/v1/",
                                              model_name="fraud")  # fmt: skip
    assert "command" not in container  # KServe's args go after the image's ENTRYPOINT
    monkeypatch.delenv("TIDE_VARIANT", raising=False)
    monkeypatch.setenv("K_REVISION", "fraud-predictor-00002")  # what Knative sets in each revision's pods
    args = parse_args(container["args"])
    assert (str(args.model_dir), args.model_name, args.port) == ("/mnt/models", "fraud", 8080)
    assert args.variant == "fraud-predictor-00002"  # the label the traffic function maps to prev/latest


def test_the_stack_and_the_launchers_default_to_the_images_this_dockerfile_builds() -> None:
    import yaml

    from schemas.naming import platform_image

    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert config["k8s_dask_image"]["default"] == platform_image("train")
    assert config["k8s_serving_image"]["default"] == platform_image("serving")
    assert JobSpec(name="t").image == platform_image("train")
    built = re.findall(r"docker build --target (\w+) +-t (\S+) \.", (ROOT / "Dockerfile").read_text())
    assert dict(built) == {"train": platform_image("train"), "serving": platform_image("serving")}
