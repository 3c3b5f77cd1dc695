"""The retraining runner on the kubernetes target: `tide retrain` as two CronJobs in the training namespace.

There is no event bus or queue off AWS, so the trigger is the CronJob itself: `<project>-<stack>-retraining` runs
on retrain_scheduled with `--scheduled-dataset retrain_scheduled_dataset` (each run is a firing of the schedule),
and the runner `<project>-<stack>-retrainer` runs on retrain_schedule to move earlier retrainings on (a finished
PyTorchJob's model becomes the InferenceService's canary at 0 %, then the rollout per retrain_policy). Both run as
the runner's own ServiceAccount, bound to exactly manifests.retraining_runner_rules: PyTorchJobs in the training
namespace; at stage serving the stack's InferenceService and the rollout store's ConfigMaps in the serving
namespace. They read the stack outputs from a ConfigMap (the document `pulumi stack output --json` gives a
laptop) and reach the object store with the keys the stack already holds for it (k8s_storage_access_key_id /
k8s_storage_secret_access_key): the training namespace's storage Secret (ClusterPlatform), which the PyTorchJobs
read too, given to the pods as environment; the runner's Roles grant no access to Secrets through the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import ConfigError, StackConfig
from infra.k8s.config import K8sConfig
from infra.k8s.platform import training_placement
from schemas import manifests
from schemas.naming import ENV_PROJECT, ENV_STACK, Names

CONFIG_DIR = "/etc/tidewater"
CONFIG_FILE = "stack.json"
# The stack outputs `tide retrain` reads on this target (jobs/retrain/cli.py, jobs/retrain/kubernetes.py).
RUNNER_OUTPUTS = (
    "target", "stage", "project", "stack", "model_name", "buckets", "retraining", "k8s_namespaces",
    "k8s_training_job", "k8s_serving_image", "k8s_inference_service", "k8s_rollouts",
)  # fmt: skip


def runner_manifests(
    names: Names, cfg: StackConfig, k8s_cfg: K8sConfig, serving: bool
) -> dict[str, manifests.Manifest]:
    if k8s_cfg.storage_protocol != "s3":
        raise ConfigError(
            "tidewater:retrain_scheduled on target kubernetes needs tidewater:k8s_storage_protocol s3 (the runner "
            f"keeps its records through the S3 API), got {k8s_cfg.storage_protocol!r}"
        )
    account = names.retraining_runner
    secret = training_placement(names, k8s_cfg)["storage_secret"] or None
    env = {ENV_PROJECT: names.project, ENV_STACK: names.stack, **manifests.storage_env(k8s_cfg.storage_endpoint)}
    return manifests.k8s_retraining_runner(
        account, namespace=names.k8s_namespace("training"), serving_namespace=names.k8s_namespace("serving"),
        image=k8s_cfg.dask_image, command=["tide", "retrain", "--stack-outputs", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        schedule=cfg.retrain_schedule, firing_name=names.retraining_schedule, firing_schedule=cfg.retrain_scheduled,
        dataset=cfg.retrain_scheduled_dataset, config_map=(account, CONFIG_DIR), env=env,
        inference_service=names.inference_service(cfg.model_name) if serving else None, storage_secret=secret,
        priority_class=names.priority_class("training"),
        labels={"app.kubernetes.io/part-of": "tidewater", "tidewater.io/job": "retrain"},
    )  # fmt: skip


class KubernetesRetrainingRunner(pulumi.ComponentResource):
    def __init__(
        self, name: str, names: Names, cfg: StackConfig, k8s_cfg: K8sConfig, *, provider: k8s.Provider,
        stack_outputs: Mapping[str, Any], depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:  # fmt: skip
        super().__init__("tidewater:k8s:KubernetesRetrainingRunner", name, None, opts)
        serving = "k8s_inference_service" in stack_outputs
        objects = runner_manifests(names, cfg, k8s_cfg, serving)
        namespace, account = names.k8s_namespace("training"), names.retraining_runner
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on)
        created: list[pulumi.Resource] = []
        sa = objects["service_account"]
        created.append(k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=sa["metadata"], opts=in_cluster))
        for key in ("role", "serving_role"):
            if key in objects:
                role = objects[key]
                created.append(k8s.rbac.v1.Role(f"{name}-{key}", metadata=role["metadata"], rules=role["rules"],
                                                opts=in_cluster))  # fmt: skip
        after = pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=list(created)))
        for key in ("role_binding", "serving_role_binding"):
            if key in objects:
                binding = objects[key]
                created.append(k8s.rbac.v1.RoleBinding(
                    f"{name}-{key}", metadata=binding["metadata"], role_ref=binding["roleRef"],
                    subjects=binding["subjects"], opts=after,
                ))  # fmt: skip
        document = {key: stack_outputs[key] for key in RUNNER_OUTPUTS if key in stack_outputs}
        created.append(k8s.core.v1.ConfigMap(
            f"{name}-stack-outputs", metadata={"name": account, "namespace": namespace},
            data={CONFIG_FILE: pulumi.Output.json_dumps(document)}, opts=in_cluster,
        ))  # fmt: skip
        ready = pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=list(created)))
        for key in ("cron_job", "firing_cron_job"):
            job = objects[key]
            k8s.batch.v1.CronJob(f"{name}-{key}", metadata=job["metadata"], spec=job["spec"], opts=ready)
        self.outputs = {"cron_job": account, "schedule": names.retraining_schedule, "namespace": namespace}
        self.register_outputs(self.outputs)
