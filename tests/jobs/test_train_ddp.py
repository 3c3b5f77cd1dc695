"""Two-process gloo training under torchrun on CPU, and recovery after a rank dies mid-training."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from jobs.batch.build import build_dataset
from jobs.batch.cluster import ClusterSpec, dask_client
from jobs.batch.inputs import BuildParams
from jobs.launch.base import JobSpec
from jobs.launch.local import LaunchError, LocalTorchrun
from jobs.train.checkpoint import MARKER
from jobs.train.config import FAIL_AT_STEP_ENV, TrainConfig
from schemas.profile import MODEL_OUTPUT, NumericalProfile, Profile
from tests.jobs.helpers import write_curated

pytestmark = pytest.mark.slow
STEPS, EVERY, FAIL_AT = 40, 10, 15


@pytest.fixture(scope="module")
def manifest_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("ds")
    write_curated(root / "curated", rows=1500)
    with dask_client(ClusterSpec(n_workers=1, processes=True)) as client:  # see test_batch_build: no in-process
        params = BuildParams(rows_per_shard=700)
        result = build_dataset(f"file://{root}/curated", f"file://{root}/datasets", params, client)
    assert sum(s["split"] == "train" for s in result.manifest["shards"]) >= 2  # each rank gets its own shard(s)
    return result.url


def _config(manifest_url: str, out: Path) -> TrainConfig:
    return TrainConfig(
        manifest_url=manifest_url, output_url=f"file://{out}/artifacts", steps=STEPS, checkpoint_every=EVERY,
        batch_size=128, hidden=(32,), cache_dir=str(out / "cache"),
    )  # fmt: skip


def _outputs(config: TrainConfig) -> tuple[dict[str, object], np.ndarray]:
    folder = Path(config.model_url.removeprefix("file://"))
    metadata = json.loads((folder / "metadata.json").read_text())
    scores = pq.read_table(folder / "validation_predictions.parquet").column(MODEL_OUTPUT).to_numpy()
    return metadata, scores


@pytest.fixture(scope="module")
def clean_run(manifest_url: str, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    config = _config(manifest_url, tmp_path_factory.mktemp("clean"))
    LocalTorchrun().launch(config, JobSpec(name="clean", procs_per_node=2, max_restarts=0))
    return config


def test_two_process_gloo_run_writes_model_metadata_and_predictions(clean_run: TrainConfig) -> None:
    metadata, scores = _outputs(clean_run)
    assert metadata["world_size"] == 2 and metadata["backend"] == "gloo" and metadata["device"] == "cpu"
    assert metadata["resumed_from_step"] is None
    assert metadata["throughput"]["steps"] == STEPS  # type: ignore[index]
    assert metadata["dataset"]["manifest"] == clean_run.manifest_url  # type: ignore[index]
    dataset_baseline = clean_run.manifest_url.replace("manifest.json", "profile.json")
    assert metadata["dataset_baseline_url"] == dataset_baseline
    # The drift baseline is the dataset's profile plus the validation scores as the model's output.
    assert metadata["baseline_url"] == f"{clean_run.model_url.rstrip('/')}/baseline.json"
    baseline = Profile.from_json((Path(clean_run.model_url.removeprefix("file://")) / "baseline.json").read_text())
    features = Profile.from_json(Path(dataset_baseline.removeprefix("file://")).read_text())
    assert json.loads(baseline.to_json())["features"] == json.loads(features.to_json())["features"]
    output = baseline.outputs[MODEL_OUTPUT]
    assert isinstance(output, NumericalProfile) and output.count == len(scores)
    assert output.mean == pytest.approx(float(scores.mean()))
    metrics = metadata["metrics"]
    # The generator camouflages 30% of fraud as legitimate traffic (the best reachable AUC is about 0.85), and
    # this run is small: ranking clearly better than chance is what it must show.
    assert 0.6 < metrics["auc"] <= 1.0 and 0 < metrics["log_loss"] < 0.3  # type: ignore[index]
    assert len(scores) == metrics["rows"] and ((scores >= 0) & (scores <= 1)).all()  # type: ignore[index]
    folder = Path(clean_run.model_url.removeprefix("file://"))
    artifact = torch.load(folder / "model.pt", weights_only=True)
    assert artifact["architecture"]["hidden"] == [32]
    with tarfile.open(folder / "model.tar.gz") as tar:
        assert tar.getnames() == ["model.pt"]
    steps = sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert steps == [f"step-{s:09d}" for s in range(EVERY, STEPS + 1, EVERY)]
    assert all((folder / "checkpoints" / s / MARKER).exists() for s in steps)
    # Each rank cached its own shards locally; both ranks together cached every train shard.
    cached = {p.name for p in Path(clean_run.cache_dir).rglob("*.parquet")}
    assert {p for p in cached if p.startswith("part-")} and len(cached) >= 2


def test_a_killed_rank_resumes_from_the_last_complete_checkpoint(
    clean_run: TrainConfig, manifest_url: str, tmp_path: Path
) -> None:
    config = _config(manifest_url, tmp_path)
    spec = JobSpec(name="faulty", procs_per_node=2, max_restarts=1, env={FAIL_AT_STEP_ENV: str(FAIL_AT)})
    LocalTorchrun().launch(config, spec)
    metadata, scores = _outputs(config)
    last_complete = FAIL_AT // EVERY * EVERY
    assert metadata["resumed_from_step"] == last_complete
    assert FAIL_AT - last_complete <= EVERY  # at most one checkpoint interval of work lost
    assert metadata["throughput"]["steps"] == STEPS - last_complete  # type: ignore[index]
    # Batches are a function of (seed, rank, step): the resumed job ends where an uninterrupted one does.
    clean_metadata, clean_scores = _outputs(clean_run)
    np.testing.assert_allclose(scores, clean_scores, rtol=1e-5, atol=1e-6)
    assert metadata["metrics"]["auc"] == pytest.approx(clean_metadata["metrics"]["auc"])  # type: ignore[index]
    # The learning curve survives the restart through the checkpoint: the same points as the clean run's.
    history, clean_history = metadata["history"], clean_metadata["history"]
    assert history["step"] == clean_history["step"] and history["step"][-1] == STEPS  # type: ignore[index]
    np.testing.assert_allclose(history["loss"], clean_history["loss"], rtol=1e-5)  # type: ignore[index]


def test_a_failure_without_restarts_left_is_reported(manifest_url: str, tmp_path: Path) -> None:
    config = _config(manifest_url, tmp_path).model_copy(update={"steps": 12})
    spec = JobSpec(name="fatal", procs_per_node=2, max_restarts=0, env={FAIL_AT_STEP_ENV: "3"})
    with pytest.raises(LaunchError, match="torchrun exited with status 1"):
        LocalTorchrun().launch(config, spec)
    assert not Path(config.model_url.removeprefix("file://"), "metadata.json").exists()
