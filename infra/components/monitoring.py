"""Alerts (the SNS topic every alarm and the budget publish to) and Monitoring (dashboard, DLQ-depth, queue-age
and function-error alarms, the monthly budget).

Alerts is created first so the endpoint's per-variant alarms can notify it; Monitoring last, once the queues and
functions it watches exist. The budget covers the whole account: a per-stack cost filter would need a cost
allocation tag activated in the billing console, which a program cannot do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.endpoint import ModelEndpoint
from infra.components.functions import Functions
from infra.config import StackConfig
from schemas.naming import Names


class Alerts(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        *,
        names: Names,
        cfg: StackConfig,
        key_arn: pulumi.Input[str],
        account_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:monitoring:Alerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(f"{name}-topic", name=names.alert_topic, kms_master_key_id=key_arn, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, account_id).apply(
                lambda v: json.dumps(policies.alert_topic_policy(v[0], v[1]))
            ),
            opts=child,
        )
        if cfg.alert_email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=self.topic.arn, protocol="email", endpoint=cfg.alert_email, opts=child
            )
        self.register_outputs({"topic_arn": self.topic.arn})


def _widget(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {"title": title, "metrics": metrics, "stat": stat, "period": 300, "view": "timeSeries"},
    }


def _per_variant(title: str, endpoint: str, metric: str, stat: str) -> dict[str, Any]:
    """One line per live variant of the endpoint: a SEARCH, so variants `tide deploy` adds appear by themselves."""
    search = (
        f'SEARCH(\'{{AWS/SageMaker,EndpointName,VariantName}} EndpointName="{endpoint}" '
        f"MetricName=\"{metric}\"', '{stat}', 300)"
    )
    return _widget(title, [[{"expression": search, "id": "v"}]], stat)


def dashboard_body(
    region: str, queues: Mapping[str, str], functions: Mapping[str, str], endpoint: str | None
) -> dict[str, Any]:
    """The CloudWatch dashboard (pure): queues, functions and, once there is one, the endpoint's variants."""
    widgets = [
        _widget(
            "Queue depth",
            [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q] for q in queues.values()],
            "Maximum",
        ),
        _widget("Function errors", [["AWS/Lambda", "Errors", "FunctionName", f] for f in functions.values()]),
        _widget(
            "Function duration p95",
            [["AWS/Lambda", "Duration", "FunctionName", f] for f in functions.values()],
            "p95",
        ),
    ]
    if endpoint is not None:
        widgets += [
            _per_variant("Invocations per variant", endpoint, "Invocations", "Sum"),
            _per_variant("5XX per variant", endpoint, "Invocation5XXErrors", "Sum"),
            _per_variant("Model latency p99 (us)", endpoint, "ModelLatency", "p99"),
        ]
    for widget in widgets:
        widget["properties"]["region"] = region
    return {"widgets": widgets}


class Monitoring(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        *,
        names: Names,
        cfg: StackConfig,
        alerts: Alerts,
        functions: Functions,
        endpoint: ModelEndpoint | None,
        region: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = alerts.topic.arn
        dlqs = {
            "ingest-dlq": functions.ingest_dlq,
            "retraining-dlq": functions.retraining_dlq,
            "handoff-dlq": functions.handoff_dlq,
        }
        if functions.schedules_dlq is not None:
            dlqs["schedules-dlq"] = functions.schedules_dlq
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for label, queue in dlqs.items():
            self.alarms[label] = aws.cloudwatch.MetricAlarm(
                f"{name}-{label}-depth",
                name=queue.name.apply(lambda q: f"{q}-depth"),
                alarm_description="Messages are waiting in a dead-letter queue: inspect, fix, redrive",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue.name},
                statistic="Maximum",
                period=300,
                evaluation_periods=1,
                comparison_operator="GreaterThanThreshold",
                threshold=0.0,
                treat_missing_data="notBreaching",
                alarm_actions=[topic],
                opts=child,
            )
        self.alarms["ingest-queue-age"] = aws.cloudwatch.MetricAlarm(
            f"{name}-ingest-queue-age",
            name=f"{names.ingest_queue}-oldest-message-age",
            alarm_description="Raw files wait too long for ingestion",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": functions.ingest_queue.name},
            statistic="Maximum",
            period=300,
            evaluation_periods=3,
            comparison_operator="GreaterThanThreshold",
            threshold=900.0,
            treat_missing_data="notBreaching",
            alarm_actions=[topic],
            opts=child,
        )
        for fn, function in functions.functions.items():
            self.alarms[f"{fn}-errors"] = aws.cloudwatch.MetricAlarm(
                f"{name}-{fn}-errors",
                name=f"{names.function(fn)}-errors",
                alarm_description=f"{fn} function invocations failed",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": function.name},
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=1.0,
                treat_missing_data="notBreaching",
                alarm_actions=[topic],
                opts=child,
            )
        queues = {
            "ingest": functions.ingest_queue,
            "retraining": functions.retraining_queue,
            "handoff": functions.handoff_queue,
            **dlqs,
        }
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=names.prefix,
            dashboard_body=pulumi.Output.all(
                region,
                pulumi.Output.all(*[q.name for q in queues.values()]),
                pulumi.Output.all(*[f.name for f in functions.functions.values()]),
            ).apply(
                lambda v: json.dumps(
                    dashboard_body(
                        v[0],
                        dict(zip(queues, v[1], strict=True)),
                        dict(zip(functions.functions, v[2], strict=True)),
                        endpoint.endpoint_name if endpoint is not None else None,
                    )
                )
            ),
            opts=child,
        )
        notifications = [
            {
                "comparison_operator": "GREATER_THAN",
                "notification_type": kind,
                "threshold": threshold,
                "threshold_type": "PERCENTAGE",
                "subscriber_sns_topic_arns": [topic],
            }
            for kind, threshold in (("FORECASTED", 100.0), ("ACTUAL", 80.0), ("ACTUAL", 100.0))
        ]
        self.budget = aws.budgets.Budget(
            f"{name}-budget",
            name=f"{names.prefix}-monthly",
            budget_type="COST",
            limit_amount=f"{cfg.monthly_budget_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            notifications=notifications,  # type: ignore[arg-type]
            opts=child,
        )
        self.register_outputs({"dashboard": self.dashboard.dashboard_name, "budget": self.budget.name})
