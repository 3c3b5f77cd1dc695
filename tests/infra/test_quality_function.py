"""The quality function as the stack deploys it (stage serving, target aws), under Pulumi's mocks: its role reaches
exactly its prefixes, its state keys, its bus, the lake key and its logs; it runs on its schedule with its
environment. Each mutation below widens or removes one of these from a copy of the declarations, and the check
must notice (so none can pass vacuously)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from infra import config as stack_config
from tests.infra import checks
from tests.infra.stack_run import Declared, StackRun, run_stack
from tests.infra.stack_run import stack_config as file_config

STACKS = ("dev", "prod")
POLICY, SCHEDULE = "aws:iam/rolePolicy:RolePolicy", "aws:scheduler/schedule:Schedule"
FUNCTION = "aws:lambda/function:Function"
Change = Callable[[StackRun, dict], None]


@pytest.fixture(scope="module", params=STACKS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_stack(request.param, tmp_path_factory.mktemp(request.param))


def schedule_of(run: StackRun) -> str:
    return stack_config.load("tidewater", file_config(run.stack)).quality_schedule


def edited(run: StackRun, typ: str, name: str, change: Change) -> StackRun:
    """A copy of the run with one declaration's inputs changed (`change` edits them in place)."""
    declared = []
    for d in run.declared:
        if d.type == typ and d.name == name:
            inputs = copy.deepcopy(d.inputs)
            change(run, inputs)
            d = Declared(d.type, d.name, inputs, {**d.state, **inputs})
        declared.append(d)
    return StackRun(run.stack, declared, run.outputs)


def statement(sid: str, key: str, value: Callable[[StackRun, dict], object]) -> Change:
    """Set one key of the quality policy's statement `sid` (value computed from the run and the statement)."""

    def change(run: StackRun, inputs: dict) -> None:
        doc = json.loads(inputs["policy"])
        (found,) = [s for s in doc["Statement"] if s.get("Sid") == sid]
        found[key] = value(run, found)
        inputs["policy"] = json.dumps(doc)

    return change


def dropped(sid: str) -> Change:
    def change(run: StackRun, inputs: dict) -> None:
        doc = json.loads(inputs["policy"])
        doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != sid]
        inputs["policy"] = json.dumps(doc)

    return change


def bucket(zone: str, path: str = "*") -> Callable[[StackRun, dict], object]:
    return lambda run, s: [f"arn:aws:s3:::tidewater-{run.stack}-{zone}/{path}"]


def region_arn(resource: str) -> Callable[[StackRun, dict], object]:
    return lambda run, s: [resource.format(region=checks.run_region(run), stack=run.stack)]


ROLE_MUTATIONS: dict[str, Change] = {
    "reads every captured endpoint": statement("ReadCaptures", "Resource", bucket("captures", "datacapture/*")),
    "lists the whole captures bucket": statement("ListCaptures", "Condition", lambda r, s: None),
    "reads every curated dataset": statement("ReadLabels", "Resource", bucket("curated")),
    "lists every curated dataset": statement(
        "ListLabelCommits", "Condition", lambda r, s: {"StringLike": {"s3:prefix": ["*"]}}
    ),
    "reads the packaged models too": statement("ReadBaselines", "Resource", bucket("artifacts", "models/fraud/*")),
    "reads every model's baselines": statement(
        "ReadBaselines", "Resource", bucket("artifacts", "models/*/metadata.json")
    ),
    "lists the whole artifacts bucket": statement("ListBaselines", "Condition", lambda r, s: None),
    "writes every report": statement("WriteReports", "Resource", bucket("reports")),
    "may delete reports": statement("WriteReports", "Action", lambda r, s: ["s3:DeleteObject", "s3:PutObject"]),
    "touches the drift check's keys": statement("QualityState", "Condition", lambda r, s: None),
    "scans the state table": statement(
        "QualityState", "Action", lambda r, s: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"]
    ),
    "publishes to the default bus": statement(
        "PublishEvents", "Resource", region_arn("arn:aws:events:{region}:123456789012:event-bus/default")
    ),
    "uses any key": statement("DataKey", "Resource", region_arn("arn:aws:kms:{region}:123456789012:key/other")),
    "writes any log group": statement("Logs", "Resource", region_arn("arn:aws:logs:{region}:123456789012:log-group:*")),
    "cannot write its reports": dropped("WriteReports"),
    "cannot read the labels": dropped("ReadLabels"),
    "cannot publish": dropped("PublishEvents"),
}


