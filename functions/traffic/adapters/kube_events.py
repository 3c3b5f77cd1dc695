"""Rollout events on the `kubernetes` target: core/v1 Events on the InferenceService.

There is no event bus on that target. A KServe user looks at a rollout with `kubectl describe inferenceservice`
or `kubectl get events`, the way Flagger and Argo Rollouts report their canaries (Events on the Canary or
Rollout object), so each RolloutStepAdvanced / RolloutPromoted / RolloutRolledBack becomes an Event whose reason
is the event's name (a rollback is a Warning), whose message is the decision's reason, and whose annotation
tidewater.io/event-detail carries the whole detail as JSON for a watcher. The service publishes at least once;
the Event's name is a digest of (rollout, name, step, reason), so a second publication of the same event is the
API server's 409 AlreadyExists and is taken as done: one Event per decision. Events expire with the API server's
--event-ttl (1 h by default): the audit trail in the state store is the durable record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from schemas.events import Event
from schemas.manifests import KSERVE_GROUP, KSERVE_PLURAL, KSERVE_VERSION, inference_service_event

COMPONENT = "tidewater-rollouts"
DETAIL_ANNOTATION = "tidewater.io/event-detail"


class KubernetesEventPublisher:
    def __init__(
        self, core: Any, custom_objects: Any, namespace: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:  # fmt: skip
        self._core = core
        self._custom = custom_objects
        self._ns = namespace
        self._clock = clock

    def publish(self, event: Event) -> None:
        detail = event.detail()
        endpoint = str(detail["endpoint"])
        key = json.dumps([detail.get("rollout_id"), event.detail_type, detail.get("step"), detail.get("reason")])
        isvc = self._custom.get_namespaced_custom_object(
            KSERVE_GROUP, KSERVE_VERSION, self._ns, KSERVE_PLURAL, endpoint
        )
        weights = ", ".join(f"{v}={w:.0%}" for v, w in sorted((detail.get("weights") or {}).items()))
        body = inference_service_event(
            f"{endpoint}.{hashlib.sha256(key.encode()).hexdigest()[:16]}", namespace=self._ns,
            inference_service=endpoint, uid=(isvc.get("metadata") or {}).get("uid"), reason=event.detail_type,
            message=f"rollout {detail.get('rollout_id')}: {detail.get('reason')} (weights {weights})",
            warning=event.detail_type == "RolloutRolledBack", component=COMPONENT,
            at=self._clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            annotations={DETAIL_ANNOTATION: json.dumps({"detail-type": event.detail_type, "detail": detail},
                                                       default=str)},
        )  # fmt: skip
        try:
            self._core.create_namespaced_event(self._ns, body)
        except ApiException as err:
            if err.status != 409:  # AlreadyExists: published before (at least once -> once)
                raise
