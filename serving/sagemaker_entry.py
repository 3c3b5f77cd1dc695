"""SageMaker PyTorch inference container entry: packed into model.tar.gz as `code/inference.py`.

The container (sagemaker-inference-toolkit) calls model_fn(model_dir) once, then per request
input_fn(body, content_type) -> predict_fn(data, model) -> output_fn(prediction, accept). It puts `code/`
on the path, so `serving` below is the copy packed beside this file: no repository install is needed. A
client mistake raises the toolkit's BaseInferenceToolkitError with status 4xx, so the caller gets that
status and the message naming the field; anything else would become a 500.

Environment: TIDE_SERVING_MAX_BYTES, TIDE_SERVING_MAX_ROWS (request limits).
"""

from __future__ import annotations

import os
from typing import Any

from serving.inference import Predictor
from serving.payload import Batch, Limits, Predictions, RequestError, encode

try:  # present in SageMaker's inference containers
    from sagemaker_inference.errors import BaseInferenceToolkitError
except ImportError:  # outside the container (tests): the same constructor and attributes

    class BaseInferenceToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code, self.message, self.phrase = status_code, message, phrase
            super().__init__(status_code, message, phrase)


class ClientError(BaseInferenceToolkitError):  # type: ignore[misc]
    """A bad request, answered with its 4xx status and a message naming the problem."""

    def __init__(self, error: RequestError) -> None:
        super().__init__(error.status, error.message, error.message)
        self.field = error.field


def _limits() -> Limits:
    default = Limits()
    return Limits(
        max_bytes=int(os.environ.get("TIDE_SERVING_MAX_BYTES", default.max_bytes)),
        max_rows=int(os.environ.get("TIDE_SERVING_MAX_ROWS", default.max_rows)),
    )


_LOADED: Predictor | None = None  # the model_fn result of this worker: input_fn validates against its features


def model_fn(model_dir: str) -> Predictor:
    global _LOADED
    _LOADED = Predictor.load(model_dir, _limits())
    return _LOADED


def input_fn(request_body: Any, request_content_type: str) -> Batch:
    if _LOADED is None:
        raise RuntimeError("input_fn called before model_fn")
    try:
        return _LOADED.decode(request_body, request_content_type)
    except RequestError as err:
        raise ClientError(err) from None


def predict_fn(data: Batch, model: Predictor) -> Predictions:
    return model.predict(data)


def output_fn(prediction: Predictions, accept: str) -> tuple[bytes, str]:
    try:
        return encode(prediction, accept)
    except RequestError as err:
        raise ClientError(err) from None
