"""DataLake: one bucket per zone, all locked down the same way, plus the access-log bucket.

Every zone bucket: versioning, SSE-KMS with the lake's customer key (rotation on, S3 bucket keys to cut KMS
calls), all four public-access blocks, ACLs disabled (BucketOwnerEnforced), a TLS-only policy, lifecycle rules
and server access logging. The access-log bucket is the one bucket on SSE-S3: S3 cannot deliver server access
logs to a bucket whose default encryption is SSE-KMS.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.config import StackConfig
from schemas.naming import RAW_PREFIX, ZONES, Names, Zone

CAPTURES_ROOT = "datacapture/"  # SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh (naming.captures_prefix)


def lifecycle_rules(zone: Zone | None, cfg: StackConfig) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """Rules per bucket: every bucket expires old versions and aborts stale uploads; raw and captures tier down."""
    housekeeping: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
        "id": "housekeeping",
        "status": "Enabled",
        "filter": {},
        "noncurrent_version_expiration": {"noncurrent_days": cfg.noncurrent_version_expiration_days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": cfg.abort_multipart_days},
    }
    rules = [housekeeping]
    if zone == "raw":
        rules.append(
            {
                "id": "raw-tiering",
                "status": "Enabled",
                "filter": {"prefix": RAW_PREFIX},
                "transitions": [
                    {"days": cfg.raw_infrequent_access_days, "storage_class": "STANDARD_IA"},
                    {"days": cfg.raw_glacier_days, "storage_class": "GLACIER_IR"},
                ],
                "expiration": {"days": cfg.raw_expiration_days},
            }
        )
    elif zone == "captures":
        rules.append(
            {
                "id": "captures-tiering",
                "status": "Enabled",
                "filter": {"prefix": CAPTURES_ROOT},
                "transitions": [{"days": cfg.captures_infrequent_access_days, "storage_class": "STANDARD_IA"}],
                "expiration": {"days": cfg.captures_expiration_days},
            }
        )
    elif zone is None:  # the access-log bucket
        housekeeping["expiration"] = {"days": cfg.access_log_expiration_days}
    return rules


class DataLake(pulumi.ComponentResource):
    """The zones of the lake as buckets, the lake's KMS key and the access-log bucket."""

    def __init__(
        self,
        name: str,
        *,
        names: Names,
        cfg: StackConfig,
        account_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:storage:DataLake", name, None, opts)
        self._name = name
        self._cfg = cfg
        account = pulumi.Output.from_input(account_id)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{names.prefix}: data lake, tables, captures",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=account.apply(lambda a: json.dumps(policies.data_key_policy(a))),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_alias = aws.kms.Alias(
            f"{name}-key-alias",
            name=names.kms_alias,
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.log_bucket = aws.s3.Bucket(
            f"{name}-access-logs", bucket=names.access_log_bucket, opts=pulumi.ResourceOptions(parent=self)
        )
        self.buckets: dict[Zone, aws.s3.Bucket] = {
            zone: aws.s3.Bucket(f"{name}-{zone}", bucket=names.bucket(zone), opts=pulumi.ResourceOptions(parent=self))
            for zone in ZONES
        }
        log_delivery = pulumi.Output.all(self.log_bucket.arn, account, *[b.arn for b in self.buckets.values()]).apply(
            lambda v: [policies.access_log_delivery(v[0], list(v[2:]), v[1])]
        )
        self._harden("access-logs", self.log_bucket, kms_key_arn=None, zone=None, extra_statements=log_delivery)
        for zone, bucket in self.buckets.items():
            self._harden(zone, bucket, kms_key_arn=self.key.arn, zone=zone)
            aws.s3.BucketLogging(
                f"{name}-{zone}-logging",
                bucket=bucket.id,
                target_bucket=self.log_bucket.id,
                target_prefix=f"{zone}/",
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs(
            {
                "key_arn": self.key.arn,
                "buckets": {zone: b.bucket for zone, b in self.buckets.items()},
                "access_log_bucket": self.log_bucket.bucket,
            }
        )

    def _harden(
        self,
        label: str,
        bucket: aws.s3.Bucket,
        *,
        kms_key_arn: pulumi.Output[str] | None,
        zone: Zone | None,
        extra_statements: pulumi.Output[Sequence[dict[str, Any]]] | None = None,
    ) -> None:
        name, opts = f"{self._name}-{label}", pulumi.ResourceOptions(parent=self)
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=opts
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=opts
        )
        by_default = (
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
            )
            if kms_key_arn is not None
            else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=by_default, bucket_key_enabled=kms_key_arn is not None
                )
            ],
            opts=opts,
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        )
        extra = extra_statements if extra_statements is not None else pulumi.Output.from_input([])
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, extra).apply(
                lambda v: json.dumps(policies.tls_only_bucket(v[0], list(v[1])))
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id, rules=lifecycle_rules(zone, self._cfg), opts=opts
        )
