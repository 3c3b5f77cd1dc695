"""Deploy a trained model to a KServe InferenceService as the canary revision at 0 % of traffic.

KServe's canary is two revisions of one InferenceService: the previous ready one (the champion) and the
latest (the challenger), split by `canaryTrafficPercent`. Deploying a new model is a JSON merge patch of
the predictor's storageUri with canaryTrafficPercent 0, so the challenger starts with no traffic and the
traffic function (functions/traffic/adapters/kserve.py) moves it. With no InferenceService yet, the model is
created and serves alone. The manifests come from schemas.manifests, shared with infra and the traffic
function. The client is injected: kubernetes.client.CustomObjectsApi in production, a fake in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import manifests

GROUP, VERSION, PLURAL = manifests.KSERVE_GROUP, manifests.KSERVE_VERSION, manifests.KSERVE_PLURAL


@dataclass(frozen=True)
class KServeDeployResult:
    name: str
    namespace: str
    storage_uri: str
    created: bool  # True: the model serves alone; False: it is the canary revision
    canary_traffic_percent: int | None


class KServeDeployer:
    def __init__(self, custom_objects: Any, namespace: str) -> None:
        self._api = custom_objects
        self._ns = namespace

    def get(self, name: str) -> dict[str, Any] | None:
        """The InferenceService, or None when there is none."""
        try:
            return dict(self._api.get_namespaced_custom_object(GROUP, VERSION, self._ns, PLURAL, name))
        except Exception as err:  # kubernetes.client.ApiException carries the HTTP status
            if getattr(err, "status", None) == 404:
                return None
            raise

    def deploy(
        self, name: str, storage_uri: str, *, image: str, variant: str | None = None,
        service_account: str | None = None, logger_url: str | None = None, deployment_mode: str | None = "Serverless",
    ) -> KServeDeployResult:  # fmt: skip
        """Tidewater's predictor (`image`) over the model at storage_uri; its metrics are labelled by Knative
        revision unless `variant` pins a label (schemas.manifests.predictor_container). deployment_mode
        applies when the InferenceService is created: Serverless (Knative) by default,
        the only mode whose canaryTrafficPercent KServe honours; None leaves it to the cluster's default."""
        current = self.get(name)
        if current is None:
            body = manifests.inference_service(
                name, namespace=self._ns, image=image, storage_uri=storage_uri, variant=variant,
                service_account=service_account, logger_url=logger_url, deployment_mode=deployment_mode,
            )  # fmt: skip
            self._api.create_namespaced_custom_object(GROUP, VERSION, self._ns, PLURAL, body)
            return KServeDeployResult(name, self._ns, storage_uri, created=True, canary_traffic_percent=None)
        predictor = current.get("spec", {}).get("predictor", {})
        if manifests.predictor_storage_uri(current) == storage_uri:  # already the latest revision
            return KServeDeployResult(name, self._ns, storage_uri, False, predictor.get("canaryTrafficPercent"))
        # The canary keeps the live container's resources and environment; only the model and its label change.
        live = (predictor.get("containers") or [{}])[0]
        container = manifests.predictor_container(image, storage_uri, model_name=name, variant=variant)
        container["resources"] = live.get("resources", container["resources"])
        container["env"] = [e for e in live.get("env", []) if e.get("name") != "STORAGE_URI"] + [
            e for e in container["env"] if e["name"] == "STORAGE_URI"
        ]
        patch = manifests.canary_traffic_patch(0, container=container)
        self._api.patch_namespaced_custom_object(GROUP, VERSION, self._ns, PLURAL, name, patch)
        return KServeDeployResult(name, self._ns, storage_uri, created=False, canary_traffic_percent=0)
