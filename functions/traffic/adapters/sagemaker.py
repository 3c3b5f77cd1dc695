"""SageMaker production variants as the endpoint backend (UpdateEndpointWeightsAndCapacities)."""

from __future__ import annotations

import math
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


def capacity_for(weights: dict[str, float], full: int) -> dict[str, int]:
    """Instances per variant for its share of the traffic: ceil(weight x the full fleet), at least 1 (a
    variant at weight 0 keeps one warm instance, so a rollback has somewhere to go)."""
    return {v: max(1, math.ceil(w * full - 1e-9)) for v, w in weights.items()}


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

    def full_capacity(self, endpoint: str) -> int:
        """The fleet that serves all traffic: the largest initial instance count in the endpoint's config."""
        config = self._sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        variants = self._sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        return max(int(v.get("InitialInstanceCount") or 1) for v in variants)

    def capacity_matches(self, endpoint: str, weights: dict[str, float]) -> bool:
        wanted = capacity_for(normalise(weights), self.full_capacity(endpoint))
        have = {v["VariantName"]: int(v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount") or 0)
                for v in self._variants(endpoint)}  # fmt: skip
        return all(have.get(v) == n for v, n in wanted.items())

    def set_weights(self, endpoint: str, weights: dict[str, float], follow_capacity: bool = False) -> dict[str, float]:
        """Apply the weights (and, with follow_capacity, instance counts in proportion) and confirm them."""
        wanted = normalise(weights)
        counts = {
            v["VariantName"]: int(v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount") or 1)
            for v in self._variants(endpoint, need_in_service=True)
        }
        if follow_capacity:
            counts.update(capacity_for(wanted, self.full_capacity(endpoint)))
        self._sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint, DesiredWeightsAndCapacities=variant_configs(wanted, counts)
        )
        got = self.weights(endpoint)  # describe to confirm, never trust the call alone
        if any(abs(got.get(v, 0.0) - wanted.get(v, 0.0)) > self._tolerance for v in set(got) | set(wanted)):
            raise BackendError(f"{endpoint}: asked for weights {wanted}, endpoint reports {got}")
        if follow_capacity and not self.capacity_matches(endpoint, wanted):
            raise BackendError(f"{endpoint}: instance counts {counts} were not taken")
        return got
