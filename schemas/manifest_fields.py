"""The pieces every Kubernetes manifest builder shares: the field checks (names, integers, quantities, labels,
environment), object metadata, container resources and the pod spec, the GPU resource keys and taint, S3 access
(storage_env, the credentials Secret). Each check raises ManifestError naming the offending parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

Manifest = dict[str, Any]


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

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Kubernetes resource quantities (cpu "500m", "2"; memory "4Gi", "512M", "1e9").
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][0-9]+)?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class ManifestError(ValueError):
    """A builder parameter cannot produce a valid Kubernetes object."""


def gpu_resource_key(vendor: str) -> str:
    """Extended resource name for a GPU vendor; an unknown vendor is an error (never a silent default)."""
    try:
        return GPU_RESOURCE_KEYS[vendor]
    except KeyError:
        raise ManifestError(
            f"gpu_vendor {vendor!r} is unknown; known vendors are {', '.join(sorted(GPU_RESOURCE_KEYS))}"
        ) from None


def check_name(value: str, what: str, *, max_len: int = 63) -> str:
    pattern = _DNS_LABEL if max_len <= 63 else _DNS_SUBDOMAIN
    if not isinstance(value, str) or not value or len(value) > max_len or not pattern.match(value):
        raise ManifestError(
            f"{what} {value!r} must be 1-{max_len} lowercase letters, digits or '-', starting and ending with an "
            "alphanumeric character"
        )
    return value


def check_int(value: int, what: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ManifestError(f"{what} must be an integer {bound}, got {value!r}")
    return value


def check_quantity(value: str, what: str) -> str:
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise ManifestError(f"{what} {value!r} is not a Kubernetes quantity (e.g. '500m', '2', '4Gi')")
    return value


def check_labels(labels: Mapping[str, str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (labels or {}).items():
        if not isinstance(key, str) or len(key) > 316 or not _LABEL_KEY.match(key):
            raise ManifestError(f"{what} key {key!r} is not a valid label key")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ManifestError(f"{what}[{key!r}] value {value!r} is not a valid label value")
        out[key] = value
    return out


def env_vars(env: Mapping[str, str] | None) -> list[dict[str, str]]:
    out = []
    for key, value in (env or {}).items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ManifestError(f"env name {key!r} is not a valid environment variable name")
        if not isinstance(value, str):
            raise ManifestError(f"env[{key!r}] must be a string, got {type(value).__name__}")
        out.append({"name": key, "value": value})
    return out


def object_metadata(
    name: str, namespace: str | None, labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = check_name(namespace, "namespace")
    if labels:
        meta["labels"] = check_labels(labels, "labels")
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
        "metadata": object_metadata(check_name(name, "secret", max_len=253), namespace, None, annotations or None),
        "stringData": {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key},
    }


def container_resources(cpu: str, memory: str, gpus: int, gpu_vendor: str) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": check_quantity(cpu, "cpu"), "memory": check_quantity(memory, "memory")}
    limits: dict[str, Any] = {"memory": memory}
    if check_int(gpus, "gpus", low=0) > 0:
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


def pod_spec(
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
        spec["nodeSelector"] = check_labels(node_selector, "node_selector")
    if service_account is not None:
        spec["serviceAccountName"] = check_name(service_account, "service_account", max_len=253)
    if priority_class is not None:
        spec["priorityClassName"] = check_name(priority_class, "priority_class", max_len=253)
    if restart_policy is not None:
        spec["restartPolicy"] = restart_policy
    return spec
