"""Builds the service for a deployment target from the environment; adapters are imported lazily by name."""

from __future__ import annotations

from typing import Any

from functions.traffic.service import Rollouts
from schemas.naming import SHADOW_ROOT, Names


def names_from_env() -> Names:
    return Names.from_env()


def aws_rollouts(names: Names | None = None, session: Any = None) -> Rollouts:
    """SageMaker variants + CloudWatch + DynamoDB + EventBridge; transient errors retried by botocore."""
    import boto3
    from botocore.config import Config

    from functions.common.events import EventBridgePublisher
    from functions.traffic.adapters.cloudwatch import CloudWatchMetrics
    from functions.traffic.adapters.sagemaker import SageMakerBackend
    from functions.traffic.adapters.store import DynamoDBStateStore
    from functions.traffic.shadow import S3ShadowLog

    names = names or names_from_env()
    session = session or boto3.session.Session()
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return Rollouts(
        store=DynamoDBStateStore(session.client("dynamodb", config=config), names.rollout_table),
        backend=SageMakerBackend(session.client("sagemaker", config=config)),
        metrics=CloudWatchMetrics(session.client("cloudwatch", config=config)),
        publisher=EventBridgePublisher(session.client("events", config=config), names.event_bus),
        # The `shadow` strategy's evidence: pairs the serving-side mirror logged under shadow/<endpoint>/.
        shadow=S3ShadowLog(session.client("s3", config=config), names.bucket("captures"), SHADOW_ROOT),
    )


def kubernetes_rollouts(
    core: Any,
    custom_objects: Any,
    namespace: str,
    store: str,
    query_range: Any,
    firing_alerts: Any,
) -> Rollouts:
    """KServe canaryTrafficPercent + Prometheus + ConfigMaps + Kubernetes Events, all in the serving namespace.

    The clients are the caller's: kubernetes.client.CoreV1Api and CustomObjectsApi (the kubernetes client comes
    with the jobs extra: `tide rollout --target kubernetes` and the stack's rollout-tick CronJob), and a
    Prometheus range-query function and firing-alerts function (adapters.prometheus.PrometheusAPI)."""
    from functions.traffic.adapters.configmap_store import ConfigMapStateStore
    from functions.traffic.adapters.kserve import KServeBackend, revision_roles
    from functions.traffic.adapters.kube_events import KubernetesEventPublisher
    from functions.traffic.adapters.prometheus import PrometheusMetrics

    return Rollouts(
        store=ConfigMapStateStore(core, namespace, store),
        backend=KServeBackend(custom_objects, namespace),
        # The predictor labels its series with its Knative revision; KServe's status maps those to prev/latest.
        metrics=PrometheusMetrics(
            query_range,
            firing_alerts,
            variant_names=lambda endpoint: revision_roles(custom_objects, namespace, endpoint),
        ),
        publisher=KubernetesEventPublisher(core, custom_objects, namespace),
    )
