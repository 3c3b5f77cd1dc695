"""A config dataclass's defaults overridden from the environment: `<PREFIX>_<FIELD>` (DRIFT_ALPHA=0.01,
QUALITY_MIN_LABELLED=500), so the defaults stay in one place, the dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_env(cls: type[T], prefix: str, env: Mapping[str, str]) -> T:
    overrides: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        raw = env.get(f"{prefix}_{f.name.upper()}")
        if raw is not None:
            overrides[f.name] = int(raw) if f.type == "int" else float(raw)
    return cls(**overrides)
