"""Typed stack config of the Kubernetes compute, read once from the `tidewater:` namespace.

Defaults live in Pulumi.yaml's config block only (the "kubernetes compute" block); here a missing key is an
error naming it. Cross-key rules (GPUs requested without a GPU pool, bounds out of order, ...) raise
K8sConfigError with the key to change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from infra.config import declared_keys as declared_config
from schemas import manifests

Target = Literal["aws", "kubernetes"]
TARGETS: tuple[Target, ...] = ("aws", "kubernetes")
STORAGE_PROTOCOLS = ("s3", "gs", "abfs")
NS = "tidewater"


class K8sConfigError(ValueError):
    """Stack config that cannot produce a working cluster; the message names the key."""


@dataclass(frozen=True)
class NodePool:
    instance_types: tuple[str, ...]
    min_size: int
    max_size: int
    desired_size: int
    spot: bool = False


@dataclass(frozen=True)
class Quota:
    cpu: str
    memory: str
    gpus: int
    pods: int


@dataclass(frozen=True)
class K8sConfig:
    target: Target
    gpu_vendor: str
    training_gpus: int  # GPUs per training worker
    system_pool: NodePool  # aws target: the CPU node group
    gpu_pool: NodePool  # aws target: the GPU node group (max_size 0 = none)
    cluster_version: str
    subnet_ids: tuple[str, ...]  # aws target: existing subnets; empty = create a small VPC
    kubeconfig: pulumi.Input[str] | None  # kubernetes target: contents or path of a kubeconfig (secret)
    kube_context: str | None
    has_gpu_nodes: bool  # kubernetes target: the existing cluster has GPU nodes with a device plugin
    storage_protocol: str
    storage_endpoint: str | None
    # kubernetes target: (access key id, secret access key) of the S3-compatible store, Pulumi secrets
    storage_credentials: tuple[pulumi.Input[str], pulumi.Input[str]] | None
    dask_image: str
    dask_min_workers: int
    dask_max_workers: int
    dask_idle_timeout_s: int
    handoff_schedule: str  # aws target: the hand-off runner's cron schedule
    training_quota: Quota
    ingestion_quota: Quota
    serving_quota: Quota
    install_kserve: bool
    kserve_deployment_mode: str
    install_device_plugin: bool  # kubernetes target: install NVIDIA's plugin (aws: always, on the GPU group)
    serving_image: str  # Tidewater's predictor image (the Dockerfile's `serving` target), KServe's custom container
    prometheus_url: str  # kubernetes target: what the rollout tick reads metrics and firing alerts from

    @property
    def gpu_resource_key(self) -> str:
        return manifests.gpu_resource_key(self.gpu_vendor)

    @property
    def has_gpu_pool(self) -> bool:
        return self.gpu_pool.max_size > 0 if self.target == "aws" else self.has_gpu_nodes


def _key(name: str) -> str:
    return f"{NS}:{name}"


def _pool(get: Callable[[str], Any], prefix: str, *, allow_empty: bool) -> NodePool:
    types = tuple(get(f"{prefix}_instance_types"))
    if not types or not all(isinstance(t, str) and t for t in types):
        raise K8sConfigError(f"{_key(prefix + '_instance_types')} must be a non-empty list of instance types")
    low, high, want = get(f"{prefix}_min_size"), get(f"{prefix}_max_size"), get(f"{prefix}_desired_size")
    if not 0 <= low <= want <= high or (high == 0 and not allow_empty):
        raise K8sConfigError(
            f"{_key(prefix + '_min_size')}/{_key(prefix + '_desired_size')}/{_key(prefix + '_max_size')} must satisfy "
            f"0 <= min <= desired <= max{'' if allow_empty else ' and max >= 1'}, got {low}/{want}/{high}"
        )
    return NodePool(types, low, high, want, spot=bool(get(f"{prefix}_spot")) if prefix == "k8s_gpu" else False)


def _quota(get: Callable[[str], Any], role: str, gpu_vendor: str) -> Quota:
    prefix = f"k8s_{role}_quota"
    quota = Quota(
        cpu=str(get(prefix + "_cpu")),
        memory=str(get(prefix + "_memory")),
        gpus=int(get(prefix + "_gpus")) if role == "training" else 0,
        pods=int(get(prefix + "_pods")),
    )
    try:
        manifests.resource_quota(
            "check",
            namespace="check",
            cpu=quota.cpu,
            memory=quota.memory,
            gpus=quota.gpus,
            gpu_vendor=gpu_vendor,
            pods=quota.pods,
        )
    except manifests.ManifestError as err:
        raise K8sConfigError(f"{_key(prefix + '_*')}: {err}") from None
    return quota


def parse(
    get: Callable[[str], Any],
    kubeconfig: pulumi.Input[str] | None = None,
    storage_credentials: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None,
) -> K8sConfig:
    """Build and check the config from a key -> value getter (values already typed: int, bool, list, str)."""
    target = get("target")
    if target not in TARGETS:
        raise K8sConfigError(f"{_key('target')} must be one of {', '.join(TARGETS)}, got {target!r}")
    vendor = get("k8s_gpu_vendor")
    try:
        manifests.gpu_resource_key(vendor)
    except manifests.ManifestError as err:
        raise K8sConfigError(f"{_key('k8s_gpu_vendor')}: {err}") from None
    if target == "aws" and vendor != "nvidia":
        raise K8sConfigError(f"{_key('k8s_gpu_vendor')} must be nvidia on target aws (EKS GPU AMIs are NVIDIA's)")
    protocol = get("k8s_storage_protocol")
    if protocol not in STORAGE_PROTOCOLS:
        raise K8sConfigError(f"{_key('k8s_storage_protocol')} must be one of {', '.join(STORAGE_PROTOCOLS)}")
    endpoint = get("k8s_storage_endpoint") or None
    if endpoint is not None and not re.match(r"^https?://\S+$", endpoint):
        raise K8sConfigError(f"{_key('k8s_storage_endpoint')} must be an http(s) URL, got {endpoint!r}")
    if endpoint is not None and protocol != "s3":
        raise K8sConfigError(f"{_key('k8s_storage_endpoint')} is for S3-compatible stores; it needs protocol s3")
    if target == "kubernetes" and kubeconfig is None:
        raise K8sConfigError(
            f"{_key('k8s_kubeconfig')} is required on target kubernetes: "
            '`pulumi config set --secret tidewater:k8s_kubeconfig "$(cat ~/.kube/config)"` (or a file path)'
        )
    dask_min, dask_max = get("k8s_dask_min_workers"), get("k8s_dask_max_workers")
    if not 0 <= dask_min <= dask_max or dask_max < 1:
        raise K8sConfigError(
            f"{_key('k8s_dask_min_workers')} ({dask_min}) must be >= 0 and <= {_key('k8s_dask_max_workers')} "
            f"({dask_max}), which must be >= 1"
        )
    idle = get("k8s_dask_idle_timeout")
    if idle < 1:
        raise K8sConfigError(f"{_key('k8s_dask_idle_timeout')} must be >= 1 second, got {idle}")
    try:
        manifests.cron_job("check", namespace="check", schedule=str(get("k8s_handoff_schedule")), image="i",
                           command=["c"], service_account="s")  # fmt: skip
    except manifests.ManifestError as err:
        raise K8sConfigError(f"{_key('k8s_handoff_schedule')}: {err}") from None
    if get("k8s_kserve_deployment_mode") not in manifests.KSERVE_DEPLOYMENT_MODES:
        raise K8sConfigError(
            f"{_key('k8s_kserve_deployment_mode')} must be one of {', '.join(manifests.KSERVE_DEPLOYMENT_MODES)}"
        )
    serving_image = str(get("k8s_serving_image") or "")
    if not serving_image or any(c.isspace() for c in serving_image):
        raise K8sConfigError(f"{_key('k8s_serving_image')} must be an image reference, got {serving_image!r}")
    prometheus_url = str(get("k8s_prometheus_url") or "")
    if not re.match(r"^https?://\S+$", prometheus_url):
        raise K8sConfigError(f"{_key('k8s_prometheus_url')} must be an http(s) URL, got {prometheus_url!r}")

    cfg = K8sConfig(
        target=target,
        gpu_vendor=vendor,
        training_gpus=get("k8s_training_gpus"),
        system_pool=_pool(get, "k8s_system", allow_empty=False),
        gpu_pool=_pool(get, "k8s_gpu", allow_empty=True),
        cluster_version=str(get("k8s_cluster_version")),
        subnet_ids=tuple(get("k8s_subnet_ids") or ()),
        kubeconfig=kubeconfig,
        kube_context=get("k8s_kube_context") or None,
        has_gpu_nodes=bool(get("k8s_gpu_nodes")),
        storage_protocol=protocol,
        storage_endpoint=endpoint,
        storage_credentials=storage_credentials,
        dask_image=get("k8s_dask_image"),
        dask_min_workers=dask_min,
        dask_max_workers=dask_max,
        dask_idle_timeout_s=idle,
        handoff_schedule=str(get("k8s_handoff_schedule")),
        training_quota=_quota(get, "training", vendor),
        ingestion_quota=_quota(get, "ingestion", vendor),
        serving_quota=_quota(get, "serving", vendor),
        install_kserve=bool(get("k8s_install_kserve")),
        kserve_deployment_mode=get("k8s_kserve_deployment_mode"),
        install_device_plugin=bool(get("k8s_install_device_plugin")),
        serving_image=serving_image,
        prometheus_url=prometheus_url,
    )
    if cfg.training_gpus < 0:
        raise K8sConfigError(f"{_key('k8s_training_gpus')} must be >= 0, got {cfg.training_gpus}")
    if cfg.training_gpus > 0 and not cfg.has_gpu_pool:
        fix = (
            f"set {_key('k8s_gpu_max_size')} >= 1"
            if target == "aws"
            else f"set {_key('k8s_gpu_nodes')} true if the cluster has GPU nodes"
        )
        raise K8sConfigError(
            f"{_key('k8s_training_gpus')} requests {cfg.training_gpus} GPU(s) per worker but target {target} has no "
            f"GPU pool: {fix}, or set {_key('k8s_training_gpus')} 0 to train on CPU"
        )
    if cfg.training_gpus > cfg.training_quota.gpus:
        raise K8sConfigError(
            f"{_key('k8s_training_quota_gpus')} ({cfg.training_quota.gpus}) is below {_key('k8s_training_gpus')} "
            f"({cfg.training_gpus}): no training worker could ever be admitted"
        )
    if target == "kubernetes" and cfg.has_gpu_nodes and cfg.install_device_plugin and vendor != "nvidia":
        raise K8sConfigError(
            f"{_key('k8s_install_device_plugin')} installs NVIDIA's device plugin only; for {vendor} GPUs install the "
            f"vendor's plugin operator and set it false"
        )
    if target == "aws" and len(cfg.subnet_ids) == 1:
        raise K8sConfigError(f"{_key('k8s_subnet_ids')} needs subnets in at least two availability zones (EKS)")
    return cfg


# Keys read as typed values; everything else is a string.
_INT_KEYS = {
    "k8s_training_gpus",
    "k8s_system_min_size",
    "k8s_system_max_size",
    "k8s_system_desired_size",
    "k8s_gpu_min_size",
    "k8s_gpu_max_size",
    "k8s_gpu_desired_size",
    "k8s_dask_min_workers",
    "k8s_dask_max_workers",
    "k8s_dask_idle_timeout",
    "k8s_training_quota_gpus",
    "k8s_training_quota_pods",
    "k8s_ingestion_quota_pods",
    "k8s_serving_quota_pods",
}
_BOOL_KEYS = {"k8s_gpu_spot", "k8s_gpu_nodes", "k8s_install_kserve", "k8s_install_device_plugin"}
_LIST_KEYS = {"k8s_system_instance_types", "k8s_gpu_instance_types", "k8s_subnet_ids"}
_SECRET_KEYS = {"k8s_kubeconfig", "k8s_storage_access_key_id", "k8s_storage_secret_access_key"}
_OPTIONAL_KEYS = {"k8s_subnet_ids", "k8s_kube_context", "k8s_storage_endpoint"} | _SECRET_KEYS


def load(config: pulumi.Config | None = None) -> K8sConfig:
    """Read the keys from the stack (defaults from Pulumi.yaml); a required key missing is a ConfigMissingError."""
    config = config or pulumi.Config(NS)
    # Pulumi.yaml's declared defaults, applied here too (as infra.config does) so the program is right where no
    # CLI resolves them: under the unit-test mocks.
    defaults = {key: spec["default"] for key, spec in declared_config().items() if "default" in spec}

    def get(name: str) -> Any:
        if config.get(name) is None and name in defaults:
            return defaults[name]
        if name in _OPTIONAL_KEYS:
            return config.get_object(name) if name in _LIST_KEYS else config.get(name)
        if name in _INT_KEYS:
            return config.require_int(name)
        if name in _BOOL_KEYS:
            return config.require_bool(name)
        if name in _LIST_KEYS:
            value = config.require_object(name)
            if not isinstance(value, list):
                raise K8sConfigError(f"{_key(name)} must be a list, got {value!r}")
            return value
        return config.require(name)

    key_id, secret = config.get_secret("k8s_storage_access_key_id"), config.get_secret("k8s_storage_secret_access_key")
    if (key_id is None) != (secret is None):
        raise K8sConfigError(
            f"{_key('k8s_storage_access_key_id')} and {_key('k8s_storage_secret_access_key')} go together: set both "
            "(`pulumi config set --secret ...`) or neither"
        )
    credentials = (key_id, secret) if key_id is not None and secret is not None else None
    return parse(get, kubeconfig=config.get_secret("k8s_kubeconfig"), storage_credentials=credentials)


def declared_keys() -> Sequence[str]:
    """Every key this module reads (tests check each one is declared in Pulumi.yaml)."""
    return sorted(
        _INT_KEYS
        | _BOOL_KEYS
        | _LIST_KEYS
        | _OPTIONAL_KEYS
        | {
            "target",
            "k8s_gpu_vendor",
            "k8s_storage_protocol",
            "k8s_cluster_version",
            "k8s_dask_image",
            "k8s_handoff_schedule",
            "k8s_training_quota_cpu",
            "k8s_training_quota_memory",
            "k8s_ingestion_quota_cpu",
            "k8s_ingestion_quota_memory",
            "k8s_serving_quota_cpu",
            "k8s_serving_quota_memory",
            "k8s_serving_image",
            "k8s_prometheus_url",
            "k8s_kserve_deployment_mode",
        }
    )
