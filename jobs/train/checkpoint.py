"""Checkpoints in the object store, never read half-written.

A checkpoint is step-<n>/state.pt followed by step-<n>/COMPLETE, a marker holding the state's SHA-256 and
size. The marker is written last, so a writer killed mid-upload leaves a folder without a marker, which
`latest` skips (as it skips any whose bytes do not match their marker).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import torch

from jobs.batch.storage import filesystem, join, write_atomic

MARKER = "COMPLETE"
STATE = "state.pt"
_STEP_DIR = re.compile(r"step-(\d{9})$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    step: int
    state: dict[str, Any]


class CheckpointStore:
    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.fs, self.root = filesystem(url, storage_options)

    def _dir(self, step: int) -> str:
        return join(self.root, f"step-{step:09d}")

    def save(self, step: int, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        folder = self._dir(step)
        self.fs.makedirs(folder, exist_ok=True)
        self.fs.pipe_file(join(folder, STATE), data)
        marker = {"step": step, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        write_atomic(self.fs, join(folder, MARKER), json.dumps(marker).encode())

    def steps(self) -> list[int]:
        """Steps with a marker, newest first."""
        if not self.fs.exists(self.root):
            return []
        found = []
        for path in self.fs.ls(self.root, detail=False):
            match = _STEP_DIR.search(str(path).rstrip("/"))
            if match and self.fs.exists(join(str(path), MARKER)):
                found.append(int(match.group(1)))
        return sorted(found, reverse=True)

    def latest(self) -> Checkpoint | None:
        """The newest complete checkpoint whose bytes match its marker; None when there is none."""
        for step in self.steps():
            folder = self._dir(step)
            marker = json.loads(self.fs.cat_file(join(folder, MARKER)))
            try:
                data = self.fs.cat_file(join(folder, STATE))
            except FileNotFoundError:
                log.warning("checkpoint step %d has a marker but no state; skipped", step)
                continue
            if hashlib.sha256(data).hexdigest() != marker["sha256"]:
                log.warning("checkpoint step %d does not match its marker; skipped", step)
                continue
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)  # tensors and numbers only
            return Checkpoint(step, state)
        return None
