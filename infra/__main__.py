"""The Pulumi program: composes one component per capability and exports what functions and jobs need.

This branch composes only the Kubernetes compute (infra/k8s); the AWS capabilities (data lake, functions,
endpoint, monitoring) join here when the branches merge, passing the data lake's KMS key to the compute.
"""

import pulumi

from infra.k8s import build_kubernetes_stack
from schemas.naming import Names

names = Names(pulumi.get_project(), pulumi.get_stack())
compute = build_kubernetes_stack(names)
for key, value in compute.outputs.items():
    pulumi.export(f"k8s_{key}", value)
