"""`tide deploy`: a trained model joins its endpoint as a challenger variant at weight 0, data capture on.

With --stack-outputs (the `pulumi stack output --json` file of a stack at stage serving) every name comes from
the stack: endpoint, execution role, serving image, instance type, capture destination; on SageMaker the new
variant also gets the serving variant's alarms and autoscaling (jobs/deploy/guards.py).
"""

from __future__ import annotations

import json
from typing import Any

import click

from schemas.naming import Names  # light: the naming module imports nothing heavy


@click.command("deploy")
@click.option("--model-url", required=True, help="The model folder written by `tide train` (s3://.../models/<m>/<v>).")
@click.option("--stack-outputs", type=click.Path(dir_okay=False), envvar="TIDE_STACK_OUTPUTS",
              help="`pulumi stack output --json` file of the stack (stage serving): names, role, image.")  # fmt: skip
@click.option("--stack", default="dev", show_default=True, help="Without --stack-outputs: names the endpoint.")
@click.option("--target", type=click.Choice(["sagemaker", "kserve"]), default="sagemaker", show_default=True)
@click.option("--endpoint", help="Endpoint / InferenceService name  [default: tidewater-<stack>-<model>]")
@click.option("--image", help="SageMaker: the PyTorch inference image URI. KServe: Tidewater's serving image.")
@click.option("--role", help="SageMaker: execution role ARN.")
@click.option("--instance-type", default="ml.m5.large", show_default=True, help="SageMaker instance type.")
@click.option("--capture-percent", type=click.IntRange(1, 100), default=100, show_default=True)
@click.option("--namespace", help="KServe: namespace  [default: the stack's serving namespace]")
@click.option("--logger-url", help="KServe: payload log sink (request/response capture for drift checks).")
def deploy(
    model_url: str, stack_outputs: str | None, stack: str, target: str, endpoint: str | None, image: str | None,
    role: str | None, instance_type: str, capture_percent: int, namespace: str | None, logger_url: str | None,
) -> None:  # fmt: skip
    """Add the model to its endpoint as the challenger at weight 0 (creating the endpoint if there is none)."""
    from jobs.batch.storage import StorageError, filesystem, join, read_json
    from jobs.deploy.guards import GuardError
    from jobs.deploy.sagemaker import DeployError
    from jobs.stack_outputs import StackOutputs, StackOutputsError
    from schemas.manifests import ManifestError

    try:
        outputs = StackOutputs.load(stack_outputs) if stack_outputs else None
        names = outputs.names if outputs else Names("tidewater", stack)
        fs, path = filesystem(join(model_url, "metadata.json"))
        metadata = read_json(fs, path)
        if outputs is not None and metadata.get("model") != outputs.model_name:
            raise DeployError(f"{model_url} is model {metadata.get('model')!r}; the stack serves "
                              f"{outputs.model_name!r} (train it with --model-name {outputs.model_name})")  # fmt: skip
        if target == "kserve":
            if outputs is not None:
                endpoint = endpoint or str(outputs.require("k8s_inference_service"))
                namespace = namespace or str(outputs.require("k8s_namespaces")["serving"])
                image = image or str(outputs.require("k8s_serving_image"))
            if not image:
                raise click.UsageError("--target kserve needs --image (the serving image: README 'The image')")
            _deploy_kserve(names, model_url, metadata, endpoint, namespace, image, logger_url)
            return
        settings = _sagemaker_settings(outputs, names, metadata, endpoint, image, role, instance_type)
        _deploy_sagemaker(model_url, metadata, settings, capture_percent, guarded=outputs is not None)
    except (DeployError, GuardError, StorageError, ManifestError, StackOutputsError) as err:
        raise click.ClickException(str(err)) from err


def _sagemaker_settings(
    outputs: Any, names: Names, metadata: dict[str, Any], endpoint: str | None, image: str | None, role: str | None,
    instance_type: str,
) -> dict[str, str]:  # fmt: skip
    """Endpoint, image, role, instance type and capture destination: the options', else the stack's."""
    from schemas.naming import captures_prefix

    if outputs is not None:
        return {
            "endpoint": endpoint or str(outputs.require("endpoint_name")),
            "image": image or str(outputs.require("endpoint_image")),
            "role_arn": role or str(outputs.require("endpoint_role_arn")),
            "instance_type": str(outputs.require("endpoint_instance_type")),
            "capture_destination": str(outputs.require("capture_destination")),
        }
    if not image or not role:
        raise click.UsageError("--target sagemaker needs --image and --role, or --stack-outputs")
    name = endpoint or names.endpoint(str(metadata["model"]))
    # SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh to the destination, which lands the files under
    # captures_prefix(endpoint), where the drift function reads them.
    root = captures_prefix(name).removesuffix(f"{name}/").rstrip("/")
    return {"endpoint": name, "image": image, "role_arn": role, "instance_type": instance_type,
            "capture_destination": f"s3://{names.bucket('captures')}/{root}"}  # fmt: skip


def _deploy_sagemaker(
    model_url: str, metadata: dict[str, Any], settings: dict[str, str], capture_percent: int, *, guarded: bool
) -> None:
    import boto3
    from botocore.config import Config

    from jobs.deploy.guards import VariantGuards
    from jobs.deploy.sagemaker import SageMakerDeployer, request_for_model

    request = request_for_model(model_url, metadata, capture_percent=capture_percent, **settings)
    retries = Config(retries={"mode": "standard", "max_attempts": 5})
    sagemaker = boto3.client("sagemaker", config=retries)
    result = SageMakerDeployer(sagemaker).deploy(request)
    copied = None
    source = result.source_variant
    if guarded and source is not None:
        # Autoscaling registers a variant that is in service: wait for the update to finish first.
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=result.endpoint)
        guards = VariantGuards(boto3.client("cloudwatch", config=retries),
                               boto3.client("application-autoscaling", config=retries))  # fmt: skip
        copied = guards.copy(result.endpoint, source, request.model_name).__dict__
    click.echo(json.dumps({"endpoint": result.endpoint, "endpoint_config": result.endpoint_config,
                           "created_endpoint": result.created_endpoint, "variants": result.variants,
                           "variant": request.model_name, "guards": copied}))  # fmt: skip


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
