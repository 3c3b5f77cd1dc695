"""model.tar.gz, freshly trained, served by SageMaker's PyTorch container handler contract.

The tarball is extracted into an empty folder; a fresh interpreter whose path holds only that folder's
code/, the standard library, torch and numpy calls model_fn, then input_fn -> predict_fn -> output_fn per
request, as sagemaker-inference-toolkit's Transformer does (UTF-8 content types decoded to str first, a
BaseInferenceToolkitError answered with its status, anything else with 500).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from jobs import datagen
from serving.package import CODE_MODULES, unpack
from serving.spec import ModelSpec
from tests.serving.conftest import TrainedModel

pytestmark = pytest.mark.slow
HARNESS = Path(__file__).with_name("container_harness.py")
SITE = sysconfig.get_paths()["purelib"]


def _closure_of_serving_dependencies() -> list[str]:
    """Top-level modules that `import torch, numpy` loads in a bare interpreter: the container's own set."""
    probe = f"import sys; sys.path.append({SITE!r}); import torch, numpy; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    return sorted({m.split(".")[0] for m in out.stdout.strip().split(",")} - set(sys.stdlib_module_names))


def _day() -> Any:
    import datetime as dt

    return dt.date(2026, 11, 3)


def _cases(spec: ModelSpec, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    names = [f.name for f in spec.features]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[r[n] if r[n] is not None else "" for n in names] for r in rows])
    headerless = buffer.getvalue()
    with_header = ",".join(names) + "\n" + headerless
    record_without_amount = {k: v for k, v in rows[0].items() if k != "amount"}
    return [
        {"name": "json_record", "content_type": "application/json", "body": json.dumps(rows[0])},
        {"name": "json_list", "content_type": "application/json", "body": json.dumps(rows)},
        {"name": "csv_headerless", "content_type": "text/csv", "body": headerless, "accept": "text/csv"},
        {"name": "csv_header", "content_type": "text/csv", "body": with_header},
        {"name": "jsonl", "content_type": "application/jsonlines",
         "body": "".join(json.dumps(r) + "\n" for r in rows), "accept": "application/jsonlines"},
        {"name": "unknown_type", "content_type": "application/x-npy", "body": "\x93NUMPY"},
        {"name": "missing_feature", "content_type": "application/json", "body": json.dumps(record_without_amount)},
        {"name": "wrong_type", "content_type": "application/json", "body": json.dumps({**rows[0], "amount": "12 EUR"})},
        {"name": "empty_body", "content_type": "application/json", "body": ""},
        {"name": "over_limit", "content_type": "text/csv", "body": headerless * 40},
    ]  # fmt: skip


def test_trained_tarball_serves_every_content_type_and_refuses_bad_requests(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    folder = unpack(trained_model.archive, tmp_path / "model")
    assert sorted(p.name for p in (folder / "code" / "serving").iterdir()) == sorted(CODE_MODULES)
    spec = ModelSpec.from_json((folder / "serving.json").read_text())
    assert spec.version == trained_model.config.version and spec.model == trained_model.config.model_name
    table = datagen.generate(25, _day(), seed=11)
    rows = [{f.name: row[f.name] for f in spec.features} for row in table.to_pylist()]
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(_cases(spec, rows)))
    allowed = _closure_of_serving_dependencies()
    assert not {"pandas", "pyarrow", "pydantic", "yaml", "boto3", "fastapi", "jobs", "schemas"} & set(allowed)
    env = {"TIDE_SERVING_MAX_BYTES": str(len(json.dumps(rows)) * 3), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-I", "-S", str(HARNESS), str(folder), SITE, ",".join(allowed), str(cases)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    results = {r["name"]: r for r in map(json.loads, out.stdout.splitlines())}

    # Every accepted content type scores every row, with the label at the model's threshold and its version.
    expected = json.loads(results["json_list"]["body"])["predictions"]
    assert len(expected) == len(rows)
    for p in expected:
        assert 0.0 <= p["score"] <= 1.0 and p["label"] == int(p["score"] >= spec.threshold)
        assert p["model_version"] == spec.version
    assert json.loads(results["json_record"]["body"])["predictions"] == expected[:1]
    assert json.loads(results["csv_header"]["body"])["predictions"] == expected
    csv_lines = results["csv_headerless"]["body"].splitlines()
    assert results["csv_headerless"]["content_type"] == "text/csv"
    assert [float(line.split(",")[0]) for line in csv_lines] == pytest.approx([p["score"] for p in expected])
    jsonl = [json.loads(line) for line in results["jsonl"]["body"].splitlines()]
    assert jsonl == expected

    # Bad requests: a 4xx naming the problem, never a 500.
    assert results["unknown_type"]["status"] == 415 and "application/x-npy" in results["unknown_type"]["message"]
    assert results["missing_feature"]["status"] == 400 and "'amount'" in results["missing_feature"]["message"]
    assert results["wrong_type"]["status"] == 400 and "amount" in results["wrong_type"]["message"]
    assert results["empty_body"]["status"] == 400 and "empty" in results["empty_body"]["message"]
    assert results["over_limit"]["status"] == 413

    # Nothing beyond code/, the standard library, torch and numpy was imported.
    loaded = set(results["<modules>"]["loaded"]) - set(sys.stdlib_module_names)
    assert loaded <= set(allowed) | {"inference", "serving"}, loaded - set(allowed)
