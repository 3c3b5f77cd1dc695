"""`tide compress` on a really trained model: each compressed version is a model folder of its own that serves
through serving.inference.Predictor (and SageMaker's container contract), with its metadata and baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jobs import datagen
from jobs.cli import main
from jobs.deploy.sagemaker import request_for_model
from serving.inference import Predictor
from serving.package import unpack
from serving.spec import ModelSpec
from tests.serving.conftest import TrainedModel
from tests.serving.test_sagemaker_container import HARNESS, SITE, _closure_of_serving_dependencies, _day


@pytest.fixture(scope="module")
def compressed(trained_model: TrainedModel) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(main, ["compress", "--model-url", f"file://{trained_model.folder}",
                                       "--student-steps", "150"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return {doc["method"]: doc for doc in map(json.loads, result.output.splitlines())}


def _folder(doc: dict[str, Any]) -> Path:
    return Path(doc["model_url"].removeprefix("file://"))


def _rows(spec: ModelSpec, n: int = 300) -> list[dict[str, Any]]:
    table = datagen.generate(n, _day(), seed=17)
    return [{f.name: r[f.name] for f in spec.features} for r in table.to_pylist()]


def _scores(predictor: Predictor, rows: list[dict[str, Any]]) -> np.ndarray:
    body, _ = predictor.handle(json.dumps(rows), "application/json", None)
    return np.array([p["score"] for p in json.loads(body)["predictions"]])


def test_each_method_writes_a_version_folder_with_metadata_and_its_own_baseline(
    compressed: dict[str, dict[str, Any]], trained_model: TrainedModel
) -> None:
    parent = json.loads((trained_model.folder / "metadata.json").read_text())
    assert sorted(compressed) == ["distilled", "int8"]
    for method, doc in compressed.items():
        folder = _folder(doc)
        assert folder.parent == trained_model.folder.parent and folder.name == f"{parent['version']}-{method}"
        metadata = json.loads((folder / "metadata.json").read_text())
        assert metadata["parent_version"] == parent["version"] and metadata["method"] == method
        assert metadata["size"]["archive_bytes"] == (folder / "model.tar.gz").stat().st_size
        assert metadata["size"]["parent_archive_bytes"] == (trained_model.folder / "model.tar.gz").stat().st_size
        validation = pq.read_table(folder / "validation_predictions.parquet")
        assert validation.num_rows == parent["metrics"]["rows"] == metadata["metrics"]["rows"]
        assert 0.5 < metadata["metrics"]["auc"] <= 1.0
        baseline = json.loads((folder / "baseline.json").read_text())  # drift baseline with its own scores
        assert baseline["outputs"]["score"]["count"] == validation.num_rows
    student = json.loads((_folder(compressed["distilled"]) / "metadata.json").read_text())["size"]
    assert student["model_pt_bytes"] < student["parent_model_pt_bytes"]  # narrower embeddings and head


def test_compressed_archives_load_through_the_serving_predictor(
    compressed: dict[str, dict[str, Any]], trained_model: TrainedModel, tmp_path: Path
) -> None:
    parent = Predictor.load(unpack(trained_model.archive, tmp_path / "parent"))
    int8 = Predictor.load(unpack((_folder(compressed["int8"]) / "model.tar.gz").read_bytes(), tmp_path / "int8"))
    student = Predictor.load(
        unpack((_folder(compressed["distilled"]) / "model.tar.gz").read_bytes(), tmp_path / "student")
    )
    assert int8.spec.weights == "dynamic_int8" and student.spec.weights == "float32"
    assert int8.spec.version == f"{parent.spec.version}-int8" and int8.spec.threshold == parent.spec.threshold
    rows = _rows(parent.spec)
    reference = _scores(parent, rows)
    assert np.abs(_scores(int8, rows) - reference).max() < 0.05  # quantisation error only
    assert np.corrcoef(_scores(student, rows), reference)[0, 1] > 0.8  # the student learned the teacher


def test_each_compressed_version_deploys_like_a_trained_one(compressed: dict[str, dict[str, Any]]) -> None:
    """`tide deploy` (and the rehearsal) build the SageMaker model from metadata.json: a compressed version
    must name its package and the entry point its model.tar.gz carries, as training's metadata does."""
    for method, doc in compressed.items():
        metadata = json.loads((_folder(doc) / "metadata.json").read_text())
        url = f"s3://artifacts/models/fraud/{_folder(doc).name}"  # where a stack's compressed version lives
        request = request_for_model(url, metadata, endpoint="fraud-e", image="i", role_arn="r", capture_destination="")
        assert request.model_name.endswith(f"-{metadata['version']}") and metadata["version"].endswith(method)
        assert request.model_data_url == f"{url}/model.tar.gz"


