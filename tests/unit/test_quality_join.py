"""Captured predictions joined with labels, on whatever a producer or a capture may hold: labels that never
match, duplicates on both sides, NaN and out-of-range scores, late labels. Nothing crashes, nothing is
dropped without being counted, and every prediction gets its latest arrived label."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from functions.quality.join import join
from functions.quality.predictions import CapturedPredictions, decode_kserve, decode_sagemaker
from tests.quality_support import capture

T0 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
AS_OF = T0 + dt.timedelta(days=3)
SCORES = st.one_of(st.floats(0, 1), st.sampled_from([math.nan, -0.5, 1.5, math.inf, "high", None, True]))
PREDICTIONS = st.lists(st.tuples(st.sampled_from("abcd"), SCORES), max_size=30)
# few ids, so that one id often has several labels; "x" and "y" never match a prediction
LABELS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "x", "y"]), st.sampled_from([0, 1, 2, None]), st.integers(0, 5)),
    min_size=1,
    max_size=30,
)


def _valid(score: Any) -> bool:
    return isinstance(score, float) and 0 <= score <= 1


def _lines(predictions: list[tuple[str, Any]]) -> list[str]:
    lines = []
    for i, (key, score) in enumerate(predictions):
        body = json.dumps({"predictions": [{"score": score, "label": 0, "model_version": "v1"}]}).encode()
        lines.append(json.dumps(capture(b'{"instances": [{}]}', body, T0 + dt.timedelta(minutes=i), key)))
    return lines


def _labels(rows: list[tuple[str, int | None, int]]) -> pa.Table:
    # distinct arrival times (day offset + position), so "the latest label" is well defined
    times = [T0 + dt.timedelta(days=d, seconds=i) for i, (_, _, d) in enumerate(rows)]
    return pa.table({
        "inference_id": pa.array([r[0] for r in rows], pa.string()),
        "label": pa.array([r[1] for r in rows], pa.int8()),
        "label_time": pa.array(times, pa.timestamp("us", tz="UTC")),
    })  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(PREDICTIONS, LABELS)
@example([("a", 0.5), ("a", 0.25)], [("a", 0, 0), ("a", 1, 1), ("a", 0, 4)])  # superseded, then not arrived yet
def test_join_accounts_for_every_row_and_keeps_the_latest_arrived_label(
    predictions: list[tuple[str, Any]], labels: list[tuple[str, int | None, int]]
) -> None:
    decoded = decode_sagemaker(_lines(predictions), "champion", T0, CapturedPredictions())
    bad = sum(not _valid(s) for _, s in predictions)
    assert decoded.malformed["row: score is not a probability in [0, 1]"] == bad
    joined = join(decoded.table(), _labels(labels), AS_OF)

    good_keys = [k for k, s in predictions if _valid(s)]
    keys = joined.table["key"].to_pylist()
    assert sorted(keys) == sorted(set(good_keys))
    assert joined.account["predictions captured more than once (counted once)"] == len(good_keys) - len(set(keys))
    first_score = {}
    for k, score in predictions:  # captured in this order: the earliest capture of a key is the one kept
        if _valid(score):
            first_score.setdefault(k, score)
    assert dict(zip(keys, joined.table["score"].to_pylist(), strict=True)) == first_score
    times = _labels(labels)["label_time"].to_pylist()
    arrived = [(k, y, t) for (k, y, _), t in zip(labels, times, strict=True) if y in (0, 1) and t <= AS_OF]
    for key, label in zip(keys, joined.table["label"].to_pylist(), strict=True):
        mine = [(t, y) for k, y, t in arrived if k == key]
        assert label == (max(mine)[1] if mine else None)
    unusable = sum(y not in (0, 1) for _, y, _ in labels)
    assert joined.account["labels unusable (null id or time, label not 0/1)"] == unusable


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))), max_size=8))
def test_garbage_capture_lines_are_counted_not_fatal(lines: list[str]) -> None:
    for decode in (decode_sagemaker, decode_kserve):
        out = decode([*lines, *_lines([("a", 0.5)])], "champion", T0, CapturedPredictions())
        assert out.records >= (1 if decode is decode_sagemaker else 0)
        assert len(out.keys) == len(out.scores) == len(out.times) == len(out.versions)


def test_batch_rows_get_indexed_keys_and_bare_scores_the_variant_as_version() -> None:
    body = json.dumps({"predictions": [0.2, 0.9, "NaN"]}).encode()
    out = decode_sagemaker([json.dumps(capture(b"{}", body, T0, "req-1"))], "champion", T0, CapturedPredictions())
    assert out.keys == ["req-1#0", "req-1#1"] and out.versions == ["variant:champion"] * 2
    assert out.malformed["row: score is not a probability in [0, 1]"] == 1
    no_id = capture(b"{}", body, T0, "x")
    del no_id["eventMetadata"]["inferenceId"]
    out = decode_sagemaker([json.dumps(no_id)], "champion", T0, CapturedPredictions())
    assert out.keys == [] and out.malformed["no inferenceId (cannot be joined with labels)"] == 1


def test_kserve_responses_join_by_cloud_event_id() -> None:
    events = [
        {"specversion": "1.0", "id": "ev-1", "type": "org.kubeflow.serving.inference.request",
         "data": {"instances": []}},
        {"specversion": "1.0", "id": "ev-1", "type": "org.kubeflow.serving.inference.response",
         "time": "2026-11-02T10:00:00Z", "data": {"predictions": [{"score": 0.7, "model_version": "v2"}]}},
        {"specversion": "1.0", "id": "ev-2", "type": "org.kubeflow.serving.inference.response",
         "data": {"outputs": [{"name": "score", "shape": [1], "datatype": "FP64", "data": [0.1]}]}},
    ]  # fmt: skip
    out = decode_kserve([json.dumps(e) for e in events], "predictor", T0, CapturedPredictions())
    assert out.keys == ["ev-1", "ev-2"] and out.versions == ["v2", "variant:predictor"]
    assert out.times == [T0 + dt.timedelta(hours=10), T0] and out.scores == [0.7, 0.1]
