import base64
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.drift import captures
from jobs.datagen import generate
from schemas.contract import load_contract
from schemas.profile import ProfileBuilder

CONTRACT = load_contract("transactions")
FEATURES = CONTRACT.features
ROWS = generate(12, dt.date(2026, 11, 1), seed=3).to_pylist()


def _expected(row: dict) -> dict:  # type: ignore[type-arg]
    return {
        f.name: (None if row[f.name] is None else row[f.name] if f.kind == "categorical" else float(row[f.name]))
        for f in FEATURES
    }


@pytest.mark.parametrize("content_type", ["csv", "json"])
@pytest.mark.parametrize("encode_base64", [False, True])
def test_sagemaker_records_written_then_decoded(content_type: str, encode_base64: bool) -> None:
    lines = [
        captures.sagemaker_record(
            ROWS[i : i + 3],
            [0.1 * i, 0.2, 0.3],
            FEATURES,
            content_type=content_type,  # type: ignore[arg-type]
            encode_base64=encode_base64,
            inference_id=f"id-{i}",
        )
        for i in range(0, 12, 3)
    ]
    record = lines[0]
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
    assert record["captureData"]["endpointInput"]["encoding"] == ("BASE64" if encode_base64 else content_type.upper())
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    decoded = captures.decode_sagemaker(captures.jsonl(lines).splitlines(), FEATURES)
    assert (decoded.records, decoded.rows, decoded.inference_ids, sum(decoded.malformed.values())) == (4, 12, 4, 0)
    for i, row in enumerate(ROWS):
        assert {n: col[i] for n, col in decoded.features.items()} == _expected(row)
    assert decoded.outputs[captures.OUTPUT][:3] == [0.0, 0.2, 0.3]


def test_malformed_lines_are_counted_with_reasons_never_fatal() -> None:
    good = captures.sagemaker_record(ROWS[:1], [0.5], FEATURES)
    bad_b64 = json.loads(json.dumps(good))
    bad_b64["captureData"]["endpointInput"].update(encoding="BASE64", data="@@not base64@@")
    short = json.loads(json.dumps(good))
    short["captureData"]["endpointInput"]["data"] = "1,2,3"
    weird = json.loads(json.dumps(good))
    weird["captureData"]["endpointInput"]["encoding"] = "XML"
    no_number = json.loads(json.dumps(good))
    no_number["captureData"]["endpointInput"]["data"] = ",".join(["twelve"] * len(FEATURES))
    mismatch = json.loads(json.dumps(good))
    mismatch["captureData"]["endpointOutput"]["data"] = "0.1\n0.2"
    lines = [json.dumps(x) for x in (good, bad_b64, short, weird, no_number, mismatch)]
    lines += ["not json", "[1, 2]", ""]
    decoded = captures.decode_sagemaker(lines, FEATURES)
    assert decoded.records == 2 and decoded.rows == 2
    assert decoded.malformed == {
        "endpointInput: bad base64": 1,
        f"CSV row has 3 fields, expected {len(FEATURES)}": 1,
        "endpointInput: unknown encoding XML": 1,
        "non-numeric value for amount": 1,
        "not JSON": 1,
        "no captureData": 1,
        "output rows differ from input rows (outputs dropped)": 1,
    }
    assert decoded.outputs[captures.OUTPUT] == [0.5, None]


@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.binary(max_size=80),
            st.recursive(
                st.none() | st.booleans() | st.floats() | st.text(max_size=10),
                lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=3),
                max_leaves=8,
            ).map(json.dumps),
        ),
        max_size=8,
    )
)
@settings(max_examples=150, deadline=None)
def test_arbitrary_lines_never_raise(lines: list[str | bytes]) -> None:
    for decode in (captures.decode_sagemaker, captures.decode_kserve):
        decoded = decode(lines, FEATURES)
        assert all(len(col) == decoded.rows for col in decoded.features.values())
        assert all(len(col) == decoded.rows for col in decoded.outputs.values())
        # whatever got through is profilable: no exception from the profile builder
        builder = ProfileBuilder(CONTRACT, outputs={n: "numerical" for n in decoded.outputs})
        builder.update_columns(decoded.features, outputs=decoded.outputs or None)


def test_kserve_v1_and_v2_events_are_paired_by_id() -> None:
    events = captures.kserve_events("a", ROWS[:2], [0.1, 0.9], FEATURES) + captures.kserve_events(
        "b", ROWS[2:3], [0.4], FEATURES
    )
    events = [events[0], events[2], events[3], events[1]]  # responses may arrive in any order
    width = len(FEATURES)
    v2_rows = [[ROWS[3][f.name] for f in FEATURES]]
    v2 = [
        {
            "specversion": "1.0",
            "id": "c",
            "type": captures.KSERVE_REQUEST,
            "source": "s",
            "data_base64": base64.b64encode(
                json.dumps(
                    {"inputs": [{"name": "x", "shape": [1, width], "datatype": "BYTES", "data": v2_rows[0]}]}
                ).encode()
            ).decode(),
        },
        {
            "specversion": "1.0",
            "id": "c",
            "type": captures.KSERVE_RESPONSE,
            "source": "s",
            "data": {"outputs": [{"name": "score", "shape": [1], "datatype": "FP32", "data": [0.7]}]},
        },
        {"specversion": "1.0", "id": "d", "type": "com.example.other", "data": {}},
    ]
    decoded = captures.decode_kserve(captures.jsonl(events + v2).splitlines(), FEATURES)
    assert (decoded.records, decoded.rows) == (3, 4)
    assert decoded.outputs[captures.OUTPUT] == [0.1, 0.9, 0.4, 0.7]
    assert decoded.features["channel"] == [r["channel"] for r in ROWS[:4]]
    assert decoded.malformed == {"unknown CloudEvent type com.example.other": 1}


def test_non_numeric_outputs_are_malformed() -> None:
    record = captures.sagemaker_record(ROWS[:1], [0.5], FEATURES, content_type="json")
    record["captureData"]["endpointOutput"]["data"] = json.dumps({"predictions": [{"label": "fraud"}]})
    decoded = captures.decode_sagemaker([json.dumps(record)], FEATURES)
    assert decoded.malformed == {"non-numeric output": 1} and decoded.rows == 0


def test_predictor_responses_with_model_version_are_decoded_as_outputs() -> None:
    """serving's JSON answers carry the model version per row: it is skipped, the score and label are outputs."""
    from functions.drift.captures import _outputs

    body = json.dumps({"predictions": [{"score": 0.25, "label": 0, "model_version": "abc123"}]})
    assert _outputs("json", body) == [{"score": 0.25, "label": 0}]
