"""Scheduled retraining without drift: an EventBridge Scheduler schedule that puts RetrainingScheduled on the
stack's bus (Pulumi config retrain_scheduled, off when ""). The bus rule of infra.components.functions takes it to
the retraining queue with DriftDetected and ModelQualityDegraded, so the retraining runner sees one kind of message
whatever asked for the retraining; going through the bus (rather than straight to the queue) also lets any other
consumer of platform events see it.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.config import StackConfig
from schemas.naming import EVENT_SOURCE, Names


def retraining_schedule(
    name: str,
    names: Names,
    cfg: StackConfig,
    account: pulumi.Output[str],
    bus: aws.cloudwatch.EventBus,
    dlq: aws.sqs.Queue,
    *,
    parent: pulumi.Resource,
) -> aws.scheduler.Schedule:
    """RetrainingScheduled for the stack's model and retrain_scheduled_dataset at retrain_scheduled: the
    scheduler's role may put events on this bus and dead-letter to the retraining DLQ, nothing else."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-retraining-schedule-role",
        # EventBridge Scheduler passes aws:SourceAccount: the confused-deputy guard its docs recommend.
        assume_role_policy=account.apply(
            lambda a: json.dumps(policies.assume_role("scheduler.amazonaws.com", source_account=a))
        ),
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-retraining-schedule-policy",
        role=role.id,
        policy=pulumi.Output.all(bus.arn, dlq.arn).apply(
            lambda v: json.dumps(
                policies.document(
                    policies.allow("PutRetrainingScheduled", ["events:PutEvents"], [v[0]]),
                    *policies.send_policy("DeadLetters", [v[1]])["Statement"],
                )
            )
        ),
        opts=opts,
    )
    # The detail, with the scheduler's own substitutions (its context attributes) for the time and ARN.
    detail = {
        "model": cfg.model_name,
        "dataset": cfg.retrain_scheduled_dataset,
        "schedule": "<aws.scheduler.schedule-arn>",
        "occurred_at": "<aws.scheduler.scheduled-time>",
    }
    return aws.scheduler.Schedule(
        f"{name}-retraining-schedule",
        name=names.retraining_schedule,
        schedule_expression=cfg.retrain_scheduled,
        flexible_time_window={"mode": "OFF"},
        target={
            "arn": bus.arn,
            "role_arn": role.arn,
            "eventbridge_parameters": {"detail_type": "RetrainingScheduled", "source": EVENT_SOURCE},
            "input": json.dumps(detail),
            "retry_policy": {"maximum_retry_attempts": 10, "maximum_event_age_in_seconds": 24 * 3600},
            "dead_letter_config": {"arn": dlq.arn},
        },
        opts=opts,
    )
