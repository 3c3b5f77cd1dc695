"""Rollout configuration per endpoint, validated: a bad key fails with `path.to.key: problem`."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

BUILTIN_METRICS = ("errors", "latency", "latency_p99")
P99 = "latency_p99"  # per-minute p99 latency: CloudWatch's extended statistic, or a Prometheus histogram
SHADOW_METRICS = ("score_difference",)  # read from the challenger's shadow pairs, not per minute


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Guardrail(_Model):
    """One metric compared challenger vs champion by the judge.

    kind=rate: events per request (metric "errors" = 5XX, or a business count metric);
    kind=mean: per-interval average (metric "latency", or a business value). margin is relative: the
    challenger is non-inferior when not worse than (1 + margin) x champion (rate ratio or mean).
    kind=shadow: the answers' quality from the challenger's shadow pairs (metric "score_difference": the mean
    |challenger score - champion score| on the same mirrored requests, a failed mirrored call counting as 1);
    margin is absolute, in score units: non-inferior at <= margin, harm (rollback) above it, each once at
    least min_pairs pairs logged within lookback_minutes before the rollout's start have been read.
    """

    name: str = Field(min_length=1)
    kind: Literal["rate", "mean", "shadow"]
    metric: str = Field(min_length=1)
    lower_is_better: bool = True
    margin: float = Field(gt=0, le=10)
    min_events: int = Field(default=20, ge=0)  # rate: events in both arms before non-inferiority can be claimed
    min_intervals: int = Field(default=5, ge=2)  # mean: intervals with both arms before any claim
    min_pairs: int = Field(default=500, ge=1)  # shadow: pairs before any claim
    lookback_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)  # shadow: pairs logged since then count

    @model_validator(mode="after")
    def _mean_margin(self) -> Guardrail:
        if self.kind == "mean" and not self.lower_is_better and self.margin >= 1:
            raise ValueError("margin must be < 1 for a higher-is-better mean")
        if (self.kind == "shadow") != (self.metric in SHADOW_METRICS):
            raise ValueError(f"metric {self.metric!r}: kind shadow goes with {', '.join(SHADOW_METRICS)} and only them")
        if self.kind == "shadow" and not (self.lower_is_better and self.margin < 1):
            raise ValueError("a shadow guardrail is lower-is-better with an absolute margin < 1 (score units)")
        return self


def default_guardrails() -> list[Guardrail]:
    return [
        Guardrail(name="error_rate", kind="rate", metric="errors", margin=1.0),
        Guardrail(name="latency", kind="mean", metric="latency", margin=0.25),
    ]


class BusinessMetric(_Model):
    """A named per-variant metric a guardrail (or an A/B reward) can use, read per minute:

    - CloudWatch: `namespace` + `metric_name` with dimensions EndpointName + VariantName and a `statistic`
      (Sum, Average or a percentile), or an `expression` (metric math / Metrics Insights) with $endpoint and
      $variant in it;
    - Prometheus: `promql` with $endpoint in it, one series per variant (labelled as the adapter's
      variant_label); without it, the per-minute increase of the counter `metric_name`.
    The guardrail on it gives its direction (lower_is_better) and margin, like an Argo Rollouts
    AnalysisTemplate or a Flagger MetricTemplate."""

    namespace: str = ""
    metric_name: str = ""
    statistic: Literal["Sum", "Average", "p50", "p90", "p95", "p99"] = "Sum"
    expression: str | None = Field(default=None, min_length=1)
    promql: str | None = Field(default=None, min_length=1)
    builtin: Literal["latency_p99"] | None = None  # set by RolloutConfig.metric_sources, not by users

    @model_validator(mode="after")
    def _some_source(self) -> BusinessMetric:
        if not ((self.namespace and self.metric_name) or self.expression or self.promql or self.builtin):
            raise ValueError("give namespace and metric_name, an expression (CloudWatch) or promql (Prometheus)")
        return self


class Judge(_Model):
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    # Sample-ratio mismatch: every strategy that splits traffic holds when the observed split of a step's
    # requests is this improbable under the weights applied (chi-square, 1 df).
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    # When set, `start` reads the endpoint's last hour of traffic and refuses a rollout that could neither
    # promote a healthy challenger nor catch one this many times worse (5XX rate) within max_duration_minutes.
    min_detectable_ratio: float | None = Field(default=None, gt=1, le=100)
    guardrails: list[Guardrail] = Field(default_factory=default_guardrails)

    @field_validator("guardrails")
    @classmethod
    def _unique(cls, value: list[Guardrail]) -> list[Guardrail]:
        names = [g.name for g in value]
        if len(set(names)) != len(names):
            raise ValueError(f"guardrail names must be unique, got {names}")
        return value


class BlueGreen(_Model):
    """All traffic to the challenger at once, then a bake; rollback on any configured alarm."""

    kind: Literal["blue_green"]
    bake_minutes: int = Field(default=30, ge=1)
    min_requests: int = Field(default=500, ge=1)


class _Stepped(_Model):
    bake_minutes: int = Field(default=10, ge=1)  # minimum time at each step
    min_requests: int = Field(default=500, ge=1)  # minimum challenger requests at each step
    # > 0: after the last judged step all traffic goes to the challenger for this long, alarms live, before
    # the rollout is declared promoted (an alarm in that bake rolls back to the champion).
    final_bake_minutes: int = Field(default=0, ge=0)

    def weights(self) -> list[float]:
        raise NotImplementedError


class Canary(_Stepped):
    kind: Literal["canary"]
    steps: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 1.0], min_length=1)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(not 0 < w <= 1 for w in value):
            raise ValueError(f"every step must be in (0, 1], got {value}")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"steps must increase strictly, got {value}")
        if value[-1] != 1.0:
            raise ValueError(f"the last step must be 1.0 (full promotion), got {value[-1]}")
        if len(value) < 2:
            raise ValueError("a canary needs a step below 1.0 to judge on; use blue_green for all at once")
        return value

    def weights(self) -> list[float]:
        return list(self.steps)


class Linear(_Stepped):
    kind: Literal["linear"]
    increment: float = Field(default=0.1, ge=0.01, lt=1)  # 1.0 would leave nothing to judge

    def weights(self) -> list[float]:
        n = round(1.0 / self.increment + 1e-9)
        steps = [min(1.0, round(self.increment * (i + 1), 6)) for i in range(n)]
        return steps if steps[-1] == 1.0 else [*steps, 1.0]


class Shadow(_Model):
    """The challenger answers a mirrored fraction of requests; answers are compared, never returned."""

    kind: Literal["shadow"]
    fraction: float = Field(default=0.1, gt=0, le=1)
    min_pairs: int = Field(default=500, ge=1)
    min_agreement: float = Field(default=0.95, ge=0, le=1)  # label agreement
    max_score_difference: float = Field(default=0.05, ge=0)  # mean |score_champion - score_challenger|


class AB(_Model):
    """Fixed split, fixed horizon; a sample-ratio mismatch stops the test (its data cannot be trusted)."""

    kind: Literal["ab"]
    split: float = Field(default=0.5, gt=0, lt=1)  # challenger's share
    horizon_minutes: int = Field(default=24 * 60, ge=1)
    min_requests: int = Field(default=1000, ge=1)  # per arm
    reward_metric: str = Field(min_length=1)  # a business count metric: successes; trials = requests
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    # When set, `start` reads the endpoint's last hour of traffic and refuses a rollout that could neither
    # promote a healthy challenger nor catch one this many times worse (5XX rate) within max_duration_minutes.
    min_detectable_ratio: float | None = Field(default=None, gt=1, le=100)


class Bandit(_Model):
    """Thompson sampling on a reward metric: weights = P(best) under Beta posteriors, with a floor."""

    kind: Literal["bandit"]
    reward_metric: str = Field(min_length=1)
    floor: float = Field(default=0.05, ge=0, lt=0.5)
    horizon_minutes: int = Field(default=24 * 60, ge=1)
    p_best_to_win: float = Field(default=0.95, gt=0.5, le=1)
    draws: int = Field(default=4000, ge=100, le=100_000)


Strategy = Annotated[BlueGreen | Canary | Linear | Shadow | AB | Bandit, Field(discriminator="kind")]


class RolloutConfig(_Model):
    endpoint: str = Field(min_length=1)
    champion: str = Field(min_length=1)
    challenger: str = Field(min_length=1)
    strategy: Strategy
    judge: Judge = Field(default_factory=Judge)
    alarms: list[str] = Field(default_factory=list)  # any in ALARM -> rollback at once
    business_metrics: dict[str, BusinessMetric] = Field(default_factory=dict)
    max_duration_minutes: int = Field(default=6 * 60, ge=1)
    on_timeout: Literal["rollback", "hold"] = "rollback"
    # > 0: after the promotion, watch this long (alarms, and the challenger's 5XX rate against the old
    # champion's); harm rolls back to the previous champion. The rollout is complete after it.
    post_promotion_minutes: int = Field(default=0, ge=0, le=7 * 24 * 60)
    # keep: instance counts untouched; follow_weights: each variant gets ceil(weight x the full fleet)
    # instances, at least 1 (SageMaker; KServe's autoscaler sizes revisions by load itself).
    capacity: Literal["keep", "follow_weights"] = "keep"
    # A minute's datapoints count as final (promotion evidence) once this many minutes have passed after its
    # end: AWS/SageMaker datapoints arrive 1-3 minutes late. Harm is checked on whatever has arrived.
    # (Read under its former name metrics_lag_minutes too, so stored states keep loading.)
    settle_minutes: int = Field(
        default=3, ge=0, le=60, validation_alias=AliasChoices("settle_minutes", "metrics_lag_minutes")
    )

    @model_validator(mode="after")
    def _consistent(self) -> RolloutConfig:
        if self.champion == self.challenger:
            raise ValueError("champion and challenger must be different variants")
        known = set(BUILTIN_METRICS) | set(self.business_metrics) | set(SHADOW_METRICS)
        for g in self.judge.guardrails:
            if g.metric not in known:
                raise ValueError(f"judge.guardrails: metric {g.metric!r} of {g.name!r} is not one of {sorted(known)}")
        for g in self.judge.guardrails:
            if g.metric == P99 and g.kind != "mean":
                raise ValueError(f"judge.guardrails: {g.name!r} on {P99} must be of kind mean (a per-minute value)")
        for reserved in (P99, *SHADOW_METRICS):
            if reserved in self.business_metrics:
                raise ValueError(f"business_metrics: {reserved!r} is a built-in metric name")
        reward = getattr(self.strategy, "reward_metric", None)
        if reward is not None and reward not in self.business_metrics:
            raise ValueError(f"strategy.reward_metric {reward!r} is not declared in business_metrics")
        return self


def metric_sources(config: RolloutConfig) -> dict[str, BusinessMetric]:
    """What the metrics source must read besides the built-in counts and mean latency: the business metrics,
    and the p99 latency when a guardrail uses it."""
    sources = dict(config.business_metrics)
    if any(g.metric == P99 for g in config.judge.guardrails):
        sources[P99] = BusinessMetric(builtin=P99)
    return sources


class ConfigError(ValueError):
    """The rollout configuration is invalid; the message names every bad key."""


def load_config(raw: dict[str, Any]) -> RolloutConfig:
    try:
        return RolloutConfig.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "<root>"
            problems.append(f"{key}: {e['msg']}")
        raise ConfigError("invalid rollout config: " + "; ".join(problems)) from None
