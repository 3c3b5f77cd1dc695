"""Rollout state stores: DynamoDB (conditional writes on a version attribute), a directory and an in-memory fake
(ConfigMaps, for the kubernetes target: configmap_store.py).

Table layout (keys from schemas.naming): pk = endpoint; sk = "STATE" for the current rollout, and
"AUDIT#<rollout_id>#<decision no.>" for each decision. The state and its audit record are written in one
transaction whose condition is the version read, so of two concurrent invocations only one can move the
rollout, and a decision is in the trail if and only if it took effect.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from functions.traffic.model import LIVE, TERMINAL, Decision, RolloutState
from functions.traffic.ports import ConcurrentUpdate, RolloutExists
from schemas.naming import ROLLOUT_AUDIT_PREFIX, ROLLOUT_STATE_SK, ROLLOUT_TABLE_KEYS

PK, SK = ROLLOUT_TABLE_KEYS


def audit_record(state: RolloutState, decision: Decision, at: dt.datetime) -> dict[str, Any]:
    return {
        "rollout_id": state.rollout_id, "decision": state.decisions, "at": at.isoformat(),
        "action": decision.action, "reason": decision.reason, "status": state.status, "step": state.step,
        "weights": decision.weights, "statistics": decision.statistics, "actor": decision.actor,
    }  # fmt: skip


def audit_sk(rollout_id: str, decision_no: int) -> str:
    return f"{ROLLOUT_AUDIT_PREFIX}{rollout_id}#{decision_no:08d}"


class DynamoDBStateStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def load(self, endpoint: str) -> RolloutState | None:
        item = self._db.get_item(
            TableName=self._table, Key={PK: {"S": endpoint}, SK: {"S": ROLLOUT_STATE_SK}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        state = RolloutState.model_validate_json(item["state"]["S"])
        return state.model_copy(update={"version": int(item["version"]["N"])})

    def _state_item(self, state: RolloutState) -> dict[str, Any]:
        return {
            PK: {"S": state.endpoint}, SK: {"S": ROLLOUT_STATE_SK}, "version": {"N": str(state.version)},
            "status": {"S": state.status}, "rollout_id": {"S": state.rollout_id},
            "pending": {"BOOL": state.pending},
            "state": {"S": state.model_dump_json(exclude={"version"})},
        }  # fmt: skip

    def create(self, state: RolloutState) -> RolloutState:
        current = self.load(state.endpoint)
        new = state.model_copy(update={"version": (current.version if current else 0) + 1})
        values: dict[str, Any] = {f":{s}": {"S": s} for s in sorted(TERMINAL)}
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._state_item(new),
                # Replace only a finished rollout, never a running or held one.
                ConditionExpression=f"attribute_not_exists({PK}) OR #st IN ({', '.join(values)})",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=values,
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise RolloutExists(f"a rollout is already active on {state.endpoint}") from None
        return new

    def commit(
        self, previous: RolloutState, new: RolloutState, decision: Decision | None, at: dt.datetime
    ) -> RolloutState:
        stored = new.model_copy(update={"version": previous.version + 1})
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._state_item(stored),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(previous.version)}},
                }
            }
        ]
        if decision is not None:
            record = audit_record(stored, decision, at)
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            PK: {"S": new.endpoint},
                            SK: {"S": audit_sk(new.rollout_id, stored.decisions)},
                            "record": {"S": json.dumps(record, default=str)},
                        },
                        "ConditionExpression": f"attribute_not_exists({PK})",
                    }
                }
            )
        try:
            self._db.transact_write_items(TransactItems=items)
        except self._db.exceptions.TransactionCanceledException as err:
            raise ConcurrentUpdate(
                f"rollout {new.rollout_id} on {new.endpoint} moved past version {previous.version}"
            ) from err
        return stored

    def audit(self, endpoint: str, rollout_id: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"{PK} = :pk AND begins_with({SK}, :p)",
            "ExpressionAttributeValues": {":pk": {"S": endpoint}, ":p": {"S": f"{ROLLOUT_AUDIT_PREFIX}{rollout_id}#"}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            records.extend(json.loads(item["record"]["S"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active(self) -> list[str]:
        found: list[str] = []
        live: dict[str, Any] = {f":{s}": {"S": s} for s in sorted(LIVE)}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": f"{SK} = :s AND (#st IN ({', '.join(live)}) OR pending = :t)",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":s": {"S": ROLLOUT_STATE_SK}, ":t": {"BOOL": True}, **live},
        }
        while True:
            page = self._db.scan(**kwargs)
            found.extend(item[PK]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class MemoryStateStore:
    """The same contract in memory (unit tests, local runs): JSON round trip, version check under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}
        self._versions: dict[str, int] = {}
        self._audit: dict[str, list[dict[str, Any]]] = {}

    def load(self, endpoint: str) -> RolloutState | None:
        with self._lock:
            raw = self._states.get(endpoint)
            if raw is None:
                return None
            return RolloutState.model_validate_json(raw).model_copy(update={"version": self._versions[endpoint]})

    def create(self, state: RolloutState) -> RolloutState:
        with self._lock:
            raw = self._states.get(state.endpoint)
            if raw is not None and RolloutState.model_validate_json(raw).status not in TERMINAL:
                raise RolloutExists(f"a rollout is already active on {state.endpoint}")
            version = self._versions.get(state.endpoint, 0) + 1
            self._states[state.endpoint] = state.model_dump_json(exclude={"version"})
            self._versions[state.endpoint] = version
            return state.model_copy(update={"version": version})

    def commit(
        self, previous: RolloutState, new: RolloutState, decision: Decision | None, at: dt.datetime
    ) -> RolloutState:
        with self._lock:
            if self._versions.get(new.endpoint) != previous.version:
                raise ConcurrentUpdate(f"rollout {new.rollout_id} on {new.endpoint} moved past {previous.version}")
            stored = new.model_copy(update={"version": previous.version + 1})
            self._states[new.endpoint] = stored.model_dump_json(exclude={"version"})
            self._versions[new.endpoint] = stored.version
            if decision is not None:
                record = json.loads(json.dumps(audit_record(stored, decision, at), default=str))
                self._audit.setdefault(f"{new.endpoint}#{new.rollout_id}", []).append(record)
            return stored

    def audit(self, endpoint: str, rollout_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._audit.get(f"{endpoint}#{rollout_id}", []))

    def active(self) -> list[str]:
        with self._lock:
            states = [RolloutState.model_validate_json(raw) for raw in self._states.values()]
            return sorted(st.endpoint for st in states if st.live or st.pending)


