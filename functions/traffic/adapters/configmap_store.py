"""Rollout state in ConfigMaps (the `kubernetes` target): conditional writes on metadata.resourceVersion.

One state ConfigMap per endpoint (naming.rollout_state_config_map) in the serving namespace, labelled with the
store (naming.ROLLOUT_STORE_LABEL = Names.rollout_store) and the endpoint. Its data: "version" (the store's
counter, RolloutState.version), "state" (the rollout as JSON) and "audit" (JSON lines: the decisions of the
current rollout not yet moved to a chunk). A commit reads the object, checks the counter against
previous.version and replaces the object carrying the resourceVersion it read; the API server refuses the
replace with 409 Conflict if anything wrote in between (its optimistic concurrency, as DynamoDB's condition
check), which is ConcurrentUpdate here. The state and its decision's audit record are one object, so one
write: a decision is in the trail if and only if it took effect.

A ConfigMap holds at most 1 MiB and a paused rollout is audited every minute, so once the trail in the state
object passes `spill_bytes` it is first copied to an immutable chunk ConfigMap named by the rollout and its
first and last decision numbers (one name, one set of committed records), and only then dropped from the state
object by the commit's replace. Readers read the state object first, then the chunks, and drop duplicates by
decision number: a record is always in one place they look, whichever of the two writes failed.

The client is kubernetes.client.CoreV1Api (or a fake of it); ConfigMaps come back as its V1ConfigMap models.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

from kubernetes.client.exceptions import ApiException

from functions.traffic.adapters.store import audit_record
from functions.traffic.model import TERMINAL, Decision, RolloutState
from functions.traffic.ports import ConcurrentUpdate, RolloutExists
from schemas.naming import ROLLOUT_STORE_LABEL, rollout_state_config_map

ENDPOINT_LABEL = "tidewater.io/endpoint"
PART_LABEL = "tidewater.io/rollout-part"  # "state" or "audit"
ROLLOUT_LABEL = "tidewater.io/rollout"  # a digest of the rollout id: ids need not be valid label values
VERSION_KEY, STATE_KEY, AUDIT_KEY, ROLLOUT_KEY = "version", "state", "audit", "rollout_id"
SPILL_BYTES = 256 * 1024  # well under the 1 MiB ConfigMap limit, with room for the state itself
CREATE_ATTEMPTS = 3
_ENDPOINT = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class InvalidEndpoint(ValueError):
    """The endpoint cannot name a ConfigMap (it is an InferenceService name: a DNS label)."""


def _digest(rollout_id: str) -> str:
    return hashlib.sha256(rollout_id.encode()).hexdigest()[:12]


def _lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, default=str, sort_keys=True) + "\n" for r in records)


def _parse_lines(text: str | None) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (text or "").splitlines() if line]


class ConfigMapStateStore:
    def __init__(self, core: Any, namespace: str, store: str, spill_bytes: int = SPILL_BYTES) -> None:
        self._core = core
        self._ns = namespace
        self._store = store
        self._spill = spill_bytes

    # ------------------------------------------------------------------------------------------ objects

    def _name(self, endpoint: str) -> str:
        if not _ENDPOINT.match(endpoint):
            raise InvalidEndpoint(f"endpoint {endpoint!r} must be a DNS label (an InferenceService name)")
        return rollout_state_config_map(endpoint)

    def _labels(self, endpoint: str, part: str, rollout_id: str | None = None) -> dict[str, str]:
        labels = {ROLLOUT_STORE_LABEL: self._store, ENDPOINT_LABEL: endpoint, PART_LABEL: part}
        if rollout_id is not None:
            labels[ROLLOUT_LABEL] = _digest(rollout_id)
        return labels

    def _state_body(
        self, state: RolloutState, version: int, trail: list[dict[str, Any]], resource_version: str | None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self._name(state.endpoint), "namespace": self._ns,
            "labels": self._labels(state.endpoint, "state", state.rollout_id),
        }  # fmt: skip
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version  # the precondition of the replace
        data = {
            VERSION_KEY: str(version), ROLLOUT_KEY: state.rollout_id,
            STATE_KEY: state.model_dump_json(exclude={"version"}), AUDIT_KEY: _lines(trail),
        }  # fmt: skip
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}

    def _read(self, endpoint: str) -> tuple[RolloutState, int, list[dict[str, Any]], str] | None:
        """(state, version, the audit records in the object, resourceVersion), or None."""
        try:
            obj = self._core.read_namespaced_config_map(self._name(endpoint), self._ns)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        data = obj.data or {}
        state = RolloutState.model_validate_json(data[STATE_KEY])
        return state, int(data[VERSION_KEY]), _parse_lines(data.get(AUDIT_KEY)), str(obj.metadata.resource_version)

    def _write_chunk(self, state: RolloutState, records: list[dict[str, Any]]) -> None:
        """Copy committed records to their immutable chunk; a chunk that exists holds the same records."""
        first, last = records[0]["decision"], records[-1]["decision"]
        name = f"{self._name(state.endpoint)}-audit-{_digest(state.rollout_id)}-{first:08d}-{last:08d}"
        body = {
            "apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
            "metadata": {"name": name, "namespace": self._ns,
                         "labels": self._labels(state.endpoint, "audit", state.rollout_id)},
            "data": {ROLLOUT_KEY: state.rollout_id, AUDIT_KEY: _lines(records)},
        }  # fmt: skip
        try:
            self._core.create_namespaced_config_map(self._ns, body)
        except ApiException as err:
            if err.status != 409:  # AlreadyExists: an earlier attempt wrote it
                raise

    def _replace(self, endpoint: str, body: dict[str, Any], what: str) -> None:
        try:
            self._core.replace_namespaced_config_map(self._name(endpoint), self._ns, body)
        except ApiException as err:
            if err.status == 409:  # Conflict: the resourceVersion read is no longer current
                raise ConcurrentUpdate(what) from None
            raise

    # ------------------------------------------------------------------------------------------ the port

    def load(self, endpoint: str) -> RolloutState | None:
        found = self._read(endpoint)
        return None if found is None else found[0].model_copy(update={"version": found[1]})

    def create(self, state: RolloutState) -> RolloutState:
        for _ in range(CREATE_ATTEMPTS):
            found = self._read(state.endpoint)
            if found is None:
                new = state.model_copy(update={"version": 1})
                try:
                    self._core.create_namespaced_config_map(self._ns, self._state_body(new, 1, [], None))
                except ApiException as err:
                    if err.status == 409:  # AlreadyExists: another start got there first; look again
                        continue
                    raise
                return new
            current, version, trail, resource_version = found
            if current.status not in TERMINAL:
                raise RolloutExists(f"a rollout is already active on {state.endpoint}")
            if trail:  # the finished rollout's trail moves to its chunk before its object is reused
                self._write_chunk(current, trail)
            new = state.model_copy(update={"version": version + 1})
            try:
                self._replace(state.endpoint, self._state_body(new, new.version, [], resource_version), "")
            except ConcurrentUpdate:
                continue
            return new
        raise RolloutExists(f"another rollout was started on {state.endpoint} at the same time")

    def commit(
        self, previous: RolloutState, new: RolloutState, decision: Decision | None, at: dt.datetime
    ) -> RolloutState:
        lost = f"rollout {new.rollout_id} on {new.endpoint} moved past version {previous.version}"
        found = self._read(new.endpoint)
        if found is None or found[1] != previous.version or found[0].rollout_id != new.rollout_id:
            raise ConcurrentUpdate(lost)
        current, version, trail, resource_version = found
        stored = new.model_copy(update={"version": version + 1})
        # Only committed records are ever spilled: this decision's record goes in with the replace, or nowhere.
        if trail and len(_lines(trail)) > self._spill:
            self._write_chunk(current, trail)
            trail = []
        if decision is not None:
            trail = [*trail, json.loads(json.dumps(audit_record(stored, decision, at), default=str))]
        self._replace(new.endpoint, self._state_body(stored, stored.version, trail, resource_version), lost)
        return stored

    def audit(self, endpoint: str, rollout_id: str) -> list[dict[str, Any]]:
        by_number: dict[int, dict[str, Any]] = {}
        found = self._read(endpoint)  # first the state object, then the chunks (see the module docstring)
        if found is not None and found[0].rollout_id == rollout_id:
            by_number.update((r["decision"], r) for r in found[2])
        selector = f"{ROLLOUT_STORE_LABEL}={self._store},{ENDPOINT_LABEL}={endpoint},{PART_LABEL}=audit,"
        for obj in self._list(selector + f"{ROLLOUT_LABEL}={_digest(rollout_id)}"):
            if (obj.data or {}).get(ROLLOUT_KEY) == rollout_id:
                by_number.update((r["decision"], r) for r in _parse_lines(obj.data.get(AUDIT_KEY)))
        return [by_number[n] for n in sorted(by_number)]

    def active(self) -> list[str]:
        found = []
        for obj in self._list(f"{ROLLOUT_STORE_LABEL}={self._store},{PART_LABEL}=state"):
            state = RolloutState.model_validate_json((obj.data or {})[STATE_KEY])
            if state.live or state.pending:
                found.append(state.endpoint)
        return sorted(found)

    def _list(self, selector: str) -> list[Any]:
        items: list[Any] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": 100}
            if token:
                kwargs["_continue"] = token
            page = self._core.list_namespaced_config_map(self._ns, **kwargs)
            items.extend(page.items or [])
            token = getattr(page.metadata, "_continue", None) if page.metadata is not None else None
            if not token:
                return items
