"""What a model needs to know about its inputs at serving time, stored beside its weights (`serving.json`).

Training derives it from the dataset contract the model was trained on, so a served model validates and
encodes requests with exactly that contract's features, whatever contract versions exist later. Standard
library only: this module ships inside model.tar.gz.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

SPEC_FILE = "serving.json"
WEIGHTS_FILE = "model.pt"
FORMAT = 1
# How model.pt's linear layers are stored: float32 as trained, or dynamic int8 (torch's quantize_dynamic;
# `tide compress`). Predictor.load rebuilds the layout this names; an older serving.json without it is float32.
WEIGHT_LAYOUTS = ("float32", "dynamic_int8")
INTEGER_TYPES = frozenset({"int8", "int16", "int32", "int64"})
FLOAT_TYPES = frozenset({"float32", "float64"})


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: Literal["numerical", "categorical"]
    type: str  # the contract's column type: string, bool, int8..int64, float32, float64
    nullable: bool
    categories: tuple[str | int | bool, ...] | None = None


@dataclass(frozen=True)
class ModelSpec:
    model: str
    version: str
    contract: str  # dataset/vN the model was trained on
    threshold: float  # score at or above which the label is 1
    features: tuple[FeatureSpec, ...]
    weights: str = "float32"  # one of WEIGHT_LAYOUTS

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_LAYOUTS:
            raise ValueError(f"{SPEC_FILE}: weights {self.weights!r} is not one of {', '.join(WEIGHT_LAYOUTS)}")

    def to_json(self) -> str:
        body = asdict(self)
        body["format"] = FORMAT
        return json.dumps(body, indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        body: dict[str, Any] = json.loads(text)
        if body.get("format") != FORMAT:
            raise ValueError(f"{SPEC_FILE}: format {body.get('format')!r} is not {FORMAT}")
        features = tuple(
            FeatureSpec(
                f["name"],
                f["kind"],
                f["type"],
                bool(f["nullable"]),
                None if f.get("categories") is None else tuple(f["categories"]),
            )
            for f in body["features"]
        )
        return cls(
            str(body["model"]), str(body["version"]), str(body["contract"]), float(body["threshold"]), features,
            str(body.get("weights", "float32")),
        )  # fmt: skip


def spec_from_contract(contract: Any, model: str, version: str, threshold: float) -> ModelSpec:
    """The serving spec of a `schemas.contract.Contract` (duck-typed: this module imports nothing of the repo)."""
    features = tuple(
        FeatureSpec(c.name, c.feature_kind, c.type, c.nullable, c.categories)
        for c in contract.columns
        if c.role == "feature"
    )
    return ModelSpec(model, version, contract.ref, threshold, features)
