"""The pure Kubernetes manifest builders: required fields per CRD version, GPU handling, validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import manifest_fields
from schemas import manifests as m

FAST = settings(max_examples=60, deadline=None)
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tidewater:serving-1"


def _job(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"namespace": "training", "image": "ghcr.io/acme/train:1", "command": ["tide", "train"]}
    kwargs.update(overrides)
    return m.pytorch_job("train-1", **kwargs)


def _pods(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [spec["template"]["spec"] for spec in job["spec"]["pytorchReplicaSpecs"].values()]


# ---------------------------------------------------------------------------------------------- GPU map


@pytest.mark.parametrize(
    ("vendor", "key"), [("nvidia", "nvidia.com/gpu"), ("amd", "amd.com/gpu"), ("intel", "gpu.intel.com/i915")]
)
def test_gpu_vendor_maps_to_its_resource_key(vendor: str, key: str) -> None:
    assert m.gpu_resource_key(vendor) == key
    assert m.gpu_taint(vendor) == {"key": key, "value": "true", "effect": "NoSchedule"}
    assert m.gpu_toleration(vendor)["key"] == key


@given(st.text(max_size=12).filter(lambda v: v not in m.GPU_RESOURCE_KEYS))
@FAST
def test_unknown_gpu_vendor_is_an_error(vendor: str) -> None:
    with pytest.raises(m.ManifestError, match="gpu_vendor"):
        m.gpu_resource_key(vendor)
    with pytest.raises(m.ManifestError, match="gpu_vendor"):
        _job(gpus_per_worker=1, gpu_vendor=vendor)


# ---------------------------------------------------------------------------------------------- PyTorchJob


def test_pytorch_job_shape() -> None:
    job = _job(
        workers=2,
        min_workers=1,
        max_workers=4,
        max_restarts=5,
        storage_endpoint="http://minio:9000",
        env={"TIDE_DATASET": "s3://d/v1/"},
        service_account="trainer",
        priority_class="training",
    )
    assert job["apiVersion"] == "kubeflow.org/v1"
    assert job["kind"] == "PyTorchJob"
    assert job["metadata"] == {"name": "train-1", "namespace": "training"}
    spec = job["spec"]
    assert spec["elasticPolicy"] == {"rdzvBackend": "c10d", "minReplicas": 1, "maxReplicas": 4, "maxRestarts": 5}
    # Elastic jobs rendezvous among Workers only (the operator points c10d at worker-0).
    assert set(spec["pytorchReplicaSpecs"]) == {"Worker"}
    assert spec["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    assert spec["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] == "OnFailure"
    assert spec["runPolicy"]["backoffLimit"] == 3
    for pod in _pods(job):
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"
        assert container["command"] == ["tide", "train"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert env["TIDE_DATASET"] == "s3://d/v1/"
        assert pod["serviceAccountName"] == "trainer"
        assert pod["priorityClassName"] == "training"


def test_cpu_job_requests_no_gpu_and_does_not_tolerate_the_taint() -> None:
    for pod in _pods(_job()):
        resources = pod["containers"][0]["resources"]
        assert not any("gpu" in key for key in resources["limits"])
        assert "tolerations" not in pod
    assert _job()["spec"]["nprocPerNode"] == "1"


@pytest.mark.parametrize("vendor", sorted(m.GPU_RESOURCE_KEYS))
def test_gpu_job_limits_and_tolerates_its_vendor_taint(vendor: str) -> None:
    job = _job(gpus_per_worker=4, gpu_vendor=vendor, node_selector={m.POOL_LABEL: "gpu"})
    key = m.GPU_RESOURCE_KEYS[vendor]
    for pod in _pods(job):
        resources = pod["containers"][0]["resources"]
        assert resources["limits"][key] == 4
        assert resources["requests"][key] == 4
        assert pod["tolerations"] == [{"key": key, "operator": "Exists", "effect": "NoSchedule"}]
        assert pod["nodeSelector"] == {m.POOL_LABEL: "gpu"}
    assert job["spec"]["nprocPerNode"] == "4"


def test_fixed_job_has_a_master_and_no_elastic_policy() -> None:
    spec = _job(workers=3, elastic=False)["spec"]
    assert "elasticPolicy" not in spec
    replicas = {kind: r["replicas"] for kind, r in spec["pytorchReplicaSpecs"].items()}
    assert replicas == {"Master": 1, "Worker": 2}
    assert set(_job(workers=1, elastic=False)["spec"]["pytorchReplicaSpecs"]) == {"Master"}
    with pytest.raises(m.ManifestError, match="elastic"):
        _job(workers=2, max_workers=4, elastic=False)


def test_fixed_size_job_has_equal_elastic_bounds() -> None:
    policy = _job(workers=3)["spec"]["elasticPolicy"]
    assert (policy["minReplicas"], policy["maxReplicas"]) == (3, 3)


@given(workers=st.integers(-3, 12), low=st.integers(-3, 12), high=st.integers(-3, 12))
@FAST
def test_elastic_bounds_accept_exactly_ordered_positive_values(workers: int, low: int, high: int) -> None:
    valid = 1 <= low <= workers <= high
    if valid:
        policy = _job(workers=workers, min_workers=low, max_workers=high)["spec"]["elasticPolicy"]
        assert (policy["minReplicas"], policy["maxReplicas"]) == (low, high)
    else:
        with pytest.raises(m.ManifestError):
            _job(workers=workers, min_workers=low, max_workers=high)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"command": "tide train"}, "command"),
        ({"command": []}, "command"),
        ({"image": ""}, "image"),
        ({"namespace": "Training"}, "namespace"),
        ({"cpu": "lots"}, "cpu"),
        ({"memory": "4 GB"}, "memory"),
        ({"gpus_per_worker": -1}, "gpus"),
        ({"gpus_per_worker": True}, "gpus"),
        ({"gpus_per_worker": 2, "nproc_per_node": 3}, "nproc_per_node"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"storage_endpoint": "minio:9000"}, "storage_endpoint"),
        ({"node_selector": {"bad key!": "x"}}, "node_selector"),
        ({"max_restarts": -1}, "max_restarts"),
    ],
)
def test_pytorch_job_rejects_bad_input_naming_the_parameter(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(m.ManifestError, match=message):
        _job(**overrides)


@given(st.text(max_size=70))
@FAST
def test_names_must_be_dns_labels(name: str) -> None:
    ok = bool(manifest_fields._DNS_LABEL.match(name)) and 0 < len(name) <= 63
    if ok:
        assert m.pytorch_job(name, namespace="t", image="i", command=["c"])["metadata"]["name"] == name
    else:
        with pytest.raises(m.ManifestError, match="name"):
            m.pytorch_job(name, namespace="t", image="i", command=["c"])


def test_builders_do_not_share_state_between_calls() -> None:
    env = {"A": "1"}
    first = _job(env=env)
    snapshot = copy.deepcopy(first)
    env["A"] = "2"
    _job(env={"B": "3"}, gpus_per_worker=1)
    assert first == snapshot


# ---------------------------------------------------------------------------------------------- Dask


def test_dask_cluster_shape() -> None:
    cluster = m.dask_cluster(
        "ingest",
        namespace="ingestion",
        image="ghcr.io/dask/dask:2025.1.0",
        workers=2,
        idle_timeout_s=600,
        storage_endpoint="http://minio:9000",
        priority_class="ingestion",
    )
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    assert cluster["kind"] == "DaskCluster"
    assert cluster["metadata"] == {"name": "ingest", "namespace": "ingestion"}
    spec = cluster["spec"]
    assert spec["idleTimeout"] == 600
    assert spec["worker"]["replicas"] == 2
    worker = spec["worker"]["spec"]["containers"][0]
    scheduler = spec["scheduler"]["spec"]["containers"][0]
    assert worker["args"][:2] == ["dask", "worker"]
    assert "$(DASK_WORKER_NAME)" in worker["args"]
    assert scheduler["args"] == ["dask", "scheduler"]
    assert {p["containerPort"] for p in scheduler["ports"]} == {8786, 8787}
    service = spec["scheduler"]["service"]
    assert service["selector"] == {"dask.org/cluster-name": "ingest", "dask.org/component": "scheduler"}
    assert {p["port"] for p in service["ports"]} == {8786, 8787}
    for pod in (spec["worker"]["spec"], spec["scheduler"]["spec"]):
        assert "tolerations" not in pod  # ingestion never lands on GPU nodes
        assert pod["priorityClassName"] == "ingestion"
        assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"} in pod["containers"][0]["env"]


def test_dask_cluster_without_idle_timeout_omits_the_field() -> None:
    assert "idleTimeout" not in m.dask_cluster("ingest", namespace="ingestion", image="img")["spec"]


@given(low=st.integers(-2, 20), high=st.integers(-2, 20))
@FAST
def test_dask_autoscaler_bounds(low: int, high: int) -> None:
    if 0 <= low <= high and high >= 1:
        scaler = m.dask_autoscaler("ingest", namespace="ingestion", cluster="ingest", minimum=low, maximum=high)
        assert scaler["apiVersion"] == "kubernetes.dask.org/v1"
        assert scaler["kind"] == "DaskAutoscaler"
        assert scaler["spec"] == {"cluster": "ingest", "minimum": low, "maximum": high}
    else:
        with pytest.raises(m.ManifestError):
            m.dask_autoscaler("ingest", namespace="ingestion", cluster="ingest", minimum=low, maximum=high)


# ---------------------------------------------------------------------------------------------- KServe


def test_inference_service_shape() -> None:
    isvc = m.inference_service(
        "model",
        namespace="serving",
        image=IMAGE,
        storage_uri="s3://tidewater-dev-artifacts/models/m/v1/",
        variant="v1",
        canary_traffic_percent=10,
        service_account="serving",
        storage_endpoint="http://minio:9000",
    )
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"] == {"name": "model", "namespace": "serving"}
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    (container,) = predictor["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == IMAGE and "model" not in predictor  # the predictor container, not TorchServe
    assert env["STORAGE_URI"] == "s3://tidewater-dev-artifacts/models/m/v1/"  # KServe downloads it to /mnt/models
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert container["args"] == ["--model-dir", "/mnt/models", "--model-name", "model", "--port", "8080",
                                 "--endpoint", "model", "--variant", "v1"]  # fmt: skip
    assert predictor["serviceAccountName"] == "serving"
    assert "tolerations" not in predictor


def test_gpu_inference_service_tolerates_the_taint() -> None:
    predictor = m.inference_service(
        "model", namespace="serving", image=IMAGE, storage_uri="s3://b/k", variant="v1", gpus=1
    )["spec"]["predictor"]
    assert predictor["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert predictor["tolerations"][0]["key"] == "nvidia.com/gpu"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image": "two words"}, "image"),
        ({"variant": ""}, "variant"),
        ({"storage_uri": "/local/path"}, "storage_uri"),
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas"),
    ],
)
def test_inference_service_rejects_bad_input(overrides: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {"namespace": "serving", "image": IMAGE, "storage_uri": "s3://b/k", "variant": "v1"}
    kwargs.update(overrides)
    with pytest.raises(m.ManifestError, match=message):
        m.inference_service("model", **kwargs)


def test_deployment_mode_annotation_and_raw_mode_refuses_canary() -> None:
    kwargs: dict[str, Any] = {"namespace": "serving", "image": IMAGE, "storage_uri": "s3://b/k", "variant": "v1"}
    isvc = m.inference_service("model", deployment_mode="Serverless", canary_traffic_percent=5, **kwargs)
    assert isvc["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Serverless"}
    assert "annotations" not in m.inference_service("model", **kwargs)["metadata"]
    assert m.inference_service("model", deployment_mode="RawDeployment", **kwargs)["metadata"]["annotations"]
    with pytest.raises(m.ManifestError, match="RawDeployment"):
        m.inference_service("model", deployment_mode="RawDeployment", canary_traffic_percent=10, **kwargs)
    with pytest.raises(m.ManifestError, match="deployment_mode"):
        m.inference_service("model", deployment_mode="Knative", **kwargs)


@given(st.integers(-1000, 1000))
@FAST
def test_canary_percent_is_bounded_0_to_100(percent: int) -> None:
    if 0 <= percent <= 100:
        assert m.canary_traffic_patch(percent) == {"spec": {"predictor": {"canaryTrafficPercent": percent}}}
        isvc = m.inference_service(
            "model", namespace="serving", image=IMAGE, variant="v1", storage_uri="gs://b/k",
            canary_traffic_percent=percent,
        )  # fmt: skip
        assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == percent
    else:
        with pytest.raises(m.ManifestError, match="percent"):
            m.canary_traffic_patch(percent)
        with pytest.raises(m.ManifestError, match="percent"):
            m.inference_service(
                "model",
                namespace="serving",
                image=IMAGE,
                variant="v1",
                storage_uri="gs://b/k",
                canary_traffic_percent=percent,
            )


@given(st.one_of(st.floats(allow_nan=True), st.booleans(), st.text(max_size=4), st.none()))
@FAST
def test_canary_percent_must_be_an_integer(percent: Any) -> None:
    with pytest.raises(m.ManifestError, match="percent"):
        m.canary_traffic_patch(percent)


def test_canary_patch_can_roll_out_a_new_model() -> None:
    container = m.predictor_container(IMAGE, "s3://b/models/m/v2/", model_name="m", variant="v2")
    patch = m.canary_traffic_patch(20, container=container)
    assert patch == {"spec": {"predictor": {"canaryTrafficPercent": 20, "containers": [container]}}}
    assert m.predictor_storage_uri(patch) == "s3://b/models/m/v2/"
    with pytest.raises(m.ManifestError, match="storage_uri"):
        m.predictor_container(IMAGE, "models/m/v2", model_name="m", variant="v2")
    with pytest.raises(m.ManifestError, match="STORAGE_URI"):
        m.canary_traffic_patch(20, container={"name": "kserve-container", "image": IMAGE})


# ---------------------------------------------------------------------------------------------- cluster policy


def test_resource_quota_caps_gpus_with_the_requests_prefix() -> None:
    quota = m.resource_quota("training", namespace="training", cpu="64", memory="256Gi", gpus=8, pods=50)
    assert quota["apiVersion"] == "v1"
    assert quota["kind"] == "ResourceQuota"
    assert quota["spec"]["hard"] == {
        "requests.cpu": "64",
        "requests.memory": "256Gi",
        "limits.memory": "256Gi",
        "requests.nvidia.com/gpu": "8",
        "pods": "50",
    }
    cpu_only = m.resource_quota("ingestion", namespace="ingestion", cpu="16", memory="64Gi", gpu_vendor="amd")
    assert cpu_only["spec"]["hard"]["requests.amd.com/gpu"] == "0"


def test_limit_range_defaults_unset_container_resources() -> None:
    lr = m.limit_range("defaults", namespace="serving")
    assert (lr["apiVersion"], lr["kind"]) == ("v1", "LimitRange")
    (limits,) = lr["spec"]["limits"]
    assert limits["type"] == "Container"
    assert set(limits["defaultRequest"]) == {"cpu", "memory"} and set(limits["default"]) == {"memory"}
    with pytest.raises(m.ManifestError, match="default_memory_limit"):
        m.limit_range("defaults", namespace="serving", default_memory_limit="a lot")


def test_priority_class_shape_and_bounds() -> None:
    pc = m.priority_class("training", value=1000, description="GPU training")
    assert pc["apiVersion"] == "scheduling.k8s.io/v1"
    assert pc["kind"] == "PriorityClass"
    assert pc["value"] == 1000 and pc["globalDefault"] is False
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    with pytest.raises(m.ManifestError, match="priority value"):
        m.priority_class("too-high", value=2_000_000_000, description="x")
    with pytest.raises(m.ManifestError, match="preemption_policy"):
        m.priority_class("p", value=1, description="x", preemption_policy="Sometimes")  # type: ignore[arg-type]


def test_namespace_and_service_account() -> None:
    assert m.namespace("training", labels={"app.kubernetes.io/part-of": "tidewater"}) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "training", "labels": {"app.kubernetes.io/part-of": "tidewater"}},
    }
    sa = m.service_account(
        "trainer", namespace="training", annotations={"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}
    )
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}
    with pytest.raises(m.ManifestError, match="namespace"):
        m.namespace("-bad")


def test_device_plugin_runs_on_gpu_nodes_only() -> None:
    ds = m.gpu_device_plugin(node_selector={m.POOL_LABEL: "gpu"})
    assert (ds["apiVersion"], ds["kind"]) == ("apps/v1", "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["tolerations"] == [m.gpu_toleration("nvidia")]
    assert pod["nodeSelector"] == {m.POOL_LABEL: "gpu"}
    assert ds["spec"]["selector"]["matchLabels"] == ds["spec"]["template"]["metadata"]["labels"]
    with pytest.raises(m.ManifestError, match="device plugin"):
        m.gpu_device_plugin(gpu_vendor="amd")


def test_knative_serving_uses_kourier_and_a_pinned_version() -> None:
    ks = m.knative_serving("1.16")
    assert (ks["apiVersion"], ks["kind"]) == ("operator.knative.dev/v1beta1", "KnativeServing")
    assert ks["metadata"] == {"name": "knative-serving", "namespace": "knative-serving"}
    assert ks["spec"]["version"] == "1.16" and ks["spec"]["ingress"] == {"kourier": {"enabled": True}}
    assert ks["spec"]["config"]["network"]["ingress-class"] == "kourier.ingress.networking.knative.dev"
    for bad in ("latest", "", "v1.16", "1"):
        with pytest.raises(m.ManifestError, match="Knative Serving version"):
            m.knative_serving(bad)


def test_s3_credentials_secret_carries_kserves_annotations() -> None:
    secret = m.s3_credentials_secret("sa-storage", namespace="ml", storage_endpoint="https://s3.example.com:9000/",
                                     access_key_id="AK", secret_access_key="SK")  # fmt: skip
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "s3.example.com:9000", "serving.kserve.io/s3-usehttps": "1"
    }  # fmt: skip
    assert secret["stringData"] == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    plain = m.s3_credentials_secret(
        "s", namespace="ml", storage_endpoint=None, access_key_id="a", secret_access_key="b"
    )
    assert "annotations" not in plain["metadata"]  # the cloud's own S3: KServe's defaults
    with pytest.raises(m.ManifestError, match="storage_endpoint"):
        m.s3_credentials_secret("s", namespace="ml", storage_endpoint="minio:9000", access_key_id="a",
                                secret_access_key="b")  # fmt: skip


def test_cron_job_runs_one_at_a_time_as_its_service_account() -> None:
    job = m.cron_job("tidewater-dev-handoffs", namespace="ns", schedule="*/5 * * * *", image="img:1",
                     command=["tide", "curate-handoffs"], service_account="sa", env={"A": "1"})  # fmt: skip
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "CronJob"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sa" and pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["env"] == [{"name": "A", "value": "1"}]


@settings(max_examples=50, deadline=None)
@given(schedule=st.text(max_size=30))
def test_cron_job_accepts_only_cron_expressions(schedule: str) -> None:
    fields = schedule.split()
    valid = len(fields) == 5 or schedule.strip() in {"@hourly", "@daily", "@weekly", "@monthly", "@yearly"}
    if valid and schedule.strip() == " ".join(fields):
        assert m.cron_job("j", namespace="n", schedule=schedule, image="i", command=["c"], service_account="s")
    elif not valid:
        with pytest.raises(m.ManifestError, match="not a cron expression"):
            m.cron_job("j", namespace="n", schedule=schedule, image="i", command=["c"], service_account="s")