def test_the_quality_role_reaches_exactly_its_prefixes_keys_bus_key_and_logs(run: StackRun) -> None:
    assert checks.quality_reach_problems(run) == []
    assert checks.function_reach_problems(run) == []  # and no other function's prefixes or tables
    assert checks.wildcard_problems(run) == []


@pytest.mark.parametrize("mutation", sorted(ROLE_MUTATIONS))
def test_each_widening_or_removal_of_the_role_is_caught(run: StackRun, mutation: str) -> None:
    assert checks.quality_reach_problems(edited(run, POLICY, "functions-quality-policy", ROLE_MUTATIONS[mutation]))


def test_the_quality_function_runs_on_its_schedule_with_the_stacks_names(run: StackRun) -> None:
    assert checks.quality_schedule_problems(run, schedule_of(run)) == []
    function = run.one(FUNCTION, "functions-quality")
    assert (function.inputs["runtime"], function.inputs["packageType"]) == ("python3.12", "Zip")
    assert function.inputs["tracingConfig"] == {"mode": "Active"}
    assert schedule_of(run) == "cron(15 0 * * ? *)"  # Pulumi.yaml's default: daily, after midnight UTC


def _target(key: str, value: object) -> Change:
    return lambda run, inputs: inputs["target"].__setitem__(key, value)


def _env_without(key: str) -> Change:
    return lambda run, inputs: inputs["environment"]["variables"].pop(key)


def _invoke_any(run: StackRun, inputs: dict) -> None:
    doc = json.loads(inputs["policy"])
    for s in doc["Statement"]:
        if "lambda:InvokeFunction" in s["Action"]:
            s["Resource"] = [f"arn:aws:lambda:{checks.run_region(run)}:123456789012:function:*"]
    inputs["policy"] = json.dumps(doc)


SCHEDULE_MUTATIONS: dict[str, tuple[str, str, Change]] = {
    "hourly": (SCHEDULE, "functions-quality-schedule", lambda r, i: i.update(scheduleExpression="rate(1 hour)")),
    "no dead-letter queue": (SCHEDULE, "functions-quality-schedule", _target("deadLetterConfig", None)),
    "another endpoint in the detail": (
        SCHEDULE, "functions-quality-schedule", _target("input", json.dumps({"detail": {"endpoint": "x"}}))
    ),
    "no model named": (FUNCTION, "functions-quality", _env_without("TIDE_MODEL")),
    "no endpoint named": (FUNCTION, "functions-quality", _env_without("TIDE_ENDPOINT")),
    "schedule invokes any function": (POLICY, "functions-quality-schedule-policy", _invoke_any),
}  # fmt: skip


@pytest.mark.parametrize("mutation", sorted(SCHEDULE_MUTATIONS))
def test_each_change_to_the_schedule_or_environment_is_caught(run: StackRun, mutation: str) -> None:
    typ, name, change = SCHEDULE_MUTATIONS[mutation]
    assert checks.quality_schedule_problems(edited(run, typ, name, change), schedule_of(run))


def test_platform_stage_has_no_quality_function(tmp_path: Path) -> None:
    """Before the endpoint exists there is nothing to judge: no function, role or schedule."""
    values = file_config("dev") | {"tidewater:stage": "platform", "tidewater:champion_model_version": ""}
    run = run_stack("dev", tmp_path, values)
    assert not [d for d in run.declared if "quality" in d.name]
