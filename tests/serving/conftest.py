"""A model trained once for the serving tests, by the real path: Dask dataset build, then `tide train`'s
launcher (torchrun, one process), so model.tar.gz is exactly what training ships."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.batch.build import build_dataset
from jobs.batch.cluster import ClusterSpec, dask_client
from jobs.batch.inputs import BuildParams
from jobs.launch.base import JobSpec
from jobs.launch.local import LocalTorchrun
from jobs.train.config import TrainConfig
from tests.jobs.helpers import write_curated


@dataclass(frozen=True)
class TrainedModel:
    folder: Path  # what training wrote: model.pt, model.tar.gz, metadata.json, ...
    config: TrainConfig

    @property
    def archive(self) -> bytes:
        return (self.folder / "model.tar.gz").read_bytes()


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    root = tmp_path_factory.mktemp("serving-model")
    write_curated(root / "curated", rows=800)
    with dask_client(ClusterSpec(n_workers=1, processes=True)) as client:
        built = build_dataset(
            f"file://{root}/curated", f"file://{root}/datasets", BuildParams(rows_per_shard=2000), client
        )
    config = TrainConfig(
        manifest_url=built.url, output_url=f"file://{root}/artifacts", steps=30, checkpoint_every=30,
        batch_size=128, hidden=(16,), cache_dir=str(root / "cache"),
    )  # fmt: skip
    LocalTorchrun(workdir=root).launch(config, JobSpec(name="serving-fixture", procs_per_node=1, max_restarts=0))
    return TrainedModel(Path(config.model_url.removeprefix("file://")), config)
