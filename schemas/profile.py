"""The drift baseline profile: a small, mergeable summary of every feature (a contract's, or a table's columns).

Interface (the batch-ingestion job builds it per partition and merges; the drift check loads it):

    from schemas.profile import ProfileBuilder, Profile
    builder = ProfileBuilder(contract)                    # contract: schemas.contract.Contract
    builder = ProfileBuilder("sensors", infer_kinds(table.schema)[0])   # any table: a name + inferred kinds
    builder.update(table)                                 # pyarrow.Table with (at least) the feature columns
    builder.update_columns({"amount": np.array(...), "channel": ["pos", None, ...]})   # numpy-only path
    total = builder_a.merge(builder_b)                    # in place, returns self; same contract/accuracy only
    profile = total.finalize()                            # -> Profile (immutable)
    text = profile.to_json(); Profile.from_json(text)     # loading needs json + numpy only
    ProfileBuilder.from_profile(profile)                  # resume building from a stored profile
    # prediction drift: the training/evaluation step profiles the model's outputs beside the features
    ProfileBuilder(contract, outputs={"score": "numerical"}).update(table, outputs=pa.table({"score": scores}))

Builders pickle (Dask: build one per partition on the workers, merge on the client); merging is exact and
order-independent for counts and histograms (floating-point mean/std up to rounding). update() bins the
numerical columns of a large partition on threads (numpy releases the GIL). Bad input raises ProfileError
naming the column: a missing feature column, a non-numeric value in a numerical feature, a mismatched merge.

A Profile holds the row count and, per feature (and optionally per model output, `outputs=` in the builder):
- numerical: non-missing count, missing count (null, NaN or +-inf: non-finite values are *missing*, never
  binned), mean, std, min, max, a 101-point quantile grid (0%, 1%, ..., 100%) and a fine histogram;
- categorical: missing count and the frequency of every category (values keyed by `category_key`).

The histogram is a relative-error sketch (the DDSketch bucket scheme, Masson et al. 2019): value x > 0 falls
in bucket i = ceil(log_gamma x), gamma = (1 + a) / (1 - a), mirrored for x < 0, and |x| up to about MIN_VALUE
(exactly: up to the bucket edge just below it) shares one zero bucket. Buckets are fixed by `a` alone (no
ranges to agree on), so partitions merge by adding counts, and the drift check bins the current window with
the *same* scheme. Consequences the drift statistics rely on (tested in tests/unit/test_drift_stats.py):
- every value is represented within relative error `a` (default 0.002), so the Wasserstein distance
  between binned samples is within a * (E|X| + E|Y|) of the exact one;
- the KS statistic between binned samples is at most the exact one and at least the exact one minus the
  largest single-bucket probability mass (reported by the check as `ks_error_bound`); the KS test on binned data is
  the exact KS test on rounded data, so its false-alarm rate stays controlled.
Only non-empty buckets are stored (sorted signed keys + counts), so a profile of 25 features is a few
hundred KB of JSON that loads in milliseconds. We hand-write this sketch rather than depend on `ddsketch`
because we need the bucket keys themselves (aligned histograms), not only quantile queries.

The code lives in four modules; this one gathers their names under the one every caller imports:
- profile_sketch   BucketScheme (the bucket scheme above), the binning pass, ProfileError
- profile_types    Profile, NumericalProfile, CategoricalProfile and their JSON form
- profile_states   the mergeable per-column accumulators, category_key
- profile_builder  ProfileBuilder, infer_kinds
"""

from __future__ import annotations

from schemas.profile_builder import (
    ProfileBuilder,
    infer_kinds,
)
from schemas.profile_sketch import (
    DEFAULT_RELATIVE_ACCURACY,
    MIN_VALUE,
    BucketScheme,
    ProfileError,
)
from schemas.profile_states import (
    MAX_CATEGORIES,
    OTHER,
    category_key,
)
from schemas.profile_types import (
    FORMAT,
    MODEL_OUTPUT,
    QUANTILE_PROBS,
    CategoricalProfile,
    FeatureKind,
    FeatureProfile,
    NumericalProfile,
    Profile,
)

__all__ = [
    "DEFAULT_RELATIVE_ACCURACY",
    "FORMAT",
    "MAX_CATEGORIES",
    "MIN_VALUE",
    "MODEL_OUTPUT",
    "OTHER",
    "QUANTILE_PROBS",
    "BucketScheme",
    "CategoricalProfile",
    "FeatureKind",
    "FeatureProfile",
    "NumericalProfile",
    "Profile",
    "ProfileBuilder",
    "ProfileError",
    "category_key",
    "infer_kinds",
]
