"""A training run's parameters: one JSON document the launchers hand to every rank. No torch here."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.batch.storage import join
from schemas.naming import DEFAULT_MODEL_NAME, MODEL_NAME_PATTERN, model_prefix

# Fault injection for the resilience test and drills: rank TIDE_FAIL_RANK exits at step TIDE_FAIL_AT_STEP,
# on the first attempt only (torchrun counts attempts in TORCHELASTIC_RESTART_COUNT).
FAIL_AT_STEP_ENV = "TIDE_FAIL_AT_STEP"
FAIL_RANK_ENV = "TIDE_FAIL_RANK"
CODE_VERSION_ENV = "TIDE_CODE_VERSION"


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest_url: str  # the dataset manifest written by `tide ingest`
    output_url: str  # the artifacts root; the model goes under models/<name>/<version>/
    baseline_url: str | None = None  # drift baseline profile of the dataset, recorded in the metadata
    model_name: str = Field(default=DEFAULT_MODEL_NAME, pattern=MODEL_NAME_PATTERN)  # the stack serves this name
    steps: int = Field(default=300, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    embedding_dim: int = Field(default=8, ge=1)
    hidden: tuple[int, ...] = (64, 32)
    checkpoint_every: int = Field(default=50, ge=1)
    seed: int = 7
    cache_dir: str = ".tide/cache"  # each rank's local copy of its shards
    storage_options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _hidden(self) -> Self:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError("hidden must list at least one positive layer width")
        return self

    @property
    def version(self) -> str:
        """Same dataset manifest + hyper-parameters -> same model version (and the same checkpoint folder,
        which is what lets a restarted job find its checkpoints)."""
        decisive = self.model_dump(exclude={"output_url", "cache_dir", "storage_options", "baseline_url"})
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def model_url(self) -> str:
        return join(self.output_url, model_prefix(self.model_name, self.version))

    @property
    def checkpoint_url(self) -> str:
        return join(self.model_url, "checkpoints")


def code_version() -> str:
    """The launcher passes the git commit; without one, the installed package version."""
    from importlib.metadata import PackageNotFoundError, version

    if os.environ.get(CODE_VERSION_ENV):
        return os.environ[CODE_VERSION_ENV]
    try:
        return f"tidewater=={version('tidewater')}"
    except PackageNotFoundError:
        return "unknown"
