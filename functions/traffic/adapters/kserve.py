"""KServe as the endpoint backend: the InferenceService's predictor canaryTrafficPercent.

KServe routes canaryTrafficPercent % to the latest revision (the challenger) and the rest to the previous
ready revision (the champion). The adapter works over an injected CustomObjectsApi-like client
(kubernetes.client.CustomObjectsApi in production, a fake in tests). The API server's refusals (the object is
gone, the account may not touch it, a 5xx) are BackendError naming the endpoint, so one endpoint's trouble is
reported for it and does not stop the other rollouts' ticks (service.tick_all).
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from functions.traffic.ports import BackendError, normalise
from schemas.manifests import KSERVE_GROUP, KSERVE_PLURAL, KSERVE_VERSION, canary_traffic_patch

GROUP, VERSION, PLURAL = KSERVE_GROUP, KSERVE_VERSION, KSERVE_PLURAL


def _get(custom_objects: Any, namespace: str, name: str) -> Any:
    try:
        return custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as err:
        raise BackendError(f"{name}: the API server answered {err.status} {err.reason}") from err


class KServeBackend:
    # KServe tags the two revisions of a canary "prev" and "latest"; rollout configs on this target name
    # their champion and challenger the same way.
    def __init__(self, custom_objects: Any, namespace: str, champion: str = "prev", challenger: str = "latest") -> None:
        self._api = custom_objects
        self._ns = namespace
        self._champion = champion
        self._challenger = challenger

    def _percent(self, name: str) -> int:
        obj = _get(self._api, self._ns, name)
        percent = obj.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
        return 100 if percent is None else int(percent)  # absent: the latest revision takes everything

    def weights(self, endpoint: str) -> dict[str, float]:
        p = self._percent(endpoint)
        return {self._champion: (100 - p) / 100, self._challenger: p / 100}

    def set_weights(self, endpoint: str, weights: dict[str, float], follow_capacity: bool = False) -> dict[str, float]:
        """follow_capacity is ignored: KServe's autoscaler sizes each revision by its own load."""
        unknown = sorted(set(weights) - {self._champion, self._challenger})
        if unknown:
            raise BackendError(f"KServe routes only {self._champion!r} and {self._challenger!r}, not {unknown}")
        percent = round(100 * normalise(weights).get(self._challenger, 0.0))
        patch = canary_traffic_patch(percent)
        try:
            self._api.patch_namespaced_custom_object(GROUP, VERSION, self._ns, PLURAL, endpoint, patch)
        except ApiException as err:
            raise BackendError(f"{endpoint}: the API server answered {err.status} {err.reason}") from err
        got = self._percent(endpoint)
        if got != percent:
            raise BackendError(f"{endpoint}: asked for canaryTrafficPercent={percent}, the object has {got}")
        return self.weights(endpoint)


def revision_roles(custom_objects: Any, namespace: str, name: str) -> dict[str, str]:
    """Knative revision name -> KServe's role ("prev" / "latest") from the InferenceService's status.

    Tidewater's predictor labels its metrics with the revision it runs in (K_REVISION), because a pod cannot
    know whether it is the previous or the latest revision: that changes at every rollout. KServe's status
    says, per revision in `status.components.predictor.traffic`, its tag; with a single revision (no canary)
    the latest ready revision is "latest".
    """
    obj = _get(custom_objects, namespace, name)
    predictor = obj.get("status", {}).get("components", {}).get("predictor", {})
    roles: dict[str, str] = {}
    for target in predictor.get("traffic") or []:
        revision, tag = target.get("revisionName"), target.get("tag")
        if revision and tag in ("prev", "latest"):
            roles[str(revision)] = str(tag)
        elif revision and target.get("latestRevision") and "latest" not in roles.values():
            roles[str(revision)] = "latest"
    latest = predictor.get("latestReadyRevision")
    if latest and not roles:
        roles[str(latest)] = "latest"
    return roles
