"""Compressed versions of a trained model: dynamic int8 quantisation and a distilled student.

Each becomes a model version of its own beside its parent (models/<name>/<parent version>-int8/ and
-distilled/), written like training writes one: model.pt, model.tar.gz (serving.package: loads through
serving.inference.Predictor, the module every endpoint runs; the int8 layout is named in serving.json's
`weights`), validation_predictions.parquet (its quality baseline), baseline.json (the dataset profile with its
own validation scores, its drift baseline) and, last, metadata.json (the completion marker) with the parent
version, the method and the sizes.

- int8: torch's quantize_dynamic on the linear layers; the parent's serving threshold is kept (the scores
  move by quantisation error only, so the labels should agree with the parent's).
- distilled: a smaller TabularNet (narrower embeddings and head) trained on the teacher's scores over the
  parent's training split (soft targets, binary cross-entropy), the teacher's standardisation copied; its
  threshold is re-chosen on validation (max F1) as training chooses one.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from jobs.batch.storage import StorageError, filesystem, join, read_json, write_atomic, write_json
from jobs.train import data, metrics
from schemas.contract import load_contract
from schemas.profile import MODEL_OUTPUT, Profile
from serving.net import TabularNet, quantize_linear
from serving.package import ENTRY_POINT, model_archive, unpack
from serving.spec import SPEC_FILE, ModelSpec

Method = Literal["int8", "distilled"]
METHODS: tuple[Method, ...] = ("int8", "distilled")


class CompressError(RuntimeError):
    """The parent model cannot be compressed (not a finished model folder, data gone); the message says why."""


@dataclass(frozen=True)
class StudentConfig:
    embedding_dim: int = 2
    hidden: tuple[int, ...] = (8,)
    steps: int = 400
    batch_size: int = 512
    learning_rate: float = 0.01
    seed: int = 7


@dataclass(frozen=True)
class Compressed:
    method: Method
    model_url: str
    metadata: dict[str, Any]


@dataclass
class Parent:
    url: str
    metadata: dict[str, Any]
    spec: ModelSpec
    net: TabularNet
    saved: dict[str, Any]
    storage_options: dict[str, Any] | None

    @classmethod
    def load(cls, url: str, storage_options: dict[str, Any] | None, workdir: Any) -> Parent:
        fs, root = filesystem(url, storage_options)
        if not fs.exists(join(root, "metadata.json")):
            raise CompressError(f"{url} has no metadata.json: not a finished model folder (tide train writes one)")
        metadata = read_json(fs, join(root, "metadata.json"))
        if metadata.get("method"):
            raise CompressError(f"{url} is itself a compressed version ({metadata['method']}); compress its parent")
        folder = unpack(fs.cat_file(join(root, "model.tar.gz")), workdir)
        spec = ModelSpec.from_json((folder / SPEC_FILE).read_bytes())
        saved = torch.load(io.BytesIO(fs.cat_file(join(root, "model.pt"))), weights_only=True)
        return cls(url.rstrip("/"), metadata, spec, TabularNet.from_saved(saved), saved, storage_options)

    def split(self, name: str, cache_dir: Any) -> data.Encoded:
        manifest_url = self.metadata["dataset"]["manifest"]
        fs, path = filesystem(manifest_url, self.storage_options)
        manifest = read_json(fs, path)
        dataset, version = str(manifest["contract"]).split("/v")
        encoder = data.Encoder(load_contract(dataset, int(version)))
        assignment = data.assign(manifest["shards"], name, 0, 1)
        paths = [data.fetch(manifest_url, s, cache_dir, self.storage_options) for s in assignment.shards]
        return encoder.encode(data.load(paths, assignment))


def _scores(net: torch.nn.Module, split: data.Encoded) -> np.ndarray:
    with torch.inference_mode():
        logits = net(torch.from_numpy(split.categorical), torch.from_numpy(split.numerical))
    return torch.sigmoid(logits).numpy().astype(np.float64)


def distill(teacher: TabularNet, train: data.Encoded, config: StudentConfig) -> TabularNet:
    torch.manual_seed(config.seed)
    arch = teacher.architecture
    student = TabularNet(arch["cardinalities"], arch["numerical_width"], config.embedding_dim, config.hidden)
    student.mean.copy_(teacher.mean)
    student.std.copy_(teacher.std)
    cats, nums = torch.from_numpy(train.categorical), torch.from_numpy(train.numerical)
    with torch.inference_mode():
        targets = torch.sigmoid(teacher(cats, nums))
    optimiser = torch.optim.Adam(student.parameters(), lr=config.learning_rate)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    student.train()
    for step in range(config.steps):
        index = torch.from_numpy(
            np.random.default_rng([config.seed, step]).integers(0, len(targets), config.batch_size)
        )
        optimiser.zero_grad(set_to_none=True)
        loss_fn(student(cats[index], nums[index]), targets[index].clone()).backward()
        optimiser.step()
    return student.eval()


def _validation_metrics(label: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    flagged, truth = score >= threshold, label.astype(bool)
    return {
        "auc": metrics.roc_auc(label, score),
        "log_loss": metrics.log_loss(label, score),
        "rows": len(label),
        "threshold": threshold,
        "precision": float((flagged & truth).sum() / max(int(flagged.sum()), 1)),
        "recall": float((flagged & truth).sum() / max(int(truth.sum()), 1)),
    }


def _write(parent: Parent, method: Method, net: TabularNet, validation: data.Encoded, threshold: float,
           extra: dict[str, Any]) -> Compressed:  # fmt: skip
    version = f"{parent.spec.version}-{method}"
    url = f"{parent.url.rsplit('/', 1)[0]}/{version}"
    fs, root = filesystem(url, parent.storage_options)
    layout = "dynamic_int8" if method == "int8" else "float32"
    spec = ModelSpec(parent.spec.model, version, parent.spec.contract, threshold, parent.spec.features, layout)
    state = io.BytesIO()
    torch.save({"architecture": net.architecture, "state_dict": net.state_dict()}, state)
    archive = model_archive(state.getvalue(), spec)
    scores = _scores(net, validation)
    predictions = io.BytesIO()
    pq.write_table(pa.table({"id": validation.ids, "label": validation.label, MODEL_OUTPUT: scores}), predictions)
    write_atomic(fs, join(root, "model.pt"), state.getvalue())
    write_atomic(fs, join(root, "model.tar.gz"), archive)
    write_atomic(fs, join(root, "validation_predictions.parquet"), predictions.getvalue())
    baseline_url = None
    dataset_baseline = parent.metadata.get("dataset_baseline_url")
    if dataset_baseline:
        bfs, bpath = filesystem(dataset_baseline, parent.storage_options)
        profile = Profile.from_json(bfs.cat_file(bpath)).with_outputs({MODEL_OUTPUT: scores})
        write_atomic(fs, join(root, "baseline.json"), profile.to_json().encode())
        baseline_url = join(url, "baseline.json")
    parameters = sum(p.numel() for p in net.state_dict().values() if isinstance(p, torch.Tensor))
    metadata = {
        "model": parent.spec.model,
        "version": version,
        "parent_version": parent.spec.version,
        "parent_url": parent.url,
        "method": method,
        "dataset": parent.metadata["dataset"],
        "contract": parent.metadata["contract"],
        "baseline_url": baseline_url,
        "dataset_baseline_url": dataset_baseline,
        "metrics": _validation_metrics(validation.label, scores, threshold),
        "parent_metrics": parent.metadata.get("metrics"),
        "size": {
            "model_pt_bytes": len(state.getvalue()),
            "archive_bytes": len(archive),
            "tensor_elements": parameters,
            "parent_model_pt_bytes": fs.size(join(parent_root(parent), "model.pt")),
            "parent_archive_bytes": fs.size(join(parent_root(parent), "model.tar.gz")),
        },
        "artifacts": {"model": "model.pt", "package": "model.tar.gz", "predictions": "validation_predictions.parquet"},
        "serving": {"entry_point": ENTRY_POINT, "threshold": threshold, "weights": layout},
        **extra,
    }
    write_json(fs, join(root, "metadata.json"), metadata)
    return Compressed(method, url, metadata)


def parent_root(parent: Parent) -> str:
    return filesystem(parent.url, parent.storage_options)[1]


def compress(
    model_url: str, methods: tuple[Method, ...], workdir: Any, student: StudentConfig | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[Compressed]:  # fmt: skip
    try:
        parent = Parent.load(model_url, storage_options, workdir / "parent")
        validation = parent.split("validation", workdir / "cache")
        out = []
        if "int8" in methods:
            out.append(_write(parent, "int8", quantize_linear(TabularNet.from_saved(parent.saved)), validation,
                              parent.spec.threshold, {}))  # fmt: skip
        if "distilled" in methods:
            config = student or StudentConfig()
            net = distill(parent.net, parent.split("train", workdir / "cache"), config)
            threshold = metrics.f1_threshold(validation.label, _scores(net, validation))
            extra = {"student": {"embedding_dim": config.embedding_dim, "hidden": list(config.hidden),
                                 "steps": config.steps, "batch_size": config.batch_size}}  # fmt: skip
            out.append(_write(parent, "distilled", net, validation, threshold, extra))
    except (data.DataError, StorageError, FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        raise CompressError(f"cannot compress {model_url}: {type(err).__name__}: {err}") from None
    return out
