"""Deploy a trained model to a SageMaker endpoint as a challenger variant at weight 0, data capture on.

The variant plan is pure (`plan_variants`); `SageMakerDeployer` applies it with an injected boto3 client:
create_model -> a new endpoint config holding the live variants (at their current weights and instance counts)
plus the challenger -> update_endpoint (or create_endpoint when there is no endpoint yet: the model is then the
only variant, at weight 1). The traffic function later moves weight to the challenger or removes it.

Every variant is named <model>-<version> (schemas.naming.model_version_name), the stack's first one included, so
a model the stack already serves (under a SageMaker model of another name, same artifact) is not added twice.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from schemas.naming import NamingError, endpoint_config_prefix, model_version_name
from serving.package import SAGEMAKER_ENV

# SageMaker model, variant and endpoint-config names: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
VARIANT_FIELDS = ("VariantName", "ModelName", "InstanceType", "InitialInstanceCount", "InitialVariantWeight")


class DeployError(RuntimeError):
    """The model cannot be deployed as asked (bad artifact location, conflicting model name...)."""


@dataclass(frozen=True)
class DeployRequest:
    endpoint: str
    model_name: str  # SageMaker model name, e.g. fraud-<version>
    image: str
    model_data_url: str  # s3://.../model.tar.gz
    role_arn: str
    capture_destination: str  # s3://<captures bucket>/datacapture (SageMaker appends <endpoint>/<variant>/...)
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    capture_percent: int = 100

    def __post_init__(self) -> None:
        if not self.model_data_url.startswith("s3://"):
            raise DeployError(f"SageMaker loads models from S3; got {self.model_data_url!r}")
        if not 0 < self.capture_percent <= 100:
            raise DeployError(f"capture_percent must be in 1..100, got {self.capture_percent}")
        if len(self.model_name) > 63:
            raise DeployError(f"model name {self.model_name!r} is longer than SageMaker's 63 characters")
        if not _SAGEMAKER_NAME.match(self.model_name):
            raise DeployError(
                f"model name {self.model_name!r} is not a SageMaker name: letters, digits and single hyphens "
                "inside (no dots or underscores; a model version must follow the same rule)"
            )


@dataclass(frozen=True)
class DeployResult:
    endpoint: str
    endpoint_config: str
    variants: list[dict[str, Any]]
    created_endpoint: bool
    added: bool = True  # False: the model already served on the endpoint; nothing changed

    @property
    def source_variant(self) -> str | None:
        """The variant with the most traffic besides the new one: whose guards (alarms, scaling) it copies."""
        others = list(self.variants[:-1]) if self.added else []
        return max(others, key=lambda v: v["InitialVariantWeight"])["VariantName"] if others else None


def plan_variants(live: list[dict[str, Any]], request: DeployRequest) -> list[dict[str, Any]]:
    """Live variants keep their current weights; the challenger joins at weight 0 (or alone at 1).

    `live` are describe_endpoint's ProductionVariants joined with their config (weights: CurrentWeight).
    Deploying a model that already serves is a no-op plan (the same variants).
    """
    challenger = {
        "VariantName": request.model_name,
        "ModelName": request.model_name,
        "InstanceType": request.instance_type,
        "InitialInstanceCount": request.instance_count,
        "InitialVariantWeight": 0.0 if live else 1.0,
    }
    kept = [{k: v[k] for k in VARIANT_FIELDS} for v in live]
    if any(v["ModelName"] == request.model_name for v in kept):
        return kept
    if any(v["VariantName"] == challenger["VariantName"] for v in kept):
        raise DeployError(f"variant {challenger['VariantName']!r} already serves another model")
    return [*kept, challenger]


def _config_name(endpoint: str, variants: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256(repr(sorted((v["VariantName"], v["InitialVariantWeight"]) for v in variants)).encode())
    return f"{endpoint_config_prefix(endpoint)}{digest.hexdigest()[:12]}"


class SageMakerDeployer:
    def __init__(self, sagemaker: Any) -> None:
        self.sm = sagemaker  # boto3 SageMaker client (retries configured by the caller)

    def register(self, request: DeployRequest) -> None:
        """create_model, once: a model of the same name must already point at the same artifact."""
        existing = self._describe(self.sm.describe_model, ModelName=request.model_name)
        if existing is not None:
            url = existing["PrimaryContainer"].get("ModelDataUrl")
            if url != request.model_data_url:
                raise DeployError(
                    f"model {request.model_name!r} exists with artifact {url!r}, not {request.model_data_url!r}"
                )
            return
        self.sm.create_model(
            ModelName=request.model_name,
            # The PyTorch inference container runs model.tar.gz's code/inference.py (serving.package).
            PrimaryContainer={
                "Image": request.image,
                "ModelDataUrl": request.model_data_url,
                "Environment": dict(SAGEMAKER_ENV),
            },
            ExecutionRoleArn=request.role_arn,
            Tags=[{"Key": "tidewater:model", "Value": request.model_name}],
        )

    @staticmethod
    def _describe(call: Any, **kwargs: Any) -> dict[str, Any] | None:
        """A describe_* response, or None when SageMaker says the resource does not exist."""
        try:
            return dict(call(**kwargs))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ValidationException" and "not find" in str(err).lower():
                return None
            raise

    def live_variants(self, endpoint: str) -> list[dict[str, Any]] | None:
        """Current variants with their live weights; None when the endpoint does not exist."""
        described = self._describe(self.sm.describe_endpoint, EndpointName=endpoint)
        if described is None:
            return None
        config = self.sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        running = {v["VariantName"]: v for v in described.get("ProductionVariants", [])}
        live = []
        for variant in config["ProductionVariants"]:
            now = running.get(variant["VariantName"], {})
            weight, count = now.get("CurrentWeight"), now.get("DesiredInstanceCount", now.get("CurrentInstanceCount"))
            # Live weight and instance count (the traffic function's and autoscaling's), not the config's initial ones.
            live.append({**variant, "InitialVariantWeight": variant["InitialVariantWeight"] if weight is None
                         else weight, "InitialInstanceCount": variant["InitialInstanceCount"] if count is None
                         else count})  # fmt: skip
        return live

    def _serves_same_artifact(self, live: list[dict[str, Any]], request: DeployRequest) -> bool:
        """A live variant of the request's name runs the same artifact (the stack's first variant: its SageMaker
        model has a generated name)."""
        for variant in live:
            if variant["VariantName"] == request.model_name and variant["ModelName"] != request.model_name:
                model = self.sm.describe_model(ModelName=variant["ModelName"])
                return bool(model["PrimaryContainer"].get("ModelDataUrl") == request.model_data_url)
        return False

    def deploy(self, request: DeployRequest) -> DeployResult:
        live = self.live_variants(request.endpoint)
        if live is not None and self._serves_same_artifact(live, request):
            kept = [{k: v[k] for k in VARIANT_FIELDS} for v in live]
            current = self.sm.describe_endpoint(EndpointName=request.endpoint)["EndpointConfigName"]
            return DeployResult(request.endpoint, current, kept, created_endpoint=False, added=False)
        self.register(request)
        variants = plan_variants(live or [], request)
        config_name = _config_name(request.endpoint, variants)
        if live is not None and len(variants) == len(live):  # the model already serves on this endpoint
            current = self.sm.describe_endpoint(EndpointName=request.endpoint)["EndpointConfigName"]
            return DeployResult(request.endpoint, current, variants, created_endpoint=False, added=False)
        self._create_config(config_name, variants, request)
        if live is None:
            self.sm.create_endpoint(EndpointName=request.endpoint, EndpointConfigName=config_name)
        else:
            self.sm.update_endpoint(EndpointName=request.endpoint, EndpointConfigName=config_name)
        return DeployResult(request.endpoint, config_name, variants, created_endpoint=live is None)

    def _create_config(self, config_name: str, variants: list[dict[str, Any]], request: DeployRequest) -> None:
        self.sm.create_endpoint_config(
            EndpointConfigName=config_name,
            ProductionVariants=variants,
            DataCaptureConfig={
                "EnableCapture": True,
                "InitialSamplingPercentage": request.capture_percent,
                "DestinationS3Uri": request.capture_destination,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
            },
        )


def request_for_model(model_url: str, metadata: dict[str, Any], **settings: Any) -> DeployRequest:
    """A DeployRequest for the model training wrote at `model_url` (its metadata.json names it)."""
    package = metadata.get("artifacts", {}).get("package")
    if not package:
        raise DeployError(f"{model_url} has no packaged model (metadata.artifacts.package); retrain with this version")
    if metadata.get("serving", {}).get("entry_point") != SAGEMAKER_ENV["SAGEMAKER_PROGRAM"]:
        raise DeployError(
            f"{model_url}: its model.tar.gz carries no code/{SAGEMAKER_ENV['SAGEMAKER_PROGRAM']} for the "
            "inference container (trained before serving was packed); retrain with this version"
        )
    try:
        name = model_version_name(str(metadata["model"]), str(metadata["version"]))
    except NamingError as err:
        raise DeployError(f"{model_url}: {err}") from None
    return DeployRequest(
        model_name=name,
        model_data_url=f"{model_url.rstrip('/')}/{package}",
        **settings,
    )