class FileStateStore:
    """The same contract on a directory (a local run, or processes sharing one node's volume; the `kubernetes`
    target keeps its state in ConfigMaps, adapters/configmap_store.py). <endpoint>.json holds the state and its
    version, <endpoint>.audit.jsonl the trail; an exclusive flock per endpoint makes check-version-then-write
    atomic across processes."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self, endpoint: str) -> Iterator[None]:
        with open(self._root / f"{endpoint}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, endpoint: str) -> tuple[RolloutState, int] | None:
        path = self._root / f"{endpoint}.json"
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        return RolloutState.model_validate(doc["state"]), int(doc["version"])

    def _write(self, state: RolloutState, version: int) -> None:
        path = self._root / f"{state.endpoint}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": version, "state": state.model_dump(mode="json", exclude={"version"})}))
        os.replace(tmp, path)  # readers see the old or the new state, never half of one

    def load(self, endpoint: str) -> RolloutState | None:
        with self._locked(endpoint):
            found = self._read(endpoint)
        return None if found is None else found[0].model_copy(update={"version": found[1]})

    def create(self, state: RolloutState) -> RolloutState:
        with self._locked(state.endpoint):
            found = self._read(state.endpoint)
            if found is not None and found[0].status not in TERMINAL:
                raise RolloutExists(f"a rollout is already active on {state.endpoint}")
            version = (found[1] if found else 0) + 1
            self._write(state, version)
        return state.model_copy(update={"version": version})

    def commit(
        self, previous: RolloutState, new: RolloutState, decision: Decision | None, at: dt.datetime
    ) -> RolloutState:
        with self._locked(new.endpoint):
            found = self._read(new.endpoint)
            if found is None or found[1] != previous.version:
                raise ConcurrentUpdate(f"rollout {new.rollout_id} on {new.endpoint} moved past {previous.version}")
            stored = new.model_copy(update={"version": previous.version + 1})
            if decision is not None:
                with open(self._root / f"{new.endpoint}.audit.jsonl", "a") as trail:
                    trail.write(json.dumps(audit_record(stored, decision, at), default=str) + "\n")
            self._write(stored, stored.version)
        return stored

    def audit(self, endpoint: str, rollout_id: str) -> list[dict[str, Any]]:
        path = self._root / f"{endpoint}.audit.jsonl"
        if not path.exists():
            return []
        with self._locked(endpoint):
            records = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [r for r in records if r["rollout_id"] == rollout_id]

    def active(self) -> list[str]:
        found = []
        for path in sorted(self._root.glob("*.json")):
            state = self.load(path.stem)
            if state is not None and (state.live or state.pending):
                found.append(state.endpoint)
        return found
