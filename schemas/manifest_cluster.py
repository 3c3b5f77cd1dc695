"""Manifests of cluster policy: namespaces, RBAC, quotas and limit ranges, priority classes, and the NVIDIA
device plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from schemas.manifest_fields import (
    Manifest,
    ManifestError,
    check_int,
    check_labels,
    check_name,
    check_quantity,
    gpu_resource_key,
    gpu_toleration,
    object_metadata,
)

# Only NVIDIA's device plugin ships as a plain DaemonSet we can pin; the others come with the vendor's operator.
NVIDIA_DEVICE_PLUGIN_IMAGE: Final = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"


def namespace(name: str, *, labels: Mapping[str, str] | None = None) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": object_metadata(check_name(name, "namespace"), None, labels),
    }


def namespaced_role(name: str, *, namespace: str, rules: Sequence[Mapping[str, Any]]) -> Manifest:
    """An RBAC Role: exactly the verbs on exactly the resources of one namespace (no wildcards)."""
    for rule in rules:
        if any("*" in rule.get(key, []) for key in ("apiGroups", "resources", "verbs")):
            raise ManifestError(f"RBAC rule {dict(rule)} has a wildcard")
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": object_metadata(check_name(name, "role", max_len=253), namespace, None),
            "rules": [dict(rule) for rule in rules]}  # fmt: skip


def role_binding(
    name: str, *, namespace: str, role: str, service_account: str, account_namespace: str | None = None
) -> Manifest:
    """Binds a Role of the namespace to one service account, of the same namespace unless account_namespace."""
    subject = {"kind": "ServiceAccount", "name": service_account,
               "namespace": check_name(account_namespace or namespace, "namespace")}  # fmt: skip
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_metadata(check_name(name, "role binding", max_len=253), namespace, None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [subject],
    }


def service_account(name: str, *, namespace: str, annotations: Mapping[str, str] | None = None) -> Manifest:
    """A ServiceAccount; on EKS, annotations carry the IRSA role (eks.amazonaws.com/role-arn)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_metadata(check_name(name, "service account", max_len=253), namespace, None, annotations),
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
    check_name(name, "name")
    hard: dict[str, Any] = {
        "requests.cpu": check_quantity(cpu, "cpu"),
        "requests.memory": check_quantity(memory, "memory"),
        "limits.memory": memory,
    }
    # Quota on extended resources exists only with the requests. prefix; 0 forbids GPUs in the namespace outright.
    hard[f"requests.{gpu_resource_key(gpu_vendor)}"] = str(check_int(gpus, "gpus", low=0))
    if pods is not None:
        hard["pods"] = str(check_int(pods, "pods", low=1))
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": object_metadata(name, namespace, None),
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
        "metadata": object_metadata(check_name(name, "name"), namespace, None),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {
                        "cpu": check_quantity(default_cpu_request, "default_cpu_request"),
                        "memory": check_quantity(default_memory_request, "default_memory_request"),
                    },
                    "default": {"memory": check_quantity(default_memory_limit, "default_memory_limit")},
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
    check_int(value, "priority value", low=-2_147_483_648, high=1_000_000_000)
    if preemption_policy not in ("PreemptLowerPriority", "Never"):
        raise ManifestError(f"preemption_policy {preemption_policy!r} must be PreemptLowerPriority or Never")
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": check_name(name, "priority class", max_len=253)},
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
        pod["nodeSelector"] = check_labels(node_selector, "node_selector")
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": object_metadata("nvidia-device-plugin", namespace, labels),
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
