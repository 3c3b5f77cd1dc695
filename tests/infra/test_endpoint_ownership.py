"""After the first deploy, `tide deploy` and the traffic function own the endpoint's variants: a later
`pulumi up` must not switch the live endpoint back to the stack's configuration and weights.

The test deploys what the program declares (stage serving) onto the embedded cloud, runs a rollout there (a
challenger through `tide deploy`'s deployer, then the traffic function's backend moving all traffic to it), runs
the program again with the operator's later edits (instance type, capture sampling), and computes what the
engine would update: the inputs that changed, minus each resource's ignoreChanges. The endpoint must have nothing
to update, and the live weights stay the rollout's. The same computation without ignore_changes shows the revert
the option prevents, so the test cannot pass vacuously.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from functions.traffic.adapters.sagemaker import SageMakerBackend
from jobs.deploy.sagemaker import DeployRequest, SageMakerDeployer
from jobs.embedded_cloud import EmbeddedCloud
from schemas.naming import model_version_name
from tests.infra.stack_run import Declared, RecordingMocks, StackRun, run_stack
from tests.infra.stack_run import stack_config as file_config
from tests.jobs.test_deploy import MotoWithUpdateEndpoint

ENDPOINT, CONFIG, MODEL = (
    "aws:sagemaker/endpoint:Endpoint",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    "aws:sagemaker/model:Model",
)
CHALLENGER = model_version_name("fraud", "b7c1d2e3f4a50617")


class ReplacingMocks(RecordingMocks):
    """Like the engine, an auto-named (name_prefix) resource whose inputs change is replaced under a new name."""

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        if args.inputs.get("namePrefix") and not args.inputs.get("name"):
            digest = hashlib.sha256(json.dumps(args.inputs, sort_keys=True, default=str).encode()).hexdigest()[:8]
            args.inputs = {**args.inputs, "name": f"{args.inputs['namePrefix']}{digest}"}
        return super().new_resource(args)


def run(tmp: Path, **changes: str) -> StackRun:
    values = file_config("dev") | {f"tidewater:{k}": v for k, v in changes.items()}
    return run_stack("dev", tmp, values, mocks=ReplacingMocks(values["aws:region"]))


def the(run: StackRun, typ: str) -> Declared:
    (found,) = run.of_type(typ)
    return found


def apply_config(sm: Any, run: StackRun) -> str:
    """Create the models and endpoint configuration a stack run declared (what `pulumi up` creates)."""
    for model in run.of_type(MODEL):
        container = model.inputs["primaryContainer"]
        primary = {"Image": container["image"], "ModelDataUrl": container["modelDataUrl"]}
        sm.create_model(ModelName=model.state["name"], ExecutionRoleArn=model.inputs["executionRoleArn"],
                        PrimaryContainer=primary)  # fmt: skip
    config = the(run, CONFIG)
    variants = [{"VariantName": v["variantName"], "ModelName": v["modelName"], "InstanceType": v["instanceType"],
                 "InitialInstanceCount": int(v["initialInstanceCount"]),
                 "InitialVariantWeight": v["initialVariantWeight"]}
                for v in config.inputs["productionVariants"]]  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName=config.state["name"], ProductionVariants=variants)
    return str(config.state["name"])


def planned_updates(before: StackRun, after: StackRun, ignore: dict[str, list[str]]) -> dict[str, set[str]]:
    """Resource name -> the inputs `pulumi up` would change: those that differ, minus the resource's ignoreChanges."""
    old = {d.name: d.inputs for d in before.declared}
    plan = {}
    for d in after.declared:
        changed = {k for k in set(d.inputs) | set(old.get(d.name, {})) if d.inputs.get(k) != old.get(d.name, {}).get(k)}
        changed -= set(ignore.get(d.name, []))
        if changed:
            plan[d.name] = changed
    return plan


def live_weights(sm: Any, endpoint: str) -> dict[str, float]:
    described = sm.describe_endpoint(EndpointName=endpoint)
    return {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}


def apply_endpoint_plan(sm: Any, after: StackRun, plan: dict[str, set[str]]) -> None:
    """What the engine does to the live endpoint for the planned changes of the Endpoint resource."""
    endpoint = the(after, ENDPOINT)
    if "endpointConfigName" in plan.get(endpoint.name, set()):
        sm.update_endpoint(
            EndpointName=endpoint.inputs["name"], EndpointConfigName=endpoint.inputs["endpointConfigName"]
        )


def test_a_later_pulumi_up_leaves_a_finished_rollout_alone(tmp_path: Path, cloud: EmbeddedCloud) -> None:
    sm = MotoWithUpdateEndpoint(cloud.client("sagemaker"))
    first = run(tmp_path / "first")
    endpoint = the(first, ENDPOINT).inputs["name"]
    (champion,) = first.outputs["variants"]
    # First `pulumi up` (stage serving): the endpoint on the stack's configuration.
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=apply_config(sm, first))

    # The rollout: `tide deploy` adds the challenger at weight 0, the traffic function promotes it.
    capture = first.outputs["capture_destination"]
    artifacts = f"s3://{first.outputs['buckets']['artifacts']}/models/fraud/b7c1d2e3f4a50617/model.tar.gz"
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/i:1"
    request = DeployRequest(endpoint=endpoint, model_name=CHALLENGER, image=image,
                            model_data_url=artifacts, role_arn=first.outputs["endpoint_role_arn"],
                            capture_destination=capture)  # fmt: skip
    deployed = SageMakerDeployer(sm).deploy(request)
    SageMakerBackend(sm).set_weights(endpoint, {champion: 0.0, CHALLENGER: 1.0})
    rolled_out = live_weights(sm, endpoint)
    assert rolled_out == {champion: 0.0, CHALLENGER: 1.0}

    # A later `pulumi up` with the operator's edits: a new endpoint configuration (replaced, new name)...
    second = run(tmp_path / "second", endpoint_instance_type="ml.c5.xlarge", capture_sampling_percent="50")
    assert the(second, CONFIG).state["name"] != the(first, CONFIG).state["name"]
    apply_config(sm, second)
    ignore = {name: options["ignore_changes"] for name, options in second.options.items()}
    plan = planned_updates(first, second, ignore)
    # ...which the Endpoint ignores: nothing to update on it, the live weights and variants stay the rollout's.
    assert the(second, ENDPOINT).name not in plan
    apply_endpoint_plan(sm, second, plan)
    assert live_weights(sm, endpoint) == rolled_out
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == deployed.endpoint_config
    # What the stack created before stays (a live configuration may name it): retained if Pulumi replaces it.
    for d in [*second.of_type(MODEL), *second.of_type(CONFIG)]:
        assert second.options[d.name]["retain_on_delete"], d.name

    # Without ignore_changes the same `pulumi up` would switch the endpoint back: the rollout undone.
    unguarded = planned_updates(first, second, {})
    assert "endpointConfigName" in unguarded[the(second, ENDPOINT).name]
    apply_endpoint_plan(sm, second, unguarded)
    assert live_weights(sm, endpoint) == {champion: 1.0}
