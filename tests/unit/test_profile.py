import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.datagen import generate
from schemas.contract import load_contract
from schemas.profile import (
    MIN_VALUE,
    MODEL_OUTPUT,
    OTHER,
    BucketScheme,
    CategoricalProfile,
    NumericalProfile,
    Profile,
    ProfileBuilder,
    ProfileError,
)

DAY = dt.date(2026, 11, 1)
CONTRACT = load_contract("transactions")


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return generate(20_000, DAY, seed=5)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12), min_size=1))
@settings(max_examples=200, deadline=None)
def test_bucket_keys_are_monotone_and_representatives_within_relative_accuracy(values: list[float]) -> None:
    scheme = BucketScheme(0.005)
    x = np.sort(np.asarray(values))
    keys = scheme.keys(x)
    assert np.all(np.diff(keys) >= 0)
    rep = scheme.values(keys)
    tolerance = 0.005 * np.abs(x) + MIN_VALUE
    assert np.all(np.abs(rep - x) <= tolerance * (1 + 1e-9))


def test_partitions_merge_to_the_same_profile_as_one_pass(table: pa.Table) -> None:
    whole = ProfileBuilder(CONTRACT).update(table).finalize()
    parts = [ProfileBuilder(CONTRACT).update(table.slice(i, 5000)) for i in range(0, table.num_rows, 5000)]
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    again = merged.finalize()
    assert again.rows == whole.rows == table.num_rows
    for name, f in whole.features.items():
        g = again.features[name]
        if isinstance(f, NumericalProfile):
            assert isinstance(g, NumericalProfile)
            np.testing.assert_array_equal(f.keys, g.keys)
            np.testing.assert_array_equal(f.counts, g.counts)
            assert (f.count, f.missing, f.min, f.max) == (g.count, g.missing, g.min, g.max)
            assert g.mean == pytest.approx(f.mean, rel=1e-12)
            assert g.std == pytest.approx(f.std, rel=1e-9)
        else:
            assert f == g


def test_summary_statistics_and_quantiles_match_numpy(table: pa.Table) -> None:
    profile = ProfileBuilder(CONTRACT).update(table).finalize()
    col = table["distance_from_home_km"].to_numpy(zero_copy_only=False).astype(float)
    p = profile.features["distance_from_home_km"]
    assert isinstance(p, NumericalProfile)
    finite = col[np.isfinite(col)]
    assert p.missing == table["distance_from_home_km"].null_count > 0
    assert p.count == finite.size
    assert p.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert p.std == pytest.approx(finite.std(), rel=1e-9)
    exact = np.quantile(finite, np.linspace(0, 1, 101), method="lower")
    assert np.all(np.abs(np.asarray(p.quantiles) - exact) <= 0.005 * np.abs(exact) + MIN_VALUE)
    cats = profile.features["channel"]
    assert isinstance(cats, CategoricalProfile)
    counted = dict(zip(*np.unique(table["channel"].to_numpy(zero_copy_only=False), return_counts=True), strict=True))
    assert cats.frequencies == {k: int(v) for k, v in counted.items()}
    assert profile.features["device_age_days"].missing_rate == pytest.approx(
        table["device_age_days"].null_count / table.num_rows
    )


def test_numpy_path_equals_pyarrow_path(table: pa.Table) -> None:
    by_arrow = ProfileBuilder(CONTRACT).update(table).finalize()
    columns = {f.name: table[f.name].to_pylist() for f in CONTRACT.features}
    by_numpy = ProfileBuilder(CONTRACT).update_columns(columns).finalize()
    assert by_numpy.to_json() == by_arrow.to_json()


def test_non_finite_values_are_missing_and_never_binned() -> None:
    b = ProfileBuilder("x/v1", {"v": "numerical", "c": "categorical"})
    b.update_columns(
        {
            "v": [1.0, None, float("nan"), float("inf"), -float("inf"), 2.0],
            "c": ["a", None, "b", "a", float("nan"), True],
        }
    )
    p = b.finalize()
    v = p.features["v"]
    assert isinstance(v, NumericalProfile)
    assert (v.count, v.missing, int(v.counts.sum())) == (2, 4, 2)
    assert p.features["c"] == CategoricalProfile(missing=2, frequencies={"a": 2, "b": 1, "true": 1})


