import copy
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.contract import ContractError, load_contract, load_contract_file, parse_contract

VALID = {
    "dataset": "toy",
    "version": 1,
    "columns": [
        {"name": "id", "type": "string", "role": "id", "nullable": False, "unique": True},
        {"name": "x", "type": "float64", "role": "feature", "min": 0, "max": 1},
        {"name": "c", "type": "string", "role": "feature", "categories": ["a", "b"]},
        {"name": "y", "type": "int8", "role": "label", "categories": [0, 1]},
    ],
}


def _with(path: tuple[object, ...], value: object) -> str:
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return yaml.safe_dump(doc)


def test_transactions_contract_loads_with_roles_and_features() -> None:
    contract = load_contract("transactions")
    assert contract.ref == "transactions/v1"
    assert contract.id_column is not None and contract.id_column.name == "transaction_id"
    assert contract.timestamp_column is not None and contract.label_column is not None
    kinds = {f.name: f.kind for f in contract.features}
    assert kinds["amount"] == "numerical" and kinds["hour"] == "numerical"
    assert kinds["merchant_category"] == "categorical" and kinds["channel"] == "categorical"
    assert "is_fraud" not in kinds and "transaction_id" not in kinds


def test_arrow_schema_follows_types_and_nullability() -> None:
    schema = load_contract("transactions").arrow_schema()
    assert schema.field("amount").type == pa.float64() and not schema.field("amount").nullable
    assert schema.field("device_age_days").nullable
    assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("is_fraud").type == pa.int8()


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [
        (("columns", 1, "type"), "decimal", "columns[x].type", "Input should be"),
        (("columns", 1, "min"), 5, "columns[x]", "greater than max"),
        (("columns", 2, "min"), 0, "columns[c]", "numeric type"),
        (("columns", 0, "unique"), False, "columns[id]", "id column must be unique"),
        (("columns", 2, "categories"), [], "columns[c]", "must not be empty"),
        (("columns", 1, "colour"), "red", "columns[x].colour", "unknown field"),
        (("version",), 0, "version", "greater than or equal to 1"),
        (("dataset",), "Bad Name", "dataset", "should match pattern"),
        (("columns",), [], "columns", "at least 1 item"),
    ],
)
def test_malformed_contract_names_file_field_and_problem(
    path: tuple[object, ...], value: object, field: str, problem: str
) -> None:
    with pytest.raises(ContractError) as err:
        parse_contract(_with(path, value), "toy/v1.yaml")
    assert err.value.source == "toy/v1.yaml"
    assert err.value.field == field
    assert problem in err.value.problem
    assert str(err.value).startswith("toy/v1.yaml: ")


def test_duplicate_columns_and_roles_are_reported() -> None:
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    doc["columns"].append(dict(doc["columns"][1]))
    with pytest.raises(ContractError, match="duplicate column names: x"):
        parse_contract(yaml.safe_dump(doc), "toy/v1.yaml")


def test_file_location_must_match_declared_dataset_and_version(tmp_path: Path) -> None:
    path = tmp_path / "toy" / "v2.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(VALID))
    with pytest.raises(ContractError, match=r"declares toy/v1"):
        load_contract_file(path)


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ContractError, match="known datasets: labels, transactions"):
        load_contract("payments")


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(["dataset", "version", "columns", "description"]), value=yaml_values)
def test_any_mangled_field_gives_a_contract_error_or_a_valid_contract(key: str, value: object) -> None:
    text = _with((key,), value)
    try:
        contract = parse_contract(text, "toy/v1.yaml")
    except ContractError as err:
        assert err.source == "toy/v1.yaml" and err.field and err.problem
    else:
        assert contract.dataset


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_loader(text: str) -> None:
    try:
        parse_contract(text, "any.yaml")
    except ContractError as err:
        assert err.source == "any.yaml"


@pytest.mark.parametrize(
    ("typo", "meant", "where"),
    [
        ("colums", "columns", "colums"),
        ("verison", "version", "verison"),
        ("nulable", "nullable", "columns[id].nulable"),
    ],
)
def test_a_misspelt_key_is_reported_first_with_a_suggestion(typo: str, meant: str, where: str) -> None:
    raw = copy.deepcopy(VALID)
    if typo == "nulable":
        raw["columns"][0]["nulable"] = raw["columns"][0].pop("nullable", False)
    else:
        raw[typo] = raw.pop(meant)
    with pytest.raises(ContractError) as info:
        parse_contract(yaml.safe_dump(raw), "c.yaml")
    assert info.value.field == where
    assert info.value.problem.startswith(f"unknown field; did you mean {meant!r}?")
