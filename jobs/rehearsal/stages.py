"""The rehearsal's stages over one embedded cloud: each method is one step of the lifecycle, printed as it runs.

Production code does the work (the ingest handler, the Dask build, torchrun training, the deployer, the
predictors serving over HTTP, the drift check, the traffic service); this module only feeds them events and
traffic and records outcomes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from jobs import datagen
from jobs.batch.storage import filesystem, join, read_json
from jobs.rehearsal.provision import LOCAL_ROLE_ARN, LocalPlatform, provision_platform
from jobs.rehearsal.serving import Fleet, Router
from schemas.contract import load_contract
from schemas.naming import SHADOW_ROOT, Names, raw_key
from serving.process import Counts

if TYPE_CHECKING:
    from jobs.embedded_cloud import EmbeddedCloud
    from jobs.rehearsal.lifecycle import Echo, Settings, Summary

SERVING_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tidewater-serving:local"
# Fault drill: every predictor fails this share of requests (a flaky dependency: the judge needs errors in
# both arms to prove non-inferiority, and every request here goes over HTTP, so the evidence it needs costs
# time: at 1 % a promotion takes ~45k requests, at 2 % about half), the faulty v3 five times as many.
BACKGROUND_ERROR_RATE, FAULTY_ERROR_RATE = 0.02, 0.10
ROWS_PER_REQUEST = 20  # a day's traffic: requests of 20 transactions
LABEL_DELAY = dt.timedelta(days=2)  # chargebacks settle two days after the payment
FIRST_TRAFFIC_DAY = dt.date(2026, 11, 6)  # the rollouts' traffic: the day after the drifted days
# The retraining rollouts judge 5XX only: the fault drill is what they show, and a challenger at 5 % of the
# traffic measures two to three times the champion's latency on two shared cores, warmed or not (bench_serving:
# canary split). The compressed challenger's canary, at equal shares, adds latency (jobs/rehearsal/compression.py).
FIVE_XX_ONLY = [{"name": "error_rate", "kind": "rate", "metric": "errors", "margin": 1.0}]
DRIFT = datagen.Shift(
    covariate={"amount": 0.3, "distance_from_home_km": 0.3}, categories={"channel": {"online": 5.0}}
)  # fmt: skip


@dataclass(frozen=True)
class Model:
    label: str  # v1, v2, ...
    url: str  # the model folder written by training
    metadata: dict[str, Any]
    variant: str  # the endpoint variant serving it
    error_rate: float = BACKGROUND_ERROR_RATE  # the predictor's injected fault rate (TIDE_INJECT_ERROR_RATE)


@dataclass
class World:
    cloud: EmbeddedCloud
    names: Names
    settings: Settings
    workdir: Path
    echo: Echo
    summary: Summary
    platform: LocalPlatform
    champion: Model | None = None
    drift_detected: bool = False
    _models: dict[str, Model] = field(default_factory=dict)  # by variant
    _fleet: Fleet | None = None
    _router: Router | None = None
    _clock: _Clock | None = None  # the rollouts' simulated minutes
    _labels_due: dict[dt.date, pa.Table] = field(default_factory=dict)  # served day -> its delayed labels
    rollout_counts: dict[str, dict[str, Counts]] = field(default_factory=dict)  # challenger -> variant -> counters

    @classmethod
    def create(
        cls, cloud: EmbeddedCloud, names: Names, settings: Settings, workdir: Path, echo: Echo, summary: Summary
    ) -> World:
        platform = provision_platform(names, cloud.client)
        echo(f"      {len(platform.lake.buckets)} buckets (SSE-KMS, versioned, private), ingest queue + DLQ, "
             "3 tables, event bus")  # fmt: skip
        return cls(cloud, names, settings, workdir, echo, summary, platform)

    @property
    def endpoint(self) -> str:
        return self.names.endpoint("fraud")

    def bucket(self, zone: Any) -> str:
        return self.platform.lake.buckets[zone]

    # --- 2: raw files through the ingest function ---------------------------------------------------------

    def ingest_days(
        self, days: list[dt.date], bad_file_day: int | None = None, plain_file_day: int | None = None,
        drifted: bool = False,
    ) -> None:  # fmt: skip
        """Upload each day's export (gzipped CSV; uncompressed on `plain_file_day`, too large for the function,
        so it is handed off to the batch job) and run the ingest function on the notifications."""
        s3 = self.cloud.client("s3")
        for i, day in enumerate(days):
            seed = self.settings.seed + day.toordinal()
            table = datagen.generate(self.settings.rows_per_day, day, seed, DRIFT if drifted else None)
            gzipped = i != plain_file_day
            key = raw_key("transactions", day, f"transactions-{day:%Y%m%d}.csv" + (".gz" if gzipped else ""))
            s3.put_object(Bucket=self.bucket("raw"), Key=key, Body=datagen.to_bytes(table, "csv", compress=gzipped))
            if i == bad_file_day:
                suffix, data = datagen.bad_file("missing_column", day, seed)
                s3.put_object(Bucket=self.bucket("raw"), Key=raw_key("transactions", day, f"late-export{suffix}"),
                              Body=data)  # fmt: skip
        self._drain_ingest_queue()
        self._curate_handoffs()
        counts = self._zone_counts()
        stage = "[5/7]" if drifted else "[2/7]"
        self.echo(f"{stage} ingested {len(days)} day(s) from {days[0]}; lake now holds: "
                  + ", ".join(f"{n} {k}" for k, n in counts.items()))  # fmt: skip
        if counts["curated files"] + counts["quarantined files"] < counts["raw files"]:
            raise RuntimeError(f"raw files unaccounted for: {counts}")
        self.summary.files = counts

    def _curate_handoffs(self) -> None:
        """`tide curate-handoffs`: the batch job curates what the function handed off as too large for it."""
        from jobs.batch.handoff import drain, handoff_service

        service = handoff_service(self.names, self.cloud.client)
        report = drain(self.cloud.client("sqs"), self.platform.handoff_queue_url, service.ingest, wait_seconds=0)
        if report.failed:
            raise RuntimeError(f"hand-offs left for a retry: {report.failed}")
        for outcome in report.outcomes:
            self.echo(f"      handed off to the batch job (too large for the function): {outcome.source.split('/')[-1]}"
                      f" -> {outcome.status}, {outcome.rows_curated} rows")  # fmt: skip

    def _drain_ingest_queue(self) -> None:
        from functions.ingest import handler

        # What a deployed function gets from INGEST_MAX_OBJECT_BYTES, set here because the handler reads its
        # environment once, at import (its cold start), which may precede this run in the same process.
        handler.service.limits = dataclasses.replace(
            handler.service.limits, max_object_bytes=self.settings.function_max_object_bytes
        )
        sqs = self.cloud.client("sqs")
        for _ in range(100):
            messages = sqs.receive_message(QueueUrl=self.platform.ingest_queue_url, MaxNumberOfMessages=10,
                                           AttributeNames=["All"]).get("Messages", [])  # fmt: skip
            if not messages:
                return
            event = {"Records": [_lambda_record(m, self.platform.ingest_queue_arn) for m in messages]}
            response = handler.lambda_handler(event, _Context(self.names.function("ingest")))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            if failed:
                raise RuntimeError(f"ingest reported failed records {sorted(failed)}: see functions.log")
            for m in messages:
                sqs.delete_message(QueueUrl=self.platform.ingest_queue_url, ReceiptHandle=m["ReceiptHandle"])
        raise RuntimeError("the ingest queue did not drain in 100 polls")

    def _zone_counts(self) -> dict[str, int]:
        """Files as the zones hold them: raw objects, validation summaries (curated), reason.json (quarantined)."""
        s3 = self.cloud.client("s3")

        def keys(zone: Any, prefix: str) -> list[str]:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket(zone), Prefix=prefix)
            return [o["Key"] for page in pages for o in page.get("Contents", [])]

        return {
            "raw files": len(keys("raw", "raw/")),
            "curated files": len(keys("curated", "transactions/_validation/")),
            "quarantined files": sum(k.endswith("/reason.json") for k in keys("quarantine", "")),
            "curated partitions": sum(k.endswith(".parquet") for k in keys("curated", "transactions/event_date=")),
        }

    # --- 3: dataset version, baseline and training ----------------------------------------------------------

    def build_and_train(self, label: str, through: dt.date) -> Model:
        from jobs.batch.build import build_dataset
        from jobs.batch.cluster import ClusterSpec, dask_client
        from jobs.batch.inputs import BuildParams
        from jobs.launch.base import JobSpec
        from jobs.launch.local import LocalTorchrun
        from jobs.train.config import TrainConfig

        stage = "[3/7]" if label == "v1" else "[5/7]"
        spec = ClusterSpec(n_workers=self.settings.dask_workers, memory_limit="1GiB")
        with dask_client(spec) as client:
            built = build_dataset(f"s3://{self.bucket('curated')}", f"s3://{self.bucket('datasets')}",
                                  BuildParams(rows_per_shard=20_000), client)  # fmt: skip
        counts = built.manifest["rows"]
        rows = f"{counts['train']} train + {counts['validation']} validation rows"
        self.echo(f"{stage} dataset version {built.version} through {through}: {rows}"
                  + (" (memoized: reused)" if built.reused else ""))  # fmt: skip
        self.summary.datasets.append({"model": label, "version": built.version, "rows": rows, "reused": built.reused})
        config = TrainConfig(
            manifest_url=built.url, output_url=f"s3://{self.bucket('artifacts')}", steps=self.settings.train_steps,
            checkpoint_every=50, seed=self.settings.seed, cache_dir=str(self.workdir / "cache"),
        )  # fmt: skip
        job = JobSpec(name=f"train-{label}", procs_per_node=self.settings.train_procs, max_restarts=1)
        LocalTorchrun(workdir=self.workdir).launch(config, job)
        fs, path = filesystem(join(config.model_url, "metadata.json"))
        metadata = read_json(fs, path)
        scores = metadata["metrics"]
        self.echo(f"      trained {label} with torchrun x{metadata['world_size']} ({metadata['backend']}): "
                  f"AUC {scores['auc']:.3f}, log-loss {scores['log_loss']:.4f}")  # fmt: skip
        self.summary.models.append({"model": label, "version": metadata["version"], "auc": scores["auc"],
                                    "log_loss": scores["log_loss"], "dataset": built.version})  # fmt: skip
        return Model(label, config.model_url, metadata, f"{metadata['model']}-{metadata['version']}"[:63])

    def faulty_copy(self, model: Model, label: str) -> Model:
        """The same artifact behind a variant whose predictor fails 5 % of requests (a real 500 from the server)."""
        return Model(label, model.url, model.metadata, f"{model.variant[:50]}-{label}-faulty", FAULTY_ERROR_RATE)

    # --- the predictors ------------------------------------------------------------------------------------

    @property
    def router(self) -> Router:
        if self._router is None:
            raise RuntimeError("nothing is deployed yet")
        return self._router

    def _serve_live_variants(self, shadow: tuple[Model, Model, float] | None = None) -> None:
        """One predictor per variant of the endpoint (weight 0 included, as SageMaker runs them), each from the
        model.tar.gz training wrote; with `shadow` (champion, challenger, fraction) the champion mirrors."""
        from jobs.rehearsal.serving import Fleet, Launch, Router

        if self._fleet is None:
            self._fleet = Fleet(self.cloud.client("s3"), self.workdir / "serving", self.endpoint, "fraud",
                                self.bucket("captures"))  # fmt: skip
            self._fleet.workdir.mkdir(parents=True, exist_ok=True)
            self._router = Router(self._fleet, np.random.default_rng(self.settings.seed))
        live = self._backend().weights(self.endpoint)
        launches = []
        for variant in live:
            model = self._models[variant]
            mirror = shadow is not None and variant == shadow[0].variant
            launches.append(Launch(variant, model.url, model.error_rate,
                                   shadow_to=shadow[1].variant if mirror and shadow else None,
                                   shadow_fraction=shadow[2] if mirror and shadow else 0.0))  # fmt: skip
        self._fleet.run(launches)

    def _backend(self) -> Any:
        from functions.traffic.adapters.sagemaker import SageMakerBackend

        return SageMakerBackend(self.cloud.client("sagemaker"))

    def stop_serving(self) -> None:
        """Stop the predictors and record what each variant's predictors measured."""
        if self._fleet is None:
            return
        self._fleet.close()
        self.router.close()
        for variant, counts in self._fleet.totals.items():
            label = self._models[variant].label
            p99_ms = 1000 * counts.latency_quantile(0.99)
            rate = counts.errors_5xx / counts.requests if counts.requests else 0.0
            self.summary.serving.append({"variant": variant, "model": label, "requests": int(counts.requests),
                                         "error_rate": rate, "p99_ms": p99_ms})  # fmt: skip
            self.echo(f"      served by {label}: {int(counts.requests)} requests over HTTP, "
                      f"5XX {rate:.2%}, p99 {p99_ms:.1f} ms (the predictor's own /metrics)")  # fmt: skip

    # --- deploy -------------------------------------------------------------------------------------------

    def deploy(self, model: Model) -> None:
        from jobs.deploy.sagemaker import DeployRequest, SageMakerDeployer, request_for_model

        request = request_for_model(
            model.url, model.metadata, endpoint=self.endpoint, image=SERVING_IMAGE, role_arn=LOCAL_ROLE_ARN,
            capture_destination=f"s3://{self.bucket('captures')}/datacapture",
        )  # fmt: skip
        if request.model_name != model.variant:
            request = DeployRequest(**{**request.__dict__, "model_name": model.variant})
        result = SageMakerDeployer(_MotoSageMaker(self.cloud.client("sagemaker"))).deploy(request)
        if self.champion is None:
            self.champion = model
        self._models[model.variant] = model
        self._serve_live_variants()
        role = "champion" if result.created_endpoint else "challenger at weight 0"
        self.echo(f"      deployed {model.label} to {self.endpoint} as {role} (data capture on); "
                  f"{len(self._models)} predictor(s) serving on loopback")  # fmt: skip

    # --- 4/5: serving, captures, drift ----------------------------------------------------------------------

    def serve_day(self, day: dt.date, drifted: bool) -> None:
        from functions.drift.check import Window

        assert self.champion is not None
        contract = load_contract("transactions")
        table = datagen.generate(self.settings.rows_per_day, day, self.settings.seed + 1000 + day.toordinal(),
                                 DRIFT if drifted else None)  # fmt: skip
        features = [f.name for f in contract.features]
        records = table.select(features).to_pylist()
        times = table.column(contract.timestamp_column.name).to_pylist()  # type: ignore[union-attr]
        sent = self.router.serve(records, times, self._backend().weights(self.endpoint), ROWS_PER_REQUEST)
        # The truth arrives later (chargebacks): keep each served row's label for the day it lands.
        self._labels_due[day] = pa.table({
            "inference_id": self.router.served_ids,
            "label_time": pa.array([dt.datetime.combine(day + LABEL_DELAY, dt.time(), dt.UTC)] * table.num_rows,
                                   pa.timestamp("us", tz="UTC")),
            "source": ["chargeback" if y else "no_dispute" for y in table.column("is_fraud").to_pylist()],
            "label": table.column("is_fraud"),
        })  # fmt: skip
        stage = "[5/7]" if drifted else "[4/7]"
        self.echo(f"{stage} served {table.num_rows} transactions on {day} over HTTP in {sum(sent.values())} "
                  f"requests to {self.champion.label}'s predictor; captured as SageMaker data capture")  # fmt: skip
        # Daily windows: `hour` is a feature, so a shorter window would differ from the baseline by construction.
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        self._drift_check(Window(self.endpoint, start, start + dt.timedelta(days=1)))

    def _drift_check(self, window: Any) -> None:
        """The drift function as its schedule runs it: no baseline named, so it finds the endpoint's champion and
        the baseline that model's metadata names (through SageMaker's describe calls and S3)."""
        from functions.common.events import EventBridgePublisher
        from functions.drift import handler
        from functions.drift.decision import DriftConfig
        from functions.drift.state import DynamoBreachStore
        from functions.drift.storage import S3ObjectStore

        deps = handler.Deps(
            names=self.names, store=S3ObjectStore(self.cloud.client("s3")),
            breach_store=DynamoBreachStore(self.cloud.client("dynamodb"), self.names.drift_state_table),
            publisher=EventBridgePublisher(self.cloud.client("events"), self.names.event_bus),
            config=DriftConfig(), sagemaker=self.cloud.client("sagemaker"), default_endpoint=window.endpoint,
        )  # fmt: skip
        hours = int((window.end - window.start).total_seconds() // 3600)
        outcome = handler.handle({"hours": hours, "window_end": window.end.isoformat()}, deps)
        verdict = outcome.result.verdict
        drifted = outcome.result.drifted
        self.echo(f"      drift check of {window.start:%Y-%m-%d}: {verdict}"
                  + (f" ({', '.join(drifted)})" if drifted else "")
                  + (" -> DriftDetected" if outcome.event else ""))  # fmt: skip
        self.summary.drift.append(
            {
                "window": f"{window.start:%Y-%m-%d}",
                "verdict": verdict,
                "drifted": drifted,
                "alarm": outcome.alarm,
                "report": outcome.report_html,
            }
        )
        self.drift_detected = self.drift_detected or outcome.event is not None

    def labels_land(self, today: dt.date) -> None:
        """The labels of every served day whose delay has passed land in the raw zone and go through the ingest
        gate (labels/v1 contract); then the quality check judges that day's predictions as its schedule does."""
        due = sorted(day for day in self._labels_due if day + LABEL_DELAY <= today)
        if not due:
            return
        s3 = self.cloud.client("s3")
        for day in due:
            name = f"labels-{day:%Y%m%d}.csv"
            s3.put_object(Bucket=self.bucket("raw"), Key=raw_key("labels", day + LABEL_DELAY, name),
                          Body=datagen.to_bytes(self._labels_due[day], "csv"))  # fmt: skip
        self._drain_ingest_queue()
        self._curate_handoffs()  # a day's labels can exceed the function's hand-off size, as a day's export does
        for day in due:
            self._quality_check(day, as_of=dt.datetime.combine(day + LABEL_DELAY, dt.time(12), dt.UTC))
            del self._labels_due[day]

    def _quality_check(self, day: dt.date, as_of: dt.datetime) -> None:
        from functions.common.events import EventBridgePublisher
        from functions.drift.state import DynamoBreachStore
        from functions.drift.storage import S3ObjectStore
        from functions.quality import handler
        from functions.quality.decision import QualityConfig

        deps = handler.Deps(
            names=self.names, store=S3ObjectStore(self.cloud.client("s3")),
            breach_store=DynamoBreachStore(self.cloud.client("dynamodb"), self.names.drift_state_table),
            publisher=EventBridgePublisher(self.cloud.client("events"), self.names.event_bus),
            config=QualityConfig(), default_endpoint=self.endpoint, default_model="fraud",
        )  # fmt: skip
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        outcome = handler.handle({"hours": 24, "window_end": end.isoformat(), "as_of": as_of.isoformat()}, deps)
        for result in outcome.results:
            label = next((m.label for m in self._models.values() if m.metadata["version"] == result.version),
                         result.version)  # fmt: skip
            auc = result.window.estimates["auc"].value if result.window is not None else float("nan")
            base = result.baseline.estimates["auc"].value if result.baseline is not None else float("nan")
            self.echo(f"      quality of {day} ({label}), labels landed {as_of:%Y-%m-%d}: {result.verdict}, "
                      f"{result.labelled}/{result.predictions} labelled, AUC {auc:.3f} (validation {base:.3f})"
                      + (" -> ModelQualityDegraded" if outcome.events else ""))  # fmt: skip
            self.summary.quality.append({"window": f"{day}", "model": label, "verdict": result.verdict,
                                         "labelled": result.labelled, "predictions": result.predictions,
                                         "auc": auc, "validation_auc": base, "degraded": result.degraded})  # fmt: skip

    # --- 5/6: shadow comparison and rollouts -----------------------------------------------------------------

    def shadow_compare(self, champion: Model, challenger: Model, day: dt.date) -> dict[str, Any]:
        """The champion's predictor mirrors a quarter of its requests to the challenger's and logs the pairs where
        the traffic function reads them (shadow/<endpoint>/ in the captures bucket); callers get only the
        champion's answers. The report is the traffic function's own reading of the challenger's pairs."""
        from functions.traffic.shadow import S3ShadowLog

        contract = load_contract("transactions")
        table = datagen.generate(2_000, day, self.settings.seed + 2000, DRIFT)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        self._serve_live_variants(shadow=(champion, challenger, 0.25))
        records = table.select([f.name for f in contract.features]).to_pylist()
        now = dt.datetime.now(dt.UTC)
        self.router.serve(records, [now] * len(records), {champion.variant: 1.0}, rows_per_request=1, capture=False)
        self._serve_live_variants()  # the champion without the mirror: its graceful stop flushes the pairs
        log = S3ShadowLog(self.cloud.client("s3"), self.bucket("captures"), SHADOW_ROOT)
        report = log.report(self.endpoint, since, challenger=challenger.variant)
        if report is None:
            raise RuntimeError("the champion's predictor logged no shadow pairs")
        self.echo(
            f"      shadow: {champion.label}'s predictor mirrored {report.pairs + report.challenger_errors} of "
            f"{len(records)} requests to {challenger.label}'s; label agreement {report.label_agreement:.1%}, "
            f"mean score difference {report.mean_score_difference:.4f}, {report.challenger_errors} challenger errors"
        )
        return {"challenger": challenger.label, "pairs": report.pairs, "label_agreement": report.label_agreement,
                "mean_score_difference": report.mean_score_difference,
                "challenger_errors": report.challenger_errors}  # fmt: skip

    def rollout(
        self, champion: Model, challenger: Model, guardrails: list[dict[str, Any]] | None = None, warm_up: int = 0,
        steps: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0), stage: str | None = None,
    ) -> str:  # fmt: skip
        """Canary `challenger` against `champion` with the traffic service, one simulated minute per tick, judged
        on `guardrails` (default: 5XX only, see FIVE_XX_ONLY). With `warm_up`, each predictor first answers that
        many single-row requests (not counted in the rollout's minutes), as a readiness warm-up would, so the
        latency guardrail compares two warm processes. The per-variant counters over the rollout are kept in
        `rollout_counts[challenger.label]`."""
        from functions.common.events import EventBridgePublisher
        from functions.traffic.adapters.cloudwatch import CloudWatchMetrics
        from functions.traffic.adapters.store import DynamoDBStateStore
        from functions.traffic.config import load_config
        from functions.traffic.service import Rollouts
        from functions.traffic.shadow import S3ShadowLog

        # Each rollout's minutes follow the previous one's, so no minute's CloudWatch datapoints are read twice.
        if self._clock is None:
            self._clock = _Clock(dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=5))
        clock = self._clock
        backend = self._backend()
        rollouts = Rollouts(
            store=DynamoDBStateStore(self.cloud.client("dynamodb"), self.names.rollout_table), backend=backend,
            metrics=CloudWatchMetrics(self.cloud.client("cloudwatch")),
            publisher=EventBridgePublisher(self.cloud.client("events"), self.names.event_bus), clock=clock,
            shadow=S3ShadowLog(self.cloud.client("s3"), self.bucket("captures"), SHADOW_ROOT),
        )  # fmt: skip
        config = load_config({
            "endpoint": self.endpoint, "champion": champion.variant, "challenger": challenger.variant,
            "strategy": {"kind": "canary", "steps": list(steps), "bake_minutes": 5, "min_requests": 200},
            "max_duration_minutes": self.settings.max_rollout_minutes,
            "judge": {"guardrails": guardrails or FIVE_XX_ONLY},
        })  # fmt: skip
        contract = load_contract("transactions")
        traffic = datagen.generate(5_000, FIRST_TRAFFIC_DAY, self.settings.seed + 3000)
        records = traffic.select([f.name for f in contract.features]).to_pylist()
        if warm_up:
            self.router.warm_up([champion.variant, challenger.variant], records[:warm_up])
        rollouts.start(config, rollout_id=f"{challenger.label}-canary")
        stage = stage or ("[5/7]" if challenger.error_rate <= champion.error_rate else "[6/7]")
        self.echo(f"{stage} canary {challenger.label} vs {champion.label}: {self.settings.rollout_rpm} req/min over "
                  f"HTTP, fault drill 5XX {champion.error_rate:.0%} / {challenger.error_rate:.0%}; CloudWatch "
                  "metrics from the predictors' /metrics")  # fmt: skip
        self.router.reset_minutes()
        before = {v: self._fleet_counts(v) for v in (champion.variant, challenger.variant)}
        cloudwatch = self.cloud.client("cloudwatch")
        decision = "running"
        labels = {champion.variant: champion.label, challenger.variant: challenger.label}  # printed, reported
        for minute in range(self.settings.max_rollout_minutes + 10):
            start = (minute * self.settings.rollout_rpm) % len(records)
            batch = (records * 2)[start : start + self.settings.rollout_rpm]
            self.router.minute(cloudwatch, clock.now, batch, backend.weights(self.endpoint))
            clock.now += dt.timedelta(minutes=1)
            result = rollouts.tick(self.endpoint)
            if result is not None and result.action != "wait":
                self.echo(
                    f"      minute {minute + 1:3d}: {result.action} -> weights "
                    f"{ {labels.get(k, k): round(v, 2) for k, v in result.weights.items()} } ({result.reason})"
                )
            if result is not None and result.action in ("promote", "rollback"):
                decision = result.action
                self.rollout_counts[challenger.label] = {v: self._fleet_counts(v) - c for v, c in before.items()}
                self.summary.rollouts.append({"challenger": challenger.label, "decision": decision,
                                              "minutes": minute + 1, "reason": result.reason,
                                              "statistics": result.statistics, "variants": labels,
                                              "rollout_id": f"{challenger.label}-canary",
                                              "endpoint": self.endpoint})  # fmt: skip
                if decision == "promote":
                    self.champion = challenger
                return decision
        return decision

    def _fleet_counts(self, variant: str) -> Counts:
        if self._fleet is None:
            raise RuntimeError("nothing is deployed yet")
        return self._fleet.counts(variant)

    def count_events(self) -> None:
        sqs = self.cloud.client("sqs")
        for _ in range(50):
            messages = sqs.receive_message(QueueUrl=self.platform.events_tap_url, MaxNumberOfMessages=10)
            if not messages.get("Messages"):
                break
            for m in messages["Messages"]:
                kind = json.loads(m["Body"])["detail-type"]
                self.summary.events[kind] = self.summary.events.get(kind, 0) + 1
                sqs.delete_message(QueueUrl=self.platform.events_tap_url, ReceiptHandle=m["ReceiptHandle"])


class _MotoSageMaker:
    """The SageMaker client, with UpdateEndpoint (absent from moto 5.2: it answers 500) rehearsed as delete +
    create of the endpoint on the new config, which ends in the same described state."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint(self, EndpointName: str, EndpointConfigName: str) -> dict[str, Any]:
        self._client.delete_endpoint(EndpointName=EndpointName)
        return dict(self._client.create_endpoint(EndpointName=EndpointName, EndpointConfigName=EndpointConfigName))


@dataclass
class _Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class _Context:
    """The fields of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received SQS message in the shape the event source mapping hands the function."""
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": message.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    }  # fmt: skip
