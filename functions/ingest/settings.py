"""The ingest function's configuration, read once from the environment (set by infra from stack config)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from functions.ingest.policy import Policy
from functions.ingest.readers import Limits
from schemas.naming import Names

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600  # longer than SQS can keep a message (4 days by default)


@dataclass(frozen=True)
class Settings:
    names: Names
    limits: Limits
    policy: Policy

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        defaults = Limits()

        def number(var: str, default: float) -> float:
            value = env.get(var)
            if value is None:
                return default
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"{var}={value!r} is not a number") from None

        return cls(
            names=Names.from_env(env),
            limits=Limits(
                max_object_bytes=int(number("INGEST_MAX_OBJECT_BYTES", defaults.max_object_bytes)),
                max_decoded_bytes=int(number("INGEST_MAX_DECODED_BYTES", defaults.max_decoded_bytes)),
                block_bytes=int(number("INGEST_BLOCK_BYTES", defaults.block_bytes)),
            ),
            policy=Policy(max_bad_row_share=number("INGEST_MAX_BAD_ROW_SHARE", Policy().max_bad_row_share)),
        )
