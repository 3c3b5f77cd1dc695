"""Compose the stack: read the config once, build the components of the stack's target, collect the outputs.

`compose` is what infra/__main__.py runs under the Pulumi engine and what the tests run under Pulumi's mocks;
the only thing the tests swap is `build_zip`, so that no wheel is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import config as stack_config
from infra.components.datalake import DataLake
from infra.components.endpoint import ModelEndpoint
from infra.components.functions import PACKAGING, Functions, ImageRepository, serverless_functions
from infra.components.monitoring import Alerts, Monitoring
from infra.components.training import Training
from infra.k8s import KubernetesStack, build_kubernetes_stack
from infra.k8s.retraining import RetrainingRunner
from infra.k8s.retraining_kubernetes import KubernetesRetrainingRunner
from jobs.build_artifacts import Artifact, build
from schemas.naming import ZONES, Names

REPO = Path(__file__).resolve().parent.parent
ARTIFACT_CACHE = REPO / ".tide" / "artifacts"
ZipBuilder = Callable[[str], Artifact]


def build_zip(function: str) -> Artifact:
    """Real builder: pip-installs the function's wheels once per content hash (cached under .tide/artifacts)."""
    return build(function, REPO, ARTIFACT_CACHE)


def compose(cfg: stack_config.StackConfig | None = None, build_zip: ZipBuilder = build_zip) -> dict[str, Any]:
    """Create the stack's resources for its stage; return the stack outputs (name -> value or Output)."""
    cfg = cfg or stack_config.from_pulumi()
    names = Names(pulumi.get_project(), pulumi.get_stack())
    base = {"target": cfg.target, "stage": cfg.stage, "project": names.project, "stack": names.stack}
    if cfg.target == "kubernetes":
        # Any cluster from a kubeconfig: the compute platform (no lake stage: storage is the given endpoint); the
        # InferenceService once a first model exists (stage serving).
        compute = build_kubernetes_stack(names, served_model=_served_model(cfg))
        outputs = base | {
            "model_name": cfg.model_name,
            "buckets": {zone: names.bucket(zone) for zone in ZONES},  # on the given object store
            "retraining": cfg.retraining | {"training_image": compute.cfg.dask_image},
        } | _k8s_outputs(compute)  # fmt: skip
        if cfg.retrain_scheduled:  # the schedule is the trigger there: no bus or queue, no runner without it
            runner = KubernetesRetrainingRunner(
                "retraining-runner", names, cfg, compute.cfg, provider=compute.provider, stack_outputs=outputs,
                depends_on=[compute],
            )  # fmt: skip
            outputs["k8s_retraining"] = runner.outputs
        return outputs
    return base | compose_aws(cfg, names, build_zip)


def _served_model(cfg: stack_config.StackConfig) -> tuple[str, str] | None:
    return (cfg.model_name, cfg.champion_model_version) if cfg.stage == "serving" else None


def _k8s_outputs(compute: KubernetesStack) -> dict[str, Any]:
    return {f"k8s_{key}": value for key, value in compute.outputs.items()}


