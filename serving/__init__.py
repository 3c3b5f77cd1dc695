"""Serving: the one place where a raw request becomes a score.

Two layers. The inference core (`spec`, `encoding`, `net`, `payload`, `inference`, `sagemaker_entry`)
needs only torch, numpy and the standard library: it is copied into every `model.tar.gz` as `code/`, so
SageMaker's PyTorch inference container serves the model without this repository installed. The HTTP
predictor (`server`, `metrics`, `mirror`) adds FastAPI/uvicorn/prometheus_client and speaks KServe's v1
and v2 (open inference) protocols plus SageMaker's `/invocations` contract; it runs in the serving image.
"""
