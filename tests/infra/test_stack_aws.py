"""The real Pulumi program, run under Pulumi's mocks for each example stack (Pulumi.<stack>.yaml).

One program run per stack (module-scoped fixture; the run itself is a `@pulumi.runtime.test` that returns the
stack outputs' Output, so the whole program is awaited). The tests then assert on the resolved declarations:
plain assertions that run, never callbacks inside `apply` that could be skipped. The mutation tests at the end
remove each property from a copy of the declarations and show that its check fails.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from infra import config as stack_config
from infra.components.datalake import DataLake
from infra.components.functions import PACKAGING
from schemas.naming import DEFAULT_MODEL_NAME, EVENT_SOURCE, FUNCTIONS, ZONES, Names
from tests.infra import checks
from tests.infra.stack_run import Declared, RecordingMocks, StackRun, run_stack
from tests.infra.stack_run import stack_config as file_config

REPO = Path(__file__).resolve().parents[2]

STACKS = ("dev", "prod")


@pytest.fixture(scope="module", params=STACKS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    stack = request.param
    return run_stack(stack, tmp_path_factory.mktemp(stack))


def cfg_of(run: StackRun) -> stack_config.StackConfig:
    return stack_config.load("tidewater", file_config(run.stack))


# ---- the properties the issue names -------------------------------------------------------------------------


def test_every_bucket_is_encrypted_with_the_lake_key(run: StackRun) -> None:
    assert len(checks.buckets(run)) == len(ZONES) + 1  # the zones and the access-log bucket
    assert checks.encryption_problems(run) == []


def test_every_bucket_is_versioned(run: StackRun) -> None:
    assert checks.versioning_problems(run) == []


def test_every_bucket_blocks_all_public_access(run: StackRun) -> None:
    assert checks.public_access_problems(run) == []


def test_every_bucket_is_tls_only(run: StackRun) -> None:
    assert checks.tls_only_problems(run) == []


def test_no_iam_wildcards_beyond_the_documented_aws_cases(run: StackRun) -> None:
    assert sum(1 for _ in checks.policy_statements(run)) > 20
    assert checks.wildcard_problems(run) == []


def test_every_queue_has_a_dead_letter_queue(run: StackRun) -> None:
    assert checks.queue_problems(run) == []


def test_each_function_role_reaches_only_its_own_prefixes(run: StackRun) -> None:
    assert checks.function_reach_problems(run) == []
    assert checks.sagemaker_reach_problems(run) == []
    roles = {d.name for d in run.of_type("aws:iam/role:Role")}
    assert {f"functions-{fn}-role" for fn in FUNCTIONS} <= roles  # one role per function


def test_the_training_role_reaches_only_datasets_its_models_and_its_image(run: StackRun) -> None:
    assert checks.training_reach_problems(run) == []
    assert run.outputs["training_role_arn"] == run.one("aws:iam/role:Role", "training-role").state["arn"]


def test_variant_weights_are_as_configured_and_every_variant_has_its_alarms(run: StackRun) -> None:
    assert checks.variant_problems(run, cfg_of(run).weights) == []


def test_ingest_wiring_filters_the_raw_prefix(run: StackRun) -> None:
    assert checks.ingest_wiring_problems(run) == []


# ---- the rest of the list ---------------------------------------------------------------------------


def test_ingest_tmp_holds_the_staged_outputs_of_the_largest_object_and_a_decompressed_parquet(run: StackRun) -> None:
    """The function streams its outputs to /tmp (functions/ingest/staging.py) before uploading them: its ephemeral
    storage covers the biggest object it takes (settings.handoff_bytes, from its memory) plus a .parquet.gz
    decompressed there up to the decoded limit, so a large file is never failed for want of disk."""
    from functions.ingest.readers import Limits
    from functions.ingest.settings import handoff_bytes

    cfg = cfg_of(run)
    function = {d.inputs["name"]: d for d in run.of_type("aws:lambda/function:Function")}[
        Names("tidewater", run.stack).function("ingest")
    ]
    needed = handoff_bytes(cfg.ingest_memory_mb) + Limits().max_decoded_bytes
    assert function.inputs["ephemeralStorage"]["size"] * 2**20 >= needed > 512 * 2**20


def test_lifecycle_rules_and_access_logging(run: StackRun) -> None:
    assert checks.lifecycle_problems(run) == []
    assert checks.access_logging_problems(run) == []


def test_functions_trace_keep_logs_and_reserve_concurrency_from_config(run: StackRun) -> None:
    cfg = cfg_of(run)
    names = Names("tidewater", run.stack)
    functions = {d.inputs["name"]: d for d in run.of_type("aws:lambda/function:Function")}
    logs = {d.inputs["name"]: d for d in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for fn in FUNCTIONS:
        function = functions[names.function(fn)]
        assert function.inputs["tracingConfig"] == {"mode": "Active"}
        assert function.inputs["reservedConcurrentExecutions"] == cfg.reserved_concurrency(fn)
        assert function.inputs["loggingConfig"]["logGroup"] == names.function_log_group(fn)
        assert logs[names.function_log_group(fn)].inputs["retentionInDays"] == cfg.log_retention_days
        assert function.inputs["packageType"] == {"zip": "Zip", "image": "Image"}[PACKAGING[fn]]
    assert functions[names.function("ingest")].inputs["imageUri"].endswith(f":{cfg.ingest_image_tag}")
    # Lambda calls module.attribute: each zip function's handler setting and the ingest image's CMD must name
    # a function the module defines (a renamed handler would otherwise only fail once deployed). Read from the
    # source, not imported: the handlers create their cloud clients at import.
    entry_points = {fn: functions[names.function(fn)].inputs.get("handler") for fn in FUNCTIONS}
    dockerfile = (REPO / "functions" / "ingest" / "Dockerfile").read_text()
    entry_points["ingest"] = json.loads(re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)[-1])[0]
    for fn, entry in entry_points.items():
        module, _, attribute = str(entry).rpartition(".")
        assert module == f"functions.{fn}.handler", entry
        tree = ast.parse((REPO / "functions" / fn / "handler.py").read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert attribute in defined, f"{fn}: {entry} is not a function of {module}"


def test_idempotency_table_expires_records(run: StackRun) -> None:
    names = Names("tidewater", run.stack)
    tables = {d.inputs["name"]: d for d in run.of_type("aws:dynamodb/table:Table")}
    assert tables[names.idempotency_table].inputs["ttl"] == {"attributeName": "expiration", "enabled": True}
    key_arn = checks.lake_key_arn(run)
    assert all(t.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key_arn} for t in tables.values())


def test_drift_and_traffic_run_on_schedules(run: StackRun) -> None:
    cfg = cfg_of(run)
    functions = {d.name: d.state["arn"] for d in run.of_type("aws:lambda/function:Function")}
    schedules = {d.inputs["name"]: d for d in run.of_type("aws:scheduler/schedule:Schedule")}
    names = Names("tidewater", run.stack)
    for fn, expression in (("drift", cfg.drift_schedule), ("traffic", cfg.traffic_schedule)):
        schedule = schedules[names.schedule(fn)]
        assert schedule.inputs["scheduleExpression"] == expression
        assert schedule.inputs["target"]["arn"] == functions[f"functions-{fn}"]


def test_platform_events_reach_the_jobs_that_consume_them(run: StackRun) -> None:
    """DriftDetected, ModelQualityDegraded, RetrainingScheduled -> the retraining queue; LargeFileHandedOff -> the
    hand-off queue (nothing handed off is lost: the queue has a DLQ, checked with every queue)."""
    names = Names("tidewater", run.stack)
    rules = {d.name: d for d in run.of_type("aws:cloudwatch/eventRule:EventRule")}
    targets = {d.inputs["rule"]: d for d in run.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    queues = {d.inputs["name"]: d.state["arn"] for d in run.of_type("aws:sqs/queue:Queue")}
    routes = {
        detail_type: targets[rule.state["name"]].inputs["arn"]
        for rule in rules.values()
        for detail_type in json.loads(rule.inputs["eventPattern"])["detail-type"]
    }
    assert routes == {
        "DriftDetected": queues[names.retraining_queue],
        "ModelQualityDegraded": queues[names.retraining_queue],
        "RetrainingScheduled": queues[names.retraining_queue],
        "LargeFileHandedOff": queues[names.handoff_queue],
    }
    for rule in rules.values():
        assert rule.inputs["eventBusName"] == names.event_bus
        assert json.loads(rule.inputs["eventPattern"])["source"] == [EVENT_SOURCE]


def test_endpoint_captures_to_the_captures_zone_with_kms_and_scales_each_variant(run: StackRun) -> None:
    names = Names("tidewater", run.stack)
    cfg = cfg_of(run)
    (config,) = run.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    capture = config.inputs["dataCaptureConfig"]
    assert capture["destinationS3Uri"] == f"s3://{names.bucket('captures')}/datacapture"
    assert capture["kmsKeyId"] == checks.lake_key_arn(run)
    assert capture["initialSamplingPercentage"] == cfg.capture_sampling_percent
    targets = {d.inputs["resourceId"]: d for d in run.of_type("aws:appautoscaling/target:Target")}
    endpoint = names.endpoint(cfg.model_name)
    assert set(targets) == {f"endpoint/{endpoint}/variant/{v}" for v in cfg.weights}
    assert all(t.inputs["maxCapacity"] == cfg.endpoint_max_instances for t in targets.values())
    policies = run.of_type("aws:appautoscaling/policy:Policy")
    assert {p.inputs["resourceId"] for p in policies if p.inputs["policyType"] == "TargetTrackingScaling"} == set(
        targets
    )


def test_every_endpoint_model_runs_the_packed_inference_code(run: StackRun) -> None:
    """SageMaker's PyTorch container runs model.tar.gz's code/inference.py only when SAGEMAKER_PROGRAM names it;
    without it the default handler expects TorchScript and cannot load the model."""
    models = run.of_type("aws:sagemaker/model:Model")
    assert models
    for model in models:
        env = model.inputs["primaryContainer"]["environment"]
        assert env["SAGEMAKER_PROGRAM"] == "inference.py"
        assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
        assert model.inputs["primaryContainer"]["modelDataUrl"].endswith("/model.tar.gz")


def test_monitoring_alarms_on_every_dlq_and_function_and_sets_a_budget(run: StackRun) -> None:
    cfg = cfg_of(run)
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    dlqs = {d.inputs["name"] for d in run.of_type("aws:sqs/queue:Queue") if d.inputs["name"].endswith("-dlq")}
    watched_queues = {a.inputs["dimensions"]["QueueName"] for a in alarms if a.inputs.get("namespace") == "AWS/SQS"}
    assert dlqs <= watched_queues
    names = Names("tidewater", run.stack)
    watched_functions = {
        a.inputs["dimensions"]["FunctionName"] for a in alarms if a.inputs.get("metricName") == "Errors"
    }
    assert watched_functions == {names.function(fn) for fn in FUNCTIONS}
    (topic,) = run.of_type("aws:sns/topic:Topic")
    assert all(topic.state["arn"] in a.inputs["alarmActions"] for a in alarms)
    (budget,) = run.of_type("aws:budgets/budget:Budget")
    assert budget.inputs["timeUnit"] == "MONTHLY"
    assert float(budget.inputs["limitAmount"]) == cfg.monthly_budget_usd
    assert all(n["subscriberSnsTopicArns"] == [topic.state["arn"]] for n in budget.inputs["notifications"])
    (dashboard,) = run.of_type("aws:cloudwatch/dashboard:Dashboard")
    widgets = json.loads(dashboard.inputs["dashboardBody"])["widgets"]
    assert len(widgets) >= 4
    # Per-variant graphs search the endpoint's live variants (those `tide deploy` adds appear by themselves).
    searches = [m[0]["expression"] for w in widgets for m in w["properties"]["metrics"] if isinstance(m[0], dict)]
    endpoint = names.endpoint(cfg.model_name)
    assert len(searches) == 3 and all(f'EndpointName="{endpoint}"' in s and "VariantName}" in s for s in searches)


def test_stack_outputs_give_functions_and_jobs_every_name_they_need(run: StackRun) -> None:
    names = Names("tidewater", run.stack)
    out = run.outputs
    assert out["buckets"] == names.buckets()
    assert out["tables"] == {
        "idempotency": names.idempotency_table,
        "rollouts": names.rollout_table,
        "drift_state": names.drift_state_table,
    }
    assert out["ingest_queue_url"].endswith(f"/{names.ingest_queue}")
    assert out["retraining_queue_url"].endswith(f"/{names.retraining_queue}")
    assert out["event_bus"] == names.event_bus
    assert out["model_name"] == DEFAULT_MODEL_NAME  # what `tide train` writes unless told otherwise
    assert out["endpoint_name"] == names.endpoint(DEFAULT_MODEL_NAME)
    assert out["variant_alarms"] == {v: names.variant_alarms(out["endpoint_name"], v) for v in cfg_of(run).weights}
    assert out["functions"] == {fn: names.function(fn) for fn in FUNCTIONS}
    assert out["variants"] == cfg_of(run).weights
    assert {"kms_key_arn", "alert_topic_arn", "endpoint_role_arn", "ingest_image_repository"} <= set(out)


# ---- a component alone, in pulumi/examples' testing-unit-py style ---------------------------------------------


@pulumi.runtime.test
def test_data_lake_key_rotates_and_buckets_follow_naming() -> pulumi.Output[None]:
    pulumi.runtime.set_mocks(RecordingMocks("eu-west-1"), project="tidewater", stack="unit", preview=False)
    cfg = stack_config.load("tidewater", file_config("dev"))
    lake = DataLake("lake", names=Names("tidewater", "unit"), cfg=cfg, account_id="123456789012")

    def check(values: list[object]) -> None:
        rotation, *bucket_names = values
        assert rotation is True
        assert bucket_names == list(Names("tidewater", "unit").buckets().values())

    return pulumi.Output.all(lake.key.enable_key_rotation, *[b.bucket for b in lake.buckets.values()]).apply(check)


# ---- mutation tests: remove each property, the check must notice ----------------------------------------------


def mutated(run: StackRun, typ: str, pick: Callable[[Declared], bool], change: Callable[[dict], object]) -> StackRun:
    """A copy of the run where `change` edited (or, returning "drop", removed) the first matching declaration."""
    declared, done = [], False
    for d in run.declared:
        if not done and d.type == typ and pick(d):
            done = True
            inputs = copy.deepcopy(d.inputs)
            if change(inputs) == "drop":
                continue
            d = Declared(d.type, d.name, inputs, {**d.state, **inputs})
        declared.append(d)
    assert done, f"nothing of type {typ} matched"
    return StackRun(run.stack, declared, run.outputs)


def _raw(d: Declared) -> bool:
    return d.name.startswith("lake-raw-")


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda inputs: inputs.__setitem__(key, value)


def _statement_edit(sid: str, key: str, value: object) -> Callable[[dict], None]:
    def edit(inputs: dict) -> None:
        doc = json.loads(inputs["policy"])
        for s in doc["Statement"]:
            if s.get("Sid") == sid:
                s[key] = value
        inputs["policy"] = json.dumps(doc)

    return edit


MUTATIONS: dict[
    str, tuple[str, Callable[[Declared], bool], Callable[[dict], object], Callable[[StackRun], list[str]]]
] = {
    "encryption dropped": (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        _raw,
        lambda i: "drop",
        checks.encryption_problems,
    ),
    "key rotation off": (
        "aws:kms/key:Key",
        lambda d: True,
        _set("enableKeyRotation", False),
        checks.encryption_problems,
    ),
    "versioning suspended": (
        "aws:s3/bucketVersioning:BucketVersioning",
        _raw,
        _set("versioningConfiguration", {"status": "Suspended"}),
        checks.versioning_problems,
    ),
    "public policy allowed": (
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        _raw,
        _set("blockPublicPolicy", False),
        checks.public_access_problems,
    ),
    "TLS deny dropped": (
        "aws:s3/bucketPolicy:BucketPolicy",
        _raw,
        _set("policy", json.dumps({"Version": "2012-10-17", "Statement": []})),
        checks.tls_only_problems,
    ),
    "lifecycle dropped": (
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        _raw,
        lambda i: "drop",
        checks.lifecycle_problems,
    ),
    "logging dropped": ("aws:s3/bucketLogging:BucketLogging", _raw, lambda i: "drop", checks.access_logging_problems),
    "Action *": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "functions-drift-policy",
        _statement_edit("WriteReports", "Action", "*"),
        checks.wildcard_problems,
    ),
    "Resource * for an undocumented action": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "functions-ingest-policy",
        _statement_edit("ReadRaw", "Resource", "*"),
        checks.wildcard_problems,
    ),
    "ARN with wildcard account": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "functions-traffic-policy",
        _statement_edit("ShiftWeights", "Resource", ["arn:aws:sagemaker:*:*:endpoint/*"]),
        checks.wildcard_problems,
    ),
    "redrive dropped": (
        "aws:sqs/queue:Queue",
        lambda d: d.name == "functions-ingest-queue",
        _set("redrivePolicy", None),
        checks.queue_problems,
    ),
    "ingest reaches the whole raw bucket": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "functions-ingest-policy",
        _statement_edit(
            "ReadRaw", "Resource", ["arn:aws:s3:::tidewater-dev-raw/*", "arn:aws:s3:::tidewater-prod-raw/*"]
        ),
        checks.function_reach_problems,
    ),
    "traffic reaches the idempotency table": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "functions-traffic-policy",
        _statement_edit(
            "Rollouts",
            "Resource",
            [
                "arn:aws:dynamodb:eu-west-1:123456789012:table/tidewater-dev-idempotency",
                "arn:aws:dynamodb:us-east-1:123456789012:table/tidewater-prod-idempotency",
            ],
        ),
        checks.function_reach_problems,
    ),
    "drift describes every model": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "functions-drift-policy",
        _statement_edit("FindChampionModel", "Resource", ["arn:aws:sagemaker:eu-west-1:123456789012:model/*"]),
        checks.sagemaker_reach_problems,
    ),
    "training role writes every model": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "training-role-policy",
        _statement_edit("ModelsAndJobFiles", "Resource", ["arn:aws:s3:::tidewater-dev-artifacts/*"]),
        checks.training_reach_problems,
    ),
    "training role pulls any image": (
        "aws:iam/rolePolicy:RolePolicy",
        lambda d: d.name == "training-role-policy",
        _statement_edit("PullImage", "Resource", ["arn:aws:ecr:eu-west-1:123456789012:repository/other"]),
        checks.training_reach_problems,
    ),
    "champion alarm dropped": (
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        lambda d: d.name == "endpoint-champion-latency-p99",
        lambda i: "drop",
        lambda r: checks.variant_problems(r, cfg_of(r).weights),
    ),
    "weights swapped": (
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        lambda d: True,
        lambda i: [v.__setitem__("initialVariantWeight", 50.0) for v in i["productionVariants"]],
        lambda r: checks.variant_problems(r, cfg_of(r).weights),
    ),
    "raw prefix filter dropped": (
        "aws:s3/bucketNotification:BucketNotification",
        lambda d: True,
        lambda i: i["queues"][0].pop("filterPrefix"),
        checks.ingest_wiring_problems,
    ),
    "partial batch failures off": (
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        lambda d: True,
        _set("functionResponseTypes", []),
        checks.ingest_wiring_problems,
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_check_fails_when_its_property_is_removed(run: StackRun, mutation: str) -> None:
    typ, pick, change, check = MUTATIONS[mutation]
    assert check(run) == []
    assert check(mutated(run, typ, pick, change)) != []


def test_lake_stage_deploys_only_what_exists_before_an_image_and_a_model(tmp_path: Path) -> None:
    values = file_config("dev") | {"tidewater:stage": "lake", "tidewater:champion_model_version": ""}
    run = run_stack("dev", tmp_path, values)
    types = set(run.counts())
    assert "aws:ecr/repository:Repository" in types and "aws:sns/topic:Topic" in types
    later = ("aws:lambda", "aws:sagemaker", "aws:sqs", "aws:scheduler", "aws:eks", "aws:iam")
    assert not {t for t in types if t.startswith(later)}
    assert checks.encryption_problems(run) == checks.tls_only_problems(run) == checks.public_access_problems(run) == []
    assert run.outputs["ingest_image_repository"].endswith("/tidewater-dev-ingest")
    assert run.outputs["stage"] == "lake"


def test_platform_stage_is_complete_without_a_model(tmp_path: Path) -> None:
    """Ingestion, queues, compute and monitoring exist; the endpoint and the functions that watch it do not, and
    nothing in the stack names an endpoint that is not there."""
    values = file_config("dev") | {"tidewater:stage": "platform", "tidewater:champion_model_version": ""}
    run = run_stack("dev", tmp_path, values)
    types = set(run.counts())
    assert not {t for t in types if t.startswith("aws:sagemaker") or t.startswith("aws:appautoscaling")}
    assert {d.inputs["name"] for d in run.of_type("aws:lambda/function:Function")} == {"tidewater-dev-ingest"}
    assert run.of_type("aws:scheduler/schedule:Schedule") == []
    assert "aws:eks/cluster:Cluster" in types
    assert {"endpoint_name", "variants", "variant_alarms"}.isdisjoint(run.outputs)
    assert run.outputs["k8s_training_job"]["namespace"] == "tidewater-dev-training"
    assert checks.queue_problems(run) == checks.wildcard_problems(run) == checks.ingest_wiring_problems(run) == []
    body = json.loads(run.one("aws:cloudwatch/dashboard:Dashboard", "monitoring-dashboard").inputs["dashboardBody"])
    assert "SageMaker" not in json.dumps(body)


def test_the_entry_point_composes_and_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """infra/__main__.py as Pulumi runs it, with only the wheel download swapped out."""
    import runpy

    from infra import program
    from tests.infra.stack_run import small_zip

    monkeypatch.setattr(program, "build", lambda fn, repo, cache: small_zip(fn, tmp_path))
    exported: dict[str, object] = {}
    monkeypatch.setattr(pulumi, "export", lambda key, value: exported.__setitem__(key, value))
    mocks = RecordingMocks("eu-west-1")
    pulumi.runtime.set_mocks(mocks, project="tidewater", stack="dev", preview=False)
    pulumi.runtime.set_all_config(file_config("dev"))

    @pulumi.runtime.test
    def entry_point() -> pulumi.Output[object]:
        runpy.run_path(str(program.REPO / "infra"), run_name="__main__")
        return pulumi.Output.from_input(exported["endpoint_name"])

    entry_point()
    assert {"buckets", "ingest_queue_url", "endpoint_name", "variant_alarms"} <= set(exported)
    # 139 for the lake, image repositories, training role, functions, endpoint (one first variant) and monitoring
    # + 23 for the EKS compute (cluster, node groups, IRSA) + 2 for the retraining runner's IRSA role and policy.
    assert len([d for d in mocks.declared if d.type.startswith("aws:")]) == 164
