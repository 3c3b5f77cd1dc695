"""`tide ingest`: curated partitions -> a versioned training dataset (Dask). Heavy imports stay in the body."""

from __future__ import annotations

import json

import click

from jobs.batch.inputs import DEFAULT_MAX_OBJECT_BYTES, BuildParams  # light (no dask): the defaults live there only


@click.command("ingest")
@click.option("--dataset", default="transactions", show_default=True)
@click.option("--stack", default="dev", show_default=True, help="Names the default buckets: tidewater-<stack>-*.")
@click.option("--curated", "curated_url", help="Curated root URL  [default: s3://tidewater-<stack>-curated]")
@click.option("--datasets", "datasets_url", help="Output root URL  [default: s3://tidewater-<stack>-datasets]")
@click.option("--rows-per-shard", type=click.IntRange(min=1), default=BuildParams.rows_per_shard, show_default=True)
@click.option("--validation-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=BuildParams.validation_fraction, show_default=True)  # fmt: skip
@click.option("--scheduler", help="Address of a running Dask scheduler (tcp://host:8786).")
@click.option("--k8s-cluster", help="Name of a DaskCluster resource (needs dask-kubernetes).")
@click.option("--namespace", default="default", show_default=True, help="Namespace of --k8s-cluster.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="LocalCluster workers.")
@click.option("--memory-limit", default="1GiB", show_default=True, help="LocalCluster memory per worker.")
@click.option("--in-process", is_flag=True, help="LocalCluster with threads instead of worker processes.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def ingest(
    dataset: str, stack: str, curated_url: str | None, datasets_url: str | None, rows_per_shard: int,
    validation_fraction: float, scheduler: str | None, k8s_cluster: str | None, namespace: str, workers: int,
    memory_limit: str, in_process: bool, progress: bool,
) -> None:  # fmt: skip
    """Build (or find) the training dataset version of the curated data; prints the manifest URL."""
    from jobs.batch.build import build_dataset
    from jobs.batch.cluster import ClusterError, ClusterSpec, dask_client
    from jobs.batch.storage import StorageError
    from schemas.naming import Names

    names = Names("tidewater", stack)
    curated = curated_url or f"s3://{names.bucket('curated')}"
    out = datasets_url or f"s3://{names.bucket('datasets')}"
    try:
        spec = ClusterSpec(scheduler, k8s_cluster, namespace, n_workers=workers, memory_limit=memory_limit,
                           processes=not in_process)  # fmt: skip
        params = BuildParams(dataset=dataset, validation_fraction=validation_fraction, rows_per_shard=rows_per_shard)
        with dask_client(spec) as client:
            result = build_dataset(curated, out, params, client, progress=progress, echo=click.echo)
    except (ClusterError, StorageError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    except FileNotFoundError as err:  # s3fs: a bucket itself does not exist
        raise click.ClickException(
            f"{curated} or {out}: {err.strerror or err}; is stack {stack!r} deployed? "
            "(--curated/--datasets name other roots)"
        ) from None
    click.echo(json.dumps({"manifest": result.url, "version": result.version, "reused": result.reused,
                           "rows": result.manifest["rows"]}))  # fmt: skip


@click.command("curate-handoffs")
@click.option("--stack", default="dev", show_default=True, help="Names queue, buckets, bus: tidewater-<stack>-*.")
@click.option("--queue-url", help="Hand-off queue  [default: the stack's tidewater-<stack>-handoff]")
@click.option("--max-bytes", type=click.IntRange(min=1), default=DEFAULT_MAX_OBJECT_BYTES, show_default=True,
              help="Largest object (and its decompressed content) held in memory; larger is quarantined.")  # fmt: skip
@click.option("--max-messages", type=click.IntRange(min=1), help="Stop after this many messages  [default: drain]")
def curate_handoffs(stack: str, queue_url: str | None, max_bytes: int, max_messages: int | None) -> None:
    """Curate the raw files the ingest function handed off as too large for it (LargeFileHandedOff)."""
    import boto3

    from jobs.batch.handoff import drain, handoff_service
    from schemas.naming import Names

    names = Names("tidewater", stack)
    sqs = boto3.client("sqs")
    url = queue_url or sqs.get_queue_url(QueueName=names.handoff_queue)["QueueUrl"]
    service = handoff_service(names, lambda name: boto3.client(name), max_bytes)  # type: ignore[call-overload]
    report = drain(sqs, url, service.ingest, max_messages=max_messages, echo=click.echo)
    statuses: dict[str, int] = {}
    for outcome in report.outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    click.echo(json.dumps({"outcomes": statuses, "left_for_retry": len(report.failed)}))
    if report.failed:
        raise SystemExit(1)
