"""Local torchrun: the job's ranks as processes on this machine, with c10d rendezvous and restarts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from jobs.launch.base import WORKER_MODULE, JobSpec, Submitted, git_commit
from jobs.train.config import CODE_VERSION_ENV, TrainConfig

Runner = Callable[[Sequence[str], dict[str, str]], int]


class LaunchError(RuntimeError):
    """The job exited with an error after using up its restarts."""


def _run(argv: Sequence[str], env: dict[str, str]) -> int:
    return subprocess.call(list(argv), env=env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun_argv(config_path: Path, spec: JobSpec, port: int) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={spec.min_nodes or spec.nodes}:{spec.nodes}",
        f"--nproc-per-node={spec.procs_per_node}",
        f"--max-restarts={spec.max_restarts}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        f"--rdzv-id={spec.name}",
        "-m", WORKER_MODULE, "--config", str(config_path),
    ]  # fmt: skip


class LocalTorchrun:
    """Runs torchrun as a subprocess and waits for it; `runner` is injectable for tests of the argv."""

    def __init__(self, runner: Runner = _run, workdir: Path | None = None) -> None:
        self.runner = runner
        self.workdir = workdir

    def launch(self, config: TrainConfig, spec: JobSpec) -> Submitted:
        if spec.nodes != 1:
            raise ValueError("the local launcher runs one node; use the Kubernetes or SageMaker launcher for more")
        folder = Path(tempfile.mkdtemp(prefix="tide-train-", dir=self.workdir))
        config_path = folder / "config.json"
        config_path.write_text(config.model_dump_json())
        env = {**os.environ, **spec.env, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        commit = git_commit()
        if commit and CODE_VERSION_ENV not in env:
            env[CODE_VERSION_ENV] = commit
        argv = torchrun_argv(config_path, spec, _free_port())
        code = self.runner(argv, env)
        if code != 0:
            raise LaunchError(f"torchrun exited with status {code} (after up to {spec.max_restarts} restart(s))")
        return Submitted("local", spec.name, {"model_url": config.model_url, "argv": argv})
