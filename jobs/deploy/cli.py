"""`tide deploy`: a trained model joins its endpoint as a challenger variant at weight 0, data capture on."""

from __future__ import annotations

import json
from typing import Any

import click

from schemas.naming import Names  # light: the naming module imports nothing heavy


@click.command("deploy")
@click.option("--model-url", required=True, help="The model folder written by `tide train` (s3://.../models/<m>/<v>).")
@click.option("--stack", default="dev", show_default=True, help="Names the endpoint and captures bucket.")
@click.option("--target", type=click.Choice(["sagemaker", "kserve"]), default="sagemaker", show_default=True)
@click.option("--endpoint", help="Endpoint / InferenceService name  [default: tidewater-<stack>-<model>]")
@click.option("--image", help="SageMaker: the PyTorch inference image URI. KServe: Tidewater's serving image.")
@click.option("--role", help="SageMaker: execution role ARN.")
@click.option("--instance-type", default="ml.m5.large", show_default=True, help="SageMaker instance type.")
@click.option("--capture-percent", type=click.IntRange(1, 100), default=100, show_default=True)
@click.option("--namespace", help="KServe: namespace  [default: the stack's serving namespace]")
@click.option("--logger-url", help="KServe: payload log sink (request/response capture for drift checks).")
def deploy(
    model_url: str, stack: str, target: str, endpoint: str | None, image: str | None, role: str | None,
    instance_type: str, capture_percent: int, namespace: str | None, logger_url: str | None,
) -> None:  # fmt: skip
    """Add the model to its endpoint as the challenger at weight 0 (creating the endpoint if there is none)."""
    from jobs.batch.storage import StorageError, filesystem, join, read_json
    from jobs.deploy.sagemaker import DeployError
    from schemas.manifests import ManifestError

    names = Names("tidewater", stack)
    try:
        fs, path = filesystem(join(model_url, "metadata.json"))
        metadata = read_json(fs, path)
        if target == "kserve":
            if not image:
                raise click.UsageError("--target kserve needs --image (the serving image: README 'The image')")
            _deploy_kserve(names, model_url, metadata, endpoint, namespace, image, logger_url)
        else:
            if not image or not role:
                raise click.UsageError("--target sagemaker needs --image and --role")
            _deploy_sagemaker(names, model_url, metadata, endpoint, image, role, instance_type, capture_percent)
    except (DeployError, StorageError, ManifestError) as err:
        raise click.ClickException(str(err)) from err


def _deploy_sagemaker(
    names: Names, model_url: str, metadata: dict[str, Any], endpoint: str | None, image: str, role: str,
    instance_type: str, capture_percent: int,
) -> None:  # fmt: skip
    import boto3
    from botocore.config import Config

    from jobs.deploy.sagemaker import SageMakerDeployer, request_for_model
    from schemas.naming import captures_prefix

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
    click.echo(json.dumps({"endpoint": result.endpoint, "endpoint_config": result.endpoint_config,
                           "created_endpoint": result.created_endpoint, "variants": result.variants}))  # fmt: skip


def _deploy_kserve(
    names: Names, model_url: str, metadata: dict[str, Any], endpoint: str | None, namespace: str | None,
    image: str, logger_url: str | None,
) -> None:  # fmt: skip
    from jobs.deploy.kserve import KServeDeployer

    try:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config
    except ImportError:
        raise click.ClickException("--target kserve needs the kubernetes client (pip install kubernetes)") from None
    k8s_config.load_config()  # in-cluster service account, else the local kubeconfig
    deployer = KServeDeployer(k8s_client.CustomObjectsApi(), namespace or names.k8s_namespace("serving"))
    result = deployer.deploy(
        endpoint or names.inference_service(str(metadata["model"])), model_url.rstrip("/"),
        image=image, service_account=names.k8s_service_account("serving"), logger_url=logger_url,
    )  # fmt: skip
    click.echo(json.dumps(result.__dict__))
