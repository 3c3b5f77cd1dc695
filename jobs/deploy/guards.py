"""A variant `tide deploy` adds gets the same guards as the variant serving now: its alarms and its autoscaling.

The stack creates the alarms (<endpoint>-<variant>-<kind>, schemas.naming.variant_alarm) and the target-tracking
scaling of the endpoint's first variants; after that, variants come and go through `tide deploy` and the traffic
function. So the guards follow the live variant names: for a new variant, each alarm of the source variant (the
one with the most traffic) is copied with the variant's dimension and name swapped, and its scalable target and
scaling policies are registered again for the new variant. The traffic function may read every alarm named after
its endpoint (infra: policies.endpoint_alarms_arn), so a copied alarm is one it can check before each step.

The copies are pure functions of describe_* answers (`alarm_copy`, `policy_copy`); `VariantGuards` applies them
with injected boto3 clients (cloudwatch, application-autoscaling). Each put is idempotent (same name, same
content), so a failed deploy is completed by running it again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from schemas.naming import VARIANT_ALARM_KINDS, variant_alarm

# PutMetricAlarm's parameters that DescribeAlarms returns under the same name.
ALARM_FIELDS = (
    "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions", "MetricName",
    "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
    "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile",
    "Metrics", "ThresholdMetricId",
)  # fmt: skip
METRIC_QUERY_FIELDS = ("Id", "MetricStat", "Expression", "Label", "ReturnData", "Period", "AccountId")
NAMESPACE, DIMENSION = "sagemaker", "sagemaker:variant:DesiredInstanceCount"


class GuardError(RuntimeError):
    """The source variant's guards cannot be copied (none found where the stack puts them)."""


def _swap_dimensions(dimensions: list[dict[str, str]], source: str, target: str) -> list[dict[str, str]]:
    return [
        {"Name": d["Name"], "Value": target if d["Name"] == "VariantName" and d["Value"] == source else d["Value"]}
        for d in dimensions
    ]


def alarm_copy(described: dict[str, Any], endpoint: str, source: str, target: str, kind: str) -> dict[str, Any]:
    """PutMetricAlarm arguments for `target`'s alarm of `kind`, from `source`'s alarm as DescribeAlarms gave it."""
    request = {key: copy.deepcopy(described[key]) for key in ALARM_FIELDS if described.get(key) not in (None, [])}
    request["AlarmName"] = variant_alarm(endpoint, target, kind)
    if "Dimensions" in request:
        request["Dimensions"] = _swap_dimensions(request["Dimensions"], source, target)
    if "Metrics" in request:
        queries = []
        for query in request["Metrics"]:
            query = {k: v for k, v in query.items() if k in METRIC_QUERY_FIELDS}
            metric = query.get("MetricStat", {}).get("Metric")
            if metric and "Dimensions" in metric:
                metric["Dimensions"] = _swap_dimensions(metric["Dimensions"], source, target)
            queries.append(query)
        request["Metrics"] = queries
    description = str(request.get("AlarmDescription", ""))
    if description.startswith(f"{source}:"):  # the stack's descriptions start with the variant's name
        request["AlarmDescription"] = f"{target}:{description.removeprefix(f'{source}:')}"
    return request


def policy_copy(described: dict[str, Any], endpoint: str, target: str) -> dict[str, Any]:
    """PutScalingPolicy arguments for `target` from one of the source variant's scaling policies."""
    request: dict[str, Any] = {
        "PolicyName": f"{endpoint}-{target}-{described['PolicyType'].lower()}"[:256],
        "ServiceNamespace": NAMESPACE,
        "ResourceId": variant_resource_id(endpoint, target),
        "ScalableDimension": DIMENSION,
        "PolicyType": described["PolicyType"],
    }
    for key in ("TargetTrackingScalingPolicyConfiguration", "StepScalingPolicyConfiguration"):
        if key in described:
            request[key] = copy.deepcopy(described[key])
    return request


def variant_resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


@dataclass
class GuardsCopied:
    alarms: list[str] = field(default_factory=list)
    scaling_policies: list[str] = field(default_factory=list)
    scalable_target: bool = False


class VariantGuards:
    def __init__(self, cloudwatch: Any, autoscaling: Any) -> None:
        self._cw = cloudwatch
        self._aas = autoscaling

    def source_alarms(self, endpoint: str, source: str) -> dict[str, dict[str, Any]]:
        """kind -> the source variant's alarm, for the kinds the stack creates."""
        wanted = {variant_alarm(endpoint, source, kind): kind for kind in VARIANT_ALARM_KINDS}
        found = self._cw.describe_alarms(AlarmNames=sorted(wanted), AlarmTypes=["MetricAlarm"])["MetricAlarms"]
        return {wanted[a["AlarmName"]]: a for a in found if a["AlarmName"] in wanted}

    def copy(self, endpoint: str, source: str, target: str) -> GuardsCopied:
        alarms = self.source_alarms(endpoint, source)
        if not alarms:
            names = ", ".join(variant_alarm(endpoint, source, k) for k in VARIANT_ALARM_KINDS)
            raise GuardError(f"variant {source!r} of {endpoint} has none of the alarms the stack creates ({names})")
        done = GuardsCopied()
        for kind, described in sorted(alarms.items()):
            request = alarm_copy(described, endpoint, source, target, kind)
            self._cw.put_metric_alarm(**request)
            done.alarms.append(request["AlarmName"])
        source_id = variant_resource_id(endpoint, source)
        targets = self._aas.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[source_id], ScalableDimension=DIMENSION
        )["ScalableTargets"]
        if not targets:  # the source variant does not scale: neither does its copy
            return done
        (scalable,) = targets
        self._aas.register_scalable_target(
            ServiceNamespace=NAMESPACE, ResourceId=variant_resource_id(endpoint, target), ScalableDimension=DIMENSION,
            MinCapacity=scalable["MinCapacity"], MaxCapacity=scalable["MaxCapacity"],
        )  # fmt: skip
        done.scalable_target = True
        policies = self._aas.describe_scaling_policies(
            ServiceNamespace=NAMESPACE, ResourceId=source_id, ScalableDimension=DIMENSION
        )["ScalingPolicies"]
        for described in policies:
            request = policy_copy(described, endpoint, target)
            self._aas.put_scaling_policy(**request)
            done.scaling_policies.append(request["PolicyName"])
        return done
