"""`tide deploy --target kserve`: the model becomes the InferenceService's canary revision at 0 %, where the
traffic function's KServe backend finds and moves it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from click.testing import CliRunner

from functions.traffic.adapters.kserve import KServeBackend
from jobs.cli import main
from jobs.deploy.kserve import GROUP, PLURAL, VERSION, KServeDeployer
from schemas.manifests import KSERVE_API, ManifestError

NS, NAME = "tidewater-dev-serving", "tidewater-dev-fraud"
V1, V2 = "s3://tidewater-dev-artifacts/models/fraud/v1", "s3://tidewater-dev-artifacts/models/fraud/v2"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tidewater:serving-1"


def _container(predictor: dict[str, Any]) -> dict[str, Any]:
    (container,) = predictor["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


class NotFound(Exception):
    status = 404


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch to a custom object."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeCustomObjects:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> Any:
        assert (group, version, plural) == (GROUP, VERSION, PLURAL)
        if f"{ns}/{name}" not in self.objects:
            raise NotFound(name)
        return copy.deepcopy(self.objects[f"{ns}/{name}"])

    def create_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, body: Any) -> Any:
        self.calls.append("create")
        self.objects[f"{ns}/{body['metadata']['name']}"] = copy.deepcopy(body)
        return body

    def patch_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str,
                                       body: Any) -> Any:  # fmt: skip
        self.calls.append("patch")
        self.objects[f"{ns}/{name}"] = merge_patch(self.objects[f"{ns}/{name}"], body)
        return self.objects[f"{ns}/{name}"]


def test_first_model_serves_alone_then_the_next_is_a_canary_at_zero() -> None:
    api = FakeCustomObjects()
    deployer = KServeDeployer(api, NS)
    first = deployer.deploy(NAME, V1, image=IMAGE, variant="v1", logger_url="http://captures.tidewater.svc/kserve")
    assert first.created and api.calls == ["create"]
    isvc = api.objects[f"{NS}/{NAME}"]
    assert isvc["apiVersion"] == KSERVE_API and isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"  # canary needs it
    predictor = isvc["spec"]["predictor"]
    container = _container(predictor)
    assert "model" not in predictor and container["image"] == IMAGE  # Tidewater's predictor, not TorchServe
    assert _env(container)["STORAGE_URI"] == V1 and container["args"][-2:] == ["--variant", "v1"]
    assert container["args"][:2] == ["--model-dir", "/mnt/models"] and container["ports"][0]["containerPort"] == 8080
    assert predictor["logger"] == {"mode": "all", "url": "http://captures.tidewater.svc/kserve"}
    backend = KServeBackend(api, NS)
    assert backend.weights(NAME) == {"prev": 0.0, "latest": 1.0}  # one revision: it takes everything

    second = deployer.deploy(NAME, V2, image=IMAGE, variant="v2")
    assert (second.created, second.canary_traffic_percent) == (False, 0) and api.calls == ["create", "patch"]
    predictor = api.objects[f"{NS}/{NAME}"]["spec"]["predictor"]
    container = _container(predictor)
    assert _env(container)["STORAGE_URI"] == V2 and container["args"][-2:] == ["--variant", "v2"]
    assert predictor["logger"]["mode"] == "all"  # a merge patch keeps what it does not name
    assert backend.weights(NAME) == {"prev": 1.0, "latest": 0.0}  # the challenger waits at 0 %
    assert backend.set_weights(NAME, {"prev": 0.75, "latest": 0.25}) == {"prev": 0.75, "latest": 0.25}

    again = deployer.deploy(NAME, V2, image=IMAGE, variant="v2")
    assert not again.created and again.canary_traffic_percent == 25 and api.calls == ["create", "patch", "patch"]


def test_other_api_errors_propagate_and_bad_input_is_refused() -> None:
    class Failing(FakeCustomObjects):
        def get_namespaced_custom_object(self, *args: Any) -> Any:
            error = RuntimeError("forbidden")
            error.status = 403  # type: ignore[attr-defined]
            raise error

    with pytest.raises(RuntimeError, match="forbidden"):
        KServeDeployer(Failing(), NS).deploy(NAME, V1, image=IMAGE, variant="v1")
    with pytest.raises(ManifestError, match="image"):
        KServeDeployer(FakeCustomObjects(), NS).deploy(NAME, V1, image="not an image", variant="v1")
    with pytest.raises(ManifestError, match="variant"):
        KServeDeployer(FakeCustomObjects(), NS).deploy(NAME, V1, image=IMAGE, variant="v/1")
    with pytest.raises(ManifestError, match="logger_url"):
        KServeDeployer(FakeCustomObjects(), NS).deploy(NAME, V1, image=IMAGE, variant="v1", logger_url="ftp://x")


def test_sagemaker_target_needs_an_image_and_a_role(tmp_path: Any) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "metadata.json").write_text('{"model": "fraud", "version": "v1"}')
    out = CliRunner().invoke(main, ["deploy", "--model-url", f"file://{model}"])
    assert out.exit_code == 2 and "needs --image and --role" in out.output
