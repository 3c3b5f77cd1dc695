"""Target aws: an EKS cluster with a CPU system node group and a tainted GPU node group, IRSA, and a provider."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.k8s.charts import CLUSTER_AUTOSCALER, CLUSTER_AUTOSCALER_SA
from infra.k8s.config import K8sConfig, NodePool
from infra.k8s.policies import (
    BucketGrant,
    bucket_access_policy,
    cluster_autoscaler_policy,
    eks_kubeconfig,
    handoff_consumer_statements,
    irsa_trust_policy,
    service_trust_policy,
    workload_grants,
)
from schemas import manifests
from schemas.naming import Names

_CLUSTER_POLICIES = ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",)
_NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
# Workloads that run on the aws target's cluster; serving there is SageMaker's (infra/ModelEndpoint).
AWS_WORKLOADS = ("training", "ingestion")


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    oidcs = identities[0].oidcs
    if not oidcs or not oidcs[0].issuer:
        raise ValueError("the EKS cluster reports no OIDC issuer; IRSA cannot be set up")
    return oidcs[0].issuer


def _trust_json(namespace: str, account: str) -> Callable[[list[Any]], str]:
    return lambda args: json.dumps(irsa_trust_policy(str(args[0]), str(args[1]), namespace, account))


def _access_json(names: Names, role: str, grants: Sequence[BucketGrant]) -> Callable[[list[Any]], str]:
    def render(args: list[Any]) -> str:
        key, region, account = args
        extra = handoff_consumer_statements(names, str(region), str(account)) if role == "ingestion" else []
        return json.dumps(bucket_access_policy(grants, key, extra))

    return render


def _irsa_role(
    label: str,
    oidc: aws.iam.OpenIdConnectProvider,
    issuer: pulumi.Output[str],
    service_account: tuple[str, str],
    policy: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """<label>-irsa, trusted by exactly one (namespace, name) service account, with its <label>-access policy."""
    role = aws.iam.Role(
        f"{label}-irsa",
        assume_role_policy=pulumi.Output.all(oidc.arn, issuer).apply(_trust_json(*service_account)),
        opts=opts,
    )
    aws.iam.RolePolicy(f"{label}-access", role=role.id, policy=policy, opts=opts)
    return role


class EksCluster(pulumi.ComponentResource):
    """EKS control plane, node groups, OIDC provider, one IRSA role per workload, and a Kubernetes provider."""

    provider: k8s.Provider
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    irsa_role_arns: dict[str, pulumi.Output[str]]
    node_groups: list[aws.eks.NodeGroup]

    def __init__(
        self,
        name: str,
        names: Names,
        cfg: K8sConfig,
        *,
        kms_key_arn: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:k8s:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnet_ids: list[pulumi.Input[str]] = list(cfg.subnet_ids) if cfg.subnet_ids else self._vpc(name, names, child)

        cluster_role = self._service_role(f"{name}-cluster", "eks.amazonaws.com", _CLUSTER_POLICIES, child)
        cluster = aws.eks.Cluster(
            name,
            name=names.eks_cluster,
            role_arn=cluster_role.arn,
            version=cfg.cluster_version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(subnet_ids=subnet_ids),
            # Access entries (API) so the creator's identity administers the cluster without aws-auth edits.
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API_AND_CONFIG_MAP", bootstrap_cluster_creator_admin_permissions=True
            ),
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            opts=child,
        )
        node_role = self._service_role(f"{name}-node", "ec2.amazonaws.com", _NODE_POLICIES, child)
        self.node_groups = [
            self._node_group(
                f"{name}-system",
                cluster,
                node_role,
                subnet_ids,
                cfg.system_pool,
                pool="system",
                ami_type="AL2023_x86_64_STANDARD",
                taint=None,
                opts=child,
            )
        ]
        if cfg.gpu_pool.max_size > 0:
            self.node_groups.append(
                self._node_group(
                    f"{name}-gpu",
                    cluster,
                    node_role,
                    subnet_ids,
                    cfg.gpu_pool,
                    pool="gpu",
                    ami_type="AL2023_x86_64_NVIDIA",
                    taint=manifests.gpu_taint(cfg.gpu_vendor),
                    opts=child,
                )
            )

        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        self.oidc, self.issuer = oidc, issuer  # for IRSA roles made outside (infra/k8s/retraining.py)
        grants = workload_grants(names)
        region = aws.get_region_output().region
        account_id = aws.get_caller_identity_output().account_id
        self.irsa_role_arns = {}
        for role in AWS_WORKLOADS:
            access = pulumi.Output.all(kms_key_arn, region, account_id).apply(_access_json(names, role, grants[role]))
            irsa = _irsa_role(
                f"{name}-{role}", oidc, issuer, (names.k8s_namespace(role), names.k8s_service_account(role)), access,
                child,
            )  # fmt: skip
            self.irsa_role_arns[role] = irsa.arn

        self.cluster_name = cluster.name
        self.kubeconfig = pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.certificate_authority.apply(lambda ca: ca.data), region
        ).apply(lambda a: json.dumps(eks_kubeconfig(str(a[0]), str(a[1]), str(a[2]), str(a[3]))))
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.node_groups),
        )
        self._cluster_autoscaler(name, cluster, oidc, issuer, region, child)
        self.register_outputs(
            {"cluster_name": self.cluster_name, "kubeconfig": self.kubeconfig, "irsa_role_arns": self.irsa_role_arns}
        )

    def _cluster_autoscaler(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        oidc: aws.iam.OpenIdConnectProvider,
        issuer: pulumi.Output[str],
        region: pulumi.Output[str],
        opts: pulumi.ResourceOptions,
    ) -> k8s.helm.v3.Release:
        """The cluster autoscaler with its own IRSA role, so the GPU group grows from zero for pending jobs."""
        access = pulumi.Output.all(cluster.name, cluster.arn).apply(
            # arn:aws:eks:<region>:<account>:cluster/<name> -> ...:nodegroup/<name>
            lambda a: json.dumps(cluster_autoscaler_policy(str(a[0]), str(a[1]).replace(":cluster/", ":nodegroup/", 1)))
        )
        namespace, account = CLUSTER_AUTOSCALER_SA
        role = _irsa_role(f"{name}-autoscaler", oidc, issuer, (namespace, account), access, opts)
        chart = CLUSTER_AUTOSCALER
        return k8s.helm.v3.Release(
            f"{name}-cluster-autoscaler",
            chart=chart.chart,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            namespace=chart.namespace,
            values={
                **chart.values,
                "awsRegion": region,
                "autoDiscovery": {"clusterName": cluster.name},
                "rbac": {
                    "serviceAccount": {
                        "create": True,
                        "name": account,
                        "annotations": {"eks.amazonaws.com/role-arn": role.arn},
                    }
                },
            },
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )

    def _service_role(
        self, name: str, service: str, policy_arns: tuple[str, ...], opts: pulumi.ResourceOptions
    ) -> aws.iam.Role:
        role = aws.iam.Role(name, assume_role_policy=json.dumps(service_trust_policy(service)), opts=opts)
        for i, arn in enumerate(policy_arns):
            aws.iam.RolePolicyAttachment(f"{name}-{i}", role=role.name, policy_arn=arn, opts=opts)
        return role

    def _node_group(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        role: aws.iam.Role,
        subnet_ids: list[pulumi.Input[str]],
        pool_cfg: NodePool,
        *,
        pool: str,
        ami_type: str,
        taint: Mapping[str, str] | None,
        opts: pulumi.ResourceOptions,
    ) -> aws.eks.NodeGroup:
        taints = None
        if taint is not None:
            # EKS spells the Kubernetes effect NoSchedule as NO_SCHEDULE.
            taints = [aws.eks.NodeGroupTaintArgs(key=taint["key"], value=taint["value"], effect="NO_SCHEDULE")]
        return aws.eks.NodeGroup(
            name,
            cluster_name=cluster.name,
            node_role_arn=role.arn,
            subnet_ids=subnet_ids,
            instance_types=list(pool_cfg.instance_types),
            ami_type=ami_type,
            capacity_type="SPOT" if pool_cfg.spot else "ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool_cfg.min_size, max_size=pool_cfg.max_size, desired_size=pool_cfg.desired_size
            ),
            labels={manifests.POOL_LABEL: pool},
            taints=taints,
            opts=opts,
        )

    def _vpc(self, name: str, names: Names, opts: pulumi.ResourceOptions) -> list[pulumi.Input[str]]:
        """A small VPC with two public subnets, for stacks that bring no subnets of their own."""
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block="10.40.0.0/16",
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{names.prefix}-compute"},
            opts=opts,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=opts)
        routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            opts=opts,
        )
        zones = aws.get_availability_zones_output(state="available").names
        subnets: list[pulumi.Input[str]] = []
        for i in range(2):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=f"10.40.{i * 64}.0/18",
                availability_zone=zones[i],
                map_public_ip_on_launch=True,
                tags={"kubernetes.io/role/elb": "1", "Name": f"{names.prefix}-public-{i}"},
                opts=opts,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=subnet.id, route_table_id=routes.id, opts=opts
            )
            subnets.append(subnet.id)
        return subnets
