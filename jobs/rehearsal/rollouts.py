"""The rehearsal's rollout stages: a challenger compared in shadow behind the champion's predictor, and canaried
by the traffic service, one simulated minute per tick, over HTTP traffic from the router, with the predictors'
own counters as the CloudWatch metrics it judges.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs import datagen
from jobs.rehearsal.stages import DRIFT
from schemas.contract import load_contract
from schemas.naming import SHADOW_ROOT

if TYPE_CHECKING:
    from jobs.rehearsal.stages import Model, World

FIRST_TRAFFIC_DAY = dt.date(2026, 11, 6)  # the rollouts' traffic: the day after the drifted days
# The retraining rollouts judge 5XX only: the fault drill is what they show, and a challenger at 5 % of the
# traffic measures two to three times the champion's latency on two shared cores, warmed or not (bench_serving:
# canary split). The compressed challenger's canary, at equal shares, adds latency (jobs/rehearsal/compression.py).
FIVE_XX_ONLY = [{"name": "error_rate", "kind": "rate", "metric": "errors", "margin": 1.0}]


@dataclass
class RolloutClock:
    """The rollouts' simulated minutes: each rollout's follow the previous one's."""

    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


def shadow_compare(world: World, champion: Model, challenger: Model, day: dt.date) -> dict[str, Any]:
    """The champion's predictor mirrors a quarter of its requests to the challenger's and logs the pairs where
    the traffic function reads them (shadow/<endpoint>/ in the captures bucket); callers get only the
    champion's answers. The report is the traffic function's own reading of the challenger's pairs."""
    from functions.traffic.shadow import S3ShadowLog

    contract = load_contract("transactions")
    table = datagen.generate(2_000, day, world.settings.seed + 2000, DRIFT)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    world.serve_live_variants(shadow=(champion, challenger, 0.25))
    records = table.select([f.name for f in contract.features]).to_pylist()
    now = dt.datetime.now(dt.UTC)
    world.router.serve(records, [now] * len(records), {champion.variant: 1.0}, rows_per_request=1, capture=False)
    world.serve_live_variants()  # the champion without the mirror: its graceful stop flushes the pairs
    log = S3ShadowLog(world.cloud.client("s3"), world.bucket("captures"), SHADOW_ROOT)
    report = log.report(world.endpoint, since, challenger=challenger.variant)
    if report is None:
        raise RuntimeError("the champion's predictor logged no shadow pairs")
    world.echo(
        f"      shadow: {champion.label}'s predictor mirrored {report.pairs + report.challenger_errors} of "
        f"{len(records)} requests to {challenger.label}'s; label agreement {report.label_agreement:.1%}, "
        f"mean score difference {report.mean_score_difference:.4f}, {report.challenger_errors} challenger errors"
    )
    return {"challenger": challenger.label, "pairs": report.pairs, "label_agreement": report.label_agreement,
            "mean_score_difference": report.mean_score_difference,
            "challenger_errors": report.challenger_errors}  # fmt: skip


def rollout(
    world: World, champion: Model, challenger: Model, guardrails: list[dict[str, Any]] | None = None,
    warm_up: int = 0, steps: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0), stage: str | None = None,
) -> str:  # fmt: skip
    """Canary `challenger` against `champion` with the traffic service, one simulated minute per tick, judged
    on `guardrails` (default: 5XX only, see FIVE_XX_ONLY). With `warm_up`, each predictor first answers that
    many single-row requests (not counted in the rollout's minutes), as a readiness warm-up would, so the
    latency guardrail compares two warm processes. The per-variant counters over the rollout are kept in
    `world.rollout_counts[challenger.label]`."""
    from functions.common.events import EventBridgePublisher
    from functions.traffic.adapters.cloudwatch import CloudWatchMetrics
    from functions.traffic.adapters.store import DynamoDBStateStore
    from functions.traffic.config import load_config
    from functions.traffic.service import Rollouts
    from functions.traffic.shadow import S3ShadowLog

    # Each rollout's minutes follow the previous one's, so no minute's CloudWatch datapoints are read twice.
    if world.clock is None:
        world.clock = RolloutClock(dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=5))
    clock = world.clock
    backend = world.backend()
    rollouts = Rollouts(
        store=DynamoDBStateStore(world.cloud.client("dynamodb"), world.names.rollout_table), backend=backend,
        metrics=CloudWatchMetrics(world.cloud.client("cloudwatch")),
        publisher=EventBridgePublisher(world.cloud.client("events"), world.names.event_bus), clock=clock,
        shadow=S3ShadowLog(world.cloud.client("s3"), world.bucket("captures"), SHADOW_ROOT),
    )  # fmt: skip
    config = load_config({
        "endpoint": world.endpoint, "champion": champion.variant, "challenger": challenger.variant,
        "strategy": {"kind": "canary", "steps": list(steps), "bake_minutes": 5, "min_requests": 200},
        "max_duration_minutes": world.settings.max_rollout_minutes,
        "judge": {"guardrails": guardrails or FIVE_XX_ONLY},
    })  # fmt: skip
    contract = load_contract("transactions")
    traffic = datagen.generate(5_000, FIRST_TRAFFIC_DAY, world.settings.seed + 3000)
    records = traffic.select([f.name for f in contract.features]).to_pylist()
    if warm_up:
        world.router.warm_up([champion.variant, challenger.variant], records[:warm_up])
    rollouts.start(config, rollout_id=f"{challenger.label}-canary")
    stage = stage or ("[5/7]" if challenger.error_rate <= champion.error_rate else "[6/7]")
    world.echo(f"{stage} canary {challenger.label} vs {champion.label}: {world.settings.rollout_rpm} req/min over "
               f"HTTP, fault drill 5XX {champion.error_rate:.0%} / {challenger.error_rate:.0%}; CloudWatch "
               "metrics from the predictors' /metrics")  # fmt: skip
    world.router.reset_minutes()
    before = {v: world.fleet_counts(v) for v in (champion.variant, challenger.variant)}
    cloudwatch = world.cloud.client("cloudwatch")
    decision = "running"
    labels = {champion.variant: champion.label, challenger.variant: challenger.label}  # printed, reported
    for minute in range(world.settings.max_rollout_minutes + 10):
        start = (minute * world.settings.rollout_rpm) % len(records)
        batch = (records * 2)[start : start + world.settings.rollout_rpm]
        world.router.minute(cloudwatch, clock.now, batch, backend.weights(world.endpoint))
        clock.now += dt.timedelta(minutes=1)
        result = rollouts.tick(world.endpoint)
        if result is not None and result.action != "wait":
            world.echo(
                f"      minute {minute + 1:3d}: {result.action} -> weights "
                f"{ {labels.get(k, k): round(v, 2) for k, v in result.weights.items()} } ({result.reason})"
            )
        if result is not None and result.action in ("promote", "rollback"):
            decision = result.action
            world.rollout_counts[challenger.label] = {v: world.fleet_counts(v) - c for v, c in before.items()}
            world.summary.rollouts.append({"challenger": challenger.label, "decision": decision,
                                           "minutes": minute + 1, "reason": result.reason,
                                           "statistics": result.statistics, "variants": labels,
                                           "rollout_id": f"{challenger.label}-canary",
                                           "endpoint": world.endpoint})  # fmt: skip
            if decision == "promote":
                world.champion = challenger
            return decision
    return decision
