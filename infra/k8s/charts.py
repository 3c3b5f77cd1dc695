"""Pinned operator charts and manifests: a chart version or a git tag, never "latest"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Chart:
    chart: str
    version: str
    repo: str | None  # None: an OCI chart reference
    namespace: str
    values: Mapping[str, Any]


# The Dask operator publishes its chart on Dask's Helm repository.
DASK_OPERATOR = Chart("dask-kubernetes-operator", "2025.7.0", "https://helm.dask.org", "dask-operator", {})
# KServe needs cert-manager for its webhooks. Its deployment mode comes from config: RawDeployment needs nothing
# else; Serverless (the only mode that honours canaryTrafficPercent) needs Knative Serving on the cluster.
CERT_MANAGER = Chart(
    "cert-manager", "v1.16.2", "https://charts.jetstack.io", "cert-manager", {"crds": {"enabled": True}}
)
# Serverless KServe runs on Knative Serving: the Knative operator from Knative's Helm repository, then a
# KnativeServing resource (schemas.manifests.knative_serving) with Kourier as its ingress, so no Istio is needed.
KNATIVE_OPERATOR = Chart("knative-operator", "v1.16.0", "https://knative.github.io/operator", "knative-operator", {})
KNATIVE_SERVING_VERSION = "1.16"  # the operator installs the last three minor versions up to its own
KSERVE_CRD = Chart("oci://ghcr.io/kserve/charts/kserve-crd", "v0.15.2", None, "kserve", {})
KSERVE = Chart("oci://ghcr.io/kserve/charts/kserve", "v0.15.2", None, "kserve", {})
# The Kubeflow training operator v1 (PyTorchJob) ships kustomize manifests, not a Helm chart: pinned git tag.
TRAINING_OPERATOR = "https://github.com/kubeflow/training-operator/tree/v1.8.1/manifests/overlays/standalone"
# Scales the EKS node groups (the GPU group from 0) when pods are pending; it reads managed node groups' labels and
# taints through eks:DescribeNodegroup, so scale-from-zero needs no extra ASG tags.
CLUSTER_AUTOSCALER = Chart(
    "cluster-autoscaler",
    "9.52.1",
    "https://kubernetes.github.io/autoscaler",
    "kube-system",
    {"cloudProvider": "aws", "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-system-pods": False}},
)
CLUSTER_AUTOSCALER_SA = ("kube-system", "cluster-autoscaler")
