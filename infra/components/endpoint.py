"""ModelEndpoint (stage serving): the SageMaker endpoint's first variants, data capture, autoscaling and the
per-variant alarms that the traffic function reads before every rollout step.

Ownership. The stack creates the endpoint with its first model (champion_model_version, plus an optional
challenger), each variant named like every later one: <model>-<version> (schemas.naming.model_version_name).
After that first deployment the variants belong to `tide deploy` (a new endpoint configuration per model,
UpdateEndpoint) and the traffic function (UpdateEndpointWeightsAndCapacities): the Endpoint resource ignores its
endpoint configuration (`ignore_changes`), so a later `pulumi up`, whatever changed in the stack config, never
switches the live endpoint back to this configuration and its weights. The models and configuration the stack
made are kept if Pulumi replaces them (`retain_on_delete`), since a live configuration may still name them.
`tide deploy` gives each variant it adds the same alarms and autoscaling as the serving variant, under the same
names (<endpoint>-<variant>-<kind>), so alarms and scaling follow the live variant names.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.datalake import CAPTURES_ROOT, DataLake
from infra.config import StackConfig
from schemas.naming import (
    Names,
    captures_prefix,
    endpoint_config_prefix,
    model_prefix,
    models_root,
    sagemaker_model_prefix,
)
from serving.package import SAGEMAKER_ENV

# The endpoint configuration field that `tide deploy` and the traffic function change after the first deployment.
OWNED_AFTER_FIRST_DEPLOY = ["endpoint_config_name"]

MODEL_ARCHIVE = "model.tar.gz"


def alarm_specs(endpoint: str, variant: str, cfg: StackConfig) -> dict[str, dict[str, Any]]:
    """kind -> MetricAlarm arguments for one variant (pure: tested without Pulumi)."""
    dimensions = {"EndpointName": endpoint, "VariantName": variant}

    def metric(metric_id: str, metric_name: str) -> dict[str, Any]:
        return {
            "id": metric_id,
            "metric": {
                "namespace": "AWS/SageMaker",
                "metric_name": metric_name,
                "dimensions": dimensions,
                "period": 60,
                "stat": "Sum",
            },
            "return_data": False,
        }

    return {
        "5xx-rate": {
            "alarm_description": f"{variant}: share of invocations answered 5XX (percent)",
            "comparison_operator": "GreaterThanThreshold",
            "threshold": float(cfg.alarm_5xx_rate_percent),
            "evaluation_periods": cfg.alarm_evaluation_minutes,
            # No traffic (a weight-0 challenger) is not a failure.
            "treat_missing_data": "notBreaching",
            "metric_queries": [
                metric("errors", "Invocation5XXErrors"),
                metric("invocations", "Invocations"),
                {
                    "id": "rate",
                    "expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                    "label": "5XX rate (%)",
                    "return_data": True,
                },
            ],
        },
        "latency-p99": {
            "alarm_description": f"{variant}: p99 model latency above {cfg.alarm_latency_p99_ms} ms",
            "comparison_operator": "GreaterThanThreshold",
            "threshold": float(cfg.alarm_latency_p99_ms * 1000),  # ModelLatency is in microseconds
            "evaluation_periods": cfg.alarm_evaluation_minutes,
            "treat_missing_data": "notBreaching",
            "namespace": "AWS/SageMaker",
            "metric_name": "ModelLatency",
            "dimensions": dimensions,
            "period": 60,
            "extended_statistic": "p99",
        },
    }


class ModelEndpoint(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        *,
        names: Names,
        cfg: StackConfig,
        lake: DataLake,
        alert_topic_arn: pulumi.Input[str],
        account_id: pulumi.Input[str],
        region: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:serving:ModelEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.endpoint_name = names.endpoint(cfg.model_name)
        artifacts, captures = lake.buckets["artifacts"], lake.buckets["captures"]
        # SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh: the files land under naming.captures_prefix.
        self.capture_destination = captures.bucket.apply(lambda b: f"s3://{b}/{CAPTURES_ROOT.rstrip('/')}")

        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(policies.assume_role("sagemaker.amazonaws.com")),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            policy=pulumi.Output.all(artifacts.arn, captures.arn, lake.key.arn, region, account_id).apply(
                lambda v: json.dumps(
                    policies.endpoint_policy(
                        artifacts_bucket_arn=v[0],
                        models_prefix=models_root(cfg.model_name),
                        captures_bucket_arn=v[1],
                        captures_prefix=captures_prefix(self.endpoint_name),
                        image_repository_arns=[policies.ecr_repository_arn(cfg.endpoint_image)],
                        log_group_arn_prefix=(
                            f"arn:aws:logs:{v[3]}:{v[4]}:log-group:/aws/sagemaker/Endpoints/{self.endpoint_name}"
                        ),
                        key_arn=v[2],
                    )
                )
            ),
            opts=child,
        )
        self.variant_names = cfg.variant_names  # role -> <model>-<version>
        retained = pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[role_policy])
        self.models: dict[str, aws.sagemaker.Model] = {}
        for variant, version in cfg.model_versions.items():
            archive = f"{model_prefix(cfg.model_name, version)}{MODEL_ARCHIVE}"
            # Auto-named <model>-<role>-<suffix>: under sagemaker_model_prefix, where the drift role reads.
            self.models[variant] = aws.sagemaker.Model(
                f"{sagemaker_model_prefix(cfg.model_name)}{variant}",
                execution_role_arn=self.role.arn,
                primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                    image=cfg.endpoint_image,
                    model_data_url=pulumi.Output.concat("s3://", artifacts.bucket, "/", archive),
                    # SAGEMAKER_PROGRAM: model.tar.gz's code/inference.py (serving.package); TIDE_*: naming's prefix
                    environment={**SAGEMAKER_ENV, "TIDE_MODEL_VERSION": cfg.model_versions[variant]},
                ),
                opts=retained,
            )
        self.config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name_prefix=endpoint_config_prefix(self.endpoint_name),
            kms_key_arn=lake.key.arn,
            production_variants=[
                {
                    "variant_name": self.variant_names[variant],
                    "model_name": self.models[variant].name,
                    "instance_type": cfg.endpoint_instance_type,
                    "initial_instance_count": cfg.endpoint_min_instances,
                    "initial_variant_weight": float(cfg.weights[self.variant_names[variant]]),
                }
                for variant in self.models
            ],
            data_capture_config={
                "enable_capture": True,
                "initial_sampling_percentage": cfg.capture_sampling_percent,
                "destination_s3_uri": self.capture_destination,
                "kms_key_id": lake.key.arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": ["text/csv"],
                    "json_content_types": ["application/json"],
                },
            },
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=self.endpoint_name,
            endpoint_config_name=self.config.name,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=OWNED_AFTER_FIRST_DEPLOY),
        )
        # Alarms and scaling of the first variants, keyed by role in Pulumi (stable resource names), named after
        # the live variant; `tide deploy` copies them for each variant it adds (jobs/deploy/guards.py).
        self.alarms: dict[str, dict[str, aws.cloudwatch.MetricAlarm]] = {}
        for role, variant in self.variant_names.items():
            resource_id = f"endpoint/{self.endpoint_name}/variant/{variant}"
            target = aws.appautoscaling.Target(
                f"{name}-{role}-scaling",
                service_namespace="sagemaker",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                resource_id=resource_id,
                min_capacity=cfg.endpoint_min_instances,
                max_capacity=cfg.endpoint_max_instances,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.endpoint]),
            )
            aws.appautoscaling.Policy(
                f"{name}-{role}-target-tracking",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": float(cfg.endpoint_invocations_per_instance),
                    "predefined_metric_specification": {
                        "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                    },
                    "scale_in_cooldown": 300,
                    "scale_out_cooldown": 60,
                },
                opts=child,
            )
            specs = alarm_specs(self.endpoint_name, variant, cfg)
            self.alarms[variant] = {
                kind: aws.cloudwatch.MetricAlarm(
                    f"{name}-{role}-{kind}",
                    name=names.variant_alarm(self.endpoint_name, variant, kind),
                    alarm_actions=[alert_topic_arn],
                    ok_actions=[alert_topic_arn],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.endpoint]),
                    **spec,
                )
                for kind, spec in specs.items()
            }
        self.register_outputs(
            {
                "endpoint_name": self.endpoint.name,
                "role_arn": self.role.arn,
                "alarms": {v: {k: a.name for k, a in by_kind.items()} for v, by_kind in self.alarms.items()},
            }
        )
