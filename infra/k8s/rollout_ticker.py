"""The deployed rollout tick on the kubernetes target: `tide rollout tick --target kubernetes` every minute.

A CronJob in the serving namespace on the platform's CLI image (k8s_dask_image: the Dockerfile's train target,
which carries the `tide` CLI and the kubernetes client), as its own ServiceAccount bound to a Role of exactly
manifests.rollout_tick_rules: the stack's InferenceService, the rollout store's ConfigMaps, Events. The command
and environment name the namespace and store the way `tide rollout` resolves them for this --project/--stack
(schemas.naming), so the tick and an operator's CLI work on one store. On aws the traffic function does this.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.config import K8sConfig
from schemas import manifests
from schemas.naming import ENV_PROJECT, ENV_PROMETHEUS_URL, ENV_STACK, Names


def ticker_manifests(names: Names, cfg: K8sConfig, model: str) -> dict[str, manifests.Manifest]:
    namespace = names.k8s_namespace("serving")
    return manifests.rollout_ticker(
        names.rollout_ticker,
        namespace=namespace,
        image=cfg.dask_image,
        command=["tide", "rollout", "tick", "--target", "kubernetes", "--namespace", namespace],
        env={ENV_PROJECT: names.project, ENV_STACK: names.stack, ENV_PROMETHEUS_URL: cfg.prometheus_url},
        inference_services=[names.inference_service(model)],
        priority_class=names.priority_class("serving"),
        labels={"app.kubernetes.io/part-of": "tidewater", "tidewater.io/job": "rollout-tick"},
    )


class RolloutTicker(pulumi.ComponentResource):
    outputs: dict[str, Any]

    def __init__(
        self, name: str, names: Names, cfg: K8sConfig, model: str, *, provider: k8s.Provider,
        depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None,
    ) -> None:  # fmt: skip
        super().__init__("tidewater:k8s:RolloutTicker", name, None, opts)
        objects = ticker_manifests(names, cfg, model)
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on)
        sa, role, binding, job = (objects[k] for k in ("service_account", "role", "role_binding", "cron_job"))
        account = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=sa["metadata"], opts=in_cluster)
        rbac = k8s.rbac.v1.Role(f"{name}-role", metadata=role["metadata"], rules=role["rules"], opts=in_cluster)
        after = pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[account, rbac]))
        bound = k8s.rbac.v1.RoleBinding(
            f"{name}-role-binding", metadata=binding["metadata"], role_ref=binding["roleRef"],
            subjects=binding["subjects"], opts=after,
        )  # fmt: skip
        k8s.batch.v1.CronJob(
            f"{name}-cron",
            metadata=job["metadata"],
            spec=job["spec"],
            opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[bound])),
        )
        self.outputs = {
            "cron_job": names.rollout_ticker,
            "namespace": names.k8s_namespace("serving"),
            "store": names.rollout_store,
            "prometheus_url": cfg.prometheus_url,
        }
        self.register_outputs(self.outputs)
