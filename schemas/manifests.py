"""Kubernetes manifests as pure builder functions returning plain dicts.

Shared by infra (Pulumi creates them), jobs (submits PyTorchJobs) and the traffic function's KServe backend
(patches InferenceServices), so one object is spelt one way. Stdlib only; no client, no I/O: every builder
validates its input and raises ManifestError with the offending parameter named.

CRD versions targeted (field names checked against each project's published examples/reference):
- PyTorchJob      kubeflow.org/v1            Kubeflow training operator v1.8/v1.9 (spec.elasticPolicy,
                                              spec.nprocPerNode, spec.runPolicy, spec.pytorchReplicaSpecs)
- DaskCluster     kubernetes.dask.org/v1     dask-kubernetes operator 2024.x/2025.x (spec.worker, spec.scheduler,
                                              spec.idleTimeout)
- DaskAutoscaler  kubernetes.dask.org/v1     (spec.cluster, spec.minimum, spec.maximum)
- InferenceService serving.kserve.io/v1beta1 KServe 0.13-0.15 (spec.predictor.model.modelFormat/storageUri,
                                              spec.predictor.canaryTrafficPercent)
Core objects use their stable APIs: v1 (Namespace, ServiceAccount, ResourceQuota), scheduling.k8s.io/v1
(PriorityClass), apps/v1 (DaemonSet).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

Manifest = dict[str, Any]

PYTORCHJOB_API: Final = "kubeflow.org/v1"
DASK_API: Final = "kubernetes.dask.org/v1"
KSERVE_GROUP: Final = "serving.kserve.io"
KSERVE_VERSION: Final = "v1beta1"
KSERVE_PLURAL: Final = "inferenceservices"  # the custom-objects API's name for the resource
KSERVE_API: Final = f"{KSERVE_GROUP}/{KSERVE_VERSION}"

# The one map from GPU vendor to the extended resource its device plugin advertises. The GPU node taint uses the
# same key, so "requests this resource" and "tolerates the GPU taint" cannot disagree.
GPU_RESOURCE_KEYS: Final[Mapping[str, str]] = {
    "nvidia": "nvidia.com/gpu",
    "amd": "amd.com/gpu",
    "intel": "gpu.intel.com/i915",
}
GPU_TAINT_VALUE: Final = "true"
# Node label that infra puts on its node pools (aws target) and that GPU-only workloads select on.
POOL_LABEL: Final = "tidewater.io/pool"
# Only NVIDIA's device plugin ships as a plain DaemonSet we can pin; the others come with the vendor's operator.
NVIDIA_DEVICE_PLUGIN_IMAGE: Final = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
# Tidewater's predictor as KServe's custom container: KServe's conventional container name, model mount and port.
KSERVE_CONTAINER: Final = "kserve-container"
KSERVE_MODEL_DIR: Final = "/mnt/models"
KSERVE_HTTP_PORT: Final = 8080

# KServe deployment modes (annotation serving.kserve.io/deploymentMode). canaryTrafficPercent splits traffic only in
# Serverless (Knative) mode; RawDeployment ignores it silently, so the builder refuses that combination.
KSERVE_DEPLOYMENT_MODES: Final[tuple[str, ...]] = ("Serverless", "RawDeployment")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Kubernetes resource quantities (cpu "500m", "2"; memory "4Gi", "512M", "1e9").
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][0-9]+)?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class ManifestError(ValueError):
    """A builder parameter cannot produce a valid Kubernetes object."""


# ---------------------------------------------------------------------------------------------- validation


def gpu_resource_key(vendor: str) -> str:
    """Extended resource name for a GPU vendor; an unknown vendor is an error (never a silent default)."""
    try:
        return GPU_RESOURCE_KEYS[vendor]
    except KeyError:
        raise ManifestError(
            f"gpu_vendor {vendor!r} is unknown; known vendors are {', '.join(sorted(GPU_RESOURCE_KEYS))}"
        ) from None


def _name(value: str, what: str, *, max_len: int = 63) -> str:
    pattern = _DNS_LABEL if max_len <= 63 else _DNS_SUBDOMAIN
    if not isinstance(value, str) or not value or len(value) > max_len or not pattern.match(value):
        raise ManifestError(
            f"{what} {value!r} must be 1-{max_len} lowercase letters, digits or '-', starting and ending with an "
            "alphanumeric character"
        )
    return value


def _int(value: int, what: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ManifestError(f"{what} must be an integer {bound}, got {value!r}")
    return value


def _quantity(value: str, what: str) -> str:
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise ManifestError(f"{what} {value!r} is not a Kubernetes quantity (e.g. '500m', '2', '4Gi')")
    return value


def _labels(labels: Mapping[str, str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (labels or {}).items():
        if not isinstance(key, str) or len(key) > 316 or not _LABEL_KEY.match(key):
            raise ManifestError(f"{what} key {key!r} is not a valid label key")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ManifestError(f"{what}[{key!r}] value {value!r} is not a valid label value")
        out[key] = value
    return out


def _env(env: Mapping[str, str] | None) -> list[dict[str, str]]:
    out = []
    for key, value in (env or {}).items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ManifestError(f"env name {key!r} is not a valid environment variable name")
        if not isinstance(value, str):
            raise ManifestError(f"env[{key!r}] must be a string, got {type(value).__name__}")
        out.append({"name": key, "value": value})
    return out


def _metadata(
    name: str, namespace: str | None, labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = _name(namespace, "namespace")
    if labels:
        meta["labels"] = _labels(labels, "labels")
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def storage_env(storage_endpoint: str | None) -> dict[str, str]:
    """Environment that points boto3/botocore and s3fs at an S3-compatible endpoint (none: the cloud's own)."""
    if storage_endpoint is None:
        return {}
    if not re.match(r"^https?://[^\s/]+", storage_endpoint):
        raise ManifestError(f"storage_endpoint {storage_endpoint!r} must be an http(s) URL")
    # boto3 >= 1.28 and aiobotocore read AWS_ENDPOINT_URL; fsspec maps FSSPEC_S3_* to s3fs keyword arguments.
    return {"AWS_ENDPOINT_URL": storage_endpoint, "FSSPEC_S3_ENDPOINT_URL": storage_endpoint}


def s3_credentials_secret(
    name: str, *, namespace: str, storage_endpoint: str | None, access_key_id: Any, secret_access_key: Any
) -> Manifest:
    """An Opaque Secret of S3 credentials with the annotations KServe's storage initializer reads (endpoint as
    host:port, https on/off); listed in a service account's `secrets`, it lets that account's models be fetched.
    The two values may be Pulumi secrets (Outputs): they are placed, never inspected."""
    annotations: dict[str, str] = {}
    if storage_endpoint is not None:
        match = re.match(r"^(https?)://([^\s/]+)", storage_endpoint)
        if not match:
            raise ManifestError(f"storage_endpoint {storage_endpoint!r} must be an http(s) URL")
        annotations = {
            "serving.kserve.io/s3-endpoint": match.group(2),
            "serving.kserve.io/s3-usehttps": "1" if match.group(1) == "https" else "0",
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(_name(name, "secret", max_len=253), namespace, None, annotations or None),
        "stringData": {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key},
    }


def _resources(cpu: str, memory: str, gpus: int, gpu_vendor: str) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": _quantity(cpu, "cpu"), "memory": _quantity(memory, "memory")}
    limits: dict[str, Any] = {"memory": memory}
    if _int(gpus, "gpus", low=0) > 0:
        key = gpu_resource_key(gpu_vendor)
        # Extended resources cannot be overcommitted: requests must equal limits, so both are set.
        limits[key] = gpus
        requests[key] = gpus
    return {"requests": requests, "limits": limits}


def gpu_toleration(gpu_vendor: str) -> dict[str, str]:
    """Toleration for the taint infra puts on GPU nodes (key = the vendor's resource key, NoSchedule)."""
    return {"key": gpu_resource_key(gpu_vendor), "operator": "Exists", "effect": "NoSchedule"}


def gpu_taint(gpu_vendor: str) -> dict[str, str]:
    """The taint on GPU nodes, as a Kubernetes Taint (key=true:NoSchedule)."""
    return {"key": gpu_resource_key(gpu_vendor), "value": GPU_TAINT_VALUE, "effect": "NoSchedule"}


def _pod_spec(
    *,
    container: dict[str, Any],
    gpus: int,
    gpu_vendor: str,
    node_selector: Mapping[str, str] | None,
    service_account: str | None,
    priority_class: str | None,
    restart_policy: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container]}
    if gpus > 0:
        # Only pods that request GPUs tolerate the GPU taint, so CPU work never lands on (and pins) a GPU node.
        spec["tolerations"] = [gpu_toleration(gpu_vendor)]
    if node_selector:
        spec["nodeSelector"] = _labels(node_selector, "node_selector")
    if service_account is not None:
        spec["serviceAccountName"] = _name(service_account, "service_account", max_len=253)
    if priority_class is not None:
        spec["priorityClassName"] = _name(priority_class, "priority_class", max_len=253)
    if restart_policy is not None:
        spec["restartPolicy"] = restart_policy
    return spec


