"""What every target's cluster gets: namespaces, service accounts, scheduling policy, operators, Dask, KServe.

All objects come from schemas.manifests builders (the same dicts jobs/ and functions/ use); this module only
hands them to Pulumi. Operators are pinned: a chart version or a git tag, never "latest".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.charts import (
    CERT_MANAGER,
    DASK_OPERATOR,
    KNATIVE_OPERATOR,
    KNATIVE_SERVING_VERSION,
    KSERVE,
    KSERVE_CRD,
    TRAINING_OPERATOR,
    Chart,
)
from infra.k8s.config import K8sConfig, Quota
from infra.k8s.rollout_ticker import RolloutTicker
from schemas import manifests
from schemas.naming import ENV_PROJECT, ENV_STACK, Names, model_prefix

ServedModel = tuple[str, str]  # (model name, version)

# Serving outranks training (user-facing), training outranks ingestion; ingestion never preempts, it queues.
PRIORITIES: Mapping[str, tuple[int, Literal["PreemptLowerPriority", "Never"], str]] = {
    "serving": (3000, "PreemptLowerPriority", "Model endpoints (KServe)"),
    "training": (2000, "PreemptLowerPriority", "GPU training jobs (PyTorchJob)"),
    "ingestion": (1000, "Never", "Batch ingestion (Dask); waits rather than preempting"),
}


def training_placement(names: Names, cfg: K8sConfig) -> dict[str, Any]:
    """Where and how training pods run: namespace, IRSA service account, PriorityClass, GPUs per worker and the
    GPU pool's resource key, node selector and taint toleration (what the GPU node group is created with)."""
    gpus = cfg.training_gpus
    return {
        "namespace": names.k8s_namespace("training"),
        "service_account": names.k8s_service_account("training"),
        "priority_class": names.priority_class("training"),
        "gpus_per_worker": gpus,
        "gpu_vendor": cfg.gpu_vendor,
        "node_selector": {manifests.POOL_LABEL: "gpu"} if gpus and cfg.target == "aws" else {},
        "storage_endpoint": cfg.storage_endpoint or "",
        # Off AWS there is no IRSA: the object store's keys, a Secret of the training namespace (ClusterPlatform).
        "storage_secret": names.k8s_storage_secret("training") if _store_keys(cfg) else "",
    }


def _store_keys(cfg: K8sConfig) -> bool:
    """Whether pods reach the object store with the keys from stack config (kubernetes target, keys given)."""
    return cfg.target == "kubernetes" and cfg.storage_credentials is not None


def handoff_runner(names: Names, cfg: K8sConfig) -> dict[str, Any]:
    """The deployed runner of `tide curate-handoffs`: a CronJob in the ingestion namespace as the ingestion
    service account (its IRSA role reads raw, writes curated/quarantine, consumes the hand-off queue, publishes
    on the bus), on the ingestion image (k8s_dask_image, which carries the jobs package), one run at a time."""
    return manifests.cron_job(
        f"{names.prefix}-handoffs"[:52].rstrip("-"),
        namespace=names.k8s_namespace("ingestion"),
        schedule=cfg.handoff_schedule,
        image=cfg.dask_image,
        command=["tide", "curate-handoffs", "--stack", names.stack],
        service_account=names.k8s_service_account("ingestion"),
        priority_class=names.priority_class("ingestion"),
        env={ENV_PROJECT: names.project, ENV_STACK: names.stack},
        node_selector={manifests.POOL_LABEL: "system"},
        labels={"app.kubernetes.io/part-of": "tidewater", "tidewater.io/job": "curate-handoffs"},
    )


