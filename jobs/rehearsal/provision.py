"""Create, on the embedded cloud, the resources the Pulumi program declares for functions and jobs.

Names come from schemas.naming, the same module the Pulumi program uses. Settings mirror the DataLake
component's security defaults (versioning, SSE-KMS, public access blocked) so code meets the same bucket
behaviour locally as in the cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.naming import Names, Zone


@dataclass(frozen=True)
class LocalLake:
    names: Names
    kms_key_id: str
    buckets: dict[Zone, str]


def provision_lake(names: Names, s3: Any, kms: Any) -> LocalLake:
    key_id = kms.create_key(Description=f"{names.prefix} data lake")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=names.kms_alias, TargetKeyId=key_id)
    for bucket in names.buckets().values():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key_id,
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    return LocalLake(names=names, kms_key_id=key_id, buckets=names.buckets())
