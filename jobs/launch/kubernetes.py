"""Kubernetes: the job as an elastic PyTorchJob (Kubeflow training operator), manifest from schemas.manifests.

The operator sets PET_NNODES / PET_RDZV_ENDPOINT / PET_MAX_RESTARTS from the manifest's elasticPolicy, so the
container command is a bare `torchrun -m jobs.train.worker`; a worker that dies is restarted and the ranks
re-rendezvous over c10d, resuming from the job's checkpoints. Where the pods run comes from the deployed stack
(`Placement.from_outputs`, the stack output `k8s_training_job`): the training namespace, its IRSA service
account and PriorityClass, and the GPUs per worker with the GPU pool's node selector and taint toleration. With
GPUs each worker runs one process per GPU and the worker picks NCCL (jobs/train/worker.py: NCCL when CUDA is
present). The API client is injected (a kubernetes.client.CustomObjectsApi in production, a fake in tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobs.launch.base import WORKER_MODULE, JobSpec, Submitted, git_commit
from jobs.launch.staging import stage_config
from jobs.train.config import CODE_VERSION_ENV, TrainConfig
from schemas.manifests import PYTORCHJOB_API, ManifestError, pytorch_job

GROUP, VERSION = PYTORCHJOB_API.split("/")
PLURAL = "pytorchjobs"
SHM_PER_GPU_GI = 2  # /dev/shm for NCCL's shared-memory transport and DataLoader workers, per GPU


class PlacementError(ValueError):
    """The stack's training placement (output k8s_training_job) is missing a field or has a bad one."""


@dataclass(frozen=True)
class Placement:
    """Where training pods run: what infra/k8s/platform.py `training_placement` exports for the stack."""

    namespace: str
    service_account: str | None = None
    priority_class: str | None = None
    gpus_per_worker: int = 0
    gpu_vendor: str = "nvidia"
    node_selector: dict[str, str] = field(default_factory=dict)
    storage_endpoint: str | None = None
    storage_secret: str | None = None  # the object store's keys (kubernetes target), as the pods' environment

    @classmethod
    def from_outputs(cls, block: Any) -> Placement:
        """The stack output k8s_training_job; any field missing or of the wrong shape is a PlacementError."""
        if not isinstance(block, Mapping):
            raise PlacementError(f"k8s_training_job must be an object, got {type(block).__name__}")

        def text(key: str, *, required: bool = True) -> str:
            if key not in block:
                raise PlacementError(f"k8s_training_job has no {key!r}")
            value = block[key]
            if not isinstance(value, str) or (required and not value):
                raise PlacementError(f"k8s_training_job.{key} must be a non-empty string, got {value!r}")
            return value

        gpus = block.get("gpus_per_worker")
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
            raise PlacementError(f"k8s_training_job.gpus_per_worker must be an integer >= 0, got {gpus!r}")
        selector = block.get("node_selector") or {}
        if not isinstance(selector, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in selector.items()
        ):
            raise PlacementError(f"k8s_training_job.node_selector must map strings to strings, got {selector!r}")
        placement = cls(
            namespace=text("namespace"),
            service_account=text("service_account"),
            priority_class=text("priority_class"),
            gpus_per_worker=gpus,
            gpu_vendor=text("gpu_vendor"),
            node_selector=dict(selector),
            storage_endpoint=text("storage_endpoint", required=False) or None,
            # Absent from stacks deployed before it was exported: then there is none.
            storage_secret=(text("storage_secret", required=False) if "storage_secret" in block else "") or None,
        )
        try:  # the names and vendor must make a valid PyTorchJob: check once here, not at submission
            KubernetesPyTorchJob(None, placement).manifest("s3://check/job-config.json", JobSpec(name="check"))
        except ManifestError as err:
            raise PlacementError(f"k8s_training_job: {err}") from None
        return placement


class KubernetesPyTorchJob:
    def __init__(self, custom_objects: Any, placement: Placement, *, cpu: str = "2", memory: str = "8Gi") -> None:
        self.api = custom_objects
        self.placement = placement
        self.cpu, self.memory = cpu, memory

    def manifest(self, config_url: str, spec: JobSpec) -> dict[str, Any]:
        """An elastic job: `nodes` Worker pods (c10d rendezvous on worker-0), floating down to `min_nodes`."""
        env = dict(spec.env)
        commit = git_commit()
        if commit and CODE_VERSION_ENV not in env:
            env[CODE_VERSION_ENV] = commit
        where = self.placement
        gpus = where.gpus_per_worker
        return pytorch_job(
            spec.name,
            namespace=where.namespace,
            image=spec.image,
            command=["torchrun", "-m", WORKER_MODULE, "--config", config_url],
            workers=spec.nodes,
            min_workers=spec.min_nodes,
            max_restarts=spec.max_restarts,
            gpus_per_worker=gpus,
            gpu_vendor=where.gpu_vendor,
            # One process per GPU (NCCL); on CPU, as many as the spec asks for (gloo).
            nproc_per_node=gpus if gpus else spec.procs_per_node,
            cpu=self.cpu,
            memory=self.memory,
            env=env,
            storage_endpoint=where.storage_endpoint,
            node_selector=where.node_selector or None,
            service_account=where.service_account,
            priority_class=where.priority_class,
            shm_size=f"{SHM_PER_GPU_GI * gpus}Gi" if gpus else None,
            env_from_secret=where.storage_secret,
            labels={"app.kubernetes.io/part-of": "tidewater", "tidewater.io/model": "train"},
        )

    def launch(self, config: TrainConfig, spec: JobSpec) -> Submitted:
        body = self.manifest(stage_config(config), spec)
        namespace = self.placement.namespace
        created = self.api.create_namespaced_custom_object(
            group=GROUP, version=VERSION, namespace=namespace, plural=PLURAL, body=body
        )
        uid = (created or {}).get("metadata", {}).get("uid", "")
        return Submitted("kubernetes", f"{namespace}/{spec.name}", {"uid": uid, "manifest": body})