# ---------------------------------------------------------------------------------------------- training


def pytorch_job(
    name: str,
    *,
    namespace: str,
    image: str,
    command: Sequence[str],
    workers: int = 2,
    min_workers: int | None = None,
    max_workers: int | None = None,
    max_restarts: int = 3,
    gpus_per_worker: int = 0,
    gpu_vendor: str = "nvidia",
    nproc_per_node: int | None = None,
    cpu: str = "1",
    memory: str = "4Gi",
    env: Mapping[str, str] | None = None,
    storage_endpoint: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    service_account: str | None = None,
    priority_class: str | None = None,
    labels: Mapping[str, str] | None = None,
    backoff_limit: int = 3,
    ttl_seconds_after_finished: int | None = 86400,
    elastic: bool = True,
    shm_size: str | None = None,
    env_from_secret: str | None = None,
) -> Manifest:
    """A PyTorchJob (kubeflow.org/v1) of `workers` nodes, each running nproc_per_node processes.

    elastic (default): Worker replicas only plus spec.elasticPolicy (c10d rendezvous on worker-0, as the training
    operator sets it up): the Worker count floats between min_workers and max_workers, and a failed worker is
    restarted up to max_restarts times while the others re-rendezvous, which is how training resumes after a
    worker dies (from the job's own checkpoints). The operator's own examples and clients drop the Master
    replica in this mode. elastic=False: the classic fixed layout, one Master plus workers-1 Workers, no policy.
    shm_size: a memory-backed /dev/shm of this size; NCCL and DataLoader workers outgrow the container runtime's
    64 MiB default on multi-GPU nodes. env_from_secret: a Secret of the namespace whose keys become environment
    variables (the object store's keys off AWS, where there is no IRSA).
    """
    _name(name, "name")
    if not image or not isinstance(image, str):
        raise ManifestError("image must be a non-empty container image reference")
    if isinstance(command, str) or not command or not all(isinstance(c, str) and c for c in command):
        raise ManifestError("command must be a non-empty list of non-empty strings (not one string)")
    _int(workers, "workers", low=1)
    low = workers if min_workers is None else _int(min_workers, "min_workers", low=1)
    high = workers if max_workers is None else _int(max_workers, "max_workers", low=1)
    if not low <= workers <= high:
        raise ManifestError(f"need min_workers <= workers <= max_workers, got {low} <= {workers} <= {high}")
    if not elastic and (low, high) != (workers, workers):
        raise ManifestError("min_workers/max_workers need elastic=True; a fixed job has exactly `workers` nodes")
    _int(max_restarts, "max_restarts", low=0)
    _int(backoff_limit, "backoff_limit", low=0)
    gpus = _int(gpus_per_worker, "gpus_per_worker", low=0)
    nproc = nproc_per_node if nproc_per_node is not None else max(gpus, 1)
    _int(nproc, "nproc_per_node", low=1)
    if gpus and nproc > gpus:
        raise ManifestError(f"nproc_per_node {nproc} exceeds gpus_per_worker {gpus}: one process per GPU at most")
    container_env = _env({**storage_env(storage_endpoint), **(env or {})})
    if shm_size is not None:
        _quantity(shm_size, "shm_size")

    def replica(replicas: int) -> dict[str, Any]:
        container: dict[str, Any] = {
            # The training operator finds the training container by this name.
            "name": "pytorch",
            "image": image,
            "command": list(command),
            "resources": _resources(cpu, memory, gpus, gpu_vendor),
        }
        if container_env:
            container["env"] = container_env
        if env_from_secret is not None:
            container["envFrom"] = [{"secretRef": {"name": _name(env_from_secret, "env_from_secret", max_len=253)}}]
        pod = _pod_spec(
            container=container,
            gpus=gpus,
            gpu_vendor=gpu_vendor,
            node_selector=node_selector,
            service_account=service_account,
            priority_class=priority_class,
        )
        if shm_size is not None:
            container["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
            pod["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}}]
        return {
            "replicas": replicas,
            "restartPolicy": "OnFailure",
            "template": {
                "metadata": {"labels": _labels(labels, "labels")} if labels else {},
                "spec": pod,
            },
        }

    run_policy: dict[str, Any] = {"cleanPodPolicy": "Running", "backoffLimit": backoff_limit}
    if ttl_seconds_after_finished is not None:
        run_policy["ttlSecondsAfterFinished"] = _int(ttl_seconds_after_finished, "ttl_seconds_after_finished", low=0)
    spec: dict[str, Any] = {"nprocPerNode": str(nproc), "runPolicy": run_policy}
    if elastic:
        spec["elasticPolicy"] = {
            "rdzvBackend": "c10d",
            "minReplicas": low,
            "maxReplicas": high,
            "maxRestarts": max_restarts,
        }
        spec["pytorchReplicaSpecs"] = {"Worker": replica(workers)}
    else:
        replicas = {"Master": replica(1)}
        if workers > 1:
            replicas["Worker"] = replica(workers - 1)
        spec["pytorchReplicaSpecs"] = replicas
    return {
        "apiVersion": PYTORCHJOB_API,
        "kind": "PyTorchJob",
        "metadata": _metadata(name, namespace, labels),
        "spec": spec,
    }


# ---------------------------------------------------------------------------------------------- dask


def dask_cluster(
    name: str,
    *,
    namespace: str,
    image: str,
    workers: int = 1,
    worker_cpu: str = "1",
    worker_memory: str = "4Gi",
    worker_threads: int = 2,
    scheduler_cpu: str = "500m",
    scheduler_memory: str = "2Gi",
    idle_timeout_s: int | None = None,
    env: Mapping[str, str] | None = None,
    storage_endpoint: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    service_account: str | None = None,
    priority_class: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Manifest:
    """A DaskCluster (kubernetes.dask.org/v1): scheduler Pod + Service and the default worker group.

    Workers request no GPU and so never tolerate the GPU taint. idle_timeout_s (spec.idleTimeout) lets the
    operator delete a cluster nobody has used for that long.
    """
    _name(name, "name")
    if not image or not isinstance(image, str):
        raise ManifestError("image must be a non-empty container image reference")
    _int(workers, "workers", low=0)
    _int(worker_threads, "worker_threads", low=1)
    container_env = _env({**storage_env(storage_endpoint), **(env or {})})

    def pod(container: dict[str, Any]) -> dict[str, Any]:
        return _pod_spec(
            container=container,
            gpus=0,
            gpu_vendor="nvidia",
            node_selector=node_selector,
            service_account=service_account,
            priority_class=priority_class,
        )

    worker: dict[str, Any] = {
        "name": "worker",
        "image": image,
        "args": [
            "dask",
            "worker",
            "--name",
            "$(DASK_WORKER_NAME)",
            "--nthreads",
            str(worker_threads),
            "--dashboard",
            "--dashboard-address",
            "8788",
        ],
        "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
        "resources": _resources(worker_cpu, worker_memory, 0, "nvidia"),
    }
    scheduler: dict[str, Any] = {
        "name": "scheduler",
        "image": image,
        "args": ["dask", "scheduler"],
        "ports": [
            {"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
            {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"port": "http-dashboard", "path": "/health"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        },
        "livenessProbe": {
            "httpGet": {"port": "http-dashboard", "path": "/health"},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
        },
        "resources": _resources(scheduler_cpu, scheduler_memory, 0, "nvidia"),
    }
    if container_env:
        worker["env"] = container_env
        scheduler["env"] = container_env
    spec: dict[str, Any] = {
        "worker": {"replicas": workers, "spec": pod(worker)},
        "scheduler": {
            "spec": pod(scheduler),
            "service": {
                "type": "ClusterIP",
                "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                "ports": [
                    {"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
                    {"name": "http-dashboard", "protocol": "TCP", "port": 8787, "targetPort": "http-dashboard"},
                ],
            },
        },
    }
    if idle_timeout_s is not None:
        spec["idleTimeout"] = _int(idle_timeout_s, "idle_timeout_s", low=1)
    return {"apiVersion": DASK_API, "kind": "DaskCluster", "metadata": _metadata(name, namespace, labels), "spec": spec}


def dask_autoscaler(name: str, *, namespace: str, cluster: str, minimum: int, maximum: int) -> Manifest:
    """A DaskAutoscaler (kubernetes.dask.org/v1) bounding the default worker group of `cluster`."""
    _name(name, "name")
    _name(cluster, "cluster")
    _int(minimum, "minimum", low=0)
    _int(maximum, "maximum", low=1)
    if minimum > maximum:
        raise ManifestError(f"autoscaler minimum {minimum} exceeds maximum {maximum}")
    return {
        "apiVersion": DASK_API,
        "kind": "DaskAutoscaler",
        "metadata": _metadata(name, namespace, None),
        "spec": {"cluster": cluster, "minimum": minimum, "maximum": maximum},
    }


_CRON = re.compile(r"^(@(hourly|daily|weekly|monthly|yearly))$|^(\S+\s+){4}\S+$")


def cron_job(
    name: str,
    *,
    namespace: str,
    schedule: str,
    image: str,
    command: Sequence[str],
    service_account: str,
    priority_class: str | None = None,
    env: Mapping[str, str] | None = None,
    cpu: str = "1",
    memory: str = "4Gi",
    node_selector: Mapping[str, str] | None = None,
    backoff_limit: int = 2,
    active_deadline_seconds: int = 3600,
    labels: Mapping[str, str] | None = None,
    config_map: tuple[str, str] | None = None,
    env_from_secret: str | None = None,
) -> Manifest:
    """A CronJob (batch/v1) running `command` on `schedule`, one run at a time (concurrencyPolicy Forbid: a
    queue drainer must not race itself), failed runs kept for inspection, finished ones cleaned up.
    config_map: (ConfigMap name, directory) mounted read-only into the container. env_from_secret: a Secret of
    the namespace whose keys become environment variables (the object store's keys off AWS)."""
    _name(name, "name", max_len=52)  # CronJob names are capped at 52 characters (the Job name adds 11)
    if not _CRON.match(schedule.strip()):
        raise ManifestError(f"schedule {schedule!r} is not a cron expression (5 fields, or @hourly/@daily/...)")
    if not image or isinstance(command, str) or not command or not all(isinstance(c, str) and c for c in command):
        raise ManifestError("a cron job needs an image and a non-empty command list")
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "command": list(command),
        "resources": _resources(cpu, memory, 0, "nvidia"),
    }
    if env:
        container["env"] = _env(env)
    if env_from_secret is not None:
        container["envFrom"] = [{"secretRef": {"name": _name(env_from_secret, "env_from_secret", max_len=253)}}]
    pod = _pod_spec(
        container=container,
        gpus=0,
        gpu_vendor="nvidia",
        node_selector=node_selector,
        service_account=service_account,
        priority_class=priority_class,
        restart_policy="Never",
    )
    if config_map is not None:
        source, directory = config_map
        if not directory.startswith("/"):
            raise ManifestError(f"config_map directory {directory!r} must be an absolute path")
        container["volumeMounts"] = [{"name": "config", "mountPath": directory, "readOnly": True}]
        pod["volumes"] = [{"name": "config", "configMap": {"name": _name(source, "config_map", max_len=253)}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "schedule": schedule.strip(),
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": _int(backoff_limit, "backoff_limit", low=0),
                    "activeDeadlineSeconds": _int(active_deadline_seconds, "active_deadline_seconds", low=1),
                    "template": {"metadata": {"labels": _labels(labels, "labels")} if labels else {}, "spec": pod},
                }
            },
        },
    }


# ---------------------------------------------------------------------------------------------- serving


def _percent(percent: int) -> int:
    return _int(percent, "canary traffic percent", low=0, high=100)


def predictor_container(
    image: str,
    storage_uri: str,
    *,
    model_name: str,
    variant: str | None = None,
    cpu: str = "1",
    memory: str = "2Gi",
    gpus: int = 0,
    gpu_vendor: str = "nvidia",
    env: Mapping[str, str] | None = None,
    storage_endpoint: str | None = None,
) -> dict[str, Any]:
    """Tidewater's predictor (`python -m serving`, the image's `serving` target) as KServe's custom container.

    KServe's storage initializer downloads STORAGE_URI (the model folder `tide train` wrote) to /mnt/models,
    which the predictor reads; it serves KServe's v1/v2 protocols on 8080 and labels its /metrics with the
    endpoint (the InferenceService's name) and a variant: by default the Knative revision it runs in
    (K_REVISION), which the traffic function maps to KServe's `prev`/`latest` from the InferenceService's
    status (functions/traffic/adapters/kserve.py revision_roles); `variant` pins a label instead.
    """
    if not re.match(r"^(s3|gs|https?|pvc|hf|oci)://\S+$", storage_uri or ""):
        raise ManifestError(
            f"storage_uri {storage_uri!r} must be an s3://, gs://, http(s)://, pvc://, hf:// or oci:// URL"
        )
    if not image or any(c.isspace() for c in image):
        raise ManifestError(f"image {image!r} must be an image reference (registry/repository:tag)")
    _name(model_name, "model_name")
    if variant is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", variant):
        raise ManifestError(f"variant {variant!r} must be a plain label value (letters, digits, . _ -)")
    container_env = _env({"STORAGE_URI": storage_uri, **storage_env(storage_endpoint), **(env or {})})
    args = ["--model-dir", KSERVE_MODEL_DIR, "--model-name", model_name, "--port", str(KSERVE_HTTP_PORT)]
    return {
        "name": KSERVE_CONTAINER,
        "image": image,
        "args": [*args, "--endpoint", model_name, *(["--variant", variant] if variant else [])],
        "env": container_env,
        "ports": [{"containerPort": KSERVE_HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": KSERVE_HTTP_PORT}},
        "resources": _resources(cpu, memory, gpus, gpu_vendor),
    }


def inference_service(
    name: str,
    *,
    namespace: str,
    image: str,
    storage_uri: str,
    variant: str | None = None,
    canary_traffic_percent: int | None = None,
    min_replicas: int = 1,
    max_replicas: int = 3,
    cpu: str = "1",
    memory: str = "2Gi",
    gpus: int = 0,
    gpu_vendor: str = "nvidia",
    service_account: str | None = None,
    env: Mapping[str, str] | None = None,
    storage_endpoint: str | None = None,
    labels: Mapping[str, str] | None = None,
    deployment_mode: str | None = None,
    logger_url: str | None = None,
) -> Manifest:
    """A KServe InferenceService (serving.kserve.io/v1beta1) running Tidewater's predictor over one model.

    The predictor is a custom container (predictor_container), not `modelFormat: pytorch`: KServe's PyTorch
    runtime is TorchServe, which needs a .mar, and the model needs the contract's encoding to score raw rows.

    With logger_url, KServe's payload logger sends every request and response (CloudEvents) there: the
    captures the drift check reads on the kubernetes target (functions/drift/captures.py, KServe format).

    With canary_traffic_percent set, the latest revision (this storage_uri) gets that share and the previous
    ready revision the rest; canary_traffic_patch() moves the share later. That split needs Serverless mode:
    deployment_mode pins the mode for this service (None: the cluster's default).
    """
    _name(name, "name")
    if deployment_mode is not None and deployment_mode not in KSERVE_DEPLOYMENT_MODES:
        raise ManifestError(f"deployment_mode {deployment_mode!r} must be one of {', '.join(KSERVE_DEPLOYMENT_MODES)}")
    if deployment_mode == "RawDeployment" and canary_traffic_percent is not None:
        raise ManifestError("canary traffic percent is ignored by KServe in RawDeployment mode; use Serverless")
    _int(min_replicas, "min_replicas", low=0)
    _int(max_replicas, "max_replicas", low=1)
    if min_replicas > max_replicas:
        raise ManifestError(f"min_replicas {min_replicas} exceeds max_replicas {max_replicas}")
    container = predictor_container(
        image, storage_uri, model_name=name, variant=variant, cpu=cpu, memory=memory, gpus=gpus,
        gpu_vendor=gpu_vendor, env=env, storage_endpoint=storage_endpoint,
    )  # fmt: skip
    predictor: dict[str, Any] = {"minReplicas": min_replicas, "maxReplicas": max_replicas, "containers": [container]}
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = _percent(canary_traffic_percent)
    if gpus > 0:
        predictor["tolerations"] = [gpu_toleration(gpu_vendor)]
    if service_account is not None:
        predictor["serviceAccountName"] = _name(service_account, "service_account", max_len=253)
    if logger_url is not None:
        if not re.match(r"^https?://\S+$", logger_url):
            raise ManifestError(f"logger_url {logger_url!r} must be an http(s):// URL (the payload log sink)")
        predictor["logger"] = {"mode": "all", "url": logger_url}
    annotations = {"serving.kserve.io/deploymentMode": deployment_mode} if deployment_mode else None
    return {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": _metadata(name, namespace, labels, annotations),
        "spec": {"predictor": predictor},
    }


def predictor_storage_uri(isvc: Mapping[str, Any]) -> str | None:
    """The model an InferenceService's predictor serves now (its container's STORAGE_URI)."""
    for container in isvc.get("spec", {}).get("predictor", {}).get("containers", []):
        for item in container.get("env", []):
            if item.get("name") == "STORAGE_URI":
                return str(item.get("value"))
    return None


KNATIVE_SERVING_API: Final = "operator.knative.dev/v1beta1"


def knative_serving(version: str, *, namespace: str = "knative-serving") -> Manifest:
    """A KnativeServing resource (Knative operator) with Kourier as the ingress: the Knative Serving that
    KServe's Serverless mode (the one whose canaryTrafficPercent splits traffic) runs on, without Istio."""
    if not re.match(r"^\d+\.\d+(\.\d+)?$", version or ""):
        raise ManifestError(f"Knative Serving version {version!r} must look like 1.16 or 1.16.1")
    return {
        "apiVersion": KNATIVE_SERVING_API,
        "kind": "KnativeServing",
        "metadata": _metadata("knative-serving", _name(namespace, "namespace"), None),
        "spec": {
            "version": version,
            "ingress": {"kourier": {"enabled": True}},
            "config": {"network": {"ingress-class": "kourier.ingress.networking.knative.dev"}},
        },
    }


def canary_traffic_patch(percent: int, *, container: Mapping[str, Any] | None = None) -> Manifest:
    """JSON merge patch (RFC 7386) for an InferenceService: give the latest revision `percent` of traffic.

    With a container (predictor_container for a new model), the patch also rolls out that model as a new
    revision, the canary; a merge patch replaces the containers list whole, so the container is complete.
    percent=100 promotes it. KServe honours the split in Serverless mode only (RawDeployment ignores it).
    """
    predictor: dict[str, Any] = {"canaryTrafficPercent": _percent(percent)}
    if container is not None:
        if not predictor_storage_uri({"spec": {"predictor": {"containers": [container]}}}):
            raise ManifestError("the canary's container has no STORAGE_URI: build it with predictor_container")
        predictor["containers"] = [dict(container)]
    return {"spec": {"predictor": predictor}}


EVENT_MESSAGE_LIMIT: Final = 1024  # events.k8s.io caps a note at 1 KiB; kubectl shows the message whole below that


def inference_service_event(
    name: str, *, namespace: str, inference_service: str, uid: str | None, reason: str, message: str,
    warning: bool, component: str, at: str, annotations: Mapping[str, str] | None = None,
) -> Manifest:  # fmt: skip
    """A core/v1 Event about an InferenceService: `kubectl describe inferenceservice` and `kubectl get events`
    list it (describe matches on the object's uid, so give it). `at` is an RFC 3339 UTC time."""
    if not reason or not reason.isalnum():
        raise ManifestError(f"event reason {reason!r} must be a non-empty CamelCase word")
    involved: dict[str, Any] = {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "name": _name(inference_service, "inference_service"),
        "namespace": namespace,
    }
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": _metadata(_name(name, "event", max_len=253), namespace, None, annotations),
        "involvedObject": involved, "reason": reason, "message": message[:EVENT_MESSAGE_LIMIT],
        "type": "Warning" if warning else "Normal", "source": {"component": component},
        "reportingComponent": component, "reportingInstance": component, "action": reason,
        "firstTimestamp": at, "lastTimestamp": at, "count": 1,
    }  # fmt: skip


# The traffic function's tick on the kubernetes target: every minute, like the scheduled function on aws.
ROLLOUT_TICK_SCHEDULE: Final = "* * * * *"


def rollout_tick_rules(inference_services: Sequence[str]) -> list[Manifest]:
    """The RBAC rules of the rollout tick, all of them. KServe backend: get (canaryTrafficPercent, the revisions'
    roles) and patch (the split) the named InferenceServices only; the event publisher also gets one (its uid).
    The ConfigMap store: get (load), list (by label: active rollouts, audit chunks), create (a new state object,
    an audit chunk), update (the conditional replace); resourceNames cannot narrow list or create. Events:
    create. No delete, watch or escalation; no Secrets; nothing outside the Role's namespace."""
    if not inference_services:
        raise ManifestError("the rollout tick needs at least one InferenceService to act on")
    names = [_name(n, "inference_service") for n in inference_services]
    return [
        {"apiGroups": [KSERVE_GROUP], "resources": [KSERVE_PLURAL], "resourceNames": names, "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def rollout_ticker(
    name: str, *, namespace: str, image: str, command: Sequence[str], env: Mapping[str, str],
    inference_services: Sequence[str], priority_class: str | None = None, labels: Mapping[str, str] | None = None,
) -> dict[str, Manifest]:  # fmt: skip
    """The rollout tick's objects, one name for all: its ServiceAccount, a Role with rollout_tick_rules bound to
    it, and a CronJob running `command` every minute as it (one run at a time; a failed run is not retried at
    once: the next minute's run is the retry). A tick takes seconds: small requests, a 4-minute deadline."""
    return {
        "service_account": service_account(name, namespace=namespace),
        "role": namespaced_role(name, namespace=namespace, rules=rollout_tick_rules(inference_services)),
        "role_binding": role_binding(name, namespace=namespace, role=name, service_account=name),
        "cron_job": cron_job(
            name, namespace=namespace, schedule=ROLLOUT_TICK_SCHEDULE, image=image, command=command,
            service_account=name, priority_class=priority_class, env=env, cpu="250m", memory="512Mi",
            backoff_limit=0, active_deadline_seconds=240, labels=labels,
        ),
    }  # fmt: skip


def retraining_runner_rules(inference_service: str | None) -> dict[str, list[Manifest]]:
    """The RBAC rules of the retraining runner on the kubernetes target, all of them, per namespace. training:
    create (launch) and get (find after a crash, read the state) PyTorchJobs. serving (once the InferenceService
    exists): get and patch that InferenceService only (the canary revision at 0 %, the rollout's first weights) and
    the ConfigMap store's verbs (rollout_tick_rules: get, list, create, update). No delete, watch, Secrets or
    Events (a rollout's start publishes none); nothing cluster-wide."""
    group = PYTORCHJOB_API.split("/")[0]
    rules: dict[str, list[Manifest]] = {
        "training": [{"apiGroups": [group], "resources": ["pytorchjobs"], "verbs": ["create", "get"]}],
    }
    if inference_service is not None:
        rules["serving"] = [r for r in rollout_tick_rules([inference_service]) if r["resources"] != ["events"]]
    return rules


def k8s_retraining_runner(
    name: str, *, namespace: str, serving_namespace: str, image: str, command: Sequence[str], schedule: str,
    firing_name: str, firing_schedule: str, dataset: str, config_map: tuple[str, str], env: Mapping[str, str],
    inference_service: str | None, storage_secret: str | None = None, priority_class: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Manifest]:  # fmt: skip
    """The retraining runner of the kubernetes target, one account for its two CronJobs: `name` runs `command`
    on `schedule` (moves earlier retrainings on: deploy, rollout), `firing_name` runs it on `firing_schedule` with
    `--scheduled-dataset dataset` (each run is a firing of the schedule). Its Roles are retraining_runner_rules,
    the serving one bound across namespaces to the account in the training namespace. storage_secret: the object
    store's keys (env), the only Secret it reads, and only through its pod spec, never the API."""
    rules = retraining_runner_rules(inference_service)
    common: dict[str, Any] = dict(
        namespace=namespace, image=image, service_account=name, priority_class=priority_class, env=env,
        cpu="500m", memory="1Gi", backoff_limit=0, labels=labels, config_map=config_map,
        env_from_secret=storage_secret,
    )  # fmt: skip
    found = {
        "service_account": service_account(name, namespace=namespace),
        "role": namespaced_role(name, namespace=namespace, rules=rules["training"]),
        "role_binding": role_binding(name, namespace=namespace, role=name, service_account=name),
        "cron_job": cron_job(name, schedule=schedule, command=command, **common),
        "firing_cron_job": cron_job(
            firing_name, schedule=firing_schedule, command=[*command, "--scheduled-dataset", dataset], **common
        ),
    }
    if "serving" in rules:
        found["serving_role"] = namespaced_role(name, namespace=serving_namespace, rules=rules["serving"])
        found["serving_role_binding"] = role_binding(
            name, namespace=serving_namespace, role=name, service_account=name, account_namespace=namespace
        )
    return found


# ---------------------------------------------------------------------------------------------- cluster policy


def namespace(name: str, *, labels: Mapping[str, str] | None = None) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(_name(name, "namespace"), None, labels)}


def namespaced_role(name: str, *, namespace: str, rules: Sequence[Mapping[str, Any]]) -> Manifest:
    """An RBAC Role: exactly the verbs on exactly the resources of one namespace (no wildcards)."""
    for rule in rules:
        if any("*" in rule.get(key, []) for key in ("apiGroups", "resources", "verbs")):
            raise ManifestError(f"RBAC rule {dict(rule)} has a wildcard")
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _metadata(_name(name, "role", max_len=253), namespace, None),
            "rules": [dict(rule) for rule in rules]}  # fmt: skip


def role_binding(
    name: str, *, namespace: str, role: str, service_account: str, account_namespace: str | None = None
) -> Manifest:
    """Binds a Role of the namespace to one service account, of the same namespace unless account_namespace."""
    subject = {"kind": "ServiceAccount", "name": service_account,
               "namespace": _name(account_namespace or namespace, "namespace")}  # fmt: skip
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(_name(name, "role binding", max_len=253), namespace, None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [subject],
    }


def service_account(name: str, *, namespace: str, annotations: Mapping[str, str] | None = None) -> Manifest:
    """A ServiceAccount; on EKS, annotations carry the IRSA role (eks.amazonaws.com/role-arn)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(_name(name, "service account", max_len=253), namespace, None, annotations),
    }


def resource_quota(
    name: str,
    *,
    namespace: str,
    cpu: str,
    memory: str,
    gpus: int = 0,
    gpu_vendor: str = "nvidia",
    pods: int | None = None,
) -> Manifest:
    """A ResourceQuota capping what one namespace may request (and hence what it can take from the other)."""
    _name(name, "name")
    hard: dict[str, Any] = {
        "requests.cpu": _quantity(cpu, "cpu"),
        "requests.memory": _quantity(memory, "memory"),
        "limits.memory": memory,
    }
    # Quota on extended resources exists only with the requests. prefix; 0 forbids GPUs in the namespace outright.
    hard[f"requests.{gpu_resource_key(gpu_vendor)}"] = str(_int(gpus, "gpus", low=0))
    if pods is not None:
        hard["pods"] = str(_int(pods, "pods", low=1))
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata(name, namespace, None),
        "spec": {"hard": hard},
    }


def limit_range(
    name: str,
    *,
    namespace: str,
    default_cpu_request: str = "100m",
    default_memory_request: str = "256Mi",
    default_memory_limit: str = "1Gi",
) -> Manifest:
    """Defaults for containers that set no resources (operator sidecars, init containers).

    A ResourceQuota on requests/limits rejects any pod whose containers leave them unset; this LimitRange fills
    them in so pods the operators inject still get admitted and still count against the quota.
    """
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _metadata(_name(name, "name"), namespace, None),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {
                        "cpu": _quantity(default_cpu_request, "default_cpu_request"),
                        "memory": _quantity(default_memory_request, "default_memory_request"),
                    },
                    "default": {"memory": _quantity(default_memory_limit, "default_memory_limit")},
                }
            ]
        },
    }


def priority_class(
    name: str,
    *,
    value: int,
    description: str,
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority",
) -> Manifest:
    """A PriorityClass (scheduling.k8s.io/v1). User classes must stay below the system range (1e9)."""
    _int(value, "priority value", low=-2_147_483_648, high=1_000_000_000)
    if preemption_policy not in ("PreemptLowerPriority", "Never"):
        raise ManifestError(f"preemption_policy {preemption_policy!r} must be PreemptLowerPriority or Never")
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": _name(name, "priority class", max_len=253)},
        "value": value,
        "globalDefault": False,
        "preemptionPolicy": preemption_policy,
        "description": description,
    }


def gpu_device_plugin(
    *, namespace: str = "kube-system", gpu_vendor: str = "nvidia", node_selector: Mapping[str, str] | None = None
) -> Manifest:
    """The NVIDIA device plugin DaemonSet (apps/v1): advertises nvidia.com/gpu on GPU nodes.

    It tolerates the GPU taint (it must run there) and, given node_selector, runs only on the GPU pool.
    AMD and Intel ship their plugins with their own operators, so asking for them here is an error.
    """
    gpu_resource_key(gpu_vendor)
    if gpu_vendor != "nvidia":
        raise ManifestError(
            f"no built-in device plugin for gpu_vendor {gpu_vendor!r}: install the vendor's device plugin operator"
        )
    labels = {"app.kubernetes.io/name": "nvidia-device-plugin"}
    pod: dict[str, Any] = {
        "priorityClassName": "system-node-critical",
        "tolerations": [gpu_toleration(gpu_vendor)],
        "containers": [
            {
                "name": "nvidia-device-plugin-ctr",
                "image": NVIDIA_DEVICE_PLUGIN_IMAGE,
                "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}],
            }
        ],
        "volumes": [{"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}],
    }
    if node_selector:
        pod["nodeSelector"] = _labels(node_selector, "node_selector")
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _metadata("nvidia-device-plugin", namespace, labels),
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
