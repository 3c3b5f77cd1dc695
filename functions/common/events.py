"""Publishing platform events: a port, its EventBridge adapter and an in-memory fake for tests."""

from __future__ import annotations

import json
from typing import Any, Protocol

from schemas.events import Event
from schemas.naming import EVENT_SOURCE


class EventPublisher(Protocol):
    def publish(self, event: Event) -> None: ...


class PublishError(RuntimeError):
    """EventBridge accepted the call but rejected the entry; retrying the message is the right answer."""


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, event: Event) -> None:
        response = self._client.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": json.dumps(event.detail()),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount", 0):
            entry = response["Entries"][0]
            raise PublishError(f"{event.detail_type} rejected: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}")


class RecordingPublisher:
    """Keeps published events in memory (tests, local runs)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)
