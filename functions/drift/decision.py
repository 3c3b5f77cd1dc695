"""The drift decision: current-window profile vs baseline profile -> per-feature verdicts and a dataset verdict.

Test choice (documented here, configurable through DriftConfig):
- numerical feature or output: two-sample Kolmogorov-Smirnov on the baseline's sketch buckets (p-value from
  Kolmogorov's limit with Stephens' finite-sample correction, adequate from the minimum sample size up);
  effect size = Wasserstein distance / baseline standard deviation (1.0 when the baseline is constant);
  PSI on baseline-decile bins and the KS approximation bound are reported, not decided on.
- categorical feature or output: chi-square test of homogeneity (Yates for 2 categories; categories with
  expected count < 5 pooled, Cochran's rule, so it stays valid on small samples); effect size =
  Jensen-Shannon distance (base 2); a share of categories never seen in the baseline above
  `unseen_floor` is drift by itself.
- every feature: missing-value rate, two-proportion z-test; effect = absolute change in rate.
- a feature with fewer than `min_samples` non-missing values in the window or the baseline has no
  distribution test (its p-value is left out of the multiple-testing family); its missing-rate test still runs
  when both sides have `min_samples` rows, so a column that empties (99.5-100% null) is drift with reason
  `missing_rate`. Nothing flagged and no distribution test: "insufficient data", never counted as drift.
Multiple testing: Benjamini-Hochberg over all p-values of the window (distribution + missing-rate tests of
every feature and output) at `alpha`: with 25 unchanged features the window alarms with probability <=
alpha, not 25 * alpha. A test counts only if its adjusted p-value <= alpha AND its effect size reaches the
floor, so a million-row window does not flag a trivial shift. The dataset drifts when any feature or output
does; the alarm waits for `sustained_windows` consecutive drifting windows (functions.drift.state).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from functions.drift import stats
from schemas.profile import BucketScheme, CategoricalProfile, FeatureProfile, NumericalProfile, Profile

Verdict = Literal["drift", "no_drift", "insufficient_data"]
ReasonCode = Literal["shift", "unseen_categories", "missing_rate"]  # why a feature drifted, machine-readable


@dataclass(frozen=True)
class DriftConfig:
    alpha: float = 0.05  # BH false-discovery rate across the window's tests
    min_samples: int = 500  # non-missing values needed per feature (window and baseline)
    wasserstein_floor: float = 0.05  # Wasserstein / baseline std
    js_floor: float = 0.005  # Jensen-Shannon distance (a 1-pp move of a 24% category is ~0.01)
    missing_floor: float = 0.01  # absolute change of the missing-value rate
    unseen_floor: float = 0.01  # share of the window in categories the baseline never saw
    psi_bins: int = 10
    sustained_windows: int = 2  # consecutive drifting windows before DriftDetected

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_samples < 30:
            raise ValueError(f"min_samples must be >= 30 for the asymptotic tests, got {self.min_samples}")
        if self.sustained_windows < 1:
            raise ValueError(f"sustained_windows must be >= 1, got {self.sustained_windows}")
        for name in ("wasserstein_floor", "js_floor", "missing_floor", "unseen_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass
class FeatureResult:
    name: str
    kind: str
    role: Literal["feature", "output"]
    n_reference: int
    n_current: int
    missing_rate_reference: float
    missing_rate_current: float
    test: str  # "ks" | "chi2"
    statistics: dict[str, float] = field(default_factory=dict)
    pvalue: float = 1.0
    missing_pvalue: float = 1.0
    qvalue: float = 1.0
    missing_qvalue: float = 1.0
    effect: float = 0.0
    verdict: Verdict = "no_drift"
    reasons: list[str] = field(default_factory=list)  # drift reasons in words (or why it was not tested)
    reason_codes: list[ReasonCode] = field(default_factory=list)
    distribution_tested: bool = True
    missing_tested: bool = True

    @property
    def missing_change(self) -> float:
        """Absolute change of the missing-value rate (the missing-rate test's effect size)."""
        return abs(self.missing_rate_current - self.missing_rate_reference)

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}


@dataclass
class DriftResult:
    contract: str
    rows_reference: int
    rows_current: int
    verdict: Verdict
    features: list[FeatureResult]
    config: DriftConfig

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.verdict == "drift"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
            "verdict": self.verdict,
            "drifted": self.drifted,
            "config": asdict(self.config),
            "features": [f.to_dict() for f in self.features],
        }


