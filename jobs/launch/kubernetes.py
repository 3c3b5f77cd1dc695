"""Kubernetes: the job as an elastic PyTorchJob (Kubeflow training operator), manifest from schemas.manifests.

The operator sets PET_NNODES / PET_RDZV_ENDPOINT / PET_MAX_RESTARTS from the manifest's elasticPolicy, so the
container command is a bare `torchrun -m jobs.train.worker`; a worker that dies is restarted and the ranks
re-rendezvous over c10d, resuming from the job's checkpoints. The API client is injected (a
kubernetes.client.CustomObjectsApi in production, a recording fake in tests).
"""

from __future__ import annotations

from typing import Any

from jobs.launch.base import WORKER_MODULE, JobSpec, Submitted, git_commit
from jobs.launch.staging import stage_config
from jobs.train.config import CODE_VERSION_ENV, TrainConfig
from schemas.manifests import PYTORCHJOB_API, pytorch_job

GROUP, VERSION = PYTORCHJOB_API.split("/")
PLURAL = "pytorchjobs"


class KubernetesPyTorchJob:
    def __init__(
        self,
        custom_objects: Any,
        namespace: str,
        *,
        gpus_per_worker: int = 0,
        cpu: str = "2",
        memory: str = "8Gi",
        storage_endpoint: str | None = None,
        service_account: str | None = None,
    ) -> None:
        self.api = custom_objects
        self.namespace = namespace
        self.gpus_per_worker = gpus_per_worker
        self.cpu, self.memory = cpu, memory
        self.storage_endpoint = storage_endpoint
        self.service_account = service_account

    def manifest(self, config_url: str, spec: JobSpec) -> dict[str, Any]:
        """An elastic job: `nodes` Worker pods (c10d rendezvous on worker-0), floating down to `min_nodes`."""
        env = dict(spec.env)
        commit = git_commit()
        if commit and CODE_VERSION_ENV not in env:
            env[CODE_VERSION_ENV] = commit
        return pytorch_job(
            spec.name,
            namespace=self.namespace,
            image=spec.image,
            command=["torchrun", "-m", WORKER_MODULE, "--config", config_url],
            workers=spec.nodes,
            min_workers=spec.min_nodes,
            max_restarts=spec.max_restarts,
            gpus_per_worker=self.gpus_per_worker,
            nproc_per_node=spec.procs_per_node,
            cpu=self.cpu,
            memory=self.memory,
            env=env,
            storage_endpoint=self.storage_endpoint,
            service_account=self.service_account,
            labels={"app.kubernetes.io/part-of": "tidewater", "tidewater.io/model": "train"},
        )

    def launch(self, config: TrainConfig, spec: JobSpec) -> Submitted:
        body = self.manifest(stage_config(config), spec)
        created = self.api.create_namespaced_custom_object(
            group=GROUP, version=VERSION, namespace=self.namespace, plural=PLURAL, body=body
        )
        uid = (created or {}).get("metadata", {}).get("uid", "")
        return Submitted("kubernetes", f"{self.namespace}/{spec.name}", {"uid": uid, "manifest": body})
