"""Kubernetes compute for both targets: `build_kubernetes_stack` is what infra/__main__.py calls.

aws: an EKS cluster (CPU system group + tainted GPU group, IRSA) and the platform on it.
kubernetes: the platform on any existing cluster reached through a kubeconfig in stack config, KServe serving.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s import config as k8s_config
from infra.k8s.config import K8sConfig
from infra.k8s.eks import EksCluster
from infra.k8s.platform import ClusterPlatform, ServedModel
from schemas.naming import Names


class KubernetesStack(pulumi.ComponentResource):
    """The compute capability: cluster (aws) or provider (kubernetes), then the shared platform."""

    outputs: dict[str, Any]

    def __init__(
        self,
        name: str,
        names: Names,
        cfg: K8sConfig,
        *,
        kms_key_arn: pulumi.Input[str] | None = None,
        served_model: ServedModel | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:k8s:KubernetesStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role_arns: dict[str, pulumi.Output[str]] = {}
        self.cfg = cfg
        self.eks: EksCluster | None = None
        if cfg.target == "aws":
            eks = self.eks = EksCluster(f"{name}-eks", names, cfg, kms_key_arn=kms_key_arn, opts=child)
            provider, role_arns = eks.provider, eks.irsa_role_arns
            extra: dict[str, Any] = {
                "cluster_name": eks.cluster_name,
                "kubeconfig": pulumi.Output.secret(eks.kubeconfig),
                "irsa_role_arns": role_arns,
            }
        else:
            provider = k8s.Provider(f"{name}-k8s", kubeconfig=cfg.kubeconfig, context=cfg.kube_context, opts=child)
            extra = {}
        self.provider = provider
        platform = ClusterPlatform(
            f"{name}-platform",
            names,
            cfg,
            provider=provider,
            irsa_role_arns=role_arns,
            served_model=served_model,
            opts=child,
        )
        self.outputs = {**platform.outputs, **extra}
        self.register_outputs(self.outputs)


def build_kubernetes_stack(
    names: Names,
    cfg: K8sConfig | None = None,
    *,
    kms_key_arn: pulumi.Input[str] | None = None,
    served_model: ServedModel | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> KubernetesStack:
    """Compose the Kubernetes compute; cfg defaults to the stack's config (tidewater:target, tidewater:k8s*).

    kms_key_arn: the data lake's key (aws target), so IRSA roles can read/write SSE-KMS objects.
    served_model: (model name, version) of the first model (kubernetes target, stage serving: the
    InferenceService <project>-<stack>-<model> reading models/<model>/<version>/); None: no InferenceService yet.
    """
    return KubernetesStack(
        "compute", names, cfg or k8s_config.load(), kms_key_arn=kms_key_arn, served_model=served_model, opts=opts
    )
