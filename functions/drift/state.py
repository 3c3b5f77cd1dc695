"""Sustained-breach state: consecutive drifting windows per endpoint, behind a small store port.

Adapters: DynamoDB (table Names.drift_state_table, partition key naming.DRIFT_STATE_TABLE_KEYS, client
injected; writes are conditional on the version read, so two overlapping runs cannot both count a window)
and an in-memory / JSON-file fake for tests and `tide drift`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from functions.drift.decision import Verdict
from schemas.naming import DRIFT_STATE_TABLE_KEYS

(_KEY,) = DRIFT_STATE_TABLE_KEYS  # the table's partition key, declared once for infra and this store


@dataclass(frozen=True)
class BreachState:
    consecutive: int = 0  # drifting windows in a row, up to and including the last one seen
    last_window_end: str = ""  # ISO timestamp; a window seen twice is not counted twice
    version: int = 0


class StateConflict(RuntimeError):
    """Another run updated the state in between; re-run the window."""


class BreachStore(Protocol):
    def get(self, endpoint: str) -> BreachState: ...

    def put(self, endpoint: str, state: BreachState, expected_version: int) -> None: ...


def advance(state: BreachState, verdict: Verdict, window_end: str) -> BreachState:
    """Count a window: drift extends the run, no drift resets it, insufficient data leaves it as it is."""
    if window_end and window_end <= state.last_window_end:
        return state  # replay of a window already counted (or an older one)
    if verdict == "drift":
        consecutive = state.consecutive + 1
    elif verdict == "no_drift":
        consecutive = 0
    else:
        consecutive = state.consecutive
    return BreachState(consecutive, window_end, state.version + 1)


def record(
    store: BreachStore, endpoint: str, verdict: Verdict, window_end: str, sustained: int
) -> tuple[BreachState, bool]:
    """Update the store; returns the new state and whether the alarm fires (exactly at the N-th window and
    again for every further drifting window, so a missed event is re-sent)."""
    before = store.get(endpoint)
    after = advance(before, verdict, window_end)
    if after is not before:
        store.put(endpoint, after, before.version)
    return after, after is not before and verdict == "drift" and after.consecutive >= sustained


class MemoryBreachStore:
    def __init__(self) -> None:
        self.states: dict[str, BreachState] = {}

    def get(self, endpoint: str) -> BreachState:
        return self.states.get(endpoint, BreachState())

    def put(self, endpoint: str, state: BreachState, expected_version: int) -> None:
        if self.get(endpoint).version != expected_version:
            raise StateConflict(f"drift state of {endpoint} changed concurrently")
        self.states[endpoint] = state


class FileBreachStore(MemoryBreachStore):
    """The in-memory store persisted as one JSON file (local runs)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists():
            self.states = {k: BreachState(**v) for k, v in json.loads(path.read_text()).items()}

    def put(self, endpoint: str, state: BreachState, expected_version: int) -> None:
        super().put(endpoint, state, expected_version)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({k: asdict(v) for k, v in self.states.items()}, indent=1))


class DynamoBreachStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, endpoint: str) -> BreachState:
        item = self._client.get_item(TableName=self._table, Key={_KEY: {"S": endpoint}}, ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return BreachState()
        return BreachState(int(item["consecutive"]["N"]), item["last_window_end"]["S"], int(item["version"]["N"]))

    def put(self, endpoint: str, state: BreachState, expected_version: int) -> None:
        condition = f"attribute_not_exists({_KEY})" if expected_version == 0 else "version = :expected"
        extra = (
            {} if expected_version == 0 else {"ExpressionAttributeValues": {":expected": {"N": str(expected_version)}}}
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    _KEY: {"S": endpoint},
                    "consecutive": {"N": str(state.consecutive)},
                    "last_window_end": {"S": state.last_window_end},
                    "version": {"N": str(state.version)},
                },
                ConditionExpression=condition,
                **extra,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise StateConflict(f"drift state of {endpoint} changed concurrently") from None
