"""Object-key layouts of the lake's buckets (raw, curated, quarantine, datasets, artifacts, captures, reports)
and the key layouts of the platform's state stores (rollout, drift and quality state). Pure: no cloud calls, no
heavy imports.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from schemas.naming_rules import NamingError, check_dataset, check_model_name, check_model_version

# Raw objects live under this prefix of the raw bucket: raw/<dataset>/<yyyy>/<mm>/<dd>/<name>.<fmt>[.gz]
RAW_PREFIX: Final = "raw/"
_RAW_KEY = re.compile(r"^raw/(?P<dataset>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<name>[^/]+)$")


def raw_key(dataset: str, day: dt.date, filename: str) -> str:
    """Key of a producer's file in the raw bucket."""
    check_dataset(dataset)
    if "/" in filename or not filename:
        raise NamingError(f"raw file name {filename!r} must be a plain file name")
    return f"{RAW_PREFIX}{dataset}/{day:%Y/%m/%d}/{filename}"


@dataclass(frozen=True)
class RawKey:
    dataset: str
    day: dt.date
    filename: str


def parse_raw_key(key: str) -> RawKey:
    """Split a raw key into dataset, day and file name; a key outside the layout is a NamingError."""
    match = _RAW_KEY.match(key)
    if not match:
        raise NamingError(f"key {key!r} is not of the form raw/<dataset>/<yyyy>/<mm>/<dd>/<name>")
    try:
        day = dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError as err:
        raise NamingError(f"key {key!r} has an invalid date: {err}") from None
    return RawKey(dataset=check_dataset(match["dataset"]), day=day, filename=match["name"])


def curated_prefix(dataset: str, day: dt.date | None = None) -> str:
    """Curated Parquet is partitioned by event date (hive style, readable by Dask and Athena alike)."""
    check_dataset(dataset)
    return f"{dataset}/" if day is None else f"{dataset}/event_date={day.isoformat()}/"


def quarantine_prefix(dataset: str, day: dt.date) -> str:
    check_dataset(dataset)
    return f"{dataset}/{day:%Y/%m/%d}/"


def dataset_version_prefix(dataset: str, version: str) -> str:
    check_dataset(dataset)
    return f"{dataset}/{version}/"


# Roots of the artifacts bucket that training writes (models and resumable checkpoints); IAM grants use them.
MODELS_ROOT: Final = "models/"
CHECKPOINTS_ROOT: Final = "checkpoints/"
# Where the SageMaker SDK puts a training job's source code and output (the session's default bucket prefix).
TRAINING_JOBS_ROOT: Final = "training-jobs/"


# Progress of the retraining runner (`tide retrain`): one record per model version it launched.
RETRAINING_ROOT: Final = "retraining/"


def retraining_root(model: str) -> str:
    return f"{RETRAINING_ROOT}{check_model_name(model)}/"


def retraining_record_key(model: str, version: str) -> str:
    return f"{retraining_root(model)}{check_model_version(version)}.json"


def models_root(model: str) -> str:
    """Every version of a model lives under this prefix of the artifacts bucket."""
    return f"{MODELS_ROOT}{model}/"


def model_prefix(model: str, version: str) -> str:
    """Where `tide train` writes one model version, and where the stack's endpoint and `tide deploy` read it."""
    return f"{MODELS_ROOT}{check_model_name(model)}/{check_model_version(version)}/"


def captures_prefix(endpoint: str) -> str:
    """SageMaker data capture writes <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl under this."""
    return f"datacapture/{endpoint}/"


SHADOW_ROOT: Final = "shadow/"


def shadow_prefix(endpoint: str) -> str:
    """Shadow pairs (champion and challenger answers to one mirrored request) of an endpoint, in the captures
    bucket: written by the serving-side ShadowMirror's S3ShadowLog, read by the traffic function's judge."""
    return f"{SHADOW_ROOT}{endpoint}/"


def reports_prefix(kind: str, endpoint: str) -> str:
    return f"{kind}/{endpoint}/"


# Rollout table (functions/traffic): pk = endpoint; sk = ROLLOUT_STATE_SK for the current rollout's state,
# ROLLOUT_AUDIT_PREFIX + "<rollout_id>#<decision no.>" for each decision of the audit trail.
ROLLOUT_TABLE_KEYS: Final[tuple[str, str]] = ("pk", "sk")
ROLLOUT_STATE_SK: Final = "STATE"
ROLLOUT_AUDIT_PREFIX: Final = "AUDIT#"
# The kubernetes target's rollout store (ConfigMaps in the serving namespace): every object of one store carries
# ROLLOUT_STORE_LABEL=<Names.rollout_store>; a rollout's state object is rollout_state_config_map(endpoint).
ROLLOUT_STORE_LABEL: Final = "tidewater.io/rollout-store"


def rollout_state_config_map(endpoint: str) -> str:
    return f"{endpoint}-rollout"


# Drift-state table (functions/drift): one item per endpoint, the consecutive-breach counter.
DRIFT_STATE_TABLE_KEYS: Final[tuple[str]] = ("endpoint",)
# The quality check (functions/quality) keeps its breach counters in the same table, one item per endpoint and
# model version under its own key prefix (its IAM role may touch only those keys), and reads only these files of
# each model version (what training stores beside model.tar.gz: the serving threshold and validation scores).
QUALITY_BASELINE_FILES: Final[tuple[str, ...]] = ("metadata.json", "validation_predictions.parquet")
LABELS_DATASET: Final = "labels"  # the delayed labels' dataset (schemas/datasets/labels), curated like any other


def quality_state_prefix(endpoint: str) -> str:
    return f"quality#{endpoint}#"


def quality_state_key(endpoint: str, version: str) -> str:
    return f"{quality_state_prefix(endpoint)}{version}"


# Quarantine folder of an object whose key is outside the raw layout, so its dataset and day are unknown.
UNROUTED_PREFIX: Final = "_unrouted/"


def unrouted_quarantine_prefix(key: str) -> str:
    return f"{UNROUTED_PREFIX}{key}"


def capture_hour_prefix(endpoint: str, variant: str, hour: dt.datetime) -> str:
    """Where SageMaker data capture puts one variant's records of one UTC hour."""
    if "/" in variant or not variant:
        raise NamingError(f"variant {variant!r} must be a plain name")
    return f"{captures_prefix(endpoint)}{variant}/{hour.astimezone(dt.UTC):%Y/%m/%d/%H}/"
