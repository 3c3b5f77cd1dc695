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

The builders live by what they build; this module gathers them under one name, the one every caller
imports:
- manifest_fields   the field checks, metadata, resources, pod spec, GPU keys and taint, S3 access
- manifest_jobs     PyTorchJob, DaskCluster + DaskAutoscaler, CronJob
- manifest_serving  InferenceService, predictor, canary patches, Knative Serving, events, the rollout ticker
- manifest_cluster  Namespace, RBAC, ResourceQuota, LimitRange, PriorityClass, the NVIDIA device plugin
- manifest_retraining  the kubernetes target's retraining runner (its Roles and CronJobs)
"""

from __future__ import annotations

from schemas.manifest_cluster import (
    NVIDIA_DEVICE_PLUGIN_IMAGE,
    gpu_device_plugin,
    limit_range,
    namespace,
    namespaced_role,
    priority_class,
    resource_quota,
    role_binding,
    service_account,
)
from schemas.manifest_fields import (
    GPU_RESOURCE_KEYS,
    GPU_TAINT_VALUE,
    POOL_LABEL,
    Manifest,
    ManifestError,
    gpu_resource_key,
    gpu_taint,
    gpu_toleration,
    s3_credentials_secret,
    storage_env,
)
from schemas.manifest_jobs import (
    DASK_API,
    PYTORCHJOB_API,
    cron_job,
    dask_autoscaler,
    dask_cluster,
    pytorch_job,
)
from schemas.manifest_retraining import k8s_retraining_runner, retraining_runner_rules
from schemas.manifest_serving import (
    EVENT_MESSAGE_LIMIT,
    KNATIVE_SERVING_API,
    KSERVE_API,
    KSERVE_CONTAINER,
    KSERVE_DEPLOYMENT_MODES,
    KSERVE_GROUP,
    KSERVE_HTTP_PORT,
    KSERVE_MODEL_DIR,
    KSERVE_PLURAL,
    KSERVE_VERSION,
    ROLLOUT_TICK_SCHEDULE,
    canary_traffic_patch,
    inference_service,
    inference_service_event,
    knative_serving,
    predictor_container,
    predictor_storage_uri,
    rollout_tick_rules,
    rollout_ticker,
)

__all__ = [
    "DASK_API",
    "EVENT_MESSAGE_LIMIT",
    "GPU_RESOURCE_KEYS",
    "GPU_TAINT_VALUE",
    "KNATIVE_SERVING_API",
    "KSERVE_API",
    "KSERVE_CONTAINER",
    "KSERVE_DEPLOYMENT_MODES",
    "KSERVE_GROUP",
    "KSERVE_HTTP_PORT",
    "KSERVE_MODEL_DIR",
    "KSERVE_PLURAL",
    "KSERVE_VERSION",
    "NVIDIA_DEVICE_PLUGIN_IMAGE",
    "POOL_LABEL",
    "PYTORCHJOB_API",
    "ROLLOUT_TICK_SCHEDULE",
    "Manifest",
    "ManifestError",
    "canary_traffic_patch",
    "cron_job",
    "dask_autoscaler",
    "dask_cluster",
    "gpu_device_plugin",
    "gpu_resource_key",
    "gpu_taint",
    "gpu_toleration",
    "inference_service",
    "inference_service_event",
    "k8s_retraining_runner",
    "knative_serving",
    "limit_range",
    "namespace",
    "namespaced_role",
    "predictor_container",
    "predictor_storage_uri",
    "priority_class",
    "pytorch_job",
    "resource_quota",
    "retraining_runner_rules",
    "role_binding",
    "rollout_tick_rules",
    "rollout_ticker",
    "s3_credentials_secret",
    "service_account",
    "storage_env",
]
