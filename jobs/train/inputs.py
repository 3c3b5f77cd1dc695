"""What `tide train` checks before it launches any rank: the manifest exists, is one, and names a contract.

A job whose inputs are missing fails here in a second with one line, instead of in every rank, every restart.
"""

from __future__ import annotations

import json
from typing import Any

from jobs.batch.storage import StorageError, filesystem, read_json
from jobs.train.config import TrainConfig
from schemas.contract import load_contract

REQUIRED = ("dataset", "version", "contract", "shards")


class InputError(ValueError):
    """The training job's inputs cannot be used; the message names the URL and the problem."""


def check_inputs(config: TrainConfig) -> dict[str, Any]:
    """The manifest, read and checked; raises InputError (or ContractError for an unknown contract)."""
    fs, path = filesystem(config.manifest_url, config.storage_options)
    try:
        manifest = read_json(fs, path)
    except StorageError as err:
        raise InputError(f"manifest {err}; `tide ingest` prints the manifest URL of a dataset") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"manifest {config.manifest_url} is not JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise InputError(f"manifest {config.manifest_url} is not a JSON object")
    absent = [key for key in REQUIRED if key not in manifest]
    if absent:
        raise InputError(f"manifest {config.manifest_url} lacks {', '.join(absent)}: is it a dataset manifest?")
    dataset, _, version = str(manifest["contract"]).partition("/v")
    if not version.isdigit():
        raise InputError(f"manifest {config.manifest_url}: contract {manifest['contract']!r} is not <dataset>/v<n>")
    load_contract(dataset, int(version))
    return manifest
