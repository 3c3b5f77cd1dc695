"""The one interface every launcher implements: submit a TrainConfig as a distributed job, get a handle back."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Protocol

from jobs.train.config import TrainConfig
from schemas.naming import platform_image

WORKER_MODULE = "jobs.train.worker"
# A rank that meets an error a restart cannot fix (a missing manifest or shard, an unknown contract) writes
# the reason to the file this variable names; the local launcher then stops instead of restarting.
PERMANENT_FAILURE_ENV = "TIDE_PERMANENT_FAILURE_FILE"
ATTEMPT_ENV = "TIDE_ATTEMPT"  # the launcher's restart count (torchrun's own counter restarts at 0 per run)


@dataclass(frozen=True)
class JobSpec:
    """How many workers and how tolerant: the same fields whatever runs the job."""

    name: str
    nodes: int = 1
    procs_per_node: int = 2
    max_restarts: int = 3
    min_nodes: int | None = None  # elastic lower bound; defaults to `nodes`
    image: str = platform_image("train")  # the root Dockerfile's train target
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.procs_per_node < 1 or self.max_restarts < 0:
            raise ValueError("nodes and procs_per_node must be at least 1, max_restarts at least 0")
        if self.min_nodes is not None and not 1 <= self.min_nodes <= self.nodes:
            raise ValueError(f"min_nodes must be between 1 and nodes ({self.nodes}), got {self.min_nodes}")


@dataclass(frozen=True)
class Submitted:
    backend: str  # local | kubernetes | sagemaker
    job_id: str
    detail: dict[str, object] = field(default_factory=dict)


class Launcher(Protocol):
    def launch(self, config: TrainConfig, spec: JobSpec) -> Submitted: ...


def git_commit() -> str | None:
    """The code version recorded with the model; None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
