import numpy as np
import pytest

from functions.drift.decision import DriftConfig, compare
from functions.drift.state import BreachState, MemoryBreachStore, StateConflict, advance, record
from schemas.profile import Profile, ProfileBuilder

KINDS = {"v": "numerical", "c": "categorical"}


def _profile(v: np.ndarray, c: np.ndarray) -> Profile:
    return ProfileBuilder("t/v1", KINDS).update_columns({"v": v, "c": c}).finalize()  # type: ignore[arg-type]


def _data(seed: int, n: int, shift: float = 0.0, p_b: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = np.where(rng.random(n) < p_b, "b", "a").astype(object)
    return rng.normal(shift, 1.0, n), c


def test_same_distribution_is_no_drift() -> None:
    result = compare(_profile(*_data(1, 50_000)), _profile(*_data(2, 20_000)))
    assert result.verdict == "no_drift" and result.drifted == []
    assert {f.name: f.test for f in result.features} == {"v": "ks", "c": "chi2"}


def test_small_window_is_insufficient_data_not_drift() -> None:
    result = compare(_profile(*_data(1, 50_000)), _profile(*_data(2, 200, shift=3.0)))
    assert result.verdict == "insufficient_data"
    assert all(f.verdict == "insufficient_data" for f in result.features)


def test_effect_floor_ignores_a_significant_but_trivial_shift() -> None:
    base = _profile(*_data(1, 400_000))
    trivial = compare(base, _profile(*_data(2, 400_000, shift=0.02)))
    v = next(f for f in trivial.features if f.name == "v")
    assert v.qvalue < 1e-6  # the test sees it ...
    assert v.effect < DriftConfig().wasserstein_floor and v.verdict == "no_drift"  # ... the floor ignores it
    real = compare(base, _profile(*_data(2, 400_000, shift=0.1)))
    assert real.drifted == ["v"]


def test_category_move_and_unseen_categories_and_missing_rate() -> None:
    base = _profile(*_data(1, 50_000))
    moved = compare(base, _profile(*_data(2, 50_000, p_b=0.33)))
    assert moved.drifted == ["c"]
    v, c = _data(3, 5_000)
    c[:200] = "zzz"  # 4% unseen
    v[:500] = np.nan  # missing rate 0 -> 10%
    result = compare(base, _profile(v, c))
    reasons = {f.name: " ".join(f.reasons) for f in result.features}
    assert "unseen categories" in reasons["c"]
    assert "missing rate" in reasons["v"]


def test_bad_config_and_mismatched_profiles_are_errors() -> None:
    with pytest.raises(ValueError, match="alpha"):
        DriftConfig(alpha=1.5)
    with pytest.raises(ValueError, match="min_samples"):
        DriftConfig(min_samples=5)
    other = ProfileBuilder("t/v1", KINDS, relative_accuracy=0.01).update_columns({"v": [1.0], "c": ["a"]}).finalize()
    with pytest.raises(ValueError, match="relative accuracy"):
        compare(_profile(*_data(1, 1000)), other)


def test_report_dict_has_no_nan() -> None:
    import json

    result = compare(_profile(*_data(1, 50_000)), _profile(*_data(2, 100)))
    json.dumps(result.to_dict(), allow_nan=False)


def test_sustained_breach_counts_consecutive_windows() -> None:
    store = MemoryBreachStore()
    fired = [
        record(store, "ep", v, f"2026-11-01T{h:02d}", sustained=2)[1]
        for h, v in enumerate(["drift", "no_drift", "drift", "insufficient_data", "drift", "drift"])
    ]
    assert fired == [False, False, False, False, True, True]
    assert store.get("ep").consecutive == 3
    # a replayed window is not counted twice and does not re-fire
    assert record(store, "ep", "drift", "2026-11-01T05", sustained=2) == (store.get("ep"), False)


def test_state_conflict_is_detected() -> None:
    store = MemoryBreachStore()
    store.put("ep", BreachState(1, "a", 1), expected_version=0)
    with pytest.raises(StateConflict):
        store.put("ep", advance(BreachState(), "drift", "b"), expected_version=0)


@pytest.mark.parametrize("share", [0.995, 0.999, 1.0])
def test_a_column_that_empties_is_drift_by_missing_rate(share: float) -> None:
    """99.5-100% null in the window: too few values for the distribution test, but the missing rate moved."""
    base = _profile(*_data(1, 50_000))
    v, c = _data(2, 20_000)
    v[: int(share * v.size)] = np.nan
    c[: int(share * c.size)] = None
    result = compare(base, _profile(v, c))
    assert result.verdict == "drift"
    for f in result.features:
        assert f.verdict == "drift", f
        assert f.reason_codes == ["missing_rate"]
        assert f.missing_rate_current >= share - 1e-9


def test_a_column_empty_in_both_is_insufficient_data_not_drift() -> None:
    v1, c1 = _data(1, 50_000)
    v2, c2 = _data(2, 20_000)
    v1[:] = np.nan
    v2[:] = np.nan
    result = compare(_profile(v1, c1), _profile(v2, c2))
    by_name = {f.name: f for f in result.features}
    assert by_name["v"].verdict == "insufficient_data" and by_name["v"].reason_codes == []
    assert by_name["c"].verdict == "no_drift" and result.verdict == "no_drift"
