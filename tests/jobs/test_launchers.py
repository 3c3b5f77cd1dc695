"""Launchers offline: torchrun's argv, the PyTorchJob sent to a recording client, a SageMaker job on moto."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.embedded_cloud import EmbeddedCloud
from jobs.launch.base import WORKER_MODULE, JobSpec
from jobs.launch.kubernetes import KubernetesPyTorchJob, Placement, PlacementError
from jobs.launch.local import LaunchError, LocalTorchrun
from jobs.launch.staging import CONFIG_NAME
from jobs.train.config import TrainConfig


def _config(output_url: str) -> TrainConfig:
    return TrainConfig(manifest_url="s3://datasets/transactions/abc/manifest.json", output_url=output_url, steps=5)


class RecordingRunner:
    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.configs: list[str] = []  # read while the run folder exists (it is removed after a success)

    def __call__(self, argv: Sequence[str], env: dict[str, str], log: Path) -> int:
        self.calls.append((list(argv), env))
        self.configs.append(Path(argv[-1]).read_text())
        return self.code


def test_local_launcher_runs_torchrun_with_c10d_and_restarts(tmp_path: Path) -> None:
    runner = RecordingRunner()
    spec = JobSpec(name="local-job", procs_per_node=3, max_restarts=2, env={"EXTRA": "1"})
    submitted = LocalTorchrun(runner, workdir=tmp_path).launch(_config(f"file://{tmp_path}/out"), spec)
    ((argv, env),) = runner.calls
    assert argv[1:4] == ["-m", "torch.distributed.run", "--nnodes=1:1"]
    # restarts are the launcher's (one torchrun run per attempt), so torchrun itself never restarts
    assert {"--nproc-per-node=3", "--max-restarts=0", "--rdzv-backend=c10d", "--rdzv-id=local-job"} <= set(argv)
    assert any(a.startswith("--rdzv-endpoint=127.0.0.1:") for a in argv)
    assert argv[-4:-1] == ["-m", WORKER_MODULE, "--config"]
    assert TrainConfig.model_validate_json(runner.configs[0]) == _config(f"file://{tmp_path}/out")
    assert env["EXTRA"] == "1" and submitted.backend == "local"


def test_local_launcher_reports_a_failed_job(tmp_path: Path) -> None:
    runner = RecordingRunner(code=3)
    with pytest.raises(LaunchError, match="status 3"):
        LocalTorchrun(runner, workdir=tmp_path).launch(_config("file:///x"), JobSpec(name="j", max_restarts=2))
    assert len(runner.calls) == 3  # the first run and two restarts


class RecordingCustomObjects:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        self.created.append(kwargs)
        return {"metadata": {"uid": "uid-1", **kwargs["body"]["metadata"]}}


def test_kubernetes_launcher_submits_an_elastic_pytorchjob(tmp_path: Path) -> None:
    api = RecordingCustomObjects()
    launcher = KubernetesPyTorchJob(api, Placement("training", storage_endpoint="http://minio:9000"))
    config = _config(f"file://{tmp_path}/artifacts")
    spec = JobSpec(name="fraud-train", nodes=3, min_nodes=2, procs_per_node=2, max_restarts=4, image="img:1")
    submitted = launcher.launch(config, spec)
    (call,) = api.created
    assert (call["group"], call["version"], call["plural"], call["namespace"]) == (
        "kubeflow.org", "v1", "pytorchjobs", "training"
    )  # fmt: skip
    body = call["body"]
    assert body["kind"] == "PyTorchJob" and body["metadata"]["name"] == "fraud-train"
    elastic = {"rdzvBackend": "c10d", "minReplicas": 2, "maxReplicas": 3, "maxRestarts": 4}
    assert body["spec"]["elasticPolicy"] == elastic
    assert body["spec"]["nprocPerNode"] == "2"
    replicas = body["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Worker"} and replicas["Worker"]["replicas"] == 3
    container = replicas["Worker"]["template"]["spec"]["containers"][0]
    config_url = f"file://{tmp_path}/artifacts/models/fraud/{config.version}/{CONFIG_NAME}"
    assert container["command"] == ["torchrun", "-m", WORKER_MODULE, "--config", config_url]
    assert container["image"] == "img:1"
    # The staged config is what every pod reads.
    staged = Path(config_url.removeprefix("file://")).read_text()
    assert TrainConfig.model_validate_json(staged) == config
    assert submitted.job_id == "training/fraud-train" and submitted.detail["uid"] == "uid-1"


GPU_PLACEMENT = {
    "namespace": "tidewater-dev-training", "service_account": "tidewater-training",
    "priority_class": "tidewater-dev-training", "gpus_per_worker": 4, "gpu_vendor": "nvidia",
    "node_selector": {"tidewater.io/pool": "gpu"}, "storage_endpoint": "",
}  # fmt: skip


def test_a_gpu_placement_requests_gpus_tolerates_the_taint_and_runs_one_nccl_rank_per_gpu(tmp_path: Path) -> None:
    api = RecordingCustomObjects()
    launcher = KubernetesPyTorchJob(api, Placement.from_outputs(GPU_PLACEMENT))
    spec = JobSpec(name="fraud-train", nodes=2, procs_per_node=2, image="img:1")  # procs_per_node is for CPU jobs
    launcher.launch(_config(f"file://{tmp_path}/artifacts"), spec)
    (call,) = api.created
    assert call["namespace"] == "tidewater-dev-training"
    body = call["body"]
    assert body["spec"]["nprocPerNode"] == "4"
    pod = body["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 4
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {"tidewater.io/pool": "gpu"}
    assert pod["serviceAccountName"] == "tidewater-training"
    assert pod["priorityClassName"] == "tidewater-dev-training"
    # NCCL's shared-memory transport needs more than the runtime's 64 MiB /dev/shm.
    assert container["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
    assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]


def test_a_cpu_placement_has_no_gpu_request_toleration_or_shm() -> None:
    placement = Placement.from_outputs(GPU_PLACEMENT | {"gpus_per_worker": 0, "node_selector": {}})
    body = KubernetesPyTorchJob(RecordingCustomObjects(), placement).manifest("s3://a/c.json", JobSpec(name="j"))
    pod = body["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "tolerations" not in pod and "volumes" not in pod and "nodeSelector" not in pod
    assert "nvidia.com/gpu" not in json.dumps(pod) and body["spec"]["nprocPerNode"] == "2"


@settings(max_examples=40, deadline=None)
@given(
    key=st.sampled_from(sorted(GPU_PLACEMENT)),
    value=st.none() | st.integers(-3, -1) | st.text(max_size=5) | st.lists(st.integers(), max_size=2),
)
def test_a_bad_placement_block_is_a_placement_error_naming_the_field(key: str, value: object) -> None:
    """Either the block is refused, naming k8s_training_job, or it makes a valid PyTorchJob."""
    block = {**GPU_PLACEMENT, key: value}
    try:
        placement = Placement.from_outputs(block)
    except PlacementError as err:
        assert "k8s_training_job" in str(err)
        return
    body = KubernetesPyTorchJob(RecordingCustomObjects(), placement).manifest("s3://a/c.json", JobSpec(name="j"))
    assert body["metadata"]["namespace"] == placement.namespace != ""


def test_a_placement_without_a_field_is_refused() -> None:
    block = {k: v for k, v in GPU_PLACEMENT.items() if k != "service_account"}
    with pytest.raises(PlacementError, match="no 'service_account'"):
        Placement.from_outputs(block)


@settings(max_examples=25, deadline=None)
@given(
    nodes=st.integers(-2, 4), procs=st.integers(-1, 3), restarts=st.integers(-2, 3), low=st.none() | st.integers(-1, 5)
)
def test_job_spec_accepts_only_sane_shapes(nodes: int, procs: int, restarts: int, low: int | None) -> None:
    sane = nodes >= 1 and procs >= 1 and restarts >= 0 and (low is None or 1 <= low <= nodes)
    if sane:
        assert JobSpec(name="j", nodes=nodes, procs_per_node=procs, max_restarts=restarts, min_nodes=low).nodes == nodes
    else:
        with pytest.raises(ValueError):
            JobSpec(name="j", nodes=nodes, procs_per_node=procs, max_restarts=restarts, min_nodes=low)


@pytest.mark.slow
def test_sagemaker_launcher_creates_a_torch_distributed_training_job(
    cloud: EmbeddedCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from sagemaker.core.helper.session_helper import Session

    from jobs.launch.sagemaker import SageMakerTrainingJob

    # The SDK validates the role with iam:SimulatePrincipalPolicy, which moto does not implement; this is the
    # SDK's documented switch to skip that check.
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="artifacts")
    session = Session(boto_session=boto3.Session(region_name=cloud.region), default_bucket="artifacts")
    launcher = SageMakerTrainingJob(session, role="arn:aws:iam::123456789012:role/tide-train")
    config = _config("s3://artifacts")
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1"
    spec = JobSpec(name="fraud-train", nodes=2, procs_per_node=4, image=image)
    submitted = launcher.launch(config, spec)

    job = cloud.client("sagemaker").describe_training_job(TrainingJobName=submitted.job_id)
    assert job["ResourceConfig"]["InstanceCount"] == 2 and job["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert job["AlgorithmSpecification"]["TrainingImage"] == spec.image
    config_url = f"{config.model_url}/{CONFIG_NAME}"
    assert job["HyperParameters"]["config"] == config_url
    assert job["OutputDataConfig"]["S3OutputPath"] == config.model_url
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert {"code", "sm_drivers"} <= set(channels)
    # The SDK's torchrun driver reads the distribution from the uploaded driver config.
    drivers = channels["sm_drivers"].removeprefix("s3://artifacts/")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts", Prefix=drivers)["Contents"]]
    distributed = next(k for k in listed if k.endswith("distributed.json"))
    assert json.loads(s3.get_object(Bucket="artifacts", Key=distributed)["Body"].read())["process_count_per_node"] == 4
    code = channels["code"].removeprefix("s3://artifacts/")
    assert any(o["Key"].endswith("entry.py") for o in s3.list_objects_v2(Bucket="artifacts", Prefix=code)["Contents"])
    staged = s3.get_object(Bucket="artifacts", Key=config_url.removeprefix("s3://artifacts/"))["Body"].read()
    assert TrainConfig.model_validate_json(staged) == config


def test_sagemaker_launcher_refuses_a_local_output(tmp_path: Path) -> None:
    from jobs.launch.sagemaker import SageMakerTrainingJob

    with pytest.raises(ValueError, match="needs an s3:// output URL"):
        SageMakerTrainingJob(object(), role="r").launch(_config(f"file://{tmp_path}"), JobSpec(name="j"))


def test_the_sagemaker_backend_takes_the_stacks_role_and_puts_job_files_where_that_role_reads(
    tmp_path: Path, cloud: EmbeddedCloud
) -> None:
    from jobs.launch.backends import BackendError, launcher_for
    from jobs.launch.sagemaker import SageMakerTrainingJob
    from jobs.stack_outputs import StackOutputs

    values = {"project": "tidewater", "stack": "dev", "stage": "platform", "model_name": "fraud",
              "buckets": {"artifacts": "tidewater-dev-artifacts"},
              "training_role_arn": "arn:aws:iam::123456789012:role/training-role"}  # fmt: skip
    launcher = launcher_for("sagemaker", StackOutputs(values, "dev.json"), None, "ml.g5.xlarge")
    assert isinstance(launcher, SageMakerTrainingJob)
    assert launcher.role == values["training_role_arn"] and launcher.instance_type == "ml.g5.xlarge"
    assert launcher.session.default_bucket_prefix == "training-jobs"  # the role's jobs_prefix (infra.policies)
    assert launcher.session._default_bucket_name_override == "tidewater-dev-artifacts"
    with pytest.raises(BackendError, match="needs --role or --stack-outputs"):
        launcher_for("sagemaker", None, None, "ml.m5.xlarge")
    lake = StackOutputs({k: v for k, v in values.items() if k != "training_role_arn"} | {"stage": "lake"}, "dev.json")
    with pytest.raises(BackendError, match=r"no output 'training_role_arn'.*stage platform"):
        launcher_for("sagemaker", lake, None, "ml.m5.xlarge")
