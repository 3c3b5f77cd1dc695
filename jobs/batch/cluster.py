"""Where the Dask job runs: a LocalCluster (default), any scheduler address, or the platform's DaskCluster.

dask-kubernetes is imported only when a DaskCluster is asked for by name, so the local path never needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class ClusterError(RuntimeError):
    """The requested Dask cluster cannot be reached or its client library is missing."""


@dataclass(frozen=True)
class ClusterSpec:
    scheduler_address: str | None = None  # e.g. tcp://dask-scheduler:8786
    kubernetes_cluster: str | None = None  # name of a DaskCluster resource (dask-kubernetes operator)
    namespace: str = "default"
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "1GiB"  # per worker; spilling and the p2p shuffle keep work inside it
    processes: bool = True

    def __post_init__(self) -> None:
        if self.scheduler_address and self.kubernetes_cluster:
            raise ClusterError("give either a scheduler address or a Kubernetes DaskCluster name, not both")
        if self.n_workers < 1 or self.threads_per_worker < 1:
            raise ClusterError("n_workers and threads_per_worker must be at least 1")


@contextmanager
def dask_client(spec: ClusterSpec) -> Iterator[Any]:
    """A distributed.Client for the spec; a LocalCluster it started is closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if spec.scheduler_address:
        with Client(spec.scheduler_address) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    if spec.kubernetes_cluster:
        cluster = _kubernetes_cluster(spec.kubernetes_cluster, spec.namespace)
        with Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    with (
        dask.config.set(shuffle_buffers(spec.memory_limit)),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=spec.n_workers,
            threads_per_worker=spec.threads_per_worker,
            memory_limit=spec.memory_limit,
            processes=spec.processes,
            dashboard_address=None,
            # Loopback TCP only, in-process clusters included: inproc:// looks up a public IP first.
            host="127.0.0.1",
            protocol="tcp",
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def shuffle_buffers(memory_limit: str) -> dict[str, int]:
    """p2p shuffle buffers sized to the worker: its defaults (1 GiB for comms, 100 MiB for disk) assume big
    workers and alone exceed a small worker's limit, which gets it killed mid-shuffle. An eighth each keeps
    room for the partitions being processed. (A remote cluster sets these in its own Dask config.)"""
    from dask.utils import parse_bytes

    share = max(parse_bytes(memory_limit) // 8, 8 << 20)
    return {"distributed.p2p.comm.buffer": share, "distributed.p2p.storage.buffer": share}


def _kubernetes_cluster(name: str, namespace: str) -> Any:
    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError as err:
        raise ClusterError(
            f"connecting to the DaskCluster {name!r} needs dask-kubernetes (pip install dask-kubernetes); "
            f"or pass its scheduler address instead ({err})"
        ) from None
    return KubeCluster.from_name(name, namespace=namespace)