def test_json_round_trip_loads_without_pyarrow(table: pa.Table, tmp_path) -> None:  # type: ignore[no-untyped-def]
    profile = (
        ProfileBuilder(CONTRACT, outputs={"score": "numerical"})
        .update(table, outputs=pa.table({"score": np.linspace(0, 1, table.num_rows)}))
        .finalize()
    )
    text = profile.to_json()
    assert len(text) < 200_000
    again = Profile.from_json(text)
    assert again.to_json() == text
    path = tmp_path / "p.json"
    path.write_text(text)
    code = (
        "import sys, time; t=time.perf_counter(); from schemas.profile import Profile; "
        f"p=Profile.from_json(open({str(path)!r}).read()); "
        "assert 'pyarrow' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules); "
        "print(len(p.features))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(len(CONTRACT.features))


def test_resume_from_profile_then_merge(table: pa.Table) -> None:
    first = ProfileBuilder(CONTRACT).update(table.slice(0, 8000)).finalize()
    resumed = ProfileBuilder.from_profile(first).update(table.slice(8000)).finalize()
    whole = ProfileBuilder(CONTRACT).update(table).finalize()
    for name, f in whole.features.items():
        g = resumed.features[name]
        if isinstance(f, NumericalProfile):
            assert isinstance(g, NumericalProfile)
            np.testing.assert_array_equal(f.counts, g.counts)
            assert g.mean == pytest.approx(f.mean, rel=1e-12) and g.std == pytest.approx(f.std, rel=1e-9)
        else:
            assert f == g


def test_model_outputs_join_a_stored_profile_binned_like_the_builder_would(table: pa.Table) -> None:
    scores = np.random.default_rng(3).beta(1, 20, table.num_rows)
    features = ProfileBuilder(CONTRACT).update(table).finalize()
    joined = Profile.from_json(features.with_outputs({MODEL_OUTPUT: scores}).to_json())
    built = ProfileBuilder(CONTRACT, outputs={MODEL_OUTPUT: "numerical"})
    built = built.update(table, outputs=pa.table({MODEL_OUTPUT: scores})).finalize()
    assert json.loads(joined.to_json())["features"] == json.loads(features.to_json())["features"]
    out, want = joined.outputs[MODEL_OUTPUT], built.outputs[MODEL_OUTPUT]
    assert isinstance(out, NumericalProfile) and isinstance(want, NumericalProfile)
    np.testing.assert_array_equal(out.keys, want.keys)
    np.testing.assert_array_equal(out.counts, want.counts)
    assert out.count == table.num_rows and out.mean == pytest.approx(want.mean)
    with pytest.raises(ProfileError, match="no finite value"):
        features.with_outputs({MODEL_OUTPUT: np.full(4, np.nan)})


def test_category_cap_folds_the_rarest_into_other() -> None:
    b = ProfileBuilder("x/v1", {"c": "categorical"}, max_categories=3)
    b.update_columns({"c": ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2})
    b.update_columns({"c": ["e"]})
    freqs = b.finalize().features["c"]
    assert isinstance(freqs, CategoricalProfile)
    assert freqs.frequencies == {"a": 5, "b": 4, OTHER: 6}


def test_bad_input_is_a_specific_error(table: pa.Table) -> None:
    with pytest.raises(ProfileError, match="lacks column"):
        ProfileBuilder(CONTRACT).update(table.drop_columns(["amount"]))
    with pytest.raises(ProfileError, match="not numeric"):
        ProfileBuilder(CONTRACT).update(table.set_column(2, "amount", pa.array(["x"] * table.num_rows)))
    with pytest.raises(ProfileError, match="non-numeric"):
        ProfileBuilder("x/v1", {"v": "numerical"}).update_columns({"v": [1.0, "twelve"]})
    with pytest.raises(ProfileError, match="different lengths"):
        ProfileBuilder("x/v1", {"v": "numerical", "w": "numerical"}).update_columns({"v": [1.0], "w": [1.0, 2.0]})
    with pytest.raises(ProfileError, match="cannot merge"):
        ProfileBuilder(CONTRACT).merge(ProfileBuilder("x/v1", {"v": "numerical"}))
    with pytest.raises(ProfileError, match="relative accuracy"):
        ProfileBuilder(CONTRACT).merge(ProfileBuilder(CONTRACT, relative_accuracy=0.01))


@given(
    st.one_of(st.text(max_size=200), st.dictionaries(st.text(max_size=5), st.integers(), max_size=4).map(json.dumps))
)
@settings(max_examples=100, deadline=None)
def test_garbage_profiles_are_rejected_with_profile_error(text: str) -> None:
    with pytest.raises(ProfileError):
        Profile.from_json(text)


def test_corrupted_bins_are_rejected(table: pa.Table) -> None:
    data = json.loads(ProfileBuilder(CONTRACT).update(table).finalize().to_json())
    data["features"]["amount"]["bins"]["counts"][0] += 1
    with pytest.raises(ProfileError, match=r"features\.amount: bins\.counts"):
        Profile.from_json(json.dumps(data))


def test_builders_pickle_for_dask(table: pa.Table) -> None:
    """Dask sends partition builders between processes: they must survive pickling and still merge."""
    import pickle

    parts = [pickle.loads(pickle.dumps(ProfileBuilder(CONTRACT).update(table.slice(i, 10_000)))) for i in (0, 10_000)]
    merged = parts[0].merge(parts[1]).finalize()
    assert merged.features["channel"] == ProfileBuilder(CONTRACT).update(table).finalize().features["channel"]
    assert merged.rows == table.num_rows
