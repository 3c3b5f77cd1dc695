"""Dataset contracts: one versioned YAML per dataset, loaded into a typed, validated model.

A contract declares columns, types, nullability, ranges, allowed categories, uniqueness and each column's
role. From it come the great-expectations suite (schemas.expectations), the pyarrow schema and the feature
list that training and the drift check use. Loading imports neither pyarrow nor great-expectations, so the
drift function stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    import pyarrow as pa

CONTRACTS_DIR = Path(__file__).parent / "datasets"

TimeUnit = Literal["s", "ms", "us", "ns"]
ColumnType = Literal["string", "int8", "int16", "int32", "int64", "float32", "float64", "bool", "timestamp"]
Role = Literal["id", "timestamp", "feature", "label"]
FeatureKind = Literal["numerical", "categorical"]
NUMERIC_TYPES: frozenset[str] = frozenset({"int8", "int16", "int32", "int64", "float32", "float64"})


class ContractError(ValueError):
    """A contract file is missing or malformed; the message names the file, the field and the problem."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: {field}: {problem}")


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: ColumnType
    role: Role
    nullable: bool = True
    unique: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str | int | bool, ...] | None = None
    kind: FeatureKind | None = None
    # A timestamp column stored as integer epoch numbers: their unit. Without it an integer is wrong_type.
    unit: TimeUnit | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.unit is not None and self.type != "timestamp":
            raise ValueError(f"unit applies to timestamp columns only, not {self.type}")
        if (self.min is not None or self.max is not None) and self.type not in NUMERIC_TYPES:
            raise ValueError(f"min/max need a numeric type, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if self.categories is not None:
            if len(self.categories) == 0:
                raise ValueError("categories must not be empty")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("categories must not repeat")
        if self.kind is not None and self.role != "feature":
            raise ValueError("kind applies to features only")
        if self.role == "id" and (self.nullable or not self.unique):
            raise ValueError("an id column must be unique and not nullable")
        if self.role == "timestamp" and self.type != "timestamp":
            raise ValueError("the timestamp column must have type timestamp")
        if self.kind == "numerical" and self.type not in NUMERIC_TYPES:
            raise ValueError(f"a numerical feature needs a numeric type, not {self.type}")
        return self

    @property
    def feature_kind(self) -> FeatureKind:
        """Strings, booleans and enumerated integers are categorical unless declared otherwise."""
        if self.kind is not None:
            return self.kind
        if self.type in ("string", "bool") or self.categories is not None:
            return "categorical"
        return "numerical"


class Limits(BaseModel):
    """What a file of the dataset may hold before it is rejected without being parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_columns: int = Field(default=1000, ge=1)  # a header wider than this is `too_many_columns`


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    version: int = Field(ge=1)
    description: str = ""
    columns: tuple[Column, ...] = Field(min_length=1)
    limits: Limits = Limits()

    @model_validator(mode="after")
    def _roles(self) -> Self:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if len(names) > self.limits.max_columns:
            raise ValueError(f"{len(names)} columns is over limits.max_columns ({self.limits.max_columns})")
        if duplicates:
            raise ValueError(f"duplicate column names: {', '.join(duplicates)}")
        for role, allowed in (("id", 1), ("timestamp", 1), ("label", 1)):
            count = sum(c.role == role for c in self.columns)
            if count > allowed:
                raise ValueError(f"at most {allowed} column(s) may have role {role}, found {count}")
        if not any(c.role == "feature" for c in self.columns):
            raise ValueError("a contract needs at least one feature column")
        return self

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.dataset} v{self.version} has no column {name!r}")

    def _role(self, role: Role) -> Column | None:
        return next((c for c in self.columns if c.role == role), None)

    @property
    def id_column(self) -> Column | None:
        return self._role("id")

    @property
    def timestamp_column(self) -> Column | None:
        return self._role("timestamp")

    @property
    def label_column(self) -> Column | None:
        return self._role("label")

    @property
    def features(self) -> list[Feature]:
        return [Feature(c.name, c.feature_kind, c.categories, c.nullable) for c in self.columns if c.role == "feature"]

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [pa.field(c.name, _arrow_type(c.type), nullable=c.nullable) for c in self.columns],
            metadata={"contract": f"{self.dataset}/v{self.version}"},
        )

    @property
    def ref(self) -> str:
        return f"{self.dataset}/v{self.version}"


@dataclass(frozen=True)
class Feature:
    """A model input as training and the drift check see it."""

    name: str
    kind: FeatureKind
    categories: tuple[str | int | bool, ...] | None
    nullable: bool


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    types: dict[str, pa.DataType] = {
        "string": pa.string(),
        "int8": pa.int8(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return types[name]


def _field_path(loc: Sequence[int | str], raw: Any) -> str:
    """Turn pydantic's location into a readable path; column indexes become the column's name."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            entry = node[item] if item < len(node) else None
            label = entry.get("name") if isinstance(entry, dict) else None
            parts.append(f"[{label}]" if label else f"[{item}]")
            node = entry
        else:
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "<contract>"


def parse_contract(text: str, source: str = "<string>") -> Contract:
    """Parse and validate contract YAML; every problem raises ContractError(source, field, problem)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ContractError(source, "<yaml>", f"not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ContractError(source, "<contract>", f"expected a mapping, got {type(raw).__name__}")
    try:
        return Contract.model_validate(raw)
    except ValidationError as err:
        # An unknown key first: a typo (`colums:`) also makes the key it meant "required", the less useful half.
        errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        problem = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            problem = "unknown field" + _did_you_mean(first["loc"])
        more = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
        raise ContractError(source, _field_path(first["loc"], raw), problem + more) from None


def _did_you_mean(loc: Sequence[int | str]) -> str:
    """A suggestion for an unknown key: the closest field of the model it sits in (contract or column)."""
    import difflib

    model = Column if any(isinstance(part, int) for part in loc) else Contract
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def load_contract_file(path: Path) -> Contract:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ContractError(str(path), "<file>", f"cannot be read: {err.strerror}") from None
    contract = parse_contract(text, str(path))
    expected = (path.parent.name, path.stem)
    if expected != (contract.dataset, f"v{contract.version}"):
        raise ContractError(
            str(path), "dataset/version", f"file is at {expected[0]}/{expected[1]}.yaml but declares {contract.ref}"
        )
    return contract


def available_versions(dataset: str, root: Path = CONTRACTS_DIR) -> list[int]:
    return sorted(int(p.stem[1:]) for p in (root / dataset).glob("v*.yaml") if p.stem[1:].isdigit())


@functools.cache
def load_contract(dataset: str, version: int | None = None, root: Path = CONTRACTS_DIR) -> Contract:
    """The contract of a dataset (newest version by default). Unknown datasets raise ContractError."""
    versions = available_versions(dataset, root)
    if not versions:
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ContractError(
            str(root / dataset), "dataset", f"no contract for {dataset!r}; known datasets: {', '.join(known)}"
        )
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise ContractError(str(root / dataset), "version", f"no v{chosen}; versions are {versions}")
    return load_contract_file(root / dataset / f"v{chosen}.yaml")
