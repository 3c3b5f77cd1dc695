"""The retraining runner under Pulumi mocks: `tide retrain` as a CronJob of its own IRSA account in the training
namespace, least privilege checked by tests/infra/checks.py, and each widening of it caught (mutation tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.naming import Names
from tests.infra import checks
from tests.infra.stack_run import StackRun, run_stack
from tests.infra.stack_run import stack_config as file_config
from tests.infra.test_stack_aws import mutated

NAMES = Names("tidewater", "dev")
POLICY = ("aws:iam/rolePolicy:RolePolicy", checks.RETRAINING_RUNNER_POLICY)


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run_stack("dev", tmp_path_factory.mktemp("serving"))


def test_the_runner_holds_its_least_privilege_at_stage_serving(serving: StackRun) -> None:
    assert checks.retraining_runner_problems(serving) == []
    assert checks.wildcard_problems(serving) == []
    (config,) = [
        d for d in serving.of_type(checks.CONFIG_MAP) if d.inputs["metadata"]["name"] == NAMES.retraining_runner
    ]
    document = json.loads(config.inputs["data"]["stack.json"])
    # The very outputs `tide retrain --stack-outputs` reads, the policy and rollout from the stack config.
    assert document["endpoint_name"] == serving.outputs["endpoint_name"] == NAMES.endpoint("fraud")
    assert document["retraining"] == serving.outputs["retraining"]
    assert document["retraining"]["policy"] == "manual" and document["retraining"]["backend"] == "sagemaker"
    assert document["k8s_training_job"]["namespace"] == NAMES.k8s_namespace("training")
    (job,) = [d for d in serving.of_type(checks.CRON_JOB) if d.inputs["metadata"]["name"] == NAMES.retraining_runner]
    assert job.inputs["spec"]["schedule"] == "*/15 * * * *" and job.inputs["spec"]["concurrencyPolicy"] == "Forbid"
    (role,) = [d for d in serving.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
               if d.inputs["metadata"]["name"] == NAMES.retraining_runner]  # fmt: skip
    assert role.inputs["rules"] == [{"apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"],
                                     "verbs": ["create", "get"]}]  # fmt: skip


def test_before_the_endpoint_the_runner_reaches_no_endpoint_and_auto_policy_comes_from_config(tmp_path: Path) -> None:
    values = file_config("dev") | {
        "tidewater:stage": "platform", "tidewater:champion_model_version": "", "tidewater:retrain_policy": "auto",
        "tidewater:retrain_backend": "kubernetes",
    }  # fmt: skip
    run = run_stack("dev", tmp_path, values)
    assert checks.retraining_runner_problems(run) == []
    policy = json.loads(run.one(*POLICY).inputs["policy"])
    assert not [s for s in policy["Statement"] if "sagemaker:UpdateEndpoint" in s["Action"]]
    assert run.outputs["retraining"]["policy"] == "auto" and run.outputs["retraining"]["backend"] == "kubernetes"
    assert "endpoint_name" not in run.outputs


def _widen(sid: str, key: str, value: Callable[[object], object]) -> Callable[[dict], None]:
    def edit(inputs: dict) -> None:
        doc = json.loads(inputs["policy"])
        for s in doc["Statement"]:
            if s.get("Sid") == sid:
                s[key] = value(s.get(key))
                if s[key] is None:
                    del s[key]
        inputs["policy"] = json.dumps(doc)

    return edit


def _trust_any_account(inputs: dict) -> None:
    doc = json.loads(inputs["assumeRolePolicy"])
    cond = doc["Statement"][0]["Condition"]["StringEquals"]
    for key in cond:
        if key.endswith(":sub"):
            cond[key] = cond[key].rsplit(":", 1)[0] + ":*"
    inputs["assumeRolePolicy"] = json.dumps(doc)


def _run_as_training_account(inputs: dict) -> None:
    inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] = NAMES.k8s_service_account(
        "training"
    )


RUNNER = checks.retraining_runner_problems
WIDENINGS = {
    "all of artifacts": (*POLICY, lambda i: _add_statement(i, {
        "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": f"arn:aws:s3:::{NAMES.bucket('artifacts')}/*"}), RUNNER),
    "another queue": (*POLICY, _widen("ConsumeRetrainingQueue", "Resource",
                                      lambda r: [r, r.replace("-retraining", "-ingest")]), RUNNER),
    "pass role to any service": (*POLICY, _widen("PassTrainingRole", "Condition", lambda c: None), RUNNER),
    "any training job": (*POLICY, _widen("RetrainingJobs", "Resource", lambda r: r.replace("retrain-*", "*")), RUNNER),
    "any endpoint": (*POLICY, _widen("AddChallenger", "Resource", lambda r: [*r, r[0].rsplit("/", 1)[0] + "/*"]),
                     RUNNER),
    "create jobs on Resource *": (*POLICY, _widen("FindRetrainingJobs", "Action",
                                                  lambda a: [*a, "sagemaker:CreateTrainingJob"]),
                                  checks.wildcard_problems),
    "list training jobs in any region": (*POLICY, _widen("FindRetrainingJobs", "Condition", lambda c: None), RUNNER),
    "read scaling in any region": (*POLICY, _widen("ReadChampionScaling", "Condition", lambda c: None), RUNNER),
    "scaling writes on any service": (*POLICY, _widen("ChallengerScaling", "Condition", lambda c: None), RUNNER),
    "scaling writes on Resource *": (*POLICY, _widen("ChallengerScaling", "Resource", lambda r: "*"), RUNNER),
    "scaling writes on Resource * (wildcard check)": (*POLICY, _widen("ChallengerScaling", "Resource", lambda r: "*"),
                                                       checks.wildcard_problems),
    "scaling writes in the describe statement": (*POLICY, _widen("ReadChampionScaling", "Action",
                                                 lambda a: [*a, "application-autoscaling:RegisterScalableTarget"]),
                                                 RUNNER),
    "trust any account of the namespace": ("aws:iam/role:Role", checks.RETRAINING_RUNNER_ROLE, _trust_any_account,
                                           RUNNER),
    "runs as the training account": (checks.CRON_JOB, None, _run_as_training_account, RUNNER),
}  # fmt: skip


def _add_statement(inputs: dict, statement: dict) -> None:
    doc = json.loads(inputs["policy"])
    doc["Statement"].append(statement)
    inputs["policy"] = json.dumps(doc)


@pytest.mark.parametrize("widening", sorted(WIDENINGS))
def test_each_widening_of_the_runner_fails_its_check(serving: StackRun, widening: str) -> None:
    typ, name, change, check = WIDENINGS[widening]
    assert check(serving) == []

    def pick(d: object) -> bool:
        if name is None:  # the CronJob: pick the runner's by its Kubernetes name
            return d.inputs["metadata"]["name"] == NAMES.retraining_runner  # type: ignore[attr-defined]
        return d.name == name  # type: ignore[attr-defined]

    assert check(mutated(serving, typ, pick, change)) != []


def test_every_retraining_trigger_reaches_the_queue_and_no_schedule_by_default(serving: StackRun) -> None:
    assert checks.retraining_trigger_problems(serving) == []
    assert checks.RETRAINING_SCHEDULE not in {d.name for d in serving.of_type("aws:scheduler/schedule:Schedule")}


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    values = file_config("dev") | {"tidewater:retrain_scheduled": "rate(7 days)", "tidewater:stage": "platform",
                                   "tidewater:champion_model_version": ""}  # fmt: skip
    return run_stack("dev", tmp_path_factory.mktemp("scheduled"), values)


def test_the_retraining_schedule_puts_retraining_scheduled_on_the_bus(scheduled: StackRun) -> None:
    """From stage platform (no endpoint needed): the schedule, its role and its DLQ hold every stack check."""
    assert checks.retraining_trigger_problems(scheduled) == []
    assert checks.queue_problems(scheduled) == checks.wildcard_problems(scheduled) == []
    schedule = scheduled.one("aws:scheduler/schedule:Schedule", checks.RETRAINING_SCHEDULE)
    assert schedule.inputs["name"] == NAMES.retraining_schedule
    assert schedule.inputs["scheduleExpression"] == "rate(7 days)"
    detail = json.loads(schedule.inputs["target"]["input"])
    assert detail == {"model": "fraud", "dataset": "transactions", "schedule": "<aws.scheduler.schedule-arn>",
                      "occurred_at": "<aws.scheduler.scheduled-time>"}  # fmt: skip


def _schedule_input(change: Callable[[dict], None]) -> Callable[[dict], None]:
    def edit(inputs: dict) -> None:
        detail = json.loads(inputs["target"]["input"])
        change(detail)
        inputs["target"] = {**inputs["target"], "input": json.dumps(detail)}

    return edit


def _any_bus(inputs: dict) -> None:
    doc = json.loads(inputs["policy"])
    doc["Statement"][0]["Resource"] = "*"
    inputs["policy"] = json.dumps(doc)


def _drop_quality(inputs: dict) -> None:
    pattern = json.loads(inputs["eventPattern"])
    pattern["detail-type"] = [t for t in pattern["detail-type"] if t != "ModelQualityDegraded"]
    inputs["eventPattern"] = json.dumps(pattern)


TRIGGER_WIDENINGS = {
    "the schedule puts on any bus": ("aws:iam/rolePolicy:RolePolicy", "functions-retraining-schedule-policy", _any_bus),
    "the schedule retrains another model": ("aws:scheduler/schedule:Schedule", checks.RETRAINING_SCHEDULE,
                                            _schedule_input(lambda d: d.update(model="other"))),
    "the schedule sends no dataset": ("aws:scheduler/schedule:Schedule", checks.RETRAINING_SCHEDULE,
                                      _schedule_input(lambda d: d.pop("dataset"))),
    "the rule drops ModelQualityDegraded": ("aws:cloudwatch/eventRule:EventRule", "functions-drift-to-retraining",
                                            _drop_quality),
}  # fmt: skip


@pytest.mark.parametrize("widening", sorted(TRIGGER_WIDENINGS))
def test_each_break_of_the_retraining_triggers_fails_their_check(scheduled: StackRun, widening: str) -> None:
    typ, name, change = TRIGGER_WIDENINGS[widening]
    assert checks.retraining_trigger_problems(scheduled) == []
    changed = mutated(scheduled, typ, lambda d: d.name == name, change)  # type: ignore[attr-defined]
    assert checks.retraining_trigger_problems(changed) != []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("retrain_policy", "sometimes", "retrain_policy"),
        ("retrain_backend", "lambda", "retrain_backend"),
        ("retrain_schedule", "every hour", "retrain_schedule: .*not a cron expression"),
        ("retrain_rollout", "{not json", "retrain_rollout: .*not JSON"),
        ("retrain_rollout", '{"strategy": {"kind": "canary", "steps": [2]}}', "retrain_rollout: .*steps"),
        ("retrain_rollout", '{"champion": "a", "strategy": {"kind": "blue_green"}}', "must not set champion"),
        ("retrain_instance_type", "g5.xlarge", "retrain_instance_type"),
        ("retrain_scheduled", "every week", "retrain_scheduled: .*EventBridge Scheduler expression"),
        ("retrain_scheduled_dataset", "Not A Dataset", "retrain_scheduled_dataset: .*dataset name"),
    ],
)
def test_a_bad_retraining_setting_is_named(key: str, value: str, message: str) -> None:
    from infra import config as stack_config

    values = file_config("dev") | {f"tidewater:{key}": value}
    with pytest.raises(stack_config.ConfigError, match=message):
        stack_config.load("tidewater", values)


def test_scheduled_retraining_takes_each_targets_schedule_form() -> None:
    """aws: an EventBridge Scheduler expression; kubernetes: a CronJob schedule (its runs are the firings)."""
    from infra import config as stack_config

    onprem = file_config("onprem")
    with pytest.raises(stack_config.ConfigError, match="on target kubernetes, a CronJob schedule"):
        stack_config.load("tidewater", onprem | {"tidewater:retrain_scheduled": "rate(1 day)"})
    assert stack_config.load("tidewater", onprem | {"tidewater:retrain_scheduled": "0 6 * * 1"}).retrain_scheduled
    with pytest.raises(stack_config.ConfigError, match="on target aws, an EventBridge Scheduler expression"):
        stack_config.load("tidewater", file_config("dev") | {"tidewater:retrain_scheduled": "0 6 * * 1"})
    assert stack_config.load("tidewater", onprem).retrain_scheduled == ""


def test_runner_manifests_mount_the_outputs_read_only_and_rbac_has_no_wildcards() -> None:
    from infra.k8s.retraining import runner_cron_job
    from schemas import manifests

    job = runner_cron_job(NAMES, "*/15 * * * *", "img:1")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["volumeMounts"] == [{"name": "config", "mountPath": "/etc/tidewater", "readOnly": True}]
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": NAMES.retraining_runner}}]
    assert container["command"] == ["tide", "retrain", "--stack-outputs", "/etc/tidewater/stack.json"]
    with pytest.raises(manifests.ManifestError, match="wildcard"):
        manifests.namespaced_role("r", namespace="ns", rules=[{"apiGroups": ["*"], "resources": ["pods"],
                                                                "verbs": ["get"]}])  # fmt: skip
    with pytest.raises(manifests.ManifestError, match="absolute path"):
        manifests.cron_job("j", namespace="ns", schedule="@hourly", image="i", command=["c"], service_account="s",
                           config_map=("cm", "etc/x"))  # fmt: skip
    binding = manifests.role_binding("b", namespace="ns", role="r", service_account="sa")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]
