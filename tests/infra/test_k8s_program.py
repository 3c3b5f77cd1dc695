"""infra/__main__.py, run as Pulumi runs it, composes the compute for the example kubernetes stack."""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi

from tests.infra import k8s_harness as h

MAIN = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"


@pulumi.runtime.test
def test_program_composes_the_kubernetes_target() -> pulumi.Output[None]:
    mocks = h.start("onprem", h.stack_config("onprem"))
    program = runpy.run_path(str(MAIN), run_name="__main__")

    def check() -> None:
        (stack,) = mocks.of_type("tidewater:k8s:KubernetesStack")
        assert stack.name == "compute"
        assert mocks.custom("InferenceService") and mocks.custom("DaskAutoscaler")
        assert not [r for r in mocks.resources if r.typ.startswith("aws:")]
        assert program["compute"].outputs["namespaces"]["training"] == "tidewater-onprem-training"

    return h.after_all(program["compute"], check)
