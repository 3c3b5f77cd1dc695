"""The inference core in-process: the same encoding as training, and no request can crash it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import datagen
from jobs.train.data import Encoder
from schemas.contract import load_contract
from serving.inference import Predictor
from serving.package import unpack
from serving.payload import Limits, RequestError
from tests.serving.conftest import TrainedModel

DAY = dt.date(2026, 11, 3)


@pytest.fixture(scope="module")
def predictor(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    return Predictor.load(unpack(trained_model.archive, tmp_path_factory.mktemp("unpacked")), Limits(max_bytes=1 << 16))


@pytest.fixture(scope="module")
def records(predictor: Predictor) -> list[dict[str, Any]]:
    table = datagen.generate(40, DAY, seed=5)
    return [{f.name: row[f.name] for f in predictor.spec.features} for row in table.to_pylist()]


def test_served_scores_equal_training_encoder_and_net(predictor: Predictor, trained_model: TrainedModel) -> None:
    table = datagen.generate(64, DAY, seed=9)
    rows = [{f.name: r[f.name] for f in predictor.spec.features} for r in table.to_pylist()]
    served = json.loads(predictor.handle(json.dumps(rows), "application/json", None)[0])["predictions"]
    encoded = Encoder(load_contract("transactions")).encode(table)
    saved = torch.load(Path(trained_model.folder, "model.pt"), weights_only=True)
    from serving.net import TabularNet

    with torch.no_grad():
        logits = TabularNet.from_saved(saved)(
            torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numerical)
        )
    expected = torch.sigmoid(logits).numpy()
    np.testing.assert_allclose([p["score"] for p in served], expected, rtol=1e-5, atol=1e-6)
    metadata = json.loads(Path(trained_model.folder, "metadata.json").read_text())
    assert predictor.spec.threshold == metadata["metrics"]["threshold"] == metadata["serving"]["threshold"]


def test_a_large_request_is_scored_in_batches_with_the_same_scores(predictor: Predictor) -> None:
    table = datagen.generate(9000, DAY, seed=4)
    columns = {f.name: table.column(f.name).to_pylist() for f in predictor.spec.features}
    from serving.payload import columns_from_records

    records = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    batch = columns_from_records(records, predictor.spec.features)
    whole = predictor.scores(batch)
    first = predictor.scores(columns_from_records(
        [{k: v[i] for k, v in columns.items()} for i in range(10)], predictor.spec.features))  # fmt: skip
    np.testing.assert_allclose(whole[:10], first, rtol=1e-6)
    assert whole.shape == (9000,) and np.isfinite(whole).all()


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda r: {k: v for k, v in r.items() if k != "channel"}, 400, "channel"),
        (lambda r: {**r, "amount": "12.50"}, 400, "amount"),
        (lambda r: {**r, "amount": True}, 400, "amount"),
        (lambda r: {**r, "hour": 3.5}, 400, "hour"),
        (lambda r: {**r, "country": None}, 400, "country"),
        (lambda r: {**r, "amout": 1.0}, 400, "amout"),
    ],
    ids=["missing", "string_for_number", "bool_for_number", "float_for_int", "null_required", "unknown_field"],
)
def test_bad_records_name_the_field(predictor: Predictor, records: list[dict[str, Any]], mutate: Any, status: int,
                                    field: str) -> None:  # fmt: skip
    with pytest.raises(RequestError) as caught:
        predictor.handle(json.dumps([records[0], mutate(records[1])]), "application/json", None)
    assert caught.value.status == status and caught.value.field == field
    assert "row 1" in caught.value.message and field in caught.value.message


def test_nullable_feature_accepts_null_and_csv_empty_cell(predictor: Predictor, records: list[dict[str, Any]]) -> None:
    row = {**records[0], "device_age_days": None}
    body, _ = predictor.handle(json.dumps(row), "application/json", "text/csv")
    names = [f.name for f in predictor.spec.features]
    line = ",".join("" if row[n] is None else str(row[n]) for n in names)
    body_csv, _ = predictor.handle(line, "text/csv; charset=utf-8", "text/csv")
    assert body == body_csv


def test_limits_and_content_negotiation(predictor: Predictor, records: list[dict[str, Any]]) -> None:
    with pytest.raises(RequestError) as too_big:
        predictor.handle(json.dumps(records * 100), "application/json", None)
    assert too_big.value.status == 413
    with pytest.raises(RequestError) as rows:
        Predictor(predictor.spec, predictor.net, Limits(max_rows=3)).handle(
            json.dumps(records[:4]), "application/json", None
        )
    assert rows.value.status == 413 and "4 rows" in rows.value.message
    with pytest.raises(RequestError) as accept:
        predictor.handle(json.dumps(records[0]), "application/json", "application/x-protobuf")
    assert accept.value.status == 406
    with pytest.raises(RequestError) as nan:
        predictor.handle(json.dumps(records[0]).replace(f'"amount": {records[0]["amount"]}', '"amount": NaN'),
                         "application/json", None)  # fmt: skip
    assert nan.value.status == 400 and nan.value.field == "amount" and "finite" in nan.value.message


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.recursive(
        _scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=12),
        max_leaves=30,
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_bodies,
    content_type=st.sampled_from(["application/json", "text/csv", "application/jsonlines", "text/plain", ""]),
)
def test_generated_bodies_get_an_answer_or_a_client_error(predictor: Predictor, body: bytes, content_type: str) -> None:
    try:
        content, _ = predictor.handle(body, content_type, None)
    except RequestError as err:
        assert 400 <= err.status < 500 and err.message
    else:
        assert json.loads(content)["predictions"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_mutations_of_valid_records(
    predictor: Predictor, records: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Replace one feature of a valid record by any JSON value: scored when the value fits the feature's type,
    else a 400 naming that feature."""
    record = dict(data.draw(st.sampled_from(records)))
    feature = data.draw(st.sampled_from(predictor.spec.features))
    record[feature.name] = data.draw(_scalars)
    try:
        predictor.handle(json.dumps(record), "application/json", None)
    except RequestError as err:
        assert err.status == 400 and err.field == feature.name
