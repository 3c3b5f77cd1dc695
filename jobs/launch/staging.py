"""Remote launchers cannot hand a local file to their workers: the config goes next to the model first."""

from __future__ import annotations

from jobs.batch.storage import filesystem, join, write_atomic
from jobs.train.config import TrainConfig

CONFIG_NAME = "job-config.json"


def stage_config(config: TrainConfig) -> str:
    """Write the config to <model_url>/job-config.json and return its URL (what every rank reads)."""
    url = join(config.model_url, CONFIG_NAME)
    fs, path = filesystem(url, config.storage_options)
    write_atomic(fs, path, config.model_dump_json(indent=2).encode())
    return url
