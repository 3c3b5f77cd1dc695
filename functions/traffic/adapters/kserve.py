"""KServe as the endpoint backend: the InferenceService's predictor canaryTrafficPercent.

KServe routes canaryTrafficPercent % to the latest revision (the challenger) and the rest to the previous
ready revision (the champion). The adapter works over an injected CustomObjectsApi-like client
(kubernetes.client.CustomObjectsApi in production, a fake in tests).
"""

from __future__ import annotations

from typing import Any

from functions.traffic.ports import BackendError, normalise
from schemas.manifests import KSERVE_GROUP, KSERVE_PLURAL, KSERVE_VERSION, canary_traffic_patch

GROUP, VERSION, PLURAL = KSERVE_GROUP, KSERVE_VERSION, KSERVE_PLURAL


class KServeBackend:
    # KServe tags the two revisions of a canary "prev" and "latest"; rollout configs on this target name
    # their champion and challenger the same way.
    def __init__(self, custom_objects: Any, namespace: str, champion: str = "prev", challenger: str = "latest") -> None:
        self._api = custom_objects
        self._ns = namespace
        self._champion = champion
        self._challenger = challenger

    def _percent(self, name: str) -> int:
        obj = self._api.get_namespaced_custom_object(GROUP, VERSION, self._ns, PLURAL, name)
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
        self._api.patch_namespaced_custom_object(GROUP, VERSION, self._ns, PLURAL, endpoint, patch)
        got = self._percent(endpoint)
        if got != percent:
            raise BackendError(f"{endpoint}: asked for canaryTrafficPercent={percent}, the object has {got}")
        return self.weights(endpoint)