def compose_aws(cfg: stack_config.StackConfig, names: Names, build_zip: ZipBuilder) -> dict[str, Any]:
    """lake: what exists before any image or model (buckets, key, alerts, image repositories). platform: + the
    ingestion path, the queues, the compute cluster and training. serving: + the endpoint and the functions that
    watch it (drift, traffic), which need a first model (champion_model_version)."""
    account_id = aws.get_caller_identity_output().account_id
    region = aws.get_region_output().region
    lake = DataLake("lake", names=names, cfg=cfg, account_id=account_id)
    alerts = Alerts("alerts", names=names, cfg=cfg, key_arn=lake.key.arn, account_id=account_id)
    ingest_image = ImageRepository(
        "ingest-image", repository_name=names.image_repository("ingest"), key_arn=lake.key.arn
    )
    # The training image (this repository with the jobs extra): built and pushed before stage platform trains.
    train_image = ImageRepository("train-image", repository_name=names.training_image_repository, key_arn=lake.key.arn)
    outputs: dict[str, Any] = {
        "region": region,
        "model_name": cfg.model_name,
        "buckets": {zone: bucket.bucket for zone, bucket in lake.buckets.items()},
        "access_log_bucket": lake.log_bucket.bucket,
        "kms_key_arn": lake.key.arn,
        "kms_alias": lake.key_alias.name,
        "alert_topic_arn": alerts.topic.arn,
        "ingest_image_repository": ingest_image.repository.repository_url,
        "training_image_repository": train_image.repository.repository_url,
    }
    if not cfg.at_least("platform"):
        return outputs
    # The GPU training cluster and Dask cluster: EKS, whose pods reach the lake's SSE-KMS buckets through IRSA.
    compute = build_kubernetes_stack(names, kms_key_arn=lake.key.arn)
    training = Training(
        "training",
        cfg=cfg,
        lake=lake,
        image_repository_arn=train_image.repository.arn,
        account_id=account_id,
        region=region,
    )
    endpoint = None
    if cfg.at_least("serving"):
        endpoint = ModelEndpoint(
            "endpoint",
            names=names,
            cfg=cfg,
            lake=lake,
            alert_topic_arn=alerts.topic.arn,
            account_id=account_id,
            region=region,
        )
    zips = {fn: build_zip(fn) for fn in serverless_functions(endpoint is not None) if PACKAGING[fn] == "zip"}
    functions = Functions(
        "functions",
        names=names,
        cfg=cfg,
        lake=lake,
        endpoint=endpoint,
        zips=zips,
        image_repository=ingest_image,
        account_id=account_id,
    )
    monitoring = Monitoring(
        "monitoring", names=names, cfg=cfg, alerts=alerts, functions=functions, endpoint=endpoint, region=region
    )
    outputs |= {
        "ingest_queue_url": functions.ingest_queue.url,
        "ingest_dlq_url": functions.ingest_dlq.url,
        "retraining_queue_url": functions.retraining_queue.url,
        "retraining_dlq_url": functions.retraining_dlq.url,
        "handoff_queue_url": functions.handoff_queue.url,
        "handoff_dlq_url": functions.handoff_dlq.url,
        "event_bus": functions.bus.name,
        "tables": {
            "idempotency": functions.idempotency_table.name,
            "rollouts": functions.rollout_table.name,
            "drift_state": functions.drift_state_table.name,
        },
        "functions": {fn: f.name for fn, f in functions.functions.items()},
        "dashboard": monitoring.dashboard.dashboard_name,
        "training_role_arn": training.role.arn,
        "retraining": cfg.retraining | {"training_image": compute.cfg.dask_image},
    } | _k8s_outputs(compute)
    if endpoint is not None and functions.schedules_dlq is not None:
        outputs |= {
            "schedules_dlq_url": functions.schedules_dlq.url,
            "endpoint_name": endpoint.endpoint.name,
            "endpoint_role_arn": endpoint.role.arn,
            "endpoint_image": cfg.endpoint_image,
            "endpoint_instance_type": cfg.endpoint_instance_type,
            "capture_destination": endpoint.capture_destination,
            "variants": dict(cfg.weights),
            "variant_alarms": {v: {k: a.name for k, a in by_kind.items()} for v, by_kind in endpoint.alarms.items()},
        }
    _retraining_runner(names, cfg, compute, lake.key.arn, training, endpoint, outputs)
    return outputs


def _retraining_runner(
    names: Names, cfg: stack_config.StackConfig, compute: KubernetesStack, key_arn: pulumi.Input[str],
    training: Training, endpoint: ModelEndpoint | None, outputs: dict[str, Any],
) -> RetrainingRunner:  # fmt: skip
    """`tide retrain` on the EKS cluster, reading these very outputs (a ConfigMap of them)."""
    assert compute.eks is not None  # the aws target always has its EKS cluster
    return RetrainingRunner(
        "retraining-runner", names, cfg, compute.cfg, eks=compute.eks, provider=compute.provider, kms_key_arn=key_arn,
        training_role_arn=training.role.arn, endpoint_role_arn=endpoint.role.arn if endpoint is not None else None,
        stack_outputs=outputs, opts=pulumi.ResourceOptions(depends_on=[compute]),
    )  # fmt: skip


def export(outputs: dict[str, Any]) -> None:
    for key, value in outputs.items():
        pulumi.export(key, value)
