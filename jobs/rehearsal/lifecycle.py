"""`tide local`: the platform's lifecycle, in order, on the embedded cloud.

1 provision (names from schemas.naming) -> 2 three days of raw data, one bad file, through S3 -> SQS -> the
ingest handler -> 3 Dask dataset + baseline, torchrun training (2 processes), v1 deployed as champion ->
4 serving over HTTP (a predictor process per variant on loopback; captures and metrics from what they saw) ->
5 days 4-5 drift: the drift check emits DriftDetected, v2 is trained on days 1-5, compared in shadow (the
champion's predictor mirrors to v2's), canaried and promoted by the traffic function -> 6 a faulty v3 (its
predictor fails 10 % of requests) is canaried and rolled back; `tide compress` makes v2's int8 version, which is
compared in shadow and canaried on 5XX, latency and the shadow pairs' score difference -> 7 summary table and
HTML report under the work folder. Any failing stage raises (exit != 0).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.embedded_cloud import EmbeddedCloud, restore_environment
from schemas.naming import ENV_PROJECT, ENV_STACK, Names

Echo = Callable[[str], None]
FIRST_DAY = dt.date(2026, 11, 1)


class RehearsalError(RuntimeError):
    """A stage did not reach the outcome the lifecycle needs."""


@dataclass(frozen=True)
class Settings:
    rows_per_day: int = 20_000
    seed: int = 7
    train_steps: int = 150
    train_procs: int = 2
    dask_workers: int = 2
    rollout_rpm: int = 1000
    max_rollout_minutes: int = 240
    compress_method: str = "distilled"  # the compressed challenger: `tide compress --method` (int8 | distilled)

    @property
    def function_max_object_bytes(self) -> int:
        """The ingest function's hand-off size, scaled with the data (about 25 bytes a row gzipped, 100 plain):
        a day's gzipped CSV fits the function, the same day uncompressed goes to the batch job."""
        return 50 * self.rows_per_day


@dataclass
class Summary:
    workdir: Path
    files: dict[str, int] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    shadow: dict[str, Any] = field(default_factory=dict)
    compression: dict[str, Any] = field(default_factory=dict)  # champion vs its compressed version (savings)
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    serving: list[dict[str, Any]] = field(default_factory=list)  # per variant: requests, 5XX rate, p99 (ms)
    quality: list[dict[str, Any]] = field(default_factory=list)  # per served day, once its labels landed
    events: dict[str, int] = field(default_factory=dict)
    raw_objects: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "workdir"} | {"workdir": str(self.workdir)}


@contextlib.contextmanager
def _function_environment(names: Names, log_path: Path) -> Iterator[None]:
    """What infra sets on the functions, and their EMF/log lines sent to a file instead of the console."""
    values = {
        ENV_PROJECT: names.project, ENV_STACK: names.stack, "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "tidewater-local", "POWERTOOLS_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        with log_path.open("a") as log, contextlib.redirect_stdout(log):
            yield
    finally:
        restore_environment(saved)


def run(workdir: Path, show: Echo, settings: Settings | None = None) -> Summary:
    from jobs.rehearsal import collect, compression, ingestion, rollouts, stages

    settings = settings or Settings()
    # The functions' EMF lines go to functions.log (stdout is redirected around them); progress goes here.
    console = sys.stdout

    def echo(line: str) -> None:
        with contextlib.redirect_stdout(console):
            show(line)

    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    names = Names("tidewater", "local")
    summary = Summary(workdir=workdir)
    with EmbeddedCloud() as cloud:
        echo(f"[1/7] embedded cloud at {cloud.endpoint_url}: provisioning {names.prefix}-*")
        world = stages.World.create(cloud, names, settings, workdir, echo, summary)
        with _function_environment(names, workdir / "functions.log"):
            first_days = [FIRST_DAY + dt.timedelta(days=i) for i in range(3)]
            ingestion.ingest_days(world, first_days, bad_file_day=1, plain_file_day=2)
        v1 = world.build_and_train("v1", through=FIRST_DAY + dt.timedelta(days=2))
        world.deploy(v1)
        with _function_environment(names, workdir / "functions.log"):
            world.serve_day(FIRST_DAY + dt.timedelta(days=2), drifted=False)
            # Days 4 and 5 arrive drifted: DriftDetected needs two drifting windows in a row (the sustained rule).
            drifted_days = [FIRST_DAY + dt.timedelta(days=3), FIRST_DAY + dt.timedelta(days=4)]
            for day in drifted_days:
                ingestion.ingest_days(world, [day], drifted=True)
                world.serve_day(day, drifted=True)
                world.labels_land(today=day)  # day 3's chargebacks settle on day 5: its quality is measured
            if not world.drift_detected:
                raise RehearsalError("the drifted days were not flagged: no DriftDetected event")
        drifted_day = drifted_days[-1]
        v2 = world.build_and_train("v2", through=drifted_day)
        world.deploy(v2)
        with _function_environment(names, workdir / "functions.log"):
            summary.shadow = rollouts.shadow_compare(world, v1, v2, drifted_day)
            if rollouts.rollout(world, champion=v1, challenger=v2) != "promote":
                raise RehearsalError("the healthy challenger v2 was not promoted")
        v3 = world.faulty_copy(v2, "v3")
        world.deploy(v3)
        with _function_environment(names, workdir / "functions.log"):
            if rollouts.rollout(world, champion=v2, challenger=v3) != "rollback":
                raise RehearsalError("the faulty challenger v3 was not rolled back")
            # The champion compressed, shipped as a challenger: promoted only if no worse (the summary says why).
            compression.ship(world, v2, settings.compress_method, drifted_day)
        world.stop_serving()
        with _function_environment(names, workdir / "functions.log"):
            world.labels_land(today=drifted_days[-1] + dt.timedelta(days=2))  # the drifted days' labels, 2 days on
        world.count_events()
        echo("[7/7] summary")
        timeline = collect.snapshot(cloud.client, names, summary, workdir)  # the report's pictures, out of the cloud
    from jobs.rehearsal.report import write_reports

    for line in write_reports(summary, timeline):
        echo(line)
    return summary
