"""The deployed retraining runner: `tide retrain` as a CronJob in the training namespace (aws target).

It runs as its own service account with its own IRSA role (infra/k8s/policies.py retraining_runner_*: the
retraining queue, dataset manifests, its model's prefixes in artifacts, its training jobs as the stack's training
role, and at stage serving the endpoint's challenger, guards and rollout), not as the training pods' account.
What it reads about the stack is the stack's own outputs, written into a ConfigMap it mounts, so the runner and
`tide retrain --stack-outputs` on a laptop read the same document. An RBAC Role lets it create and read
PyTorchJobs in its namespace (retrain_backend kubernetes) and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.k8s.config import K8sConfig
from infra.k8s.eks import EksCluster, _irsa_role
from infra.k8s.policies import bucket_access_policy, retraining_runner_grants, retraining_runner_statements
from jobs.launch.kubernetes import GROUP, PLURAL
from schemas import manifests
from schemas.naming import ENV_PROJECT, ENV_STACK, Names

CONFIG_DIR = "/etc/tidewater"
CONFIG_FILE = "stack.json"
# The stack outputs `tide retrain` reads (jobs/retrain/cli.py); those of a later stage are absent before it.
RUNNER_OUTPUTS = (
    "target", "stage", "project", "stack", "region", "model_name", "buckets", "training_role_arn",
    "retraining_queue_url", "k8s_training_job", "endpoint_name", "endpoint_role_arn", "endpoint_image",
    "endpoint_instance_type", "capture_destination", "retraining",
)  # fmt: skip


def runner_cron_job(names: Names, schedule: str, image: str) -> dict[str, Any]:
    return manifests.cron_job(
        names.retraining_runner,
        namespace=names.k8s_namespace("training"),
        schedule=schedule,
        image=image,
        command=["tide", "retrain", "--stack-outputs", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        service_account=names.retraining_runner,
        priority_class=names.priority_class("training"),
        env={ENV_PROJECT: names.project, ENV_STACK: names.stack},
        node_selector={manifests.POOL_LABEL: "system"},
        labels={"app.kubernetes.io/part-of": "tidewater", "tidewater.io/job": "retrain"},
        config_map=(names.retraining_runner, CONFIG_DIR),
    )


class RetrainingRunner(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        names: Names,
        cfg: StackConfig,
        k8s_cfg: K8sConfig,
        *,
        eks: EksCluster,
        provider: k8s.Provider,
        kms_key_arn: pulumi.Input[str],
        training_role_arn: pulumi.Input[str],
        endpoint_role_arn: pulumi.Input[str] | None,
        stack_outputs: Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:k8s:RetrainingRunner", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namespace, account = names.k8s_namespace("training"), names.retraining_runner
        region = aws.get_region_output().region
        account_id = aws.get_caller_identity_output().account_id
        grants = retraining_runner_grants(names, cfg.model_name)

        def render(args: list[Any]) -> str:
            key, region_name, account_number, training_role, endpoint_role = args
            endpoint = str(endpoint_role) if endpoint_role else None
            extra = retraining_runner_statements(
                names, cfg.model_name, str(region_name), str(account_number), str(training_role), endpoint
            )
            return json.dumps(bucket_access_policy(grants, str(key), extra))

        access = pulumi.Output.all(kms_key_arn, region, account_id, training_role_arn, endpoint_role_arn).apply(render)
        self.role = _irsa_role(f"{name}", eks.oidc, eks.issuer, (namespace, account), access, child)

        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        sa = manifests.service_account(account, namespace=namespace)
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=sa["metadata"]["name"],
                namespace=sa["metadata"]["namespace"],
                annotations={"eks.amazonaws.com/role-arn": self.role.arn},
            ),
            opts=in_cluster,
        )
        rbac = manifests.namespaced_role(account, namespace=namespace, rules=[
            {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["create", "get"]}])  # fmt: skip
        role = k8s.rbac.v1.Role(f"{name}-rbac", metadata=rbac["metadata"], rules=rbac["rules"], opts=in_cluster)
        binding = manifests.role_binding(account, namespace=namespace, role=account, service_account=account)
        k8s.rbac.v1.RoleBinding(
            f"{name}-rbac-binding", metadata=binding["metadata"], role_ref=binding["roleRef"],
            subjects=binding["subjects"], opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                depends_on=[role, service_account])),
        )  # fmt: skip
        document = {key: stack_outputs[key] for key in RUNNER_OUTPUTS if key in stack_outputs}
        config = k8s.core.v1.ConfigMap(
            f"{name}-stack-outputs",
            metadata={"name": account, "namespace": namespace},
            data={CONFIG_FILE: pulumi.Output.json_dumps(document)},
            opts=in_cluster,
        )
        job = runner_cron_job(names, cfg.retrain_schedule, k8s_cfg.dask_image)
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cron",
            metadata=job["metadata"],
            spec=job["spec"],
            opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[service_account, config])),
        )
        self.register_outputs({"role_arn": self.role.arn, "cron_job": names.retraining_runner})
