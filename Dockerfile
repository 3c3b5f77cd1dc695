# syntax=docker/dockerfile:1
# The platform's own image, two targets from one file (README "The image"):
#   train    torch training (torchrun -m jobs.train.worker), the Dask scheduler/workers of batch ingestion
#            (`dask scheduler|worker`, with the jobs package they unpickle) and the `tide` CLI
#            (curate-handoffs, ingest, train launchers). torch's default PyPI build: CUDA for GPU nodes.
#   serving  the HTTP predictor (`python -m serving`: KServe v1/v2, SageMaker /invocations, /metrics),
#            KServe's custom container. torch's CPU build.
# Both install this repository with its role's extra, pinned by constraints.txt (resolved on Python 3.11).
#
#   docker build --target train   -t tidewater/tidewater:train-0.1.0 .
#   docker build --target serving -t tidewater/tidewater:serving-0.1.0 .
#
# Not built offline (no Docker engine on the development machines): tests/serving/test_image.py checks that
# every entry point named here exists and starts, and that every COPY source exists.
ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GX_ANALYTICS_ENABLED=False
WORKDIR /opt/tidewater
COPY pyproject.toml constraints.txt README.md ./
COPY schemas ./schemas
COPY serving ./serving
COPY functions ./functions

FROM base AS train
COPY jobs ./jobs
RUN pip install -c constraints.txt ".[jobs]" && pip check
RUN useradd --uid 1000 --create-home tide
USER tide
# No ENTRYPOINT: the PyTorchJob sets `command: torchrun -m jobs.train.worker ...` and the Dask operator
# `args: dask worker|scheduler ...` (schemas.manifests); alone, the image is the CLI.
CMD ["tide", "--help"]

FROM base AS serving
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && pip install -c constraints.txt ".[serving]" && pip check
RUN useradd --uid 1000 --create-home tide
USER tide
EXPOSE 8080
# KServe passes --model-dir /mnt/models --model-name ... (schemas.manifests.predictor_container).
ENTRYPOINT ["python", "-m", "serving"]
