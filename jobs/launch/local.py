"""Local torchrun: the job's ranks as processes on this machine, with c10d rendezvous and restarts.

The restart policy lives here, not in torchrun: each attempt is one torchrun run without restarts, and the
next attempt starts only if no rank reported a failure that a restart cannot fix (PERMANENT_FAILURE_ENV).
The ranks' output goes to a log file in the run folder, named in the error when the job fails; the folder is
removed when the job succeeds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from jobs.launch.base import ATTEMPT_ENV, PERMANENT_FAILURE_ENV, WORKER_MODULE, JobSpec, Submitted, git_commit
from jobs.train.config import CODE_VERSION_ENV, TrainConfig

Runner = Callable[[Sequence[str], dict[str, str], Path], int]  # argv, environment, log file -> exit status
LOG_NAME = "torchrun.log"
PERMANENT_FAILURE_NAME = "permanent-failure.txt"


class LaunchError(RuntimeError):
    """The job exited with an error after using up its restarts (or with one a restart cannot fix)."""


def _run(argv: Sequence[str], env: dict[str, str], log: Path) -> int:
    with log.open("ab") as sink:
        return subprocess.call(list(argv), env=env, stdout=sink, stderr=subprocess.STDOUT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun_argv(config_path: Path, spec: JobSpec, port: int) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={spec.min_nodes or spec.nodes}:{spec.nodes}",
        f"--nproc-per-node={spec.procs_per_node}",
        "--max-restarts=0",  # restarts are this launcher's (see the module docstring)
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        f"--rdzv-id={spec.name}",
        "-m", WORKER_MODULE, "--config", str(config_path),
    ]  # fmt: skip


def _tail(log: Path, lines: int = 3) -> str:
    if not log.exists():
        return ""
    kept = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


class LocalTorchrun:
    """Runs torchrun as a subprocess and waits for it; `runner` is injectable for tests of the argv."""

    def __init__(self, runner: Runner = _run, workdir: Path | None = None) -> None:
        self.runner = runner
        self.workdir = workdir

    def launch(self, config: TrainConfig, spec: JobSpec) -> Submitted:
        if spec.nodes != 1:
            raise ValueError("the local launcher runs one node; use the Kubernetes or SageMaker launcher for more")
        folder = Path(tempfile.mkdtemp(prefix="tide-train-", dir=self.workdir))
        config_path, log, permanent = folder / "config.json", folder / LOG_NAME, folder / PERMANENT_FAILURE_NAME
        config_path.write_text(config.model_dump_json())
        env = {**os.environ, **spec.env, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        env[PERMANENT_FAILURE_ENV] = str(permanent)
        commit = git_commit()
        if commit and CODE_VERSION_ENV not in env:
            env[CODE_VERSION_ENV] = commit
        for attempt in range(spec.max_restarts + 1):
            argv = torchrun_argv(config_path, spec, _free_port())
            code = self.runner(argv, {**env, ATTEMPT_ENV: str(attempt)}, log)
            if code == 0:
                shutil.rmtree(folder, ignore_errors=True)
                return Submitted("local", spec.name, {"model_url": config.model_url, "argv": argv})
            if permanent.exists():
                reason = permanent.read_text().strip()
                raise LaunchError(f"{reason} (not restarted: a restart would fail the same way; log: {log})")
        raise LaunchError(
            f"torchrun exited with status {code} (after {spec.max_restarts} restart(s)); log: {log}: {_tail(log)}"
        )
