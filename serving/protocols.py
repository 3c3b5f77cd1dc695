"""KServe's v1 and v2 (open inference protocol) request and response shapes, over the inference core.

v1: POST /v1/models/<name>:predict {"instances": [record | [values in feature order], ...]}
    -> {"predictions": [{"score", "label", "model_version"}, ...]}
v2: POST /v2/models/<name>/infer {"inputs": [tensor, ...]} where either one tensor per feature (named by it,
    shape [n] or [n, 1]) or one tensor of rows (shape [n, n_features], data row-major in feature order)
    -> {"model_name", "model_version", "id", "outputs": [score FP64 [n], label INT64 [n]]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from serving.payload import Batch, Predictions, RequestError, columns_from_records
from serving.spec import FLOAT_TYPES, INTEGER_TYPES, FeatureSpec, ModelSpec

V2_DATATYPES = {"string": "BYTES", "bool": "BOOL", **{t: "INT64" for t in INTEGER_TYPES},
                **{t: "FP64" for t in FLOAT_TYPES}}  # fmt: skip


def v2_batch(body: Any, features: Sequence[FeatureSpec], max_rows: int) -> Batch:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise RequestError(400, "inputs: expected a non-empty list of tensors", "inputs")
    tensors = body["inputs"]
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("data"), list):
            raise RequestError(400, f"inputs[{i}]: expected a tensor with name, shape, datatype and data", "inputs")
    names = {f.name for f in features}
    if len(tensors) == 1 and tensors[0].get("name") not in names:
        records = _rows_tensor(tensors[0], len(features))
    else:
        records = _feature_tensors(tensors, features, names)
    if not records:
        raise RequestError(400, "the request holds no rows")
    if len(records) > max_rows:
        raise RequestError(413, f"request holds {len(records)} rows, over the limit of {max_rows}")
    return columns_from_records(records, features)


def _flat(data: list[Any]) -> list[Any]:
    return [v for row in data for v in row] if data and isinstance(data[0], list) else data


def _rows_tensor(tensor: dict[str, Any], width: int) -> list[Any]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or shape[1] != width:
        raise RequestError(400, f"inputs[0]: shape {shape} is not [rows, {width}] (one column per feature)", "shape")
    data = _flat(tensor["data"])
    if len(data) != shape[0] * width:
        raise RequestError(400, f"inputs[0]: {len(data)} values do not fill shape {shape}", "data")
    return [data[i : i + width] for i in range(0, len(data), width)]


def _feature_tensors(tensors: list[dict[str, Any]], features: Sequence[FeatureSpec], names: set[str]) -> list[Any]:
    by_name: dict[str, list[Any]] = {}
    for tensor in tensors:
        name = tensor.get("name")
        if name not in names:
            raise RequestError(400, f"inputs: unknown feature tensor {name!r}", str(name))
        by_name[str(name)] = _flat(tensor["data"])
    missing = [f.name for f in features if f.name not in by_name]
    if missing:
        raise RequestError(400, f"inputs: missing feature {missing[0]!r}", missing[0])
    lengths = {len(v) for v in by_name.values()}
    if len(lengths) != 1:
        raise RequestError(400, f"inputs: feature tensors have different lengths {sorted(lengths)}", "shape")
    rows = lengths.pop()
    return [{name: values[i] for name, values in by_name.items()} for i in range(rows)]


def v2_response(spec: ModelSpec, model_name: str, request_id: str, predictions: Predictions) -> dict[str, Any]:
    n = len(predictions.scores)
    return {
        "model_name": model_name,
        "model_version": predictions.version,
        "id": request_id,
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [n], "data": predictions.scores},
            {"name": "label", "datatype": "INT64", "shape": [n], "data": predictions.labels},
        ],
    }


def v2_metadata(spec: ModelSpec, model_name: str) -> dict[str, Any]:
    return {
        "name": model_name,
        "versions": [spec.version],
        "platform": "tidewater-pytorch",
        "inputs": [{"name": f.name, "datatype": V2_DATATYPES[f.type], "shape": [-1]} for f in spec.features],
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [-1]},
            {"name": "label", "datatype": "INT64", "shape": [-1]},
        ],
    }
