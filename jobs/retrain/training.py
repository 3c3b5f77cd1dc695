"""Where a retraining runs, behind one small interface: find a job by its fixed name, launch it, read its state.

The job name is fixed per model version (schemas.naming.retraining_job_name), so a run that crashed after the
launch and before recording it finds the job instead of launching a second one. The launchers are the ones
`tide train` uses (jobs/launch); the clients are injected.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from jobs.launch.base import JobSpec, Launcher
from jobs.launch.kubernetes import GROUP, PLURAL, VERSION
from jobs.train.config import TrainConfig

JobState = Literal["running", "succeeded", "failed"]


class TrainingBackend(Protocol):
    name: str

    def find(self, job_name: str) -> str | None: ...

    def launch(self, config: TrainConfig, job_name: str) -> str: ...

    def state(self, job_id: str) -> tuple[JobState, str]: ...


class SageMakerTraining:
    """A SageMaker training job through the sagemaker SDK launcher; found and read with the boto3 client."""

    name = "sagemaker"

    def __init__(self, launcher: Launcher, sagemaker: Any, spec: JobSpec) -> None:
        self.launcher, self.sm, self.spec = launcher, sagemaker, spec

    def find(self, job_name: str) -> str | None:
        # The SDK names the job <base name>-<timestamp>: look for the base name.
        found = self.sm.list_training_jobs(NameContains=job_name, MaxResults=100)["TrainingJobSummaries"]
        names = sorted(j["TrainingJobName"] for j in found if j["TrainingJobName"].startswith(f"{job_name}-"))
        return names[0] if names else None

    def launch(self, config: TrainConfig, job_name: str) -> str:
        return self.launcher.launch(config, _named(self.spec, job_name)).job_id

    def state(self, job_id: str) -> tuple[JobState, str]:
        job = self.sm.describe_training_job(TrainingJobName=job_id)
        status = job["TrainingJobStatus"]
        if status == "Completed":
            return "succeeded", ""
        if status in ("Failed", "Stopped"):
            return "failed", f"SageMaker training job {job_id} {status.lower()}: {job.get('FailureReason', '')}".strip()
        return "running", status


class KubernetesTraining:
    """A PyTorchJob in the stack's training namespace (jobs.launch.kubernetes); read back with the same API."""

    name = "kubernetes"

    def __init__(self, launcher: Launcher, custom_objects: Any, namespace: str, spec: JobSpec) -> None:
        self.launcher, self.api, self.namespace, self.spec = launcher, custom_objects, namespace, spec

    def _get(self, job_name: str) -> dict[str, Any] | None:
        try:
            return dict(self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, job_name))
        except Exception as err:  # kubernetes.client.ApiException (an optional client): re-raised unless a 404
            if getattr(err, "status", None) == 404:
                return None
            raise

    def find(self, job_name: str) -> str | None:
        return f"{self.namespace}/{job_name}" if self._get(job_name) is not None else None

    def launch(self, config: TrainConfig, job_name: str) -> str:
        return self.launcher.launch(config, _named(self.spec, job_name)).job_id

    def state(self, job_id: str) -> tuple[JobState, str]:
        job = self._get(job_id.rsplit("/", 1)[-1])
        if job is None:
            return "failed", f"PyTorchJob {job_id} no longer exists"
        listed = job.get("status", {}).get("conditions", [])
        conditions = {c.get("type"): c for c in listed if c.get("status") == "True"}
        if "Succeeded" in conditions:
            return "succeeded", ""
        if "Failed" in conditions:
            return "failed", f"PyTorchJob {job_id} failed: {conditions['Failed'].get('message', '')}".strip()
        return "running", ",".join(sorted(conditions)) or "pending"


def _named(spec: JobSpec, job_name: str) -> JobSpec:
    return JobSpec(name=job_name, nodes=spec.nodes, procs_per_node=spec.procs_per_node, max_restarts=spec.max_restarts,
                   min_nodes=spec.min_nodes, image=spec.image, env=dict(spec.env))  # fmt: skip
