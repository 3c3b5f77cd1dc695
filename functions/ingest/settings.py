"""The ingest function's configuration, read once from the environment (set by infra from stack config)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from functions.ingest.policy import Policy
from functions.ingest.readers import Limits
from schemas.naming import Names

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600  # longer than SQS can keep a message (4 days by default)
# What the function needs besides the object (benchmarks/RESULTS.md, "Ingest", 5M rows: 1,126 MiB peak = 129
# process + 493 object + ~150 ids kept for uniqueness + ~350 a 4 MiB batch's working set and the row-group buffers).
FUNCTION_RESERVE_MIB = 512


def handoff_bytes(memory_mb: int) -> int:
    """The largest object the function takes, from its memory setting: the object is held while it is read
    batch by batch, and as much again is left for what grows with the file (a unique column's values and
    hashes, the bad rows' positions): (memory - reserve) / 2. 3,008 MB -> 1,248 MiB."""
    return max(0, memory_mb - FUNCTION_RESERVE_MIB) * 2**20 // 2


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

        # Lambda tells the function its memory setting; elsewhere (tests, a workload) the default applies.
        memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        handoff = (
            handoff_bytes(int(number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0))) if memory else defaults.max_object_bytes
        )
        return cls(
            names=Names.from_env(env),
            limits=Limits(
                max_object_bytes=int(number("INGEST_MAX_OBJECT_BYTES", handoff)),
                max_decoded_bytes=int(number("INGEST_MAX_DECODED_BYTES", defaults.max_decoded_bytes)),
                block_bytes=int(number("INGEST_BLOCK_BYTES", defaults.block_bytes)),
            ),
            policy=Policy(max_bad_row_share=number("INGEST_MAX_BAD_ROW_SHARE", Policy().max_bad_row_share)),
        )