def _finite(value: Any) -> Any:
    """JSON has no NaN: report undefined statistics as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def compare(baseline: Profile, current: Profile, config: DriftConfig | None = None) -> DriftResult:
    config = config or DriftConfig()
    if baseline.relative_accuracy != current.relative_accuracy:
        raise ValueError("the current window must be profiled with the baseline's relative accuracy")
    results: list[FeatureResult] = []
    for role, ref_set, cur_set in (
        ("feature", baseline.features, current.features),
        ("output", baseline.outputs, current.outputs),
    ):
        for name, ref in ref_set.items():
            cur = cur_set.get(name)
            if cur is None:
                continue  # e.g. no outputs captured: nothing to compare, nothing claimed
            if cur.kind != ref.kind:
                raise ValueError(f"{name}: baseline is {ref.kind}, window is {cur.kind}")
            results.append(_compare_feature(name, role, ref, cur, baseline.scheme, config))  # type: ignore[arg-type]

    family = [(r, "distribution") for r in results if r.distribution_tested]
    family += [(r, "missing") for r in results if r.missing_tested]
    qvalues = stats.benjamini_hochberg(
        np.array([r.pvalue if which == "distribution" else r.missing_pvalue for r, which in family])
    )
    for (r, which), q in zip(family, qvalues, strict=True):
        if which == "distribution":
            r.qvalue = float(q)
        else:
            r.missing_qvalue = float(q)
    for r in results:
        _decide(r, config)

    if current.rows < config.min_samples or not family:
        verdict: Verdict = "insufficient_data"
    else:
        verdict = "drift" if any(r.verdict == "drift" for r in results) else "no_drift"
    return DriftResult(baseline.contract, baseline.rows, current.rows, verdict, results, config)


def _decide(r: FeatureResult, config: DriftConfig) -> None:
    """A feature's verdict from its adjusted p-values and effect sizes (both must pass)."""
    untested = list(r.reasons)  # the note on a distribution test that could not run
    drift: list[str] = []
    floor = config.wasserstein_floor if r.test == "ks" else config.js_floor
    if r.distribution_tested and r.qvalue <= config.alpha and r.effect >= floor:
        drift.append(f"distribution ({r.test} q={r.qvalue:.2g}, effect {r.effect:.3g} >= {floor})")
        r.reason_codes.append("shift")
    unseen = r.statistics.get("unseen_share", 0.0)
    if r.distribution_tested and unseen >= config.unseen_floor and unseen > 0:
        drift.append(f"unseen categories {unseen:.1%} of the window")
        r.reason_codes.append("unseen_categories")
    if r.missing_tested and r.missing_qvalue <= config.alpha and r.missing_change >= config.missing_floor:
        drift.append(f"missing rate {r.missing_rate_reference:.3f} -> {r.missing_rate_current:.3f}")
        r.reason_codes.append("missing_rate")
    if drift:
        r.verdict, r.reasons = "drift", drift + untested
    else:
        r.verdict = "no_drift" if r.distribution_tested else "insufficient_data"


def _compare_feature(
    name: str,
    role: Literal["feature", "output"],
    ref: FeatureProfile,
    cur: FeatureProfile,
    scheme: BucketScheme,
    config: DriftConfig,
) -> FeatureResult:
    result = FeatureResult(
        name=name,
        kind=ref.kind,
        role=role,
        n_reference=ref.count,
        n_current=cur.count,
        missing_rate_reference=ref.missing_rate,
        missing_rate_current=cur.missing_rate,
        test="ks" if ref.kind == "numerical" else "chi2",
    )
    result.missing_tested = min(ref.rows, cur.rows) >= config.min_samples
    if result.missing_tested:
        result.missing_pvalue = stats.two_proportion_pvalue(ref.missing, ref.rows, cur.missing, cur.rows)
    if min(ref.count, cur.count) < config.min_samples:
        result.distribution_tested = False
        result.reasons.append(f"fewer than {config.min_samples} values (baseline {ref.count}, window {cur.count})")
        return result
    if isinstance(ref, NumericalProfile) and isinstance(cur, NumericalProfile):
        keys, a, b = stats.aligned_keys(ref.keys, ref.counts, cur.keys, cur.counts)
        h = stats.Aligned(scheme.values(keys), a, b)
        d = stats.ks_statistic(h)
        spread = ref.std if ref.std > 0 else 1.0
        w = stats.wasserstein(h) / spread
        starts = stats.psi_bin_edges(a, config.psi_bins)
        result.statistics = {
            "ks": d,
            "ks_error_bound": float(max(np.max(a) / h.n, np.max(b) / h.m)),
            "wasserstein_norm": w,
            "psi": stats.psi(stats.grouped(a, starts), stats.grouped(b, starts)),
            "mean_reference": ref.mean,
            "mean_current": cur.mean,
        }
        result.pvalue = stats.ks_pvalue(d, h.n, h.m)
        result.effect = w
    elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        c = stats.aligned_categories(ref.frequencies, cur.frequencies)
        chi = stats.chi_square(c)
        result.statistics = {
            "chi2": chi.statistic,
            "chi2_dof": float(chi.dof),
            "js_distance": stats.js_distance(c),
            "unseen_share": stats.unseen_share(c),
        }
        result.pvalue = chi.pvalue
        result.effect = result.statistics["js_distance"]
    return result
