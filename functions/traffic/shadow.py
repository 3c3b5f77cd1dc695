"""Shadow comparison: mirror a fraction of requests to the challenger, keep both answers, return only the
champion's, and report agreement (classifiers: label agreement and mean absolute score difference)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from functions.traffic.model import ShadowReport


@dataclass(frozen=True)
class Answer:
    label: str
    score: float


@dataclass(frozen=True)
class ShadowPair:
    endpoint: str
    request_id: str
    at: dt.datetime
    champion: Answer
    challenger: Answer | None  # None: the challenger failed (counted, never surfaced to the caller)
    challenger_variant: str = ""  # who answered in shadow ("" in pairs logged before it was recorded)


def sampled(request_id: str, fraction: float) -> bool:
    """Deterministic sampling by request id: a retried request is mirrored (or not) the same way."""
    digest = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big")
    return digest / 2**64 < fraction


def compare(pairs: Iterable[ShadowPair]) -> ShadowReport:
    n = agree = errors = 0
    diff = 0.0
    for p in pairs:
        if p.challenger is None:
            errors += 1
            continue
        n += 1
        agree += p.challenger.label == p.champion.label
        diff += abs(p.challenger.score - p.champion.score)
    return ShadowReport(
        pairs=n, label_agreement=agree / n if n else 0.0, mean_score_difference=diff / n if n else 0.0,
        challenger_errors=errors,
    )  # fmt: skip


class ShadowMirror:
    """Wraps the serving call. `invoke(variant, body)` calls one variant; `parse(body)` reads an Answer;
    `failures` are the exception types of a failed challenger call (kept narrow on purpose)."""

    def __init__(
        self,
        endpoint: str,
        champion: str,
        challenger: str,
        fraction: float,
        invoke: Callable[[str, bytes], bytes],
        parse: Callable[[bytes], Answer],
        record: Callable[[ShadowPair], None],
        failures: tuple[type[BaseException], ...] = (),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._endpoint, self._champion, self._challenger = endpoint, champion, challenger
        self._fraction = fraction
        self._invoke, self._parse, self._record = invoke, parse, record
        self._failures = failures
        self._clock = clock

    def __call__(self, request_id: str, body: bytes) -> bytes:
        answer = self._invoke(self._champion, body)
        if not sampled(request_id, self._fraction):
            return answer
        challenger: Answer | None
        try:
            challenger = self._parse(self._invoke(self._challenger, body))
        except self._failures:
            challenger = None  # the caller must never see the shadow's failure
        self._record(ShadowPair(self._endpoint, request_id, self._clock(), self._parse(answer), challenger,
                                self._challenger))  # fmt: skip
        return answer


def _of(pair: ShadowPair, challenger: str | None) -> bool:
    return challenger is None or pair.challenger_variant == challenger


def pair_to_json(p: ShadowPair) -> str:
    d: dict[str, Any] = asdict(p)
    d["at"] = p.at.isoformat()
    return json.dumps(d)


def pair_from_json(line: str) -> ShadowPair:
    d = json.loads(line)
    ch = d["challenger"]
    return ShadowPair(
        endpoint=d["endpoint"], request_id=d["request_id"], at=dt.datetime.fromisoformat(d["at"]),
        champion=Answer(**d["champion"]), challenger=None if ch is None else Answer(**ch),
        challenger_variant=d.get("challenger_variant", ""),
    )  # fmt: skip


class MemoryShadowLog:
    """Records pairs in memory and reports on them (tests, local runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pairs: list[ShadowPair] = []

    def record(self, pair: ShadowPair) -> None:
        with self._lock:
            self.pairs.append(pair)

    def report(self, endpoint: str, since: dt.datetime, challenger: str | None = None) -> ShadowReport | None:
        with self._lock:
            chosen = [p for p in self.pairs if p.endpoint == endpoint and p.at >= since and _of(p, challenger)]
        return compare(chosen) if chosen else None


class S3ShadowLog:
    """Pairs as JSON lines under <prefix><endpoint>/; `flush` writes a batch as one object."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._s3, self._bucket, self._prefix = client, bucket, prefix
        self._lock = threading.Lock()
        self._pending: list[ShadowPair] = []

    def record(self, pair: ShadowPair) -> None:
        with self._lock:
            self._pending.append(pair)

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        by_endpoint: dict[str, list[ShadowPair]] = {}
        for p in batch:
            by_endpoint.setdefault(p.endpoint, []).append(p)
        for endpoint, pairs in by_endpoint.items():
            first = min(p.at for p in pairs)
            key = f"{self._prefix}{endpoint}/{first:%Y/%m/%d/%H}/{uuid.uuid4().hex}.jsonl"
            body = "\n".join(pair_to_json(p) for p in pairs).encode()
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        return len(batch)

    def report(self, endpoint: str, since: dt.datetime, challenger: str | None = None) -> ShadowReport | None:
        pairs: list[ShadowPair] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=f"{self._prefix}{endpoint}/"):
            for obj in page.get("Contents", []):
                body = self._s3.get_object(Bucket=self._bucket, Key=obj["Key"])["Body"].read().decode()
                pairs.extend(p for p in map(pair_from_json, body.splitlines()) if p.at >= since and _of(p, challenger))
        return compare(pairs) if pairs else None
