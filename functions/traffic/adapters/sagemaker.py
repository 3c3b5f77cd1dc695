"""SageMaker production variants as the endpoint backend (UpdateEndpointWeightsAndCapacities)."""

from __future__ import annotations

from typing import Any

from functions.traffic.ports import BackendBusy, BackendError, normalise


def variant_configs(weights: dict[str, float], instance_counts: dict[str, int]) -> list[dict[str, Any]]:
    """DesiredWeightsAndCapacities for every variant of the endpoint.

    Weight AND instance count are always sent together: moto (and a careless caller on AWS) would otherwise
    overwrite the omitted field. Variants not named in `weights` get weight 0 (they keep their instances).
    """
    unknown = sorted(set(weights) - set(instance_counts))
    if unknown:
        raise BackendError(f"variants {unknown} are not on the endpoint; it has {sorted(instance_counts)}")
    return [
        {"VariantName": v, "DesiredWeight": float(weights.get(v, 0.0)), "DesiredInstanceCount": n}
        for v, n in sorted(instance_counts.items())
    ]


class SageMakerBackend:
    def __init__(self, client: Any, tolerance: float = 1e-3) -> None:
        self._sm = client
        self._tolerance = tolerance

    def _variants(self, endpoint: str, need_in_service: bool = False) -> list[dict[str, Any]]:
        described = self._sm.describe_endpoint(EndpointName=endpoint)
        # AWS refuses a weight update while an update is in progress; the stored state is re-applied next tick.
        if need_in_service and described.get("EndpointStatus", "InService") != "InService":
            raise BackendBusy(f"{endpoint} is {described['EndpointStatus']}; weights are applied on a later tick")
        variants: list[dict[str, Any]] = described["ProductionVariants"]
        return variants

    @staticmethod
    def _weights(variants: list[dict[str, Any]]) -> dict[str, float]:
        # While an update is in progress AWS reports DesiredWeight beside the old CurrentWeight.
        raw = {v["VariantName"]: float(v.get("DesiredWeight", v.get("CurrentWeight", 0.0)) or 0.0) for v in variants}
        return normalise(raw) if sum(raw.values()) > 0 else raw

    def weights(self, endpoint: str) -> dict[str, float]:
        return self._weights(self._variants(endpoint))

    def set_weights(self, endpoint: str, weights: dict[str, float]) -> dict[str, float]:
        wanted = normalise(weights)
        counts = {
            v["VariantName"]: int(v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount") or 1)
            for v in self._variants(endpoint, need_in_service=True)
        }
        self._sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint, DesiredWeightsAndCapacities=variant_configs(wanted, counts)
        )
        got = self.weights(endpoint)  # describe to confirm, never trust the call alone
        if any(abs(got.get(v, 0.0) - wanted.get(v, 0.0)) > self._tolerance for v in set(got) | set(wanted)):
            raise BackendError(f"{endpoint}: asked for weights {wanted}, endpoint reports {got}")
        return got
