"""infra/__main__.py, run as Pulumi runs it, composes the Kubernetes compute for the example kubernetes stack."""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi

from tests.infra import k8s_harness as h

MAIN = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"


def test_program_composes_the_kubernetes_target() -> None:
    mocks = h.start("onprem", h.stack_config("onprem"))

    @pulumi.runtime.test
    def run_program() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    run_program()  # returns once every registration has reached the mocks
    assert len(mocks.of_type("tidewater:k8s:KubernetesStack")) == 1
    assert mocks.custom("InferenceService") and mocks.custom("DaskAutoscaler") and mocks.custom("DaskCluster")
    assert not [r for r in mocks.resources if r.typ.startswith("aws:")]
    namespaces = {r.inputs["metadata"]["name"] for r in mocks.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces == {
        "tidewater-onprem-training", "tidewater-onprem-ingestion", "tidewater-onprem-serving",
        "knative-serving",  # KnativeServing's own (the stack serves in Serverless mode)
    }  # fmt: skip
