"""Run the real Pulumi program under Pulumi's mocks and record every resource it declares.

`RecordingMocks` answers each registration the way AWS would name things (ARNs, queue URLs, repository URLs)
and keeps the resolved inputs (wire names, camelCase). `run_stack` runs `infra.program.compose` for one example
stack file inside `@pulumi.runtime.test` (which awaits the whole program) and returns what was declared plus the
stack outputs. The only swap is the zip builder: a small real zip per function, no wheels downloaded.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from jobs.build_artifacts import Artifact, write_zip

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Declared:
    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]


def _arn(service: str, region: str, resource: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str) -> None:
        self.region = region
        self.declared: list[Declared] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        state = dict(inputs)
        typ, region = args.typ, self.region
        name = inputs.get("name") or f"{inputs.get('namePrefix', args.name + '-')}mock"
        state.setdefault("name", name)
        resource_id = name
        if typ == "aws:s3/bucket:Bucket":
            resource_id = inputs["bucket"]
            state["arn"] = f"arn:aws:s3:::{inputs['bucket']}"
        elif typ == "aws:sqs/queue:Queue":
            state["arn"] = _arn("sqs", region, name)
            state["url"] = resource_id = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}"
        elif typ == "aws:kms/key:Key":
            state["keyId"] = resource_id = f"key-{args.name}"
            state["arn"] = _arn("kms", region, f"key/{state['keyId']}")
        elif typ == "aws:dynamodb/table:Table":
            state["arn"] = _arn("dynamodb", region, f"table/{name}")
        elif typ == "aws:lambda/function:Function":
            state["arn"] = _arn("lambda", region, f"function:{name}")
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = _arn("logs", region, f"log-group:{name}")
        elif typ == "aws:cloudwatch/eventBus:EventBus":
            state["arn"] = _arn("events", region, f"event-bus/{name}")
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            state["arn"] = _arn("events", region, f"rule/{inputs.get('eventBusName', 'default')}/{name}")
        elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            state["arn"] = _arn("cloudwatch", region, f"alarm:{name}")
        elif typ == "aws:sagemaker/endpoint:Endpoint":
            state["arn"] = _arn("sagemaker", region, f"endpoint/{name}")
        elif typ == "aws:sns/topic:Topic":
            state["arn"] = _arn("sns", region, name)
        elif typ == "aws:eks/cluster:Cluster":
            issuer = f"https://oidc.eks.{region}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
            state["arn"] = _arn("eks", region, f"cluster/{inputs['name']}")
            state["endpoint"] = f"https://EXAMPLE.gr7.{region}.eks.amazonaws.com"
            state["certificateAuthority"] = {"data": "Y2VydA=="}
            state["identities"] = [{"oidcs": [{"issuer": issuer}]}]
        elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.{region}.amazonaws.com/id/EXAMPLE"
        elif typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        elif typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{name}"
            state["arn"] = _arn("ecr", region, f"repository/{name}")
        else:
            state.setdefault("arn", _arn(typ.split(":")[1].split("/")[0], region, name))
        self.declared.append(Declared(typ, args.name, inputs, state))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # A plain dict: the (result, failures) tuple form breaks on failures=None in this SDK version.
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "ci", "id": ACCOUNT}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = [f"{self.region}{z}" for z in "abc"]
            return {"names": zones, "zoneIds": zones, "id": self.region}
        raise NotImplementedError(f"unexpected data source in the program: {args.token}")


class OptionsMonitor(pulumi.runtime.mocks.MockMonitor):
    """The mock engine, also keeping each resource's ignoreChanges and retainOnDelete (the mocks do not see them)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.options: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.options[request.name] = {
            "ignore_changes": list(request.ignoreChanges),
            "retain_on_delete": bool(request.retainOnDelete),
        }
        return super().RegisterResource(request)


@dataclass
class StackRun:
    stack: str
    declared: list[Declared]
    outputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # resource name -> engine options

    def of_type(self, typ: str) -> list[Declared]:
        return [d for d in self.declared if d.type == typ]

    def one(self, typ: str, name: str) -> Declared:
        found = [d for d in self.declared if d.type == typ and d.name == name]
        assert len(found) == 1, f"expected one {typ} named {name}, found {len(found)}"
        return found[0]

    def counts(self) -> Counter[str]:
        return Counter(d.type for d in self.declared)


def stack_config(stack: str) -> dict[str, str]:
    """The example stack file's config as the engine hands it to the program (strings)."""
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def small_zip(function: str, tmp: Path) -> Artifact:
    """A real (tiny) zip standing in for the wheel-laden artifact, so the mocks run offline."""
    source = tmp / function / "handler.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("def handler(event, context):\n    return None\n")
    dest = tmp / f"{function}.zip"
    size = write_zip([(f"functions/{function}/handler.py", source)], dest)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    return Artifact(function, dest, content_hash=digest, zip_sha256=digest, unzipped_bytes=size)


def run_stack(
    stack: str, tmp: Path, config: dict[str, str] | None = None, mocks: RecordingMocks | None = None
) -> StackRun:
    from infra import program

    values = config if config is not None else stack_config(stack)
    mocks = mocks or RecordingMocks(values.get("aws:region", "eu-west-1"))
    monitor = OptionsMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="tidewater", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(values)
    run = StackRun(stack, mocks.declared, options=monitor.options)

    @pulumi.runtime.test
    def program_run() -> pulumi.Output[Any]:
        outputs = program.compose(build_zip=lambda fn: small_zip(fn, tmp))
        return pulumi.Output.from_input(outputs).apply(run.outputs.update)

    program_run()
    return run
