"""Training (stage platform, target aws): the SageMaker training execution role that `tide train --backend
sagemaker` and the retraining runner pass to their training jobs (stack output `training_role_arn`).

Its reach: the dataset versions (read), its model's versions under models/<model_name>/ and the SDK's job files
under training-jobs/ (read/write), the training image's repository, its log groups and the lake's key.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.datalake import DataLake
from infra.config import StackConfig
from schemas.naming import TRAINING_JOBS_ROOT, models_root


class Training(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        *,
        cfg: StackConfig,
        lake: DataLake,
        image_repository_arn: pulumi.Input[str],
        account_id: pulumi.Input[str],
        region: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:training:Training", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.from_input(account_id).apply(
                lambda a: json.dumps(policies.assume_role("sagemaker.amazonaws.com", source_account=a))
            ),
            opts=child,
        )
        datasets, artifacts = lake.buckets["datasets"], lake.buckets["artifacts"]
        self.policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                datasets.arn, artifacts.arn, image_repository_arn, lake.key.arn, region, account_id
            ).apply(
                lambda v: json.dumps(
                    policies.training_policy(
                        datasets_bucket_arn=v[0],
                        artifacts_bucket_arn=v[1],
                        models_prefix=models_root(cfg.model_name),
                        jobs_prefix=TRAINING_JOBS_ROOT,
                        image_repository_arn=v[2],
                        log_group_arn_prefix=f"arn:aws:logs:{v[4]}:{v[5]}:log-group:/aws/sagemaker/TrainingJobs",
                        key_arn=v[3],
                    )
                )
            ),
            opts=child,
        )
        self.register_outputs({"role_arn": self.role.arn})
