"""`tide retrain`: one pass of the retraining runner against the deployed stack (the CronJob runs it on a schedule).

Everything comes from the stack outputs file: the retraining queue, the buckets, the training role or the
PyTorchJob placement, the endpoint, and the `retraining` block (backend, policy, rollout config, training image:
Pulumi config retrain_*). Options override the block. Clients are created here and injected (jobs/retrain).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.command("retrain")
@click.option("--stack-outputs", type=click.Path(dir_okay=False), envvar="TIDE_STACK_OUTPUTS", required=True,
              help="`pulumi stack output --json` file of the stack (stage platform or serving).")  # fmt: skip
@click.option("--backend", type=click.Choice(["sagemaker", "kubernetes"]), help="[default: the stack's]")
@click.option("--policy", type=click.Choice(["auto", "manual"]), help="After the challenger joins: start the "
              "rollout (auto) or stop and say so (manual)  [default: the stack's]")  # fmt: skip
@click.option("--rollout-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML/JSON rollout config without endpoint/champion/challenger  [default: the stack's]")  # fmt: skip
@click.option("--image", help="Training image  [default: the stack's retraining.training_image]")
@click.option("--instance-type", help="SageMaker instance type  [default: the stack's]")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--procs-per-node", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), help="Training steps  [default: tide train's]")
@click.option("--max-messages", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--scheduled-dataset", metavar="DATASET", help="This run is a firing of the stack's retraining "
              "schedule: retrain the stack's model on DATASET's newest version (the kubernetes "
              "target's CronJob)")  # fmt: skip
@click.option("--firing-id", help="The schedule firing's id, recorded on the retraining  [default: the UTC time]")
def retrain(
    stack_outputs: str, backend: str | None, policy: str | None, rollout_config: Path | None, image: str | None,
    instance_type: str | None, nodes: int, procs_per_node: int, steps: int | None, max_messages: int,
    scheduled_dataset: str | None, firing_id: str | None,
) -> None:  # fmt: skip
    """Take the retraining asks (the queue on aws; the schedule's firing on kubernetes): train on the newest dataset
    version, add the model as a challenger, roll out; and carry earlier retrainings on."""
    from jobs.stack_outputs import StackOutputs, StackOutputsError

    try:
        outputs = StackOutputs.load(stack_outputs)
        block = outputs.values.get("retraining") or {}
        settings = {
            "backend": backend or block.get("backend") or "sagemaker",
            "policy": policy or block.get("policy") or "manual",
            "rollout": _rollout_template(rollout_config) if rollout_config else block.get("rollout") or {},
            "image": image or block.get("training_image"),
            "instance_type": instance_type or block.get("instance_type") or "ml.m5.xlarge",
        }
        if not settings["image"]:
            raise click.UsageError("no training image: --image, or Pulumi config retrain_training_image")
        firing = _firing(outputs, scheduled_dataset, firing_id)
        train = {"steps": steps} if steps else {}
        if outputs.values.get("target") == "kubernetes":
            if backend == "sagemaker":
                raise click.UsageError("--backend sagemaker: the kubernetes target trains on the cluster")
            runner = _kubernetes_runner(outputs, settings, nodes, procs_per_node, train, firing)
        else:
            runner = _runner(outputs, settings, nodes, procs_per_node, train, max_messages, firing)
    except StackOutputsError as err:
        raise click.ClickException(str(err)) from None
    summary = _run(runner)
    click.echo(json.dumps(summary.to_dict()))
    if summary.retry:  # a failed Job run is what the CronJob keeps for inspection
        raise click.ClickException(f"{len(summary.retry)} retraining(s) stopped at a step the next run retries")


def _rollout_template(path: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise click.ClickException(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(raw, dict):
        raise click.ClickException(f"{path}: expected a mapping at the top level")
    return raw


def _firing(outputs: Any, dataset: str | None, firing_id: str | None) -> list[Any]:
    if dataset is None:
        return []
    import datetime as dt

    from jobs.retrain.triggers import ScheduleFiring

    when = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return [ScheduleFiring(outputs.model_name, dataset, firing_id or f"schedule-{when}",
                           outputs.names.retraining_schedule)]  # fmt: skip


def _kubernetes_runner(
    outputs: Any, settings: dict[str, Any], nodes: int, procs: int, train: dict[str, Any], firing: list[Any]
) -> Any:  # fmt: skip
    """In the runner's pod: its service account and the object store's keys (env); on a laptop: the kubeconfig."""
    import boto3
    from botocore.config import Config

    from jobs import rollout_target
    from jobs.launch.base import JobSpec
    from jobs.launch.kubernetes import PlacementError
    from jobs.retrain.kubernetes import kubernetes_retrainer
    from jobs.retrain.runner import RetrainError

    retries = Config(retries={"mode": "standard", "max_attempts": 5})
    core, custom = rollout_target.kube_clients(None, None)
    spec = JobSpec(name="retrain", nodes=nodes, procs_per_node=procs, image=str(settings["image"]))
    try:
        return kubernetes_retrainer(
            outputs, s3=boto3.client("s3", config=retries), core=core, custom_objects=custom, triggers=firing,
            spec=spec, policy=settings["policy"], rollout_template=settings["rollout"], train_options=train,
            echo=lambda line: click.echo(line, err=True),
        )  # fmt: skip
    except (RetrainError, PlacementError) as err:
        raise click.ClickException(str(err)) from None


def _run(runner: Any) -> Any:
    from functions.traffic.ports import RolloutExists
    from jobs.deploy.guards import GuardError
    from jobs.deploy.sagemaker import DeployError
    from jobs.launch.kubernetes import PlacementError
    from jobs.retrain.records import RecordError
    from jobs.retrain.runner import RetrainError

    try:
        return runner.run()
    except (RetrainError, RecordError, DeployError, GuardError, PlacementError) as err:
        raise click.ClickException(str(err)) from None
    except RolloutExists as err:  # another rollout runs on the endpoint: the record stays at deployed
        raise click.ClickException(f"retraining stopped (the next run resumes it): {err}") from None
    except _cloud_errors() as err:  # taking the asks: each step is idempotent, the next run resumes it
        line = " ".join(str(err).split())
        raise click.ClickException(f"retraining stopped (the next run resumes it): {line}") from None


def _cloud_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    errors: tuple[type[Exception], ...] = (ClientError, BotoCoreError)
    try:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError
    except ImportError:
        return errors
    return (*errors, ApiException, HTTPError)


def _runner(
    outputs: Any, settings: dict[str, Any], nodes: int, procs: int, train: dict[str, Any], most: int, firing: list[Any]
) -> Any:  # fmt: skip
    import boto3
    from botocore.config import Config

    from jobs.launch.backends import BackendError, kubernetes_launcher, sagemaker_launcher
    from jobs.launch.base import JobSpec
    from jobs.retrain.records import RecordStore
    from jobs.retrain.runner import Retrainer, RetrainError
    from jobs.retrain.serving import SageMakerChallenger, TrafficRollouts
    from jobs.retrain.training import KubernetesTraining, SageMakerTraining, TrainingBackend
    from jobs.retrain.triggers import QueueTriggers

    retries = Config(retries={"mode": "standard", "max_attempts": 5})
    s3, sm = boto3.client("s3", config=retries), boto3.client("sagemaker", config=retries)
    spec = JobSpec(name="retrain", nodes=nodes, procs_per_node=procs, image=str(settings["image"]))
    training: TrainingBackend
    try:
        if settings["backend"] == "kubernetes":
            k8s = kubernetes_launcher(outputs)
            training = KubernetesTraining(k8s, k8s.api, k8s.placement.namespace, spec)  # type: ignore[attr-defined]
        else:
            training = SageMakerTraining(sagemaker_launcher(outputs, None, settings["instance_type"]), sm, spec)
    except BackendError as err:
        raise click.ClickException(str(err)) from None
    deploy = rollouts = None
    if outputs.values.get("endpoint_name"):  # stage serving: the endpoint exists
        from functions.traffic.wiring import aws_rollouts
        from jobs.deploy.guards import VariantGuards

        guards = VariantGuards(boto3.client("cloudwatch", config=retries),
                               boto3.client("application-autoscaling", config=retries))  # fmt: skip
        deploy = SageMakerChallenger(s3, sm, guards, {
            "endpoint": str(outputs.require("endpoint_name")), "image": str(outputs.require("endpoint_image")),
            "role_arn": str(outputs.require("endpoint_role_arn")),
            "instance_type": str(outputs.require("endpoint_instance_type")),
            "capture_destination": str(outputs.require("capture_destination")),
        })  # fmt: skip
        rollouts = TrafficRollouts(aws_rollouts(outputs.names))
    try:
        queue = QueueTriggers(boto3.client("sqs", config=retries), str(outputs.require("retraining_queue_url")), most)
        return Retrainer(
            triggers=[queue, *firing], s3=s3,
            datasets_bucket=outputs.bucket("datasets"), artifacts_bucket=outputs.bucket("artifacts"),
            records=RecordStore(s3, outputs.bucket("artifacts"), outputs.model_name), training=training,
            deploy=deploy, rollouts=rollouts, policy=settings["policy"], rollout_template=settings["rollout"],
            model_name=outputs.model_name, train_options=train, echo=lambda line: click.echo(line, err=True),
        )  # fmt: skip
    except RetrainError as err:
        raise click.ClickException(str(err)) from None
