"""The statistics against scipy (dev extra only), and the sketch's approximation bounds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from functions.drift import stats
from schemas.profile import BucketScheme, ProfileBuilder


def _samples(seed: int, n: int, m: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.lognormal(3.0, 1.0, n), rng.lognormal(3.0, 1.0, m) + shift


@pytest.mark.parametrize(
    ("seed", "n", "m", "shift"), [(1, 3000, 2000, 0.0), (2, 5000, 800, 1.5), (3, 20000, 20000, 0.4)]
)
def test_exact_ks_and_wasserstein_equal_scipy(seed: int, n: int, m: int, shift: float) -> None:
    x, y = _samples(seed, n, m, shift)
    h = stats.aligned_samples(x, y)
    ref = sps.ks_2samp(x, y, method="asymp")
    assert stats.ks_statistic(h) == pytest.approx(ref.statistic, abs=1e-12)
    # Stephens-corrected Kolmogorov tail vs scipy's kstwo(round(ne)): stated tolerance 0.01 absolute
    assert stats.ks_pvalue(stats.ks_statistic(h), n, m) == pytest.approx(ref.pvalue, abs=0.01)
    assert stats.wasserstein(h) == pytest.approx(sps.wasserstein_distance(x, y), rel=1e-9)


@given(st.integers(0, 10_000), st.floats(0.0, 0.3))
@settings(max_examples=30, deadline=None)
def test_ks_pvalue_tracks_scipy_on_random_data(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=600), rng.normal(shift, 1.0, size=900)
    ref = sps.ks_2samp(x, y, method="asymp")
    assert stats.ks_pvalue(stats.ks_statistic(stats.aligned_samples(x, y)), 600, 900) == pytest.approx(
        ref.pvalue, abs=0.01
    )


@pytest.mark.parametrize("lam", [0.05, 0.3, 0.8, 1.17, 1.19, 1.6, 3.0])
def test_kolmogorov_tail_equals_scipy(lam: float) -> None:
    assert stats.kolmogorov_sf(lam) == pytest.approx(sps.kstwobign.sf(lam), abs=1e-12)


@given(st.lists(st.integers(0, 500), min_size=2, max_size=12), st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_chi_square_equals_chi2_contingency(counts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.asarray(counts)
    b = rng.integers(0, 500, size=a.size)
    keep = (a + b) > 0
    if keep.sum() < 2 or a.sum() == 0 or b.sum() == 0:
        return
    c = stats.Categories(tuple(str(i) for i in range(a.size)), a, b)
    ours = stats.chi_square(c, pool_below=0)
    ref = sps.chi2_contingency(np.vstack([a[keep], b[keep]]))
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert ours.dof == ref.dof
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-14)


@pytest.mark.parametrize(("x", "dof"), [(0.5, 1), (3.84, 1), (20.0, 9), (200.0, 9), (1e4, 30), (5.0, 100)])
def test_chi2_tail_equals_scipy(x: float, dof: int) -> None:
    assert stats.chi2_sf(x, dof) == pytest.approx(sps.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_pooling_keeps_the_chi_square_valid_with_rare_and_unseen_categories() -> None:
    c = stats.aligned_categories({"a": 5000, "b": 4000, "c": 2}, {"a": 500, "b": 400, "z": 1})
    result = stats.chi_square(c)
    assert result.dof == 2  # a, b, and the pool {c, z}
    assert 0.0 < result.pvalue <= 1.0
    assert stats.unseen_share(c) == pytest.approx(1 / 901)


@given(st.lists(st.integers(0, 100), min_size=1, max_size=10), st.lists(st.integers(0, 100), min_size=1, max_size=10))
@settings(max_examples=60, deadline=None)
def test_js_distance_equals_scipy(a: list[int], b: list[int]) -> None:
    width = max(len(a), len(b))
    pa, pb = np.pad(a, (0, width - len(a))), np.pad(b, (0, width - len(b)))
    c = stats.Categories(tuple(map(str, range(width))), pa, pb)
    if pa.sum() == 0 or pb.sum() == 0:
        assert math.isnan(stats.js_distance(c))
        return
    assert stats.js_distance(c) == pytest.approx(jensenshannon(pa / pa.sum(), pb / pb.sum(), base=2), abs=1e-7)


def test_psi_is_finite_with_empty_bins_and_zero_for_identical() -> None:
    assert stats.psi(np.array([10, 0, 5]), np.array([10, 0, 5])) == pytest.approx(0.0)
    value = stats.psi(np.array([100, 0, 0]), np.array([0, 0, 100]))
    assert math.isfinite(value) and value > 5
    assert stats.psi(np.zeros(3), np.zeros(3)) == pytest.approx(0.0)


def test_psi_bins_hold_equal_reference_mass() -> None:
    counts = np.ones(1000, np.int64)
    starts = stats.psi_bin_edges(counts, 10)
    np.testing.assert_array_equal(stats.grouped(counts, starts), np.full(10, 100))
    atoms = np.array([900, 50, 50])  # a heavy atom keeps a bin of its own; the rest shares one
    assert stats.grouped(atoms, stats.psi_bin_edges(atoms, 10)).tolist() == [900, 100]


def test_two_proportion_and_bh() -> None:
    assert stats.two_proportion_pvalue(10, 1000, 10, 1000) == pytest.approx(1.0)
    z = sps.norm.sf(abs(0.05 - 0.02) / math.sqrt(0.035 * 0.965 * 2 / 2000)) * 2
    assert stats.two_proportion_pvalue(100, 2000, 40, 2000) == pytest.approx(z, rel=1e-9)
    p = np.array([0.001, 0.04, 0.03, 0.5, 0.012])
    assert stats.benjamini_hochberg(p) == pytest.approx(sps.false_discovery_control(p, method="bh"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sketch_approximation_error_is_within_the_stated_bounds(seed: int) -> None:
    """KS: binned <= exact <= binned + largest bucket mass. Wasserstein: within a (E|X| + E|Y|)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.lognormal(3.0, 1.2, 40_000), rng.normal(-5, 2, 10_000), np.zeros(500)])
    y = np.concatenate([rng.lognormal(3.1, 1.2, 30_000), rng.normal(-5, 2.2, 8_000)])
    a = 0.005
    b = ProfileBuilder("x/v1", {"v": "numerical"}, relative_accuracy=a)
    px = b.update_columns({"v": x}).finalize().features["v"]
    py = (
        ProfileBuilder("x/v1", {"v": "numerical"}, relative_accuracy=a)
        .update_columns({"v": y})
        .finalize()
        .features["v"]
    )
    keys, ca, cb = stats.aligned_keys(px.keys, px.counts, py.keys, py.counts)  # type: ignore[union-attr]
    h = stats.Aligned(BucketScheme(a).values(keys), ca, cb)
    exact_ks = sps.ks_2samp(x, y).statistic
    bound = max(ca.max() / h.n, cb.max() / h.m)
    assert stats.ks_statistic(h) <= exact_ks + 1e-12
    assert exact_ks <= stats.ks_statistic(h) + bound
    assert bound < 0.01
    exact_w = sps.wasserstein_distance(x, y)
    assert abs(stats.wasserstein(h) - exact_w) <= a * (np.abs(x).mean() + np.abs(y).mean())
