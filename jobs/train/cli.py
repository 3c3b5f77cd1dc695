"""`tide train`: launch distributed training locally (torchrun), as a PyTorchJob, or as a SageMaker job."""

from __future__ import annotations

import json

import click

from jobs.train.config import TrainConfig  # light (no torch): the defaults live there only
from schemas.naming import platform_image

_DEFAULTS = {name: field.default for name, field in TrainConfig.model_fields.items()}


@click.command("train")
@click.option("--manifest", "manifest_url", required=True, help="Dataset manifest URL (printed by `tide ingest`).")
@click.option("--output", "output_url", help="Artifacts root URL, models/<name>/<v>/ under it  [default: stack's]")
@click.option("--model-name", default=_DEFAULTS["model_name"], show_default=True, help="= tidewater:model_name.")
@click.option("--stack-outputs", type=click.Path(dir_okay=False), envvar="TIDE_STACK_OUTPUTS",
              help="`pulumi stack output --json` file: artifacts bucket, training role, k8s placement.")  # fmt: skip
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
@click.option(
    "--image",
    default=platform_image("train"),
    show_default=True,
    help="Container image for remote backends: the Dockerfile's train target, pushed to your registry.",
)
@click.option("--role", help="SageMaker execution role ARN  [default: the stack's training_role_arn]")
@click.option("--instance-type", default="ml.m5.xlarge", show_default=True, help="SageMaker instance type.")
def train(
    manifest_url: str, output_url: str | None, model_name: str, stack_outputs: str | None, backend: str,
    job_name: str, nodes: int, procs_per_node: int, max_restarts: int, steps: int, batch_size: int,
    checkpoint_every: int, seed: int, cache_dir: str, image: str, role: str | None, instance_type: str,
) -> None:  # fmt: skip
    """Train the contract's model on a dataset version; prints where the model and its metadata are."""
    from pydantic import ValidationError

    from jobs.launch.backends import BackendError, launcher_for
    from jobs.launch.base import JobSpec
    from jobs.stack_outputs import StackOutputs, StackOutputsError

    try:
        outputs = StackOutputs.load(stack_outputs) if stack_outputs else None
        output_url = output_url or (f"s3://{outputs.bucket('artifacts')}" if outputs else None)
        if outputs is not None and model_name != outputs.model_name:
            raise click.UsageError(f"--model-name {model_name!r} is not the model the stack serves "
                                   f"({outputs.model_name!r}, tidewater:model_name)")  # fmt: skip
    except StackOutputsError as err:
        raise click.ClickException(str(err)) from None
    if not output_url:
        raise click.UsageError("--output is required without --stack-outputs")
    try:
        config = TrainConfig(manifest_url=manifest_url, output_url=output_url, model_name=model_name, steps=steps,
                             batch_size=batch_size, checkpoint_every=checkpoint_every, seed=seed,
                             cache_dir=cache_dir)  # fmt: skip
    except ValidationError as err:
        raise click.UsageError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())) from None
    spec = JobSpec(name=job_name, nodes=nodes, procs_per_node=procs_per_node, max_restarts=max_restarts, image=image)
    if backend == "local":  # remote backends read the manifest where they run (it may not be reachable here)
        from jobs.batch.storage import StorageError
        from jobs.train.inputs import InputError, check_inputs

        try:
            check_inputs(config)
        except (InputError, StorageError) as err:
            raise click.ClickException(str(err)) from None
    try:
        launcher = launcher_for(backend, outputs, role, instance_type)
    except BackendError as err:
        raise click.ClickException(str(err)) from None
    try:
        submitted = launcher.launch(config, spec)
    except (RuntimeError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    # model_name and version are what the stack's tidewater:model_name / champion_model_version take.
    click.echo(json.dumps({"backend": submitted.backend, "job": submitted.job_id, "model_url": config.model_url,
                           "model_name": config.model_name, "version": config.version}))  # fmt: skip
