"""Shadow traffic in the serving path: a sampled fraction of requests is sent to the challenger after the
champion has answered, and both answers are logged as a ShadowPair where the traffic function reads them
(`naming.shadow_prefix(endpoint)` in the captures bucket, through functions.traffic.shadow.S3ShadowLog).

The caller only ever sees the champion's answer; a failing or slow challenger is logged as a failure.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from functions.traffic.shadow import Answer, ShadowPair, sampled


class PairLog(Protocol):
    def record(self, pair: ShadowPair) -> None: ...


def answers(body: bytes) -> list[Answer]:
    """Per row answers of a JSON response ({"predictions": [{"score", "label", ...}]})."""
    return [Answer(str(p["label"]), float(p["score"])) for p in json.loads(body)["predictions"]]


class ShadowSender:
    """Mirror to `challenger_url` (its SageMaker-style `/invocations`) from a small thread pool."""

    def __init__(
        self, endpoint: str, challenger_url: str, fraction: float, log: PairLog, timeout_s: float = 2.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC), challenger_variant: str = "",
    ) -> None:  # fmt: skip
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"shadow fraction {fraction} is not within [0, 1]")
        self.endpoint, self.url, self.fraction = endpoint, challenger_url.rstrip("/") + "/invocations", fraction
        self._log, self._timeout, self._clock = log, timeout_s, clock
        self.challenger_variant = challenger_variant  # in each pair: a quality guardrail reads only its own
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="shadow")
        self._pending = 0
        self._idle = threading.Condition()

    def maybe_mirror(self, request_id: str, body: bytes, content_type: str, champion: list[Answer]) -> bool:
        """Queue the mirror call when this request is sampled; returns whether it was. One pair per row."""
        if not sampled(request_id, self.fraction):
            return False
        with self._idle:
            self._pending += 1
        self._pool.submit(self._mirror, request_id, body, content_type, champion)
        return True

    def _mirror(self, request_id: str, body: bytes, content_type: str, champion: list[Answer]) -> None:
        at = self._clock()
        challenger: list[Answer] | list[None]
        try:
            request = urllib.request.Request(
                self.url, data=body, method="POST", headers={"Content-Type": content_type, "Accept": "application/json"}
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                challenger = answers(response.read())
            if len(challenger) != len(champion):
                raise ValueError("the challenger answered a different number of rows")
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError, KeyError, TypeError):
            challenger = [None] * len(champion)  # counted as challenger errors by the judge, never surfaced
        try:
            for i, (mine, theirs) in enumerate(zip(champion, challenger, strict=True)):
                row_id = request_id if len(champion) == 1 else f"{request_id}/{i}"
                self._log.record(ShadowPair(self.endpoint, row_id, at, mine, theirs, self.challenger_variant))
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait for queued mirror calls (shutdown, tests); True when none is left."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)
