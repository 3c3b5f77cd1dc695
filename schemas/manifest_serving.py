"""Manifests of serving: the KServe InferenceService and its predictor, canary traffic patches, Knative
Serving, the InferenceService events, and the rollout ticker's RBAC and CronJob.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from schemas.manifest_cluster import namespaced_role, role_binding, service_account
from schemas.manifest_fields import (
    Manifest,
    ManifestError,
    check_int,
    check_name,
    container_resources,
    env_vars,
    gpu_toleration,
    object_metadata,
    storage_env,
)
from schemas.manifest_jobs import cron_job

KSERVE_GROUP: Final = "serving.kserve.io"
KSERVE_VERSION: Final = "v1beta1"
KSERVE_PLURAL: Final = "inferenceservices"  # the custom-objects API's name for the resource
KSERVE_API: Final = f"{KSERVE_GROUP}/{KSERVE_VERSION}"
# Tidewater's predictor as KServe's custom container: KServe's conventional container name, model mount and port.
KSERVE_CONTAINER: Final = "kserve-container"
KSERVE_MODEL_DIR: Final = "/mnt/models"
KSERVE_HTTP_PORT: Final = 8080

# KServe deployment modes (annotation serving.kserve.io/deploymentMode). canaryTrafficPercent splits traffic only in
# Serverless (Knative) mode; RawDeployment ignores it silently, so the builder refuses that combination.
KSERVE_DEPLOYMENT_MODES: Final[tuple[str, ...]] = ("Serverless", "RawDeployment")


def _percent(percent: int) -> int:
    return check_int(percent, "canary traffic percent", low=0, high=100)


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
    check_name(model_name, "model_name")
    if variant is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", variant):
        raise ManifestError(f"variant {variant!r} must be a plain label value (letters, digits, . _ -)")
    container_env = env_vars({"STORAGE_URI": storage_uri, **storage_env(storage_endpoint), **(env or {})})
    args = ["--model-dir", KSERVE_MODEL_DIR, "--model-name", model_name, "--port", str(KSERVE_HTTP_PORT)]
    return {
        "name": KSERVE_CONTAINER,
        "image": image,
        "args": [*args, "--endpoint", model_name, *(["--variant", variant] if variant else [])],
        "env": container_env,
        "ports": [{"containerPort": KSERVE_HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": KSERVE_HTTP_PORT}},
        "resources": container_resources(cpu, memory, gpus, gpu_vendor),
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
    check_name(name, "name")
    if deployment_mode is not None and deployment_mode not in KSERVE_DEPLOYMENT_MODES:
        raise ManifestError(f"deployment_mode {deployment_mode!r} must be one of {', '.join(KSERVE_DEPLOYMENT_MODES)}")
    if deployment_mode == "RawDeployment" and canary_traffic_percent is not None:
        raise ManifestError("canary traffic percent is ignored by KServe in RawDeployment mode; use Serverless")
    check_int(min_replicas, "min_replicas", low=0)
    check_int(max_replicas, "max_replicas", low=1)
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
        predictor["serviceAccountName"] = check_name(service_account, "service_account", max_len=253)
    if logger_url is not None:
        if not re.match(r"^https?://\S+$", logger_url):
            raise ManifestError(f"logger_url {logger_url!r} must be an http(s):// URL (the payload log sink)")
        predictor["logger"] = {"mode": "all", "url": logger_url}
    annotations = {"serving.kserve.io/deploymentMode": deployment_mode} if deployment_mode else None
    return {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": object_metadata(name, namespace, labels, annotations),
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
        "metadata": object_metadata("knative-serving", check_name(namespace, "namespace"), None),
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
        "name": check_name(inference_service, "inference_service"),
        "namespace": namespace,
    }
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": object_metadata(check_name(name, "event", max_len=253), namespace, None, annotations),
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
    names = [check_name(n, "inference_service") for n in inference_services]
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
