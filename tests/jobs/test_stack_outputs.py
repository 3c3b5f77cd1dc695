"""The stack outputs file `tide` reads: a bad file is one clear line; a missing output names the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from jobs.stack_outputs import StackOutputs, StackOutputsError

LAKE = {"project": "tidewater", "stack": "dev", "stage": "lake", "model_name": "fraud",
        "buckets": {"artifacts": "tidewater-dev-artifacts"}}  # fmt: skip


def test_outputs_give_names_and_buckets(tmp_path: Path) -> None:
    file = tmp_path / "dev.json"
    file.write_text(json.dumps(LAKE))
    outputs = StackOutputs.load(file)
    assert outputs.names.prefix == "tidewater-dev" and outputs.bucket("artifacts") == "tidewater-dev-artifacts"
    assert outputs.model_name == "fraud"
    with pytest.raises(StackOutputsError, match=r"no output 'endpoint_name'.*stage serving.*from stage lake"):
        outputs.require("endpoint_name")
    with pytest.raises(StackOutputsError, match="no 'raw' zone"):
        outputs.bucket("raw")
    later = StackOutputs(LAKE | {"stage": "serving"}, "dev.json")
    with pytest.raises(StackOutputsError, match=r"stage lake exports it.*last `pulumi up`"):
        later.require("training_image_repository")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read stack outputs"),
        ("{not json", "is not JSON"),
        ("[1, 2]", "not the JSON object of stack outputs"),
        (json.dumps({"stack": "dev", "stage": "lake"}), "no 'project' output"),
        (json.dumps(LAKE | {"stage": "production"}), "output 'stage' is 'production'"),
        (json.dumps(LAKE | {"stack": "Dev!"}), "stack 'Dev!'"),
    ],
)
def test_a_bad_outputs_file_is_named(tmp_path: Path, content: str | None, message: str) -> None:
    file = tmp_path / "dev.json"
    if content is not None:
        file.write_text(content)
    with pytest.raises(StackOutputsError, match=message):
        StackOutputs.load(file)


@settings(max_examples=40, deadline=None)
@given(values=st.dictionaries(st.sampled_from(sorted(LAKE)), st.none() | st.text(max_size=8) | st.integers()))
def test_any_outputs_object_either_loads_or_is_refused_clearly(values: dict[str, object]) -> None:
    try:
        outputs = StackOutputs({**LAKE, **values}, "dev.json")
    except StackOutputsError as err:
        assert str(err).startswith("dev.json")
        return
    assert outputs.stage in ("lake", "platform", "serving")


def test_tide_train_with_a_missing_outputs_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--manifest", "s3://d/m.json", "--stack-outputs",
                                       str(tmp_path / "missing.json")])  # fmt: skip
    assert result.exit_code == 1 and "cannot read stack outputs" in result.output and "Traceback" not in result.output


def test_tide_train_refuses_a_model_name_the_stack_does_not_serve(tmp_path: Path) -> None:
    file = tmp_path / "dev.json"
    file.write_text(json.dumps(LAKE))
    result = CliRunner().invoke(main, ["train", "--manifest", "s3://d/m.json", "--stack-outputs", str(file),
                                       "--model-name", "churn"])  # fmt: skip
    assert result.exit_code == 2 and "is not the model the stack serves ('fraud'" in result.output


def test_tide_train_refuses_a_bad_model_name_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--manifest", "s3://d/m.json", "--output", f"file://{tmp_path}",
                                       "--model-name", "Fraud_Model"])  # fmt: skip
    assert result.exit_code == 2 and "model_name" in result.output and "Traceback" not in result.output


def test_tide_deploy_kserve_takes_the_inference_service_and_namespace_from_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud: EmbeddedCloud
) -> None:
    import sys
    import types

    from tests.jobs.test_deploy_kserve import FakeCustomObjects

    api = FakeCustomObjects()
    package = types.ModuleType("kubernetes")
    package.client = types.SimpleNamespace(CustomObjectsApi=lambda: api)  # type: ignore[attr-defined]
    package.config = types.SimpleNamespace(load_config=lambda: None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kubernetes", package)
    serving = {"project": "tidewater", "stack": "onprem", "stage": "serving", "model_name": "fraud",
               "k8s_inference_service": "tidewater-onprem-fraud",
               "k8s_namespaces": {"serving": "tidewater-onprem-serving"},
               "k8s_serving_image": "registry.example/tidewater:serving-1"}  # fmt: skip
    file = tmp_path / "onprem.json"
    file.write_text(json.dumps(serving))
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="tidewater-onprem-artifacts")
    for model, version in (("fraud", "0a1b2c3d4e5f6789"), ("churn", "1")):
        metadata = json.dumps({"model": model, "version": version})
        s3.put_object(Bucket="tidewater-onprem-artifacts", Key=f"models/{model}/{version}/metadata.json", Body=metadata)
    url = "s3://tidewater-onprem-artifacts/models/{}"
    args = ["deploy", "--target", "kserve", "--stack-outputs", str(file), "--model-url"]
    result = CliRunner().invoke(main, [*args, url.format("fraud/0a1b2c3d4e5f6789")])
    assert result.exit_code == 0, result.output
    (isvc,) = api.objects.values()
    assert list(api.objects) == ["tidewater-onprem-serving/tidewater-onprem-fraud"]
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == "registry.example/tidewater:serving-1"
    refused = CliRunner().invoke(main, [*args, url.format("churn/1")])
    assert refused.exit_code == 1 and "the stack serves 'fraud'" in refused.output
