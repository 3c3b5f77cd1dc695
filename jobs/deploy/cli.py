"""`tide deploy`: a trained model joins its endpoint as a challenger variant at weight 0, data capture on."""

from __future__ import annotations

import json

import click


@click.command("deploy")
@click.option("--model-url", required=True, help="The model folder written by `tide train` (s3://.../models/<m>/<v>).")
@click.option("--stack", default="dev", show_default=True, help="Names the endpoint and captures bucket.")
@click.option("--endpoint", help="Endpoint name  [default: tidewater-<stack>-<model>]")
@click.option("--image", required=True, help="Serving container image URI.")
@click.option("--role", required=True, help="SageMaker execution role ARN.")
@click.option("--instance-type", default="ml.m5.large", show_default=True)
@click.option("--capture-percent", type=click.IntRange(1, 100), default=100, show_default=True)
def deploy(
    model_url: str, stack: str, endpoint: str | None, image: str, role: str, instance_type: str, capture_percent: int
) -> None:
    """Register the model and add it to the endpoint (creating the endpoint if it does not exist yet)."""
    import boto3
    from botocore.config import Config

    from jobs.batch.storage import StorageError, filesystem, join, read_json
    from jobs.deploy.sagemaker import DeployError, SageMakerDeployer, request_for_model
    from schemas.naming import Names, captures_prefix

    names = Names("tidewater", stack)
    try:
        fs, path = filesystem(join(model_url, "metadata.json"))
        metadata = read_json(fs, path)
        name = endpoint or names.endpoint(str(metadata["model"]))
        # SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh to the destination, which lands the files under
        # captures_prefix(endpoint), where the drift function reads them.
        root = captures_prefix(name).removesuffix(f"{name}/").rstrip("/")
        request = request_for_model(
            model_url, metadata, endpoint=name, image=image, role_arn=role, instance_type=instance_type,
            capture_destination=f"s3://{names.bucket('captures')}/{root}", capture_percent=capture_percent,
        )  # fmt: skip
        sagemaker = boto3.client("sagemaker", config=Config(retries={"mode": "standard", "max_attempts": 5}))
        result = SageMakerDeployer(sagemaker).deploy(request)
    except (DeployError, StorageError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps({"endpoint": result.endpoint, "endpoint_config": result.endpoint_config,
                           "created_endpoint": result.created_endpoint, "variants": result.variants}))  # fmt: skip
