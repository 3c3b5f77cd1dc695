"""What a drift check watches: the endpoint, the variant and the baseline profile that applies to it.

The stack's schedule sends an empty detail (one schedule, one endpoint per stack): the endpoint then comes
from the function's environment, the variant is the one taking the most traffic (the champion), and the
baseline is the one its model's metadata names (training writes metadata.json beside model.tar.gz, and the
baseline there holds the dataset's features and the model's validation scores). An event may name any of the
three itself (`tide drift`, a backfill, another variant).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from functions.drift.storage import ObjectStore


class TargetError(RuntimeError):
    """The drift check cannot tell what to watch or which baseline applies; the message says what is missing."""


@dataclass(frozen=True)
class Target:
    endpoint: str
    variant: str | None  # None: every variant's captures
    baseline_url: str  # s3://bucket/key of a schemas.profile document


def champion_variant(described_endpoint: dict[str, Any]) -> str:
    """The variant with the largest current weight (DescribeEndpoint); ties go to the first by name."""
    variants = described_endpoint.get("ProductionVariants") or []
    weighted = [(float(v.get("CurrentWeight", v.get("DesiredWeight", 0.0))), str(v["VariantName"])) for v in variants]
    if not weighted:
        raise TargetError(f"endpoint {described_endpoint.get('EndpointName')!r} has no production variants")
    best = max(w for w, _ in weighted)
    return min(name for w, name in weighted if w == best)


def metadata_location(model_data_url: str) -> tuple[str, str]:
    """(bucket, key) of the metadata.json that training wrote beside the packaged model."""
    if not model_data_url.startswith("s3://"):
        raise TargetError(f"model data {model_data_url!r} is not in S3; cannot find its metadata")
    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    return bucket, posixpath.join(posixpath.dirname(key), "metadata.json")


def resolve(detail: dict[str, Any], default_endpoint: str | None, sagemaker: Any, store: ObjectStore) -> Target:
    """The event's own choices where it makes them; otherwise the endpoint's champion and its model's baseline."""
    endpoint = detail.get("endpoint") or default_endpoint
    if not endpoint:
        raise TargetError("no endpoint: the event names none and TIDE_ENDPOINT is not set")
    if detail.get("baseline"):
        return Target(str(endpoint), detail.get("variant"), str(detail["baseline"]))
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    variant = detail.get("variant") or champion_variant(described)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    models = {v["VariantName"]: v["ModelName"] for v in config["ProductionVariants"]}
    if variant not in models:
        raise TargetError(f"endpoint {endpoint!r} has no variant {variant!r}; it has {sorted(models)}")
    model = sagemaker.describe_model(ModelName=models[variant])
    bucket, key = metadata_location(model["PrimaryContainer"]["ModelDataUrl"])
    try:
        metadata = json.loads(store.get(bucket, key))
    except json.JSONDecodeError as err:
        raise TargetError(f"s3://{bucket}/{key} is not JSON: {err}") from None
    baseline = metadata.get("baseline_url")
    if not baseline:
        raise TargetError(f"model {models[variant]!r} (s3://{bucket}/{key}) names no drift baseline")
    return Target(str(endpoint), str(variant), str(baseline))
