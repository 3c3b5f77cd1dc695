"""`python -m serving`: load the model, wire metrics and the shadow mirror, serve with uvicorn.

Flags (and the environment variables KServe or a compose file can set instead):
  --model-dir DIR       TIDE_MODEL_DIR   the model folder (model.tar.gz is unpacked) [/mnt/models, KServe's]
  --model-name NAME     TIDE_MODEL_NAME  the name in v1/v2 routes (the InferenceService's name)
  --port N              TIDE_PORT        8080, KServe's default
  --endpoint, --variant TIDE_ENDPOINT, TIDE_VARIANT   metric labels (variant: else Knative's K_REVISION)
  --shadow-url URL      TIDE_SHADOW_URL  the challenger predictor's base URL
  --shadow-fraction F   TIDE_SHADOW_FRACTION
  --shadow-log URL      TIDE_SHADOW_LOG  s3://<captures bucket>/<shadow root> for the pairs
  --shadow-variant V    TIDE_SHADOW_VARIANT  the challenger's variant, recorded in each pair (a canary's
                        quality guardrail reads only its challenger's pairs)
  --torch-threads N     TIDE_TORCH_THREADS  intra-op threads (1)
TIDE_INJECT_ERROR_RATE: a fault drill (that share of predictions answers 500); the rehearsal's faulty v3.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

from serving.inference import Predictor
from serving.package import unpack
from serving.spec import SPEC_FILE, WEIGHTS_FILE

FLUSH_SECONDS = 5.0


def model_folder(path: Path) -> Path:
    """The folder itself when it holds an unpacked model; else its model.tar.gz unpacked to a temp folder."""
    if (path / SPEC_FILE).is_file() and (path / WEIGHTS_FILE).is_file():
        return path
    archive = path / "model.tar.gz"
    if archive.is_file():
        return unpack(archive.read_bytes(), Path(tempfile.mkdtemp(prefix="tide-model-")))
    raise SystemExit(f"error: {path} holds neither {SPEC_FILE} + {WEIGHTS_FILE} nor model.tar.gz")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m serving", description="Tidewater model predictor")
    parser.add_argument("--model-dir", type=Path, default=Path(env("TIDE_MODEL_DIR", "/mnt/models")))
    parser.add_argument("--model-name", default=env("TIDE_MODEL_NAME", "model"))
    parser.add_argument("--host", default=env("TIDE_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(env("TIDE_PORT", "8080")))
    parser.add_argument("--endpoint", default=env("TIDE_ENDPOINT", ""))
    # On KServe (Knative) each revision's pods carry K_REVISION: the traffic function maps it to prev/latest.
    parser.add_argument("--variant", default=env("TIDE_VARIANT") or env("K_REVISION") or "default")
    parser.add_argument("--shadow-url", default=env("TIDE_SHADOW_URL"))
    parser.add_argument("--shadow-fraction", type=float, default=float(env("TIDE_SHADOW_FRACTION", "0")))
    parser.add_argument("--shadow-log", default=env("TIDE_SHADOW_LOG"))
    parser.add_argument("--shadow-variant", default=env("TIDE_SHADOW_VARIANT", ""))
    parser.add_argument("--inject-error-rate", type=float, default=float(env("TIDE_INJECT_ERROR_RATE", "0")))
    # One intra-op thread per process: a request is a small forward pass, where extra threads cost more in
    # synchronisation than they save, and replicas (pods, workers) are how a predictor scales.
    parser.add_argument("--torch-threads", type=int, default=int(env("TIDE_TORCH_THREADS", "1")))
    args = parser.parse_args(argv)
    if args.shadow_url and not (args.shadow_log and args.shadow_log.startswith("s3://")):
        parser.error("--shadow-url needs --shadow-log s3://<bucket>/<prefix> (where the traffic function reads pairs)")
    if args.torch_threads < 1:
        parser.error(f"--torch-threads {args.torch_threads} must be at least 1")
    if not 0.0 <= args.inject_error_rate <= 1.0:
        parser.error(f"--inject-error-rate {args.inject_error_rate} is not within [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    import uvicorn

    from serving.metrics import ServingMetrics
    from serving.mirror import ShadowSender
    from serving.server import ServerSettings, create_app

    torch.set_num_threads(args.torch_threads)
    try:
        predictor = Predictor.load(model_folder(args.model_dir))
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: cannot load the model in {args.model_dir}: {err}", file=sys.stderr)
        return 1
    endpoint = args.endpoint or args.model_name
    settings = ServerSettings(args.model_name, endpoint, args.variant, args.inject_error_rate)
    shadow, stop = None, threading.Event()
    if args.shadow_url:
        import boto3

        from functions.traffic.shadow import S3ShadowLog

        bucket, _, prefix = args.shadow_log.removeprefix("s3://").partition("/")
        log = S3ShadowLog(boto3.client("s3"), bucket, prefix)
        shadow = ShadowSender(endpoint, args.shadow_url, args.shadow_fraction, log,
                              challenger_variant=args.shadow_variant)  # fmt: skip
        flusher = threading.Thread(target=_flush_every, args=(log, stop), daemon=True, name="shadow-flush")
        flusher.start()

    def finish() -> None:
        stop.set()
        if shadow is not None:
            shadow.drain()
            log.flush()

    app = create_app(predictor, settings, ServingMetrics(endpoint, args.variant), shadow, on_shutdown=finish)
    # Keep idle connections longer than load balancers' 60 s idle timeout, so the balancer closes them first.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, timeout_keep_alive=75)
    return 0


def _flush_every(log: object, stop: threading.Event) -> None:
    while not stop.wait(FLUSH_SECONDS):
        log.flush()  # type: ignore[attr-defined]