class ClusterPlatform(pulumi.ComponentResource):
    """Namespaces, service accounts, priority classes, quotas, operators, the Dask cluster and the model."""

    outputs: dict[str, Any]

    def __init__(
        self,
        name: str,
        names: Names,
        cfg: K8sConfig,
        *,
        provider: k8s.Provider,
        irsa_role_arns: Mapping[str, pulumi.Input[str]] | None = None,
        served_model: ServedModel | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:k8s:ClusterPlatform", name, None, opts)
        self._opts = pulumi.ResourceOptions(parent=self, provider=provider)
        serving = cfg.target == "kubernetes"
        roles = ("training", "ingestion", "serving") if serving else ("training", "ingestion")
        role_arns = irsa_role_arns or {}

        namespaces = {role: self._namespace(f"{name}-{role}-ns", names.k8s_namespace(role)) for role in roles}
        accounts = {}
        for role in roles:
            annotations = {"eks.amazonaws.com/role-arn": role_arns[role]} if role in role_arns else None
            sa = manifests.service_account(names.k8s_service_account(role), namespace=names.k8s_namespace(role))
            secrets = []
            if role in ("serving", "training") and cfg.storage_credentials is not None and _store_keys(cfg):
                # No IRSA here: KServe's storage initializer and the training pods (and the retraining runner) need
                # the keys; only serving's account lists its Secret (KServe finds it there).
                secret = self._storage_secret(name, names, cfg, role, namespaces[role], cfg.storage_credentials)
                secrets = [secret] if role == "serving" else []
            accounts[role] = k8s.core.v1.ServiceAccount(
                f"{name}-{role}-sa",
                metadata={**sa["metadata"], **({"annotations": annotations} if annotations else {})},
                secrets=[{"name": names.k8s_storage_secret(role)}] if secrets else None,
                opts=self._child(namespaces[role], *secrets),
            )
        for role in roles:
            value, preemption, description = PRIORITIES[role]
            pc = manifests.priority_class(
                names.priority_class(role), value=value, description=description, preemption_policy=preemption
            )
            k8s.scheduling.v1.PriorityClass(
                f"{name}-{role}-priority",
                metadata=pc["metadata"],
                value=pc["value"],
                global_default=pc["globalDefault"],
                preemption_policy=pc["preemptionPolicy"],
                description=pc["description"],
                opts=self._opts,
            )
        quotas: dict[str, Quota] = {
            "training": cfg.training_quota,
            "ingestion": cfg.ingestion_quota,
            "serving": cfg.serving_quota,
        }
        for role in roles:
            quota = quotas[role]
            rq = manifests.resource_quota(
                f"{names.prefix}-{role}",
                namespace=names.k8s_namespace(role),
                cpu=quota.cpu,
                memory=quota.memory,
                gpus=quota.gpus,
                gpu_vendor=cfg.gpu_vendor,
                pods=quota.pods,
            )
            k8s.core.v1.ResourceQuota(
                f"{name}-{role}-quota", metadata=rq["metadata"], spec=rq["spec"], opts=self._child(namespaces[role])
            )
            lr = manifests.limit_range(f"{names.prefix}-{role}-defaults", namespace=names.k8s_namespace(role))
            k8s.core.v1.LimitRange(
                f"{name}-{role}-limits", metadata=lr["metadata"], spec=lr["spec"], opts=self._child(namespaces[role])
            )

        on_aws = cfg.target == "aws"
        if cfg.has_gpu_pool and (on_aws or cfg.install_device_plugin):
            ds = manifests.gpu_device_plugin(
                gpu_vendor=cfg.gpu_vendor, node_selector={manifests.POOL_LABEL: "gpu"} if on_aws else None
            )
            k8s.apps.v1.DaemonSet(
                f"{name}-gpu-device-plugin", metadata=ds["metadata"], spec=ds["spec"], opts=self._opts
            )

        training_operator = k8s.kustomize.v2.Directory(
            f"{name}-training-operator", directory=TRAINING_OPERATOR, opts=self._opts
        )
        dask_operator = self._release(f"{name}-dask-operator", DASK_OPERATOR)

        # The Dask cluster for batch ingestion: CPU only, on the system pool on aws, autoscaled by the operator.
        ingestion_ns = names.k8s_namespace("ingestion")
        dask = manifests.dask_cluster(
            names.dask_cluster,
            namespace=ingestion_ns,
            image=cfg.dask_image,
            workers=max(cfg.dask_min_workers, 1),
            idle_timeout_s=cfg.dask_idle_timeout_s,
            storage_endpoint=cfg.storage_endpoint,
            service_account=names.k8s_service_account("ingestion"),
            priority_class=names.priority_class("ingestion"),
            node_selector={manifests.POOL_LABEL: "system"} if on_aws else None,
        )
        scaler = manifests.dask_autoscaler(
            names.dask_cluster,
            namespace=ingestion_ns,
            cluster=names.dask_cluster,
            minimum=cfg.dask_min_workers,
            maximum=cfg.dask_max_workers,
        )
        after_dask = self._child(namespaces["ingestion"], dask_operator, accounts["ingestion"])
        dask_cr = self._custom(f"{name}-dask-cluster", dask, after_dask)
        self._custom(f"{name}-dask-autoscaler", scaler, self._child(dask_cr))
        if on_aws:  # the hand-off queue (SQS) exists on aws only; the ingestion IRSA role may consume it
            runner = handoff_runner(names, cfg)
            k8s.batch.v1.CronJob(
                f"{name}-handoff-runner",
                metadata=runner["metadata"],
                spec=runner["spec"],
                opts=self._child(namespaces["ingestion"], accounts["ingestion"]),
            )

        self.outputs = {
            "target": cfg.target,
            "namespaces": {role: names.k8s_namespace(role) for role in roles},
            "service_accounts": {role: names.k8s_service_account(role) for role in roles},
            "priority_classes": {role: names.priority_class(role) for role in roles},
            "gpu_resource_key": cfg.gpu_resource_key,
            "dask_scheduler_address": f"tcp://{names.dask_cluster}-scheduler.{ingestion_ns}.svc.cluster.local:8786",
            "training_operator": training_operator.urn,
            # Everything `tide train --backend kubernetes` needs to place a PyTorchJob (jobs/launch/kubernetes.py
            # reads this block from the stack outputs file): the same names the objects above were created with.
            "training_job": training_placement(names, cfg),
        }
        if serving:
            self.outputs["serving_image"] = cfg.serving_image  # what `tide deploy --target kserve` serves with
        if serving and served_model is not None:
            self.outputs["inference_service"] = self._serving(
                name, names, cfg, served_model, namespaces["serving"], accounts["serving"]
            )
            # The traffic function's tick on this target (on aws: the scheduled Lambda).
            ticker = RolloutTicker(
                f"{name}-rollout-tick", names, cfg, served_model[0], provider=provider,
                depends_on=[namespaces["serving"]], opts=pulumi.ResourceOptions(parent=self),
            )  # fmt: skip
            self.outputs["rollouts"] = ticker.outputs
        self.register_outputs(self.outputs)

    def _storage_secret(
        self, name: str, names: Names, cfg: K8sConfig, role: str, namespace: k8s.core.v1.Namespace,
        credentials: tuple[pulumi.Input[str], pulumi.Input[str]],
    ) -> k8s.core.v1.Secret:  # fmt: skip
        """The S3-compatible store's keys as a Secret KServe's storage initializer reads (no IRSA off AWS)."""
        key_id, secret_key = credentials
        secret = manifests.s3_credentials_secret(
            names.k8s_storage_secret(role), namespace=names.k8s_namespace(role),
            storage_endpoint=cfg.storage_endpoint, access_key_id=key_id, secret_access_key=secret_key,
        )  # fmt: skip
        return k8s.core.v1.Secret(
            f"{name}-{role}-storage-secret",
            metadata=secret["metadata"],
            type=secret["type"],
            string_data=secret["stringData"],
            opts=self._child(namespace),
        )

    def _child(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(self._opts, pulumi.ResourceOptions(depends_on=list(depends_on)))

    def _namespace(self, resource_name: str, namespace: str) -> k8s.core.v1.Namespace:
        ns = manifests.namespace(namespace, labels={"app.kubernetes.io/part-of": "tidewater"})
        return k8s.core.v1.Namespace(resource_name, metadata=ns["metadata"], opts=self._opts)

    def _release(
        self, name: str, chart: Chart, *depends_on: pulumi.Resource, values: Mapping[str, Any] | None = None
    ) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            name,
            chart=chart.chart,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None,
            namespace=chart.namespace,
            create_namespace=True,
            values={**chart.values, **(values or {})},
            opts=self._child(*depends_on),
        )

    def _custom(
        self, name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            name,
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=opts,
        )

    def _serving(
        self,
        name: str,
        names: Names,
        cfg: K8sConfig,
        served_model: ServedModel,
        namespace: k8s.core.v1.Namespace,
        account: k8s.core.v1.ServiceAccount,
    ) -> str:
        """KServe (with cert-manager) and the model's InferenceService, on the kubernetes target only."""
        deps: list[pulumi.Resource] = [namespace, account]
        if cfg.install_kserve:
            cert_manager = self._release(f"{name}-cert-manager", CERT_MANAGER)
            crds = self._release(f"{name}-kserve-crd", KSERVE_CRD, cert_manager)
            before_kserve: list[pulumi.Resource] = [crds]
            if cfg.kserve_deployment_mode == "Serverless":  # canary splits need Knative Serving under KServe
                operator = self._release(f"{name}-knative-operator", KNATIVE_OPERATOR)
                knative_ns = self._namespace(f"{name}-knative-serving-ns", "knative-serving")
                serving = manifests.knative_serving(KNATIVE_SERVING_VERSION)
                before_kserve.append(
                    self._custom(f"{name}-knative-serving", serving, self._child(operator, knative_ns))
                )
            mode = {"kserve": {"controller": {"deploymentMode": cfg.kserve_deployment_mode}}}
            deps.append(self._release(f"{name}-kserve", KSERVE, *before_kserve, values=mode))
        model, version = served_model
        uri = f"{cfg.storage_protocol}://{names.bucket('artifacts')}/{model_prefix(model, version)}"
        isvc = manifests.inference_service(
            names.inference_service(model),
            namespace=names.k8s_namespace("serving"),
            image=cfg.serving_image,
            storage_uri=uri,
            service_account=names.k8s_service_account("serving"),
            storage_endpoint=cfg.storage_endpoint,
            deployment_mode=cfg.kserve_deployment_mode,
        )
        self._custom(f"{name}-inference-service", isvc, self._child(*deps))
        return names.inference_service(model)
