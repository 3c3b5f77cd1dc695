"""The properties the AWS stack must hold, as checkers over what the program declared (a StackRun).

Each checker returns a list of problems (empty = holds). The stack tests assert each is empty for every example
stack; the mutation tests remove the property from a copy of the declarations and assert the checker notices,
so no check can pass vacuously.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

from infra.k8s.policies import (
    AUTOSCALER_DESCRIBE_ACTIONS,
    RETRAINING_AUTOSCALING_ACTIONS,
    RETRAINING_LIST_ACTIONS,
    RETRAINING_SCALING_ACTIONS,
    SAGEMAKER_VARIANT_SCALING,
)
from infra.policies import WILDCARD_ACTIONS
from schemas.events import RETRAINING_TRIGGERS, RetrainingScheduled
from schemas.naming import EVENT_SOURCE, RAW_PREFIX, VARIANT_ALARM_KINDS, ZONES, Names
from tests.infra.stack_run import Declared, StackRun

BUCKET = "aws:s3/bucket:Bucket"
# Documented AWS cases that need Resource "*", besides WILDCARD_ACTIONS (actions without resource-level
# permissions, see infra.policies): a KMS key policy is attached to its key, so "*" there means "this key".
KEY_POLICY_TYPES = {"aws:kms/key:Key"}
# Resource type -> the input holding its policy document(s).
POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:kms/key:Key": "policy",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def buckets(run: StackRun) -> dict[str, Declared]:
    """Bucket id (its name) -> declaration."""
    return {d.inputs["bucket"]: d for d in run.of_type(BUCKET)}


def _per_bucket(run: StackRun, typ: str) -> dict[str, list[Declared]]:
    found: dict[str, list[Declared]] = {}
    for d in run.of_type(typ):
        found.setdefault(d.inputs["bucket"], []).append(d)
    return found


def model_name(run: StackRun) -> str:
    """The served model, as the stack outputs name it for `tide` (model_name)."""
    return str(run.outputs["model_name"])


def endpoint_name(run: StackRun) -> str:
    return Names("tidewater", run.stack).endpoint(model_name(run))


def lake_key_arn(run: StackRun) -> str:
    (key,) = run.of_type("aws:kms/key:Key")
    return str(key.state["arn"])


def zone_buckets(run: StackRun) -> set[str]:
    return set(Names("tidewater", run.stack).buckets().values())


def encryption_problems(run: StackRun) -> list[str]:
    """Zone buckets: SSE-KMS with the lake key. The access-log bucket: SSE-S3, the only AWS-supported choice for
    server access log delivery."""
    problems = []
    key_arn = lake_key_arn(run)
    configs = _per_bucket(run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    log_bucket = Names("tidewater", run.stack).access_log_bucket
    for bucket in buckets(run):
        defaults = [r["applyServerSideEncryptionByDefault"] for c in configs.get(bucket, []) for r in c.inputs["rules"]]
        if bucket == log_bucket:
            expected = {"sseAlgorithm": "AES256"}
        else:
            expected = {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
        if defaults != [expected]:
            problems.append(f"{bucket}: default encryption {defaults} != [{expected}]")
    (key,) = run.of_type("aws:kms/key:Key")
    if key.inputs.get("enableKeyRotation") is not True:
        problems.append("the lake key has no automatic rotation")
    return problems


def versioning_problems(run: StackRun) -> list[str]:
    versioning = _per_bucket(run, "aws:s3/bucketVersioning:BucketVersioning")
    return [
        f"{bucket}: not versioned"
        for bucket in buckets(run)
        if [v.inputs["versioningConfiguration"]["status"] for v in versioning.get(bucket, [])] != ["Enabled"]
    ]


PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def public_access_problems(run: StackRun) -> list[str]:
    blocks = _per_bucket(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    problems = []
    for bucket in buckets(run):
        found = blocks.get(bucket, [])
        if len(found) != 1 or any(found[0].inputs.get(flag) is not True for flag in PUBLIC_ACCESS_FLAGS):
            problems.append(f"{bucket}: public access not fully blocked ({[f.inputs for f in found]})")
    return problems


def tls_only_problems(run: StackRun) -> list[str]:
    policies = _per_bucket(run, "aws:s3/bucketPolicy:BucketPolicy")
    problems = []
    for bucket, declared in buckets(run).items():
        arn = declared.state["arn"]
        denies = [
            s
            for p in policies.get(bucket, [])
            for s in json.loads(p.inputs["policy"])["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Principal") == "*"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and _as_list(s["Action"]) == ["s3:*"]
            and {arn, f"{arn}/*"} <= set(_as_list(s["Resource"]))
        ]
        if not denies:
            problems.append(f"{bucket}: no deny of non-TLS requests")
    return problems


def lifecycle_problems(run: StackRun) -> list[str]:
    rules = {
        b: [r for d in ds for r in d.inputs["rules"]]
        for b, ds in _per_bucket(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").items()
    }
    names = Names("tidewater", run.stack)
    problems = []
    for bucket in buckets(run):
        mine = rules.get(bucket, [])
        if not any(r.get("noncurrentVersionExpiration") for r in mine):
            problems.append(f"{bucket}: noncurrent versions never expire")
        if not any(r.get("abortIncompleteMultipartUpload") for r in mine):
            problems.append(f"{bucket}: incomplete multipart uploads never aborted")
    for zone in ("raw", "captures"):
        mine = rules.get(names.bucket(zone), [])  # type: ignore[arg-type]
        if not any(r.get("transitions") and r.get("expiration") for r in mine):
            problems.append(f"{zone}: no tiering to cheaper storage then expiry")
    return problems


def access_logging_problems(run: StackRun) -> list[str]:
    logging = _per_bucket(run, "aws:s3/bucketLogging:BucketLogging")
    log_bucket = Names("tidewater", run.stack).access_log_bucket
    return [
        f"{bucket}: no access logging to {log_bucket}"
        for bucket in zone_buckets(run)
        if [d.inputs["targetBucket"] for d in logging.get(bucket, [])] != [log_bucket]
    ]


def policy_statements(run: StackRun) -> Iterator[tuple[Declared, dict[str, Any]]]:
    for typ, field in POLICY_INPUTS.items():
        for d in run.of_type(typ):
            for statement in _as_list(json.loads(d.inputs[field])["Statement"]):
                yield d, statement


# The cluster autoscaler (EKS compute) must describe every group, and may change only the groups tagged as owned
# by its cluster: AWS offers no ARN for either, so Resource "*" is documented for these two cases.
AUTOSCALER_TAG_CONDITION = "aws:ResourceTag/k8s.io/cluster-autoscaler/"


def _tag_scoped(statement: dict[str, Any]) -> bool:
    equals = statement.get("Condition", {}).get("StringEquals", {})
    return any(key.startswith(AUTOSCALER_TAG_CONDITION) for key in equals)


def wildcard_problems(run: StackRun) -> list[str]:
    """No Action "*"; Resource "*" only for WILDCARD_ACTIONS, the autoscaler's describe calls, statements scoped by
    the cluster-autoscaler ownership tag, or inside a KMS key policy; Principal "*" only to deny; no ARN with a
    wildcard region or account."""
    problems = []
    for d, s in policy_statements(run):
        actions = _as_list(s.get("Action", []))
        where = f"{d.type} {d.name} {s.get('Sid', '')}"
        if "*" in actions:
            problems.append(f"{where}: Action '*'")
        if "*" in _as_list(s.get("Resource", [])) and d.type not in KEY_POLICY_TYPES and not _tag_scoped(s):
            documented = WILDCARD_ACTIONS | set(AUTOSCALER_DESCRIBE_ACTIONS)
            if d.name == RETRAINING_RUNNER_POLICY:  # infra/k8s/policies.py says why these have no ARN to name
                documented |= set(RETRAINING_LIST_ACTIONS) | set(RETRAINING_AUTOSCALING_ACTIONS)
            undocumented = sorted(set(actions) - documented)
            if undocumented:
                problems.append(f"{where}: Resource '*' for {undocumented}")
        if s.get("Principal") == "*" and s["Effect"] != "Deny":
            problems.append(f"{where}: allows any principal")
        wild_scope = [r for r in _as_list(s.get("Resource", [])) if r != "*" and ":*:" in r]
        if wild_scope:
            problems.append(f"{where}: ARNs with a wildcard region or account {wild_scope}")
    return problems


def queue_problems(run: StackRun) -> list[str]:
    """Every work queue redrives to a DLQ that exists; every DLQ is a DLQ of something (or the schedules')."""
    queues = {d.inputs["name"]: d for d in run.of_type("aws:sqs/queue:Queue")}
    arns = {d.state["arn"]: name for name, d in queues.items()}
    problems = []
    dlq_targets = set()
    for name, d in queues.items():
        if not name.endswith("-dlq"):
            redrive = json.loads(d.inputs.get("redrivePolicy") or "{}")
            if redrive.get("deadLetterTargetArn") not in arns or not redrive.get("maxReceiveCount"):
                problems.append(f"{name}: no dead-letter queue")
            else:
                dlq_targets.add(arns[redrive["deadLetterTargetArn"]])
    for target in [
        *run.of_type("aws:cloudwatch/eventTarget:EventTarget"),
        *run.of_type("aws:scheduler/schedule:Schedule"),
    ]:
        config = target.inputs.get("deadLetterConfig") or target.inputs.get("target", {}).get("deadLetterConfig")
        if not config or config.get("arn") not in arns:
            problems.append(f"{target.name}: failed deliveries have no dead-letter queue")
        else:
            dlq_targets.add(arns[config["arn"]])
    for name in queues:
        if name.endswith("-dlq") and name not in dlq_targets:
            problems.append(f"{name}: a DLQ that nothing sends to")
    return problems


def _function_policy(run: StackRun, function: str) -> list[dict[str, Any]]:
    (policy,) = [d for d in run.of_type("aws:iam/rolePolicy:RolePolicy") if d.name == f"functions-{function}-policy"]
    return list(json.loads(policy.inputs["policy"])["Statement"])


def expected_s3_reach(run: StackRun) -> dict[str, set[str]]:
    """What each function may reach in S3, written out independently of infra.policies."""
    names = Names("tidewater", run.stack)
    endpoint = endpoint_name(run)
    arn = {zone: f"arn:aws:s3:::{names.bucket(zone)}" for zone in ZONES}
    return {
        "ingest": {f"{arn['raw']}/{RAW_PREFIX}*", f"{arn['curated']}/*", f"{arn['quarantine']}/*"},
        "drift": {
            f"{arn['captures']}/datacapture/{endpoint}/*",
            arn["captures"],
            f"{arn['datasets']}/*",
            f"{arn['artifacts']}/models/{model_name(run)}/*",
            f"{arn['reports']}/drift/{endpoint}/*",
        },
        "traffic": {f"{arn['captures']}/shadow/{endpoint}/*", arn["captures"]},
        "quality": {
            f"{arn['captures']}/datacapture/{endpoint}/*",
            arn["captures"],
            f"{arn['curated']}/labels/*",
            arn["curated"],
            f"{arn['artifacts']}/models/{model_name(run)}/*/metadata.json",
            f"{arn['artifacts']}/models/{model_name(run)}/*/validation_predictions.parquet",
            arn["artifacts"],
            f"{arn['reports']}/quality/{endpoint}/*",
        },
    }


def function_reach_problems(run: StackRun) -> list[str]:
    """Each function role's S3 resources are exactly its own prefixes, and it names no other function's table
    or queue."""
    problems = []
    names = Names("tidewater", run.stack)
    own_state = {
        "ingest": {names.idempotency_table, names.ingest_queue},
        "drift": {names.drift_state_table},
        "traffic": {names.rollout_table},
        "quality": {names.drift_state_table},  # its own keys only (quality_reach_problems)
    }
    for function, expected in expected_s3_reach(run).items():
        statements = _function_policy(run, function)
        resources = {r for s in statements for r in _as_list(s["Resource"])}
        s3 = {r for r in resources if r.startswith("arn:aws:s3:::")}
        if s3 != expected:
            problems.append(f"{function}: S3 reach {sorted(s3)} != {sorted(expected)}")
        foreign = set().union(*(v for k, v in own_state.items() if k != function)) - own_state[function]
        for resource in resources:
            if any(resource.endswith(f"/{name}") or resource.endswith(f":{name}") for name in foreign):
                problems.append(f"{function}: reaches another function's {resource}")
    return problems


def sagemaker_reach_problems(run: StackRun) -> list[str]:
    """The functions reach only the stack's endpoint; the drift role's describe chain (endpoint -> config ->
    model) is scoped to this endpoint's configs and this model's SageMaker models, and covers the stack's own."""
    (endpoint,) = run.of_type("aws:sagemaker/endpoint:Endpoint")
    endpoint_arn = endpoint.state["arn"]
    base = endpoint_arn.split(":endpoint/")[0]
    expected = {
        "drift": {endpoint_arn, f"{base}:endpoint-config/{endpoint_name(run)}-*", f"{base}:model/{model_name(run)}-*"},
        "traffic": {endpoint_arn},
        "ingest": set(),
        "quality": set(),
    }
    problems = []
    reach: dict[str, set[str]] = {}
    for function, want in expected.items():
        statements = _function_policy(run, function)
        reach[function] = {r for s in statements for r in _as_list(s["Resource"]) if r.startswith("arn:aws:sagemaker:")}
        if reach[function] != want:
            problems.append(f"{function}: SageMaker reach {sorted(reach[function])} != {sorted(want)}")
    (config,) = run.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    own = [f"{base}:endpoint-config/{config.state['name']}"]
    own += [f"{base}:model/{m.state['name']}" for m in run.of_type("aws:sagemaker/model:Model")]
    for arn in own:
        if not any(fnmatch.fnmatchcase(arn, pattern) for pattern in reach["drift"]):
            problems.append(f"drift cannot describe the stack's own {arn}")
    return problems


def variant_problems(run: StackRun, weights: dict[str, int]) -> list[str]:
    (config,) = run.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    declared = {v["variantName"]: v["initialVariantWeight"] for v in config.inputs["productionVariants"]}
    problems = []
    if declared != {v: float(w) for v, w in weights.items()}:
        problems.append(f"variant weights {declared} != configured {weights}")
    names = Names("tidewater", run.stack)
    endpoint = endpoint_name(run)
    alarms = {d.inputs["name"]: d for d in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for variant in weights:
        for kind in VARIANT_ALARM_KINDS:
            alarm = alarms.get(names.variant_alarm(endpoint, variant, kind))
            if alarm is None:
                problems.append(f"{variant}: no {kind} alarm")
                continue
            dims = [alarm.inputs.get("dimensions")] + [
                q["metric"]["dimensions"] for q in alarm.inputs.get("metricQueries", []) if q.get("metric")
            ]
            if any(d != {"EndpointName": endpoint, "VariantName": variant} for d in dims if d is not None):
                problems.append(f"{variant}: {kind} alarm watches {dims}")
    return problems


def ingest_wiring_problems(run: StackRun) -> list[str]:
    names = Names("tidewater", run.stack)
    problems = []
    (notification,) = run.of_type("aws:s3/bucketNotification:BucketNotification")
    if notification.inputs["bucket"] != names.bucket("raw"):
        problems.append(f"notifications on {notification.inputs['bucket']}, not the raw bucket")
    queue_arn = next(
        d.state["arn"] for d in run.of_type("aws:sqs/queue:Queue") if d.inputs["name"] == names.ingest_queue
    )
    configs = notification.inputs.get("queues", [])
    if len(configs) != 1 or configs[0].get("filterSuffix"):
        problems.append(f"not one notification for every object under {RAW_PREFIX} (no suffix filter): {configs}")
    for c in configs:
        if c.get("filterPrefix") != RAW_PREFIX or c["queueArn"] != queue_arn or c["events"] != ["s3:ObjectCreated:*"]:
            problems.append(f"notification {c} does not send raw/ object-created events to the ingest queue")
    (mapping,) = run.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    ingest_arn = next(
        d.state["arn"] for d in run.of_type("aws:lambda/function:Function") if d.name == "functions-ingest"
    )
    if mapping.inputs["eventSourceArn"] != queue_arn or mapping.inputs["functionName"] != ingest_arn:
        problems.append("the ingest queue does not feed the ingest function")
    if mapping.inputs.get("functionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append("ingest does not report partial batch failures")
    return problems


def training_reach_problems(run: StackRun) -> list[str]:
    """The SageMaker training role: S3 reach exactly the datasets, its model's versions and the SDK's job files;
    ECR reach exactly the training image repository; trusted by SageMaker in this account only."""
    names = Names("tidewater", run.stack)
    datasets, artifacts = (f"arn:aws:s3:::{names.bucket(z)}" for z in ("datasets", "artifacts"))  # type: ignore[arg-type]
    (policy,) = [d for d in run.of_type("aws:iam/rolePolicy:RolePolicy") if d.name == "training-role-policy"]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    resources = {r for s in statements for r in _as_list(s["Resource"])}
    want_s3 = {f"{datasets}/*", datasets, f"{artifacts}/models/{model_name(run)}/*", f"{artifacts}/training-jobs/*",
               artifacts}  # fmt: skip
    problems = []
    s3 = {r for r in resources if r.startswith("arn:aws:s3:::")}
    if s3 != want_s3:
        problems.append(f"training role: S3 reach {sorted(s3)} != {sorted(want_s3)}")
    repositories = run.of_type("aws:ecr/repository:Repository")
    (repo,) = [d for d in repositories if d.inputs["name"] == names.training_image_repository]
    ecr = {r for r in resources if r.startswith("arn:aws:ecr:")}
    if ecr != {repo.state["arn"]}:
        problems.append(f"training role: ECR reach {sorted(ecr)} != {repo.state['arn']}")
    (role,) = [d for d in run.of_type("aws:iam/role:Role") if d.name == "training-role"]
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    if trust["Principal"] != {"Service": "sagemaker.amazonaws.com"} or "aws:SourceAccount" not in json.dumps(trust):
        problems.append(f"training role trust {trust} is not SageMaker in this account")
    return problems


# ---- the retraining runner (`tide retrain` as a CronJob on EKS, infra/k8s/retraining.py) ----------------------

RETRAINING_RUNNER_ROLE, RETRAINING_RUNNER_POLICY = "retraining-runner-irsa", "retraining-runner-access"
CRON_JOB, CONFIG_MAP, SERVICE_ACCOUNT = (
    "kubernetes:batch/v1:CronJob", "kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:ServiceAccount"
)  # fmt: skip


def _runner_unscoped_problems(statements: list[dict[str, Any]], region: str) -> list[str]:
    """Resource "*" only for the read-only calls AWS authorises on nothing else, kept to the stack's region; the
    challenger's scaling writes only on scalable targets of SageMaker variants' instance counts."""
    problems = []
    in_region = {"StringEquals": {"aws:RequestedRegion": region}}
    for s in statements:
        actions = set(_as_list(s["Action"]))
        if "*" in _as_list(s["Resource"]):
            if not actions <= set(RETRAINING_LIST_ACTIONS) | set(RETRAINING_AUTOSCALING_ACTIONS):
                problems.append(f"runner {s.get('Sid')}: Resource '*' for {sorted(actions)}")
            if s.get("Condition") != in_region:
                problems.append(f"runner {s.get('Sid')}: Resource '*' beyond region {region}: {s.get('Condition')}")
        if actions & set(RETRAINING_SCALING_ACTIONS):
            scoped = s.get("Condition") == {"StringEquals": SAGEMAKER_VARIANT_SCALING}
            if not scoped or not all(r.endswith(":scalable-target/*") for r in _as_list(s["Resource"])):
                problems.append(f"runner {s.get('Sid')}: scaling writes on {s['Resource']} if {s.get('Condition')}")
    return problems


def retraining_runner_problems(run: StackRun) -> list[str]:
    """The runner is a CronJob of its own service account in the training namespace, reading the stack outputs
    from its ConfigMap; its IRSA role trusts exactly that account and reaches exactly: the retraining queue, the
    dataset manifests, its model's prefixes of artifacts, its own training jobs (passing only the training role,
    only to SageMaker) and, at stage serving, only the stack's endpoint, its alarms, the rollout table and bus."""
    names = Names("tidewater", run.stack)
    model = model_name(run)
    namespace, account = names.k8s_namespace("training"), names.retraining_runner
    problems: list[str] = []
    jobs = [d for d in run.of_type(CRON_JOB) if d.inputs["metadata"]["name"] == account]
    if len(jobs) != 1:
        return [f"expected one CronJob {account}, found {len(jobs)}"]
    job = jobs[0].inputs
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    if job["metadata"]["namespace"] != namespace or pod.get("serviceAccountName") != account:
        problems.append(f"runner runs in {job['metadata']['namespace']} as {pod.get('serviceAccountName')}")
    mounted = {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
    if container["command"][:2] != ["tide", "retrain"] or mounted != {account}:
        problems.append(f"runner command {container['command']} / ConfigMaps {sorted(mounted)}")
    configs = [d for d in run.of_type(CONFIG_MAP) if d.inputs["metadata"]["name"] == account]
    document = json.loads(configs[0].inputs["data"]["stack.json"]) if len(configs) == 1 else {}
    if not {"retraining_queue_url", "training_role_arn", "buckets", "retraining"} <= set(document):
        problems.append(f"runner's stack outputs ConfigMap holds {sorted(document)}")
    role = run.one("aws:iam/role:Role", RETRAINING_RUNNER_ROLE)
    (sa,) = [d for d in run.of_type(SERVICE_ACCOUNT) if d.inputs["metadata"]["name"] == account] or [None]
    if (
        sa is None
        or sa.inputs["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn") != role.state["arn"]
    ):
        problems.append("runner's service account does not carry its IRSA role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    subjects = [v for k, v in trust["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    if subjects != [f"system:serviceaccount:{namespace}:{account}"]:
        problems.append(f"runner role trusts {subjects}")
    statements = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", RETRAINING_RUNNER_POLICY).inputs["policy"])
    reach = {r for s in statements["Statement"] for r in _as_list(s["Resource"])}
    datasets, artifacts = (f"arn:aws:s3:::{names.bucket(z)}" for z in ("datasets", "artifacts"))  # type: ignore[arg-type]
    want_s3 = {datasets, f"{datasets}/*", artifacts, f"{artifacts}/models/{model}/*",
               f"{artifacts}/training-jobs/*", f"{artifacts}/retraining/{model}/*"}  # fmt: skip
    s3 = {r for r in reach if r.startswith("arn:aws:s3:::")}
    if s3 != want_s3:
        problems.append(f"runner S3 reach {sorted(s3 - want_s3)} beyond / {sorted(want_s3 - s3)} missing")
    queues = {r for r in reach if r.startswith("arn:aws:sqs:")}
    if queues != {f"arn:aws:sqs:{run_region(run)}:123456789012:{names.retraining_queue}"}:
        problems.append(f"runner consumes {sorted(queues)}")
    roles = {d.name: d.state["arn"] for d in run.of_type("aws:iam/role:Role")}
    passable = {roles["training-role"]} | ({roles["endpoint-role"]} if "endpoint-role" in roles else set())
    for s in statements["Statement"]:
        if "iam:PassRole" in _as_list(s["Action"]):
            passed = set(_as_list(s["Resource"]))
            service = (s.get("Condition") or {}).get("StringEquals", {}).get("iam:PassedToService")
            if not passed <= passable or service != "sagemaker.amazonaws.com":
                problems.append(f"runner passes {sorted(passed)} to {service}")
    sagemaker = {r for r in reach if r.startswith("arn:aws:sagemaker:")}
    endpoint = names.endpoint(model)
    allowed = (
        ":training-job/retrain-*",
        f":endpoint/{endpoint}",
        f":endpoint-config/{endpoint}-*",
        f":model/{model}-*",
    )
    if stray := sorted(r for r in sagemaker if not r.endswith(allowed)):
        problems.append(f"runner reaches SageMaker resources {stray}")
    problems += _runner_unscoped_problems(statements["Statement"], run_region(run))
    other = reach - s3 - queues - sagemaker - passable - {"*"}
    allowed_other = (f"alarm:{endpoint}-*", f"table/{names.rollout_table}", f"event-bus/{names.event_bus}",
                     lake_key_arn(run), f"{run_region(run)}:123456789012:scalable-target/*")  # fmt: skip
    if stray := sorted(r for r in other if not r.endswith(allowed_other)):
        problems.append(f"runner reaches {stray}")
    return problems


RETRAINING_SCHEDULE = "functions-retraining-schedule"


def retraining_trigger_problems(run: StackRun) -> list[str]:
    """Every retraining trigger on the stack's bus reaches the retraining queue through one rule; with
    retrain_scheduled, a schedule puts a valid RetrainingScheduled for the stack's model on that bus, its role
    reaching only that bus (PutEvents) and the retraining DLQ (failed deliveries) and trusted by the scheduler of
    this account only."""
    names = Names("tidewater", run.stack)
    problems: list[str] = []
    queues = {d.inputs["name"]: d.state["arn"] for d in run.of_type("aws:sqs/queue:Queue")}
    targets = {d.inputs["rule"]: d.inputs["arn"] for d in run.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    routed = {
        t: targets.get(rule.state["name"])
        for rule in run.of_type("aws:cloudwatch/eventRule:EventRule")
        for t in json.loads(rule.inputs["eventPattern"])["detail-type"]
    }
    for trigger in RETRAINING_TRIGGERS:
        if routed.get(trigger) != queues[names.retraining_queue]:
            problems.append(f"{trigger} goes to {routed.get(trigger)}, not the retraining queue")
    schedules = [d for d in run.of_type("aws:scheduler/schedule:Schedule") if d.name == RETRAINING_SCHEDULE]
    if not schedules:
        return problems
    target = schedules[0].inputs["target"]
    (bus,) = run.of_type("aws:cloudwatch/eventBus:EventBus")
    if target["arn"] != bus.state["arn"] or target.get("eventbridgeParameters") != {
        "detailType": "RetrainingScheduled", "source": EVENT_SOURCE}:  # fmt: skip
        problems.append(f"the retraining schedule targets {target['arn']} with {target.get('eventbridgeParameters')}")
    detail = json.loads(target["input"])
    placeholders = {"occurred_at": "2026-11-30T06:00:00Z"}  # what the scheduler substitutes
    try:
        event = RetrainingScheduled.model_validate(detail | placeholders)
        if event.model != model_name(run):
            problems.append(f"the schedule retrains {event.model}, the stack serves {model_name(run)}")
    except ValueError as err:
        problems.append(f"the schedule's input is no RetrainingScheduled: {err}")
    role = run.one("aws:iam/role:Role", "functions-retraining-schedule-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    if trust["Principal"] != {"Service": "scheduler.amazonaws.com"} or "aws:SourceAccount" not in json.dumps(trust):
        problems.append(f"the schedule's role trusts {trust}")
    policy_of = run.one("aws:iam/rolePolicy:RolePolicy", "functions-retraining-schedule-policy")
    policy = json.loads(policy_of.inputs["policy"])
    grants = {(a, r) for st in policy["Statement"] for a in _as_list(st["Action"]) for r in _as_list(st["Resource"])}
    want = {("events:PutEvents", bus.state["arn"]), ("sqs:SendMessage", queues[names.retraining_dlq])}
    if grants != want or target.get("deadLetterConfig", {}).get("arn") != queues[names.retraining_dlq]:
        problems.append(f"the schedule's role reaches {sorted(grants - want)} beyond its bus and DLQ")
    return problems


def run_region(run: StackRun) -> str:
    (queue,) = [d for d in run.of_type("aws:sqs/queue:Queue") if d.state["name"].endswith("-retraining")]
    return str(queue.state["arn"]).split(":")[3]


# ---- the quality function (functions/quality on its schedule) --------------------------------------------------


def _statement_key(s: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    return (
        tuple(sorted(_as_list(s["Action"]))),
        tuple(sorted(_as_list(s["Resource"]))),
        json.dumps(s.get("Condition") or {}, sort_keys=True),
    )


def expected_quality_statements(run: StackRun) -> set[tuple[tuple[str, ...], tuple[str, ...], str]]:
    """The quality role's whole policy, written out independently of infra.policies: each statement's actions,
    resources and condition. Anything added, widened or dropped differs."""
    names = Names("tidewater", run.stack)
    endpoint, model = endpoint_name(run), model_name(run)
    captures, curated = f"arn:aws:s3:::{names.bucket('captures')}", f"arn:aws:s3:::{names.bucket('curated')}"
    artifacts, reports = f"arn:aws:s3:::{names.bucket('artifacts')}", f"arn:aws:s3:::{names.bucket('reports')}"
    region = run_region(run)
    table = f"arn:aws:dynamodb:{region}:123456789012:table/{names.drift_state_table}"
    bus = f"arn:aws:events:{region}:123456789012:event-bus/{names.event_bus}"
    logs = f"arn:aws:logs:{region}:123456789012:log-group:/aws/lambda/{names.function('quality')}:*"

    def prefix(p: str) -> dict[str, Any]:
        return {"StringLike": {"s3:prefix": [p]}}

    statements = [
        (["s3:GetObject"], [f"{captures}/datacapture/{endpoint}/*"], None),
        (["s3:ListBucket"], [captures], prefix(f"datacapture/{endpoint}/*")),
        (["s3:GetObject"], [f"{curated}/labels/*"], None),
        (["s3:ListBucket"], [curated], prefix("labels/_commits/*")),
        (["s3:GetObject"], [f"{artifacts}/models/{model}/*/metadata.json",
                            f"{artifacts}/models/{model}/*/validation_predictions.parquet"], None),
        (["s3:ListBucket"], [artifacts], prefix(f"models/{model}/*")),
        (["s3:PutObject"], [f"{reports}/quality/{endpoint}/*"], None),
        (["dynamodb:GetItem", "dynamodb:PutItem"], [table],
         {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"quality#{endpoint}#*"]}}),
        (["events:PutEvents"], [bus], None),
        (["logs:CreateLogStream", "logs:PutLogEvents"], [logs], None),
        (["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"], None),
        (["cloudwatch:PutMetricData"], ["*"], {"StringEquals": {"cloudwatch:namespace": "Tidewater"}}),
        (["kms:Decrypt", "kms:GenerateDataKey"], [lake_key_arn(run)], None),
    ]  # fmt: skip
    return {_statement_key({"Action": a, "Resource": r, "Condition": c}) for a, r, c in statements}


def quality_reach_problems(run: StackRun) -> list[str]:
    """The quality role holds exactly the expected statements and is assumable by Lambda only."""
    declared = {_statement_key(s) for s in _function_policy(run, "quality")}
    expected = expected_quality_statements(run)
    problems = [f"quality role: unexpected {s}" for s in sorted(declared - expected)]
    problems += [f"quality role: missing {s}" for s in sorted(expected - declared)]
    role = run.one("aws:iam/role:Role", "functions-quality-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    if trust.get("Principal") != {"Service": "lambda.amazonaws.com"}:
        problems.append(f"quality role trusts {trust.get('Principal')}")
    return problems


def quality_schedule_problems(run: StackRun, schedule_expression: str) -> list[str]:
    """The quality function runs on its own schedule with an empty detail (the stack's endpoint and model, from
    its environment), failed invocations go to the schedules DLQ, and the schedule's role may invoke exactly this
    function and send to exactly that DLQ, assumed by EventBridge Scheduler of this account only."""
    names = Names("tidewater", run.stack)
    function = run.one("aws:lambda/function:Function", "functions-quality")
    problems = []
    env = function.inputs["environment"]["variables"]
    want_env = {"TIDE_PROJECT": "tidewater", "TIDE_STACK": run.stack, "TIDE_ENDPOINT": endpoint_name(run),
                "TIDE_MODEL": model_name(run), "TIDE_STATE_TABLE": names.drift_state_table,
                "TIDE_EVENT_BUS": names.event_bus}  # fmt: skip
    if {k: env.get(k) for k in want_env} != want_env:
        problems.append(f"quality environment {env} lacks {want_env}")
    if function.inputs.get("handler") != "functions.quality.handler.lambda_handler":
        problems.append(f"quality handler {function.inputs.get('handler')}")
    schedules = [
        d for d in run.of_type("aws:scheduler/schedule:Schedule") if d.inputs["name"] == names.schedule("quality")
    ]
    if len(schedules) != 1:
        return [*problems, f"expected one quality schedule, found {len(schedules)}"]
    schedule = schedules[0].inputs
    target = schedule["target"]
    dlq = next(d.state["arn"] for d in run.of_type("aws:sqs/queue:Queue") if d.inputs["name"] == names.schedules_dlq)
    if schedule["scheduleExpression"] != schedule_expression:
        problems.append(f"quality runs on {schedule['scheduleExpression']}, not {schedule_expression}")
    if target["arn"] != function.state["arn"] or json.loads(target["input"]) != {"detail": {}}:
        problems.append(f"quality schedule targets {target['arn']} with {target['input']}")
    if (target.get("deadLetterConfig") or {}).get("arn") != dlq:
        problems.append("quality schedule has no dead-letter queue")
    role = next(d for d in run.of_type("aws:iam/role:Role") if d.state["arn"] == target["roleArn"])
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    if trust["Principal"] != {"Service": "scheduler.amazonaws.com"} or "aws:SourceAccount" not in json.dumps(trust):
        problems.append(f"quality schedule role trust {trust}")
    policy = run.one("aws:iam/rolePolicy:RolePolicy", "functions-quality-schedule-policy")
    reach = {_statement_key(s) for s in json.loads(policy.inputs["policy"])["Statement"]}
    want = {(("lambda:InvokeFunction",), (function.state["arn"],), "{}"), (("sqs:SendMessage",), (dlq,), "{}")}
    if reach != want:
        problems.append(f"quality schedule role reaches {sorted(reach)}")
    return problems
