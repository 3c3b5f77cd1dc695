"""Manifests of the batch workloads: the PyTorchJob (training), the DaskCluster and its autoscaler (dataset
builds), and the CronJob (the scheduled jobs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from schemas.manifest_fields import (
    Manifest,
    ManifestError,
    check_int,
    check_labels,
    check_name,
    check_quantity,
    container_resources,
    env_vars,
    object_metadata,
    pod_spec,
    storage_env,
)

PYTORCHJOB_API: Final = "kubeflow.org/v1"
DASK_API: Final = "kubernetes.dask.org/v1"


def _secret_env(secret: str) -> list[dict[str, Any]]:
    """envFrom: every key of a Secret of the pod's namespace as an environment variable."""
    return [{"secretRef": {"name": check_name(secret, "env_from_secret", max_len=253)}}]


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
    check_name(name, "name")
    if not image or not isinstance(image, str):
        raise ManifestError("image must be a non-empty container image reference")
    if isinstance(command, str) or not command or not all(isinstance(c, str) and c for c in command):
        raise ManifestError("command must be a non-empty list of non-empty strings (not one string)")
    check_int(workers, "workers", low=1)
    low = workers if min_workers is None else check_int(min_workers, "min_workers", low=1)
    high = workers if max_workers is None else check_int(max_workers, "max_workers", low=1)
    if not low <= workers <= high:
        raise ManifestError(f"need min_workers <= workers <= max_workers, got {low} <= {workers} <= {high}")
    if not elastic and (low, high) != (workers, workers):
        raise ManifestError("min_workers/max_workers need elastic=True; a fixed job has exactly `workers` nodes")
    check_int(max_restarts, "max_restarts", low=0)
    check_int(backoff_limit, "backoff_limit", low=0)
    gpus = check_int(gpus_per_worker, "gpus_per_worker", low=0)
    nproc = nproc_per_node if nproc_per_node is not None else max(gpus, 1)
    check_int(nproc, "nproc_per_node", low=1)
    if gpus and nproc > gpus:
        raise ManifestError(f"nproc_per_node {nproc} exceeds gpus_per_worker {gpus}: one process per GPU at most")
    container_env = env_vars({**storage_env(storage_endpoint), **(env or {})})
    if shm_size is not None:
        check_quantity(shm_size, "shm_size")

    def replica(replicas: int) -> dict[str, Any]:
        container: dict[str, Any] = {
            # The training operator finds the training container by this name.
            "name": "pytorch",
            "image": image,
            "command": list(command),
            "resources": container_resources(cpu, memory, gpus, gpu_vendor),
        }
        if container_env:
            container["env"] = container_env
        if env_from_secret is not None:
            container["envFrom"] = _secret_env(env_from_secret)
        pod = pod_spec(
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
                "metadata": {"labels": check_labels(labels, "labels")} if labels else {},
                "spec": pod,
            },
        }

    run_policy: dict[str, Any] = {"cleanPodPolicy": "Running", "backoffLimit": backoff_limit}
    if ttl_seconds_after_finished is not None:
        run_policy["ttlSecondsAfterFinished"] = check_int(
            ttl_seconds_after_finished, "ttl_seconds_after_finished", low=0
        )
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
        "metadata": object_metadata(name, namespace, labels),
        "spec": spec,
    }


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
    check_name(name, "name")
    if not image or not isinstance(image, str):
        raise ManifestError("image must be a non-empty container image reference")
    check_int(workers, "workers", low=0)
    check_int(worker_threads, "worker_threads", low=1)
    container_env = env_vars({**storage_env(storage_endpoint), **(env or {})})

    def pod(container: dict[str, Any]) -> dict[str, Any]:
        return pod_spec(
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
        "resources": container_resources(worker_cpu, worker_memory, 0, "nvidia"),
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
        "resources": container_resources(scheduler_cpu, scheduler_memory, 0, "nvidia"),
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
        spec["idleTimeout"] = check_int(idle_timeout_s, "idle_timeout_s", low=1)
    return {
        "apiVersion": DASK_API,
        "kind": "DaskCluster",
        "metadata": object_metadata(name, namespace, labels),
        "spec": spec,
    }


def dask_autoscaler(name: str, *, namespace: str, cluster: str, minimum: int, maximum: int) -> Manifest:
    """A DaskAutoscaler (kubernetes.dask.org/v1) bounding the default worker group of `cluster`."""
    check_name(name, "name")
    check_name(cluster, "cluster")
    check_int(minimum, "minimum", low=0)
    check_int(maximum, "maximum", low=1)
    if minimum > maximum:
        raise ManifestError(f"autoscaler minimum {minimum} exceeds maximum {maximum}")
    return {
        "apiVersion": DASK_API,
        "kind": "DaskAutoscaler",
        "metadata": object_metadata(name, namespace, None),
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
    check_name(name, "name", max_len=52)  # CronJob names are capped at 52 characters (the Job name adds 11)
    if not _CRON.match(schedule.strip()):
        raise ManifestError(f"schedule {schedule!r} is not a cron expression (5 fields, or @hourly/@daily/...)")
    if not image or isinstance(command, str) or not command or not all(isinstance(c, str) and c for c in command):
        raise ManifestError("a cron job needs an image and a non-empty command list")
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "command": list(command),
        "resources": container_resources(cpu, memory, 0, "nvidia"),
    }
    if env:
        container["env"] = env_vars(env)
    if env_from_secret is not None:
        container["envFrom"] = _secret_env(env_from_secret)
    pod = pod_spec(
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
        pod["volumes"] = [{"name": "config", "configMap": {"name": check_name(source, "config_map", max_len=253)}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": object_metadata(name, namespace, labels),
        "spec": {
            "schedule": schedule.strip(),
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": check_int(backoff_limit, "backoff_limit", low=0),
                    "activeDeadlineSeconds": check_int(active_deadline_seconds, "active_deadline_seconds", low=1),
                    "template": {"metadata": {"labels": check_labels(labels, "labels")} if labels else {}, "spec": pod},
                }
            },
        },
    }
