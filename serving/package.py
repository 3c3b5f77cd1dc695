"""model.tar.gz as SageMaker's PyTorch inference container loads it, and as the KServe predictor reads it.

    model.pt            weights + architecture (torch.save of {"architecture", "state_dict"})
    serving.json        the feature spec, threshold, model name and version (serving.spec.ModelSpec)
    code/inference.py   model_fn / input_fn / predict_fn / output_fn (serving.sagemaker_entry)
    code/serving/...    the inference core it imports (torch + numpy + stdlib only)

Entries are sorted with fixed timestamps, so the same model packs to the same bytes.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from serving.spec import SPEC_FILE, WEIGHTS_FILE, ModelSpec

ENTRY_POINT = "inference.py"  # SAGEMAKER_PROGRAM
CODE_DIR = "code"
# The inference core: what code/inference.py imports, transitively. tests/serving checks the list is closed.
CODE_MODULES = ("__init__.py", "spec.py", "encoding.py", "net.py", "payload.py", "inference.py")
_HERE = Path(__file__).parent


def archive_files(weights: bytes, spec: ModelSpec) -> dict[str, bytes]:
    files = {WEIGHTS_FILE: weights, SPEC_FILE: spec.to_json().encode()}
    files[f"{CODE_DIR}/{ENTRY_POINT}"] = (_HERE / "sagemaker_entry.py").read_bytes()
    for module in CODE_MODULES:
        files[f"{CODE_DIR}/serving/{module}"] = (_HERE / module).read_bytes()
    return files


def model_archive(weights: bytes, spec: ModelSpec) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(archive_files(weights, spec).items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def unpack(archive: bytes, into: Path) -> Path:
    """Extract a model.tar.gz (only regular files, no path escaping) into a folder; returns it."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(into, filter="data")
    return into


# What SageMaker's PyTorch inference container needs to run code/inference.py from model.tar.gz: the entry
# point's name, and the code folder inside the unpacked model (/opt/ml/model). Set on every SageMaker model
# the stack (infra/components/endpoint.py) and `tide deploy` (jobs/deploy/sagemaker.py) create.
SAGEMAKER_ENV = {"SAGEMAKER_PROGRAM": ENTRY_POINT, "SAGEMAKER_SUBMIT_DIRECTORY": f"/opt/ml/model/{CODE_DIR}"}
