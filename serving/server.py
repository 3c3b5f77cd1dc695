"""The HTTP predictor: one model, KServe's v1/v2 protocols, SageMaker's /invocations and /ping, /metrics.

    python -m serving.server --model-dir /mnt/models --model-name fraud --port 8080 \
        [--endpoint E --variant V] [--shadow-url http://challenger:8080 --shadow-fraction 0.1 \
         --shadow-log s3://<captures bucket>/shadow/]

The model folder is what KServe's storage initializer downloads from the model's storageUri (the folder
`tide train` wrote: model.tar.gz is unpacked) or an already unpacked model.tar.gz. Requests are scored by
serving.inference.Predictor, the same code SageMaker's container runs from code/inference.py.

Why FastAPI/uvicorn and not the `kserve` SDK: kserve 0.21 needs pandas<3, which cannot join this project's
one resolved dependency set; KServe's own server is FastAPI + uvicorn + prometheus_client, so this speaks the
same protocols on the same stack (tests/serving check the documented request and response shapes).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response

from functions.traffic.shadow import Answer
from serving.inference import Predictor
from serving.metrics import ServingMetrics
from serving.mirror import ShadowSender
from serving.payload import JSON, Predictions, RequestError, encode, media_type
from serving.protocols import v2_batch, v2_metadata, v2_response

REQUEST_ID_HEADERS = ("x-request-id", "ce-id", "x-amzn-sagemaker-inference-id")


@dataclass(frozen=True)
class ServerSettings:
    model_name: str
    endpoint: str
    variant: str
    inject_error_rate: float = 0.0  # fault drill: this share of prediction requests answers 500


def create_app(
    predictor: Predictor, settings: ServerSettings, metrics: ServingMetrics, shadow: ShadowSender | None = None,
    rng: random.Random | None = None, on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:  # fmt: skip
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # Graceful shutdown (SIGTERM from Kubernetes/SageMaker): uvicorn re-raises the signal after the lifespan
        # ends, so work that must not be lost (the shadow pairs) is finished here, not after uvicorn.run.
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(title=f"tidewater predictor: {settings.model_name}", docs_url=None, redoc_url=None, lifespan=lifespan)
    draw = rng or random.Random()
    name = settings.model_name

    def scored(
        handler: Callable[[Request, bytes, str], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """Time and count a prediction route; client mistakes answer their 4xx, never reaching the model."""

        async def route(request: Request) -> Response:
            began = time.perf_counter()
            request_id = next((request.headers[h] for h in REQUEST_ID_HEADERS if h in request.headers), None)
            request_id = request_id or uuid.uuid4().hex
            try:
                if settings.inject_error_rate and draw.random() < settings.inject_error_rate:
                    response = _error(500, "injected fault (TIDE_INJECT_ERROR_RATE drill)")
                else:
                    response = await handler(request, await request.body(), request_id)
            except RequestError as err:
                response = _error(err.status, err.message, err.field)
            response.headers["x-request-id"] = request_id
            metrics.observe(response.status_code, time.perf_counter() - began, int(response.headers.get("x-rows", 0)))
            return response

        return route

    async def invocations(request: Request, body: bytes, request_id: str) -> Response:
        batch = predictor.decode(body, request.headers.get("content-type"))
        predictions = predictor.predict(batch)
        content, content_type = encode(predictions, request.headers.get("accept"))
        _mirror(shadow, request_id, body, request.headers.get("content-type") or JSON, predictions)
        return Response(content, media_type=content_type, headers={"x-rows": str(batch.rows)})

    async def v1_predict(request: Request, body: bytes, request_id: str) -> Response:
        _check_name(request, name)
        batch = predictor.decode(body, JSON)
        predictions = predictor.predict(batch)
        _mirror(shadow, request_id, body, JSON, predictions)
        return Response(json.dumps({"predictions": predictions.records()}), media_type=JSON,
                        headers={"x-rows": str(batch.rows)})  # fmt: skip

    async def v2_infer(request: Request, body: bytes, request_id: str) -> Response:
        _check_name(request, name)
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RequestError(400, f"body: not valid JSON ({err})") from None
        if len(body) > predictor.limits.max_bytes:
            raise RequestError(
                413, f"request body is {len(body)} bytes, over the limit of {predictor.limits.max_bytes}"
            )
        batch = v2_batch(parsed, predictor.spec.features, predictor.limits.max_rows)
        predictions = predictor.predict(batch)
        answer = v2_response(predictor.spec, name, str(parsed.get("id") or request_id), predictions)
        return Response(json.dumps(answer), media_type=JSON, headers={"x-rows": str(batch.rows)})

    app.add_api_route("/invocations", scored(invocations), methods=["POST"])
    app.add_api_route("/v1/models/{model}:predict", scored(v1_predict), methods=["POST"])
    app.add_api_route("/v2/models/{model}/infer", scored(v2_infer), methods=["POST"])

    @app.get("/ping")
    @app.get("/v2/health/live")
    @app.get("/v2/health/ready")
    async def health() -> dict[str, bool]:
        return {"live": True, "ready": True}

    def about(model: str, body: dict[str, Any]) -> Response:
        if model != name:
            return _error(404, f"model {model!r} is not served here; this predictor serves {name!r}")
        return Response(json.dumps(body), media_type=JSON)

    ready = {"name": name, "ready": True}
    app.add_api_route("/v1/models/{model}", lambda model: about(model, ready), methods=["GET"])
    app.add_api_route("/v2/models/{model}/ready", lambda model: about(model, ready), methods=["GET"])
    app.add_api_route("/v2/models/{model}", lambda model: about(model, v2_metadata(predictor.spec, name)),
                      methods=["GET"])  # fmt: skip

    @app.get("/metrics")
    async def prometheus() -> Response:
        content, content_type = metrics.exposition()
        return Response(content, media_type=content_type)

    return app


def _check_name(request: Request, name: str) -> None:
    model = request.path_params.get("model")
    if model != name:
        raise RequestError(404, f"model {model!r} is not served here; this predictor serves {name!r}", "model")


def _error(status: int, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return Response(json.dumps(body), status_code=status, media_type=JSON)


def _mirror(
    shadow: ShadowSender | None, request_id: str, body: bytes, content_type: str, predictions: Predictions
) -> None:
    if shadow is None:
        return
    champion = [Answer(str(label), score) for score, label in zip(predictions.scores, predictions.labels, strict=True)]
    shadow.maybe_mirror(request_id, body, media_type(content_type), champion)
