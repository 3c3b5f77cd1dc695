"""`tide train`: launch distributed training locally (torchrun), as a PyTorchJob, or as a SageMaker job."""

from __future__ import annotations

import json

import click

from jobs.train.config import TrainConfig  # light (no torch): the defaults live there only
from schemas.naming import platform_image

_DEFAULTS = {name: field.default for name, field in TrainConfig.model_fields.items()}


@click.command("train")
@click.option("--manifest", "manifest_url", required=True, help="Dataset manifest URL (printed by `tide ingest`).")
@click.option("--output", "output_url", required=True, help="Artifacts root URL; the model goes to models/<name>/<v>/.")
@click.option("--backend", type=click.Choice(["local", "kubernetes", "sagemaker"]), default="local", show_default=True)
@click.option("--name", "job_name", default="tide-train", show_default=True, help="Job / rendezvous name.")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--procs-per-node", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--max-restarts", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=_DEFAULTS["steps"], show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=_DEFAULTS["batch_size"], show_default=True)
@click.option(
    "--checkpoint-every", type=click.IntRange(min=1), default=_DEFAULTS["checkpoint_every"], show_default=True
)
@click.option("--seed", type=int, default=_DEFAULTS["seed"], show_default=True)
@click.option("--cache-dir", default=_DEFAULTS["cache_dir"], show_default=True)
@click.option("--image", default=platform_image("train"), show_default=True,
              help="Container image for remote backends: the Dockerfile's train target, pushed to your registry.")
@click.option("--namespace", default="training", show_default=True, help="Kubernetes namespace.")
@click.option("--role", help="SageMaker execution role ARN (sagemaker backend).")
@click.option("--instance-type", default="ml.m5.xlarge", show_default=True, help="SageMaker instance type.")
def train(
    manifest_url: str, output_url: str, backend: str, job_name: str, nodes: int, procs_per_node: int,
    max_restarts: int, steps: int, batch_size: int, checkpoint_every: int, seed: int, cache_dir: str, image: str,
    namespace: str, role: str | None, instance_type: str,
) -> None:  # fmt: skip
    """Train the contract's model on a dataset version; prints where the model and its metadata are."""
    from jobs.launch.base import JobSpec, Launcher

    config = TrainConfig(manifest_url=manifest_url, output_url=output_url, steps=steps, batch_size=batch_size,
                         checkpoint_every=checkpoint_every, seed=seed, cache_dir=cache_dir)  # fmt: skip
    spec = JobSpec(name=job_name, nodes=nodes, procs_per_node=procs_per_node, max_restarts=max_restarts, image=image)
    if backend == "local":  # remote backends read the manifest where they run (it may not be reachable here)
        from jobs.batch.storage import StorageError
        from jobs.train.inputs import InputError, check_inputs

        try:
            check_inputs(config)
        except (InputError, StorageError) as err:
            raise click.ClickException(str(err)) from None
    launcher: Launcher
    if backend == "local":
        from jobs.launch.local import LocalTorchrun

        launcher = LocalTorchrun()
    elif backend == "kubernetes":
        from jobs.launch.kubernetes import KubernetesPyTorchJob

        try:
            from kubernetes import client as k8s_client
            from kubernetes import config as k8s_config
        except ImportError:
            missing = "the kubernetes backend needs the kubernetes client (pip install kubernetes)"
            raise click.ClickException(missing) from None
        k8s_config.load_kube_config()
        launcher = KubernetesPyTorchJob(k8s_client.CustomObjectsApi(), namespace)
    else:
        if not role:
            raise click.ClickException("--role is required for the sagemaker backend")
        from sagemaker.core.helper.session_helper import Session

        from jobs.launch.sagemaker import SageMakerTrainingJob

        launcher = SageMakerTrainingJob(Session(), role, instance_type)
    try:
        submitted = launcher.launch(config, spec)
    except (RuntimeError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps({"backend": submitted.backend, "job": submitted.job_id, "model_url": config.model_url}))
