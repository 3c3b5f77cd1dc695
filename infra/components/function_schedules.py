"""The Functions component's schedules: drift, traffic and quality run on EventBridge Scheduler schedules, each
with its own role that may invoke that one function and dead-letter to the schedules DLQ (retries, then the DLQ).
Every resource here is a child of the Functions component (`parent`), named after it.
"""

from __future__ import annotations

import json
from typing import Final

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.config import StackConfig
from schemas.naming import Names

# A stale traffic tick is worse than the next one; a daily quality run is still worth running hours late.
SCHEDULE_MAX_EVENT_AGE: Final = {"drift": 3600, "traffic": 60, "quality": 6 * 3600}


def function_schedule(
    name: str,
    names: Names,
    cfg: StackConfig,
    account: pulumi.Output[str],
    fn: str,
    function: aws.lambda_.Function,
    dlq: aws.sqs.Queue,
    *,
    parent: pulumi.Resource,
) -> aws.scheduler.Schedule:
    """fn's schedule from the stack config, invoking `function` with an empty detail (the stack's endpoint)."""
    role = aws.iam.Role(
        f"{name}-{fn}-schedule-role",
        # EventBridge Scheduler passes aws:SourceAccount: the confused-deputy guard its docs recommend.
        assume_role_policy=account.apply(
            lambda a: json.dumps(policies.assume_role("scheduler.amazonaws.com", source_account=a))
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.iam.RolePolicy(
        f"{name}-{fn}-schedule-policy",
        role=role.id,
        policy=pulumi.Output.all(function.arn, dlq.arn).apply(
            lambda v: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": policies.invoke_policy("Invoke", v[0])["Statement"]
                    + policies.send_policy("DeadLetters", [v[1]])["Statement"],
                }
            )
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    schedule = {"drift": cfg.drift_schedule, "traffic": cfg.traffic_schedule, "quality": cfg.quality_schedule}[fn]
    return aws.scheduler.Schedule(
        f"{name}-{fn}-schedule",
        name=names.schedule(fn),
        schedule_expression=schedule,
        flexible_time_window={"mode": "OFF"},
        target={
            "arn": function.arn,
            "role_arn": role.arn,
            # Empty: the stack's endpoint (drift checks its champion against the champion's baseline;
            # traffic ticks every rollout; quality judges the day whose labels have had time to arrive).
            "input": json.dumps({"detail": {}}),
            "retry_policy": {
                "maximum_retry_attempts": 2,
                "maximum_event_age_in_seconds": SCHEDULE_MAX_EVENT_AGE[fn],
            },
            "dead_letter_config": {"arn": dlq.arn},
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )
