"""The statistical judge: anytime-valid sequential tests, challenger against champion, on per-interval data.

Rate guardrails (5XX errors, conversions) use a conditional test on counts. In one interval, given the total
number of events e in both arms, the challenger's share is Binomial(e, q) with q(θ) = θ·n_B / (θ·n_B + n_A),
where θ is the challenger/champion rate ratio and n the requests per arm (Poisson approximation of rare
events). Conditioning removes the unknown baseline rate, so the test is exact at small counts, and the
exposure may change between intervals (the weights move at every step). The log-likelihood of θ is additive
over intervals, so the evidence is a short vector over a grid of θ, kept in the rollout's state.

A mixture of likelihood ratios over alternatives on one side of the null is a non-negative supermartingale
under the whole one-sided null (each ratio's expectation is linear in q and equals 1 at the boundary), so by
Ville's inequality P(it ever exceeds 1/α) <= α: checking every minute does not inflate false rollbacks.
Two one-sided tests per guardrail:
- harm: H0 θ <= 1 against a mixture over θ > 1; rejecting it means "significantly worse" -> roll back;
- non-inferiority: H0 θ >= θm = 1 + margin against a mixture over θ < θm; rejecting it means "not worse than
  the margin" -> the step may be promoted.

Mean guardrails (latency, a business value per request) use the normal-mixture confidence sequence of
Robbins / Howard et al. (2021) on per-interval differences of the arms' averages, with a plug-in variance
(approximately valid; CloudWatch gives per-interval averages, not per-request values).

Hand-written rather than a library: no maintained Python package implements a conditional-binomial mixture
test with changing exposure, and the whole thing is ~100 lines of numpy. Every function takes arrays with
any leading batch shape, so the benchmark runs the same code on thousands of simulated rollouts at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Verdict = Literal["harm", "non_inferior", "inconclusive", "no_data"]

# Alternatives of each one-sided mixture: log-spaced ratios, x1.26 apart. Every point costs evidence (the
# mixture pays up to log(#points) against its best point), so each mixture covers only the ratios it needs
# power at. Harm: "a little worse" (x1.25) to "broken" (x32).
_HARM_ALTERNATIVES = np.geomspace(1.25, 32.0, 15)
_SPACING = 32.0 ** (1 / 15)
# Non-inferiority: from half the champion's rate up to θm / 1.25. A healthy challenger sits near θ = 1, and
# the test is slowest exactly there; points for "many times better" (down to θm/40 before) bought power for
# challengers that are non-inferior quickly anyway, and made a healthy challenger's evidence 1.26 nats short
# of the best single alternative's (0.57 now): at a 5% first step at 200 req/min that nearly doubled the
# healthy rollouts unable to show non-inferiority within 330 minutes (4.7% against 2.5%; 2.25% at best).
SAFE_FLOOR = 0.5


def _safe_alternatives(theta_m: float) -> FloatArray:
    top = theta_m / 1.25
    points = max(2, math.ceil(math.log(top / SAFE_FLOOR) / math.log(_SPACING) - 1e-9) + 1)
    return np.geomspace(SAFE_FLOOR, top, points)


def rate_grid(margin: float) -> FloatArray:
    """The θ grid of a rate guardrail: harm alternatives, non-inferiority alternatives, 1 and θm = 1 + margin."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    theta_m = 1.0 + margin
    grid = np.concatenate([_HARM_ALTERNATIVES, _safe_alternatives(theta_m), [1.0, theta_m]])
    return np.unique(grid)


def rate_loglik(
    theta: FloatArray,
    n_champion: npt.ArrayLike,
    x_champion: npt.ArrayLike,
    n_challenger: npt.ArrayLike,
    x_challenger: npt.ArrayLike,
) -> FloatArray:
    """Conditional log-likelihood of each θ for one interval: shape (*batch, len(theta)).

    An interval where either arm had no requests carries no information about θ and contributes zero.
    """
    n_a = np.asarray(n_champion, dtype=np.float64)[..., None]
    n_b = np.asarray(n_challenger, dtype=np.float64)[..., None]
    x_a = np.asarray(x_champion, dtype=np.float64)[..., None]
    x_b = np.asarray(x_challenger, dtype=np.float64)[..., None]
    both = (n_a > 0) & (n_b > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.log(theta * n_b) - np.log(theta * n_b + n_a)
        log_1q = np.log(n_a) - np.log(theta * n_b + n_a)
        ll = np.where(x_b > 0, x_b * log_q, 0.0) + np.where(x_a > 0, x_a * log_1q, 0.0)
    return np.where(both, ll, 0.0)


def _log_mixture(loglik: FloatArray, theta: FloatArray, mask: npt.NDArray[np.bool_], null: float) -> FloatArray:
    """log of the equal-weight mixture over theta[mask] of LR(θ vs null)."""
    null_idx = int(np.flatnonzero(np.isclose(theta, null))[0])
    alt = loglik[..., mask]
    top = alt.max(axis=-1, keepdims=True)
    lse = top[..., 0] + np.log(np.exp(alt - top).mean(axis=-1))
    return np.asarray(lse - loglik[..., null_idx], dtype=np.float64)


def rate_log_evidence(loglik: FloatArray, theta: FloatArray, margin: float) -> tuple[FloatArray, FloatArray]:
    """(log e-value of harm, log e-value of non-inferiority) from accumulated log-likelihoods."""
    theta_m = 1.0 + margin
    harm = _log_mixture(loglik, theta, theta > 1.0 + 1e-9, 1.0)
    # (The floor also applies to evidence stored with the former, wider grid: its points below it are unused.)
    safe = _log_mixture(loglik, theta, (theta >= SAFE_FLOOR * (1 - 1e-9)) & (theta < theta_m - 1e-9), theta_m)
    return harm, safe


def reference_harm_log_evidence(events: float, requests: float, reference_rate: float) -> float:
    """Log e-value that a rate is above `reference_rate` (a fixed rate, e.g. the old champion's, after a
    promotion left no champion traffic to compare with): the mixture over the harm alternatives θ of
    θ^x·exp(-(θ-1)·reference·n). Each term has expectation <= 1 whenever the true rate is <= the reference
    (binomial or Poisson counts), so it is anytime-valid like the two-arm test."""
    if requests <= 0 or reference_rate <= 0:
        return 0.0
    theta = _HARM_ALTERNATIVES
    terms = events * np.log(theta) - (theta - 1.0) * reference_rate * requests
    top = float(terms.max())
    return top + math.log(float(np.exp(terms - top).mean()))


class InvalidMetrics(ValueError):
    """Counts or averages that cannot be real (negative, not finite, more events than requests)."""


@dataclass(frozen=True)
class GuardrailResult:
    name: str
    verdict: Verdict
    statistics: dict[str, Any]


def _verdict(log_harm: float, log_safe: float, alpha: float, enough: bool, harm_alpha: float | None = None) -> Verdict:
    threshold = math.log(1.0 / alpha)
    if log_harm >= math.log(1.0 / (harm_alpha or alpha)):
        return "harm"  # harm needs no minimum sample: significance is valid at any stopping time
    if not enough:
        return "no_data"
    return "non_inferior" if log_safe >= threshold else "inconclusive"


@dataclass(frozen=True)
class RateEvidence:
    """Accumulated evidence of a rate guardrail (JSON-friendly: plain lists and numbers)."""

    theta: tuple[float, ...]
    loglik: tuple[float, ...]
    n_champion: float = 0.0
    x_champion: float = 0.0
    n_challenger: float = 0.0
    x_challenger: float = 0.0
    compared_events: float = 0.0  # events in intervals where both arms had traffic (the informative ones)

    @classmethod
    def empty(cls, margin: float) -> RateEvidence:
        grid = rate_grid(margin)
        return cls(theta=tuple(grid.tolist()), loglik=tuple([0.0] * len(grid)))

    def add(self, n_a: float, x_a: float, n_b: float, x_b: float) -> RateEvidence:
        counts = (n_a, x_a, n_b, x_b)
        if not all(math.isfinite(c) for c in counts) or min(counts) < 0 or x_a > n_a or x_b > n_b:
            raise InvalidMetrics(f"counts must satisfy 0 <= events <= requests, got {counts}")
        theta = np.asarray(self.theta)
        ll = np.asarray(self.loglik) + rate_loglik(theta, n_a, x_a, n_b, x_b)
        return RateEvidence(
            theta=self.theta,
            loglik=tuple(ll.tolist()),
            n_champion=self.n_champion + n_a,
            x_champion=self.x_champion + x_a,
            n_challenger=self.n_challenger + n_b,
            x_challenger=self.x_challenger + x_b,
            compared_events=self.compared_events + (x_a + x_b if n_a > 0 and n_b > 0 else 0.0),
        )

    def judge(
        self, name: str, margin: float, alpha: float, min_events: int, harm_alpha: float | None = None
    ) -> GuardrailResult:
        """harm_alpha (default alpha) is the harm test's level: a rollout with several guardrails splits its
        alpha between them so that a false rollback on any of them stays below alpha."""
        theta = np.asarray(self.theta)
        log_harm, log_safe = rate_log_evidence(np.asarray(self.loglik), theta, margin)
        rate_a = self.x_champion / self.n_champion if self.n_champion else None
        rate_b = self.x_challenger / self.n_challenger if self.n_challenger else None
        # Information about θ comes from events; with none (or too few) never promote on no data.
        enough = self.compared_events >= max(min_events, 1)
        stats = {
            "champion_requests": self.n_champion,
            "champion_events": self.x_champion,
            "challenger_requests": self.n_challenger,
            "challenger_events": self.x_challenger,
            "champion_rate": rate_a,
            "challenger_rate": rate_b,
            "compared_events": self.compared_events,
            "log_e_harm": float(log_harm),
            "log_e_non_inferior": float(log_safe),
            "margin_ratio": 1.0 + margin,
        }
        return GuardrailResult(name, _verdict(float(log_harm), float(log_safe), alpha, enough, harm_alpha), stats)


def normal_mixture_radius(n: float, variance: float, alpha: float, rho: float) -> float:
    """Half-width of the anytime-valid CS for a mean after n observations (Howard et al. 2021, eq. 14).

    rho tunes where the boundary is tightest (rho = variance * n_opt); the CS covers the mean at every n
    simultaneously with probability >= 1 - alpha.
    """
    v = n * variance
    return math.sqrt((v + rho) * (math.log((v + rho) / rho) + 2.0 * math.log(1.0 / alpha))) / n


@dataclass(frozen=True)
class MeanEvidence:
    """Sums over intervals with both arms' averages present: count, ΣA, ΣB, ΣA², ΣB², ΣAB."""

    n: int = 0
    sa: float = 0.0
    sb: float = 0.0
    saa: float = 0.0
    sbb: float = 0.0
    sab: float = 0.0

    def add(self, champion: float | None, challenger: float | None) -> MeanEvidence:
        if champion is None or challenger is None:
            return self
        if not (math.isfinite(champion) and math.isfinite(challenger)):
            raise InvalidMetrics(f"averages must be finite, got champion={champion}, challenger={challenger}")
        a, b = champion, challenger
        return MeanEvidence(self.n + 1, self.sa + a, self.sb + b, self.saa + a * a, self.sbb + b * b, self.sab + a * b)

    def _diff(self, k: float) -> tuple[float, float]:
        """Mean and sample variance of d = B - k·A over intervals."""
        mean = (self.sb - k * self.sa) / self.n
        second = (self.sbb - 2 * k * self.sab + k * k * self.saa) / self.n
        var = max(second - mean * mean, 0.0) * self.n / max(self.n - 1, 1)
        return mean, var

    def judge(
        self, name: str, margin: float, alpha: float, min_intervals: int, lower_is_better: bool, n_opt: float = 30,
        harm_alpha: float | None = None,
    ) -> GuardrailResult:  # fmt: skip
        stats: dict[str, Any] = {"intervals": self.n}
        if self.n < max(min_intervals, 2):
            return GuardrailResult(name, "no_data", stats)
        sign = 1.0 if lower_is_better else -1.0
        mean_a = self.sa / self.n
        # harm: worse than the champion at all; non-inferior: not worse than margin·champion.
        d_harm, var_harm = self._diff(1.0)
        k_ni = 1.0 + margin if lower_is_better else 1.0 - margin
        d_ni, var_ni = self._diff(k_ni)
        floor = 1e-12 + (1e-6 * abs(mean_a)) ** 2  # a zero sample variance must not claim infinite certainty
        r_harm = normal_mixture_radius(self.n, var_harm + floor, harm_alpha or alpha, (var_harm + floor) * n_opt)
        r_ni = normal_mixture_radius(self.n, var_ni + floor, alpha, (var_ni + floor) * n_opt)
        harm = sign * d_harm - r_harm > 0
        safe = sign * d_ni + r_ni < 0
        stats.update(
            champion_mean=mean_a, challenger_mean=self.sb / self.n, difference=d_harm,
            difference_low=d_harm - r_harm, difference_high=d_harm + r_harm, margin=margin,
        )  # fmt: skip
        verdict: Verdict = "harm" if harm else ("non_inferior" if safe else "inconclusive")
        return GuardrailResult(name, verdict, stats)
