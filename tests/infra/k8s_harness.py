"""Runs infra/k8s under Pulumi's unit-test mocks for a stack file, recording every resource registered.

Config comes the way the CLI would give it: Pulumi.yaml's declared defaults, then Pulumi.<stack>.yaml, then the
test's overrides. No network: helm charts and kustomize directories are only registered, never fetched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    id: str


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid = f"{args.name}-id"
        state = dict(args.inputs)
        if args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.name}"
        elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER.removeprefix('https://')}"
        elif args.typ == "aws:eks/cluster:Cluster":
            state.update(
                arn=f"arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/{args.inputs['name']}",
                endpoint="https://EXAMPLE.gr7.eu-west-1.eks.amazonaws.com",
                certificateAuthority={"data": "Y2VydA=="},
                identities=[{"oidcs": [{"issuer": ISSUER}]}],
            )
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), rid))
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "zoneIds": ["a", "b", "c"]}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": "eu-west-1", "name": "eu-west-1", "id": "eu-west-1"}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/ci", "id": "123456789012"}, []
        raise NotImplementedError(f"no mock for invoke {args.token}")

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, suffix: str) -> Registered:
        (found,) = [r for r in self.of_type(typ) if r.name.endswith(suffix)]
        return found

    def custom(self, kind: str) -> list[Registered]:
        return [r for r in self.resources if r.inputs.get("kind") == kind]


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str | None, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """tidewater:* config as the CLI resolves it: declared defaults < stack file < overrides."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = {
        f"tidewater:{key}": _config_value(spec["default"])
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }
    if stack is not None:
        stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        config.update({key: _config_value(value) for key, value in (stack_file.get("config") or {}).items()})
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(f"tidewater:{key}", None)
        else:
            config[f"tidewater:{key}"] = _config_value(value)
    return config


def start(stack_name: str, config: dict[str, str]) -> RecordingMocks:
    mocks = RecordingMocks()
    pulumi.runtime.set_all_config(config)
    pulumi.runtime.set_mocks(mocks, project="tidewater", stack=stack_name, preview=False)
    return mocks


def all_resources(root: pulumi.Resource) -> list[pulumi.Resource]:
    """root and its descendants. Uses the SDK's parent->children set (private) so a check can wait on them all."""
    found, todo = [], [root]
    while todo:
        resource = todo.pop()
        found.append(resource)
        todo.extend(getattr(resource, "_childResources", ()))
    return found


def after_all(root: pulumi.Resource, check: Callable[[], None]) -> pulumi.Output[None]:
    """An Output that runs `check` once every resource under root has been registered with the mocks."""
    return pulumi.Output.all(*[r.urn for r in all_resources(root)]).apply(lambda _: check())
