"""Where the retraining runner's asks come from, behind one port: the retraining queue on aws, the run itself on
kubernetes (a firing of the stack's retraining schedule CronJob). The runner's steps (dataset, version hash,
launch, record) are one implementation over any source; a source only says what was asked, and forgets an ask
once the runner has launched or recorded it.

QueueTriggers: EventBridge envelopes from SQS; an ask that cannot start a training is left in the queue (its
redrive moves it to the DLQ). ScheduleFiring: this run is a firing of the schedule, one RetrainingScheduled for
the stack's model and dataset; there is nothing to delete, and an unchanged dataset version launches nothing
(the version hash), so a firing repeated by a retried Job is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.events import RETRAINING_TRIGGERS, DriftDetected, ModelQualityDegraded, RetrainingScheduled, parse_event

Trigger = DriftDetected | ModelQualityDegraded | RetrainingScheduled


class MessageRejected(ValueError):
    """This ask cannot start a training; the source keeps it (the queue: then its DLQ) and the reason is printed."""


@dataclass(frozen=True)
class Ask:
    ref: str  # how the runner's lines name it: the message id, the schedule firing's id
    event_id: str  # recorded on the retraining it starts
    event: Trigger | None
    problem: str = ""  # why it cannot start a training, when event is None
    handle: Any = None  # the source's own (an SQS receipt handle)

    def trigger(self) -> Trigger:
        if self.event is None:
            raise MessageRejected(self.problem)
        return self.event


class TriggerSource(Protocol):
    def asks(self) -> Iterator[Ask]: ...

    def done(self, ask: Ask) -> None: ...

    def left(self, ask: Ask, reason: str) -> str: ...


@dataclass
class QueueTriggers:
    """The retraining queue (SQS, fed by the bus rule of RETRAINING_TRIGGERS); the client is injected."""

    sqs: Any
    queue_url: str
    max_messages: int = 100
    receive_wait_seconds: int = 1  # SQS long polling on each receive (0 in tests)

    def asks(self) -> Iterator[Ask]:
        seen: set[str] = set()
        while len(seen) < self.max_messages:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.max_messages - len(seen)),
                WaitTimeSeconds=self.receive_wait_seconds,
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in seen]
            if not fresh:  # empty, or only messages this run left for the DLQ came back
                return
            for message in fresh:
                seen.add(message["MessageId"])
                yield _ask(message)

    def done(self, ask: Ask) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=ask.handle)

    def left(self, ask: Ask, reason: str) -> str:
        return f"left message {ask.ref} for the DLQ: {reason}"


def _ask(message: dict[str, Any]) -> Ask:
    """The retraining trigger in the EventBridge envelope of an SQS message, or why there is none."""
    ref, handle = str(message["MessageId"]), message["ReceiptHandle"]
    try:
        envelope = json.loads(message["Body"])
        event = parse_event(envelope["detail-type"], envelope["detail"])
    except (json.JSONDecodeError, TypeError, KeyError) as err:
        return Ask(ref, ref, None, f"not an EventBridge envelope ({type(err).__name__}: {err})", handle)
    except (ValueError, ValidationError) as err:
        return Ask(ref, ref, None, f"not a valid platform event: {err}".splitlines()[0], handle)
    if not isinstance(event, DriftDetected | ModelQualityDegraded | RetrainingScheduled):
        problem = f"a {type(event).__name__} event, not one of {', '.join(RETRAINING_TRIGGERS)}"
        return Ask(ref, ref, None, problem, handle)
    return Ask(ref, str(envelope.get("id", "")) or ref, event, "", handle)


@dataclass
class ScheduleFiring:
    """This run is one firing of the stack's retraining schedule (the kubernetes target's CronJob): one ask."""

    model: str
    dataset: str
    firing_id: str  # the Job the CronJob made for this firing (its name), else a time
    schedule: str = ""  # the CronJob's name

    def asks(self) -> Iterator[Ask]:
        # The dataset is checked by the runner like any other ask's (a bad one is left with its reason).
        event = RetrainingScheduled(model=self.model, dataset=self.dataset, schedule=self.schedule)
        yield Ask(self.firing_id, self.firing_id, event)

    def done(self, ask: Ask) -> None:
        """Nothing to delete: the firing is this run."""

    def left(self, ask: Ask, reason: str) -> str:
        return f"scheduled retraining {ask.ref} started nothing (the next firing asks again): {reason}"