def test_int8_archive_serves_in_the_sagemaker_container_contract(
    compressed: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    folder = unpack((_folder(compressed["int8"]) / "model.tar.gz").read_bytes(), tmp_path / "model")
    spec = ModelSpec.from_json((folder / "serving.json").read_text())
    rows = _rows(spec, 5)
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"name": "json_list", "content_type": "application/json", "body": json.dumps(rows)}]))
    allowed = _closure_of_serving_dependencies()
    out = subprocess.run(
        [sys.executable, "-I", "-S", str(HARNESS), str(folder), SITE, ",".join(allowed), str(cases)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    results = {r["name"]: r for r in map(json.loads, out.stdout.splitlines())}
    predictions = json.loads(results["json_list"]["body"])["predictions"]
    assert len(predictions) == 5 and all(p["model_version"] == spec.version for p in predictions)
    loaded = set(results["<modules>"]["loaded"]) - set(sys.stdlib_module_names)
    assert loaded <= set(allowed) | {"inference", "serving"}, loaded - set(allowed)


def test_compress_mistakes_are_one_line(tmp_path: Path, compressed: dict[str, dict[str, Any]]) -> None:
    empty = CliRunner().invoke(main, ["compress", "--model-url", f"file://{tmp_path}"])
    assert empty.exit_code == 1 and "no metadata.json" in empty.output and empty.output.count("\n") == 1
    again = CliRunner().invoke(main, ["compress", "--model-url", compressed["int8"]["model_url"]])
    assert again.exit_code == 1 and "itself a compressed version" in again.output
    bad = CliRunner().invoke(main, ["compress", "--model-url", f"file://{tmp_path}", "--student-hidden", "8,x"])
    assert bad.exit_code == 2 and "--student-hidden" in bad.output


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_a_failed_write_leaves_no_version_a_reader_would_take_as_finished(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    import shutil

    from jobs import compress as module

    parent = tmp_path / "models" / "fraud" / trained_model.folder.name
    shutil.copytree(trained_model.folder, parent)
    calls = {"n": 0}
    real_atomic, real_json = module.write_atomic, module.write_json

    def failing(real: Any) -> Any:
        def write(*args: Any) -> None:
            calls["n"] += 1
            if calls["n"] == k:
                raise OSError(f"write {k} failed")
            real(*args)

        return write

    monkeypatch.setattr(module, "write_atomic", failing(real_atomic))
    monkeypatch.setattr(module, "write_json", failing(real_json))
    with pytest.raises(OSError):
        module.compress(f"file://{parent}", ("int8",), tmp_path / "work")
    folder = parent.parent / f"{parent.name}-int8"
    assert not (folder / "metadata.json").exists()  # the completion marker is written last
    monkeypatch.setattr(module, "write_atomic", real_atomic)
    monkeypatch.setattr(module, "write_json", real_json)
    [done] = module.compress(f"file://{parent}", ("int8",), tmp_path / "work2")  # the re-run completes it
    assert json.loads((folder / "metadata.json").read_text())["version"] == done.metadata["version"]
    assert Predictor.load(unpack((folder / "model.tar.gz").read_bytes(), tmp_path / "served")).spec.weights == (
        "dynamic_int8"
    )
