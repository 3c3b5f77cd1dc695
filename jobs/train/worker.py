"""One rank of a training job: `torchrun ... -m jobs.train.worker --config run.json`.

DDP over gloo on CPU or NCCL on GPU (chosen from what the machine has). Each rank reads its own shards,
cached on local disk. Batches are a pure function of (seed, rank, step), so a job resumed from the checkpoint
of step n replays exactly what an uninterrupted job would have done after step n.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from torch.distributed import HashStore, PrefixStore  # type: ignore[attr-defined]
from torch.distributed.rendezvous import rendezvous
from torch.nn.parallel import DistributedDataParallel

from jobs.batch.storage import StorageError, filesystem, join, read_json, write_atomic, write_json
from jobs.launch.base import ATTEMPT_ENV, PERMANENT_FAILURE_ENV
from jobs.train import data, metrics
from jobs.train.checkpoint import CheckpointStore
from jobs.train.config import FAIL_AT_STEP_ENV, FAIL_RANK_ENV, TrainConfig, code_version
from schemas.contract import ContractError, load_contract
from schemas.profile import MODEL_OUTPUT, Profile
from serving.net import TabularNet
from serving.package import ENTRY_POINT, model_archive
from serving.spec import spec_from_contract


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="TrainConfig as JSON: a local path or a storage URL")
    config_fs, config_path = filesystem(parser.parse_args(argv).config)
    config = TrainConfig.model_validate_json(config_fs.cat_file(config_path))
    rank, world = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)
    device = torch.device(f"cuda:{_env_int('LOCAL_RANK', 0)}") if torch.cuda.is_available() else torch.device("cpu")
    _init_process_group("nccl" if device.type == "cuda" else "gloo", rank, world)
    try:
        train(config, rank, world, device)
    except (StorageError, data.DataError, ContractError, FileNotFoundError) as err:  # a restart cannot fix these
        _report_permanent(rank, err)
        raise
    finally:
        dist.destroy_process_group()
    return 0


def _report_permanent(rank: int, err: Exception) -> None:
    """Tell the launcher not to restart: the same inputs would fail the same way."""
    path = os.environ.get(PERMANENT_FAILURE_ENV)
    if path:
        Path(path).write_text(f"rank {rank}: {err}\n")


def _init_process_group(backend: str, rank: int, world: int) -> None:
    """Join the group through torchrun's store, under a key prefix per restart attempt.

    With c10d rendezvous the workers of every attempt share the agent's store, and keys written by the
    previous attempt (a dead rank's listening address) survive; gloo then connects to a process that no
    longer exists and the restart fails ("connectFullMesh ... Connection refused"). A prefix per attempt
    gives each attempt a clean namespace.
    """
    if "MASTER_ADDR" not in os.environ:  # a plain `python -m jobs.train.worker`: a group of one
        dist.init_process_group(backend, store=HashStore(), rank=0, world_size=1)
        return
    store, _, _ = next(rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(backend, store=PrefixStore(f"tide/attempt-{attempt}", store), rank=rank, world_size=world)


def _to_device(encoded: data.Encoded, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(encoded.categorical).to(device),
        torch.from_numpy(encoded.numerical).to(device),
        torch.from_numpy(encoded.label).to(device),
    )


def _load_split(
    config: TrainConfig, manifest: dict[str, Any], encoder: data.Encoder, split: str, rank: int, world: int
) -> data.Encoded:
    assignment = data.assign(manifest["shards"], split, rank, world)
    cache = Path(config.cache_dir) / str(manifest["dataset"]) / str(manifest["version"])
    paths = [data.fetch(config.manifest_url, s, cache, config.storage_options) for s in assignment.shards]
    return encoder.encode(data.load(paths, assignment))


def train(config: TrainConfig, rank: int, world: int, device: torch.device) -> None:
    torch.manual_seed(config.seed)
    fs, manifest_path = filesystem(config.manifest_url, config.storage_options)
    manifest = read_json(fs, manifest_path)
    dataset, contract_version = str(manifest["contract"]).split("/v")
    contract = load_contract(dataset, int(contract_version))
    encoder = data.Encoder(contract)
    local = _load_split(config, manifest, encoder, "train", rank, world)

    # Standardise with statistics of the whole training split: per-rank moments, summed across ranks.
    moments = torch.from_numpy(data.moments(local.numerical)).to(device)
    dist.all_reduce(moments)
    mean, std = data.standardiser(moments.cpu().numpy())

    model = TabularNet(encoder.cardinalities, encoder.numerical_width, config.embedding_dim, config.hidden)
    model.mean.copy_(torch.from_numpy(mean))
    model.std.copy_(torch.from_numpy(std))
    model.to(device)
    ddp = DistributedDataParallel(model)
    optimiser = torch.optim.Adam(ddp.parameters(), lr=config.learning_rate)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    store = CheckpointStore(config.checkpoint_url, config.storage_options)
    start, resumed_from = 0, None
    # Rank 0's training loss every `every` steps: the model's learning curve (metadata.json), kept in the
    # checkpoints so a resumed job's curve starts where the interrupted one left it.
    history: list[list[float]] = []
    every = max(1, config.steps // 100)
    checkpoint = store.latest()
    if checkpoint is not None:
        model.load_state_dict(checkpoint.state["model"])
        optimiser.load_state_dict(checkpoint.state["optimiser"])
        history = [list(point) for point in checkpoint.state.get("history", [])]
        start = resumed_from = checkpoint.step
        print(f"[rank {rank}] resuming from checkpoint step {start}", flush=True)

    cats, nums, labels = _to_device(local, device)
    fail_at = _env_int(FAIL_AT_STEP_ENV, -1)
    first_attempt = _env_int("TORCHELASTIC_RESTART_COUNT", 0) == 0 and _env_int(ATTEMPT_ENV, 0) == 0
    began = time.perf_counter()
    for step in range(start, config.steps):
        if step == fail_at and rank == _env_int(FAIL_RANK_ENV, 1) and first_attempt:
            print(f"[rank {rank}] injected failure at step {step}", flush=True)
            os._exit(17)
        draw = np.random.default_rng([config.seed, rank, step])  # the batch depends on (seed, rank, step) only
        index = torch.from_numpy(draw.integers(0, len(labels), config.batch_size))
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(ddp(cats[index], nums[index]), labels[index])
        loss.backward()
        optimiser.step()
        done = step + 1
        if rank == 0 and (done % every == 0 or done == config.steps):
            history.append([float(done), float(loss.detach())])
        if done % config.checkpoint_every == 0 or done == config.steps:
            if rank == 0:
                store.save(done, {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": done,
                                  "history": history})  # fmt: skip
            dist.barrier()  # no rank runs ahead of a checkpoint that might not exist yet
    elapsed = time.perf_counter() - began
    trained_steps = config.steps - start
    if rank == 0:
        _finish(config, manifest, encoder, model, device, world, resumed_from, trained_steps, elapsed, history)
    dist.barrier()


def _baseline(config: TrainConfig, manifest: dict[str, Any]) -> str | None:
    """The drift baseline built with the dataset (manifest's profile), unless the config names another."""
    profile = manifest.get("profile")
    return join(config.manifest_url.rsplit("/", 1)[0], profile["key"]) if profile else None


def _model_baseline(config: TrainConfig, dataset_baseline: str, scores: np.ndarray) -> str:
    """The dataset's baseline profile with the model's validation scores profiled as its output."""
    fs, path = filesystem(dataset_baseline, config.storage_options)
    profile = Profile.from_json(fs.cat_file(path))
    return profile.with_outputs({MODEL_OUTPUT: scores}).to_json()


def _finish(
    config: TrainConfig,
    manifest: dict[str, Any],
    encoder: data.Encoder,
    model: TabularNet,
    device: torch.device,
    world: int,
    resumed_from: int | None,
    trained_steps: int,
    elapsed: float,
    history: list[list[float]],
) -> None:
    """Rank 0: validate, then write predictions, the model and, last, metadata.json (the completion marker)."""
    validation = _load_split(config, manifest, encoder, "validation", 0, 1)
    model.eval()
    with torch.no_grad():
        cats, nums, _ = _to_device(validation, device)
        probability = torch.sigmoid(model(cats, nums)).cpu().numpy().astype(np.float64)
    threshold = metrics.f1_threshold(validation.label, probability)
    labels = probability >= threshold
    truth = validation.label.astype(bool)
    scores = {
        "log_loss": metrics.log_loss(validation.label, probability),
        "auc": metrics.roc_auc(validation.label, probability),
        "rows": len(validation.label),
        "threshold": threshold,
        "precision": float((labels & truth).sum() / max(int(labels.sum()), 1)),
        "recall": float((labels & truth).sum() / max(int(truth.sum()), 1)),
    }
    fs, root = filesystem(config.model_url, config.storage_options)
    predictions = pa.table({"id": validation.ids, "label": validation.label, MODEL_OUTPUT: probability})
    sink = io.BytesIO()
    pq.write_table(predictions, sink)
    write_atomic(fs, join(root, "validation_predictions.parquet"), sink.getvalue())
    dataset_baseline = config.baseline_url or _baseline(config, manifest)
    baseline = _model_baseline(config, dataset_baseline, probability) if dataset_baseline else None
    if baseline is not None:
        write_atomic(fs, join(root, "baseline.json"), baseline.encode())
    state = io.BytesIO()
    torch.save({"architecture": model.architecture, "state_dict": model.state_dict()}, state)
    write_atomic(fs, join(root, "model.pt"), state.getvalue())
    spec = spec_from_contract(encoder.contract, config.model_name, config.version, threshold)
    write_atomic(fs, join(root, "model.tar.gz"), model_archive(state.getvalue(), spec))
    samples = trained_steps * config.batch_size * world
    metadata = {
        "model": config.model_name,
        "version": config.version,
        "dataset": {"name": manifest["dataset"], "version": manifest["version"], "manifest": config.manifest_url},
        # The drift baseline: the dataset's feature profile plus the validation scores (prediction drift).
        "baseline_url": join(config.model_url.rstrip("/"), "baseline.json") if baseline is not None else None,
        "dataset_baseline_url": dataset_baseline,
        "contract": manifest["contract"],
        "metrics": scores,
        # rank 0's batch loss (binary cross-entropy, nats/row) at steps through training: the learning curve
        "history": {"step": [int(h[0]) for h in history], "loss": [h[1] for h in history]},
        "code_version": code_version(),
        "parameters": config.model_dump(exclude={"storage_options"}),
        "world_size": world,
        "device": device.type,
        "backend": dist.get_backend(),
        "resumed_from_step": resumed_from,
        "throughput": {"steps": trained_steps, "seconds": round(elapsed, 3), "samples_per_s": samples / elapsed},
        # model.tar.gz: model.pt + serving.json + code/ (serving.package), what SageMaker's PyTorch container
        # and the KServe predictor load; SAGEMAKER_PROGRAM names its entry point.
        "artifacts": {"model": "model.pt", "package": "model.tar.gz", "predictions": "validation_predictions.parquet"},
        "serving": {"entry_point": ENTRY_POINT, "threshold": threshold},
    }
    write_json(fs, join(root, "metadata.json"), metadata)
    print(json.dumps({"model_url": config.model_url, "metrics": scores}), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
