"""One `pulumi up` of the program, under Pulumi's mocks, as its own process: prints the stack outputs (as
`pulumi stack output --json` would, secrets masked) and the declared resources, as JSON.

    python -m tests.infra.deploy_stage <stack> '<json of tidewater:* overrides>'

The deploy rehearsal (tests/jobs/test_deploy_rehearsal.py) runs it once per stage, so Pulumi's process-global
mock state never meets the Dask and torch jobs the rehearsal runs between stages.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.infra.stack_run import run_stack, stack_config

SECRET_OUTPUTS = ("k8s_kubeconfig",)


def main(argv: list[str]) -> dict[str, Any]:
    stack, overrides = argv[0], json.loads(argv[1])
    values = stack_config(stack) | {f"tidewater:{key}": str(value) for key, value in overrides.items()}
    with tempfile.TemporaryDirectory() as tmp:
        run = run_stack(stack, Path(tmp), values)
    outputs = {k: ("[secret]" if k in SECRET_OUTPUTS else v) for k, v in run.outputs.items()}
    declared = [{"type": d.type, "name": d.name, "inputs": d.inputs, "state": d.state} for d in run.declared]
    return {"outputs": outputs, "declared": declared}


if __name__ == "__main__":
    json.dump(main(sys.argv[1:]), sys.stdout, default=str)
