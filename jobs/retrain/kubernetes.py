"""The retraining runner on the kubernetes target, wired from the stack outputs with injected clients.

The same Retrainer as on aws; only the ends differ: the asks come from this run's schedule firing (there is no
queue), training is a PyTorchJob placed like `tide train --backend kubernetes` (output k8s_training_job), the new
model becomes the stack's InferenceService's canary at 0 % (`tide deploy --target kserve`'s deployer), and the
rollout is created in the ConfigMap store of the serving namespace, where the stack's rollout-tick CronJob moves
it. Records and datasets are read through an S3 client on the stack's object store (k8s_storage_endpoint).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from jobs.launch.base import JobSpec
from jobs.launch.kubernetes import KubernetesPyTorchJob, Placement
from jobs.retrain.records import RecordStore
from jobs.retrain.runner import Policy, Retrainer
from jobs.retrain.serving import KServeChallenger, TrafficRollouts
from jobs.retrain.training import KubernetesTraining
from jobs.retrain.triggers import TriggerSource
from jobs.stack_outputs import StackOutputs


def _no_metrics(*_: Any) -> Any:
    from functions.traffic.adapters.prometheus import PrometheusError

    raise PrometheusError("the rollout config's planning estimate needs the stack's Prometheus (k8s_prometheus_url)")


def kubernetes_retrainer(
    outputs: StackOutputs, *, s3: Any, core: Any, custom_objects: Any, triggers: Sequence[TriggerSource],
    spec: JobSpec, policy: Policy, rollout_template: dict[str, Any], train_options: dict[str, Any],
    echo: Callable[[str], None],
) -> Retrainer:  # fmt: skip
    placement = Placement.from_outputs(outputs.require("k8s_training_job"))
    training = KubernetesTraining(KubernetesPyTorchJob(custom_objects, placement), custom_objects,
                                  placement.namespace, spec)  # fmt: skip
    deploy = rollouts = None
    inference_service = outputs.values.get("k8s_inference_service")
    if inference_service:  # stage serving: the InferenceService exists
        from functions.traffic.wiring import kubernetes_rollouts

        names = outputs.names
        namespace = names.k8s_namespace("serving")
        image = str(outputs.require("k8s_serving_image"))
        deploy = KServeChallenger(custom_objects, namespace, str(inference_service), image,
                                  names.k8s_service_account("serving"))  # fmt: skip
        query_range: Any = _no_metrics
        firing: Any = _no_metrics
        url = (outputs.values.get("k8s_rollouts") or {}).get("prometheus_url")
        if url:  # only a rollout config with a planning estimate (judge.min_detectable_ratio) reads it at start
            from functions.traffic.adapters.prometheus import PrometheusAPI

            prometheus = PrometheusAPI(str(url), urllib.request.build_opener())
            query_range, firing = prometheus.query_range, prometheus.firing_alerts
        rollouts = TrafficRollouts(kubernetes_rollouts(core, custom_objects, namespace, names.rollout_store,
                                                       query_range, firing))  # fmt: skip
    artifacts = outputs.bucket("artifacts")
    return Retrainer(
        triggers=triggers, s3=s3, datasets_bucket=outputs.bucket("datasets"), artifacts_bucket=artifacts,
        records=RecordStore(s3, artifacts, outputs.model_name), training=training, deploy=deploy, rollouts=rollouts,
        policy=policy, rollout_template=rollout_template, model_name=outputs.model_name, train_options=train_options,
        echo=echo,
    )  # fmt: skip
