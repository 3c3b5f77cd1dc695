"""The rehearsal's stages over one embedded cloud: each method is one step of the lifecycle, printed as it runs.

Production code does the work (the ingest handler, the Dask build, torchrun training, the deployer, the
predictors serving over HTTP, the drift check, the traffic service); this module only feeds them events and
traffic and records outcomes. `World` holds the rehearsal's state with training, deployment and serving; beside
it, ingestion (raw files through the ingest function), checks (the drift and quality functions as scheduled) and
rollouts (shadow comparison, canaries).
"""

from __future__ import annotations

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
from schemas.naming import Names, raw_key
from serving.process import Counts

if TYPE_CHECKING:
    from jobs.embedded_cloud import EmbeddedCloud
    from jobs.rehearsal.lifecycle import Echo, Settings, Summary
    from jobs.rehearsal.rollouts import RolloutClock

SERVING_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tidewater-serving:local"
# Fault drill: every predictor fails this share of requests (a flaky dependency: the judge needs errors in
# both arms to prove non-inferiority, and every request here goes over HTTP, so the evidence it needs costs
# time: at 1 % a promotion takes ~45k requests, at 2 % about half), the faulty v3 five times as many.
BACKGROUND_ERROR_RATE, FAULTY_ERROR_RATE = 0.02, 0.10
ROWS_PER_REQUEST = 20  # a day's traffic: requests of 20 transactions
LABEL_DELAY = dt.timedelta(days=2)  # chargebacks settle two days after the payment
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
    clock: RolloutClock | None = None  # the rollouts' simulated minutes
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

    def serve_live_variants(self, shadow: tuple[Model, Model, float] | None = None) -> None:
        """One predictor per variant of the endpoint (weight 0 included, as SageMaker runs them), each from the
        model.tar.gz training wrote; with `shadow` (champion, challenger, fraction) the champion mirrors."""
        from jobs.rehearsal.serving import Fleet, Launch, Router

        if self._fleet is None:
            self._fleet = Fleet(self.cloud.client("s3"), self.workdir / "serving", self.endpoint, "fraud",
                                self.bucket("captures"))  # fmt: skip
            self._fleet.workdir.mkdir(parents=True, exist_ok=True)
            self._router = Router(self._fleet, np.random.default_rng(self.settings.seed))
        live = self.backend().weights(self.endpoint)
        launches = []
        for variant in live:
            model = self._models[variant]
            mirror = shadow is not None and variant == shadow[0].variant
            launches.append(Launch(variant, model.url, model.error_rate,
                                   shadow_to=shadow[1].variant if mirror and shadow else None,
                                   shadow_fraction=shadow[2] if mirror and shadow else 0.0))  # fmt: skip
        self._fleet.run(launches)

    def backend(self) -> Any:
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
        self.serve_live_variants()
        role = "champion" if result.created_endpoint else "challenger at weight 0"
        self.echo(f"      deployed {model.label} to {self.endpoint} as {role} (data capture on); "
                  f"{len(self._models)} predictor(s) serving on loopback")  # fmt: skip

    # --- 4/5: serving, captures, drift ----------------------------------------------------------------------

    def serve_day(self, day: dt.date, drifted: bool) -> None:
        from functions.drift.check import Window
        from jobs.rehearsal import checks

        assert self.champion is not None
        contract = load_contract("transactions")
        table = datagen.generate(self.settings.rows_per_day, day, self.settings.seed + 1000 + day.toordinal(),
                                 DRIFT if drifted else None)  # fmt: skip
        features = [f.name for f in contract.features]
        records = table.select(features).to_pylist()
        times = table.column(contract.timestamp_column.name).to_pylist()  # type: ignore[union-attr]
        sent = self.router.serve(records, times, self.backend().weights(self.endpoint), ROWS_PER_REQUEST)
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
        checks.drift_check(self, Window(self.endpoint, start, start + dt.timedelta(days=1)))

    def labels_land(self, today: dt.date) -> None:
        """The labels of every served day whose delay has passed land in the raw zone and go through the ingest
        gate (labels/v1 contract); then the quality check judges that day's predictions as its schedule does."""
        from jobs.rehearsal import checks, ingestion

        due = sorted(day for day in self._labels_due if day + LABEL_DELAY <= today)
        if not due:
            return
        s3 = self.cloud.client("s3")
        for day in due:
            name = f"labels-{day:%Y%m%d}.csv"
            s3.put_object(Bucket=self.bucket("raw"), Key=raw_key("labels", day + LABEL_DELAY, name),
                          Body=datagen.to_bytes(self._labels_due[day], "csv"))  # fmt: skip
        ingestion.drain_ingest_queue(self)
        # A day's labels can exceed the function's hand-off size, as a day's export does.
        ingestion.curate_handoffs(self)
        for day in due:
            checks.quality_check(self, day, as_of=dt.datetime.combine(day + LABEL_DELAY, dt.time(12), dt.UTC))
            del self._labels_due[day]

    def label_of(self, version: str) -> str:
        """The rehearsal's label (v1, v2, ...) of the model version deployed here; else the version itself."""
        return next((m.label for m in self._models.values() if m.metadata["version"] == version), version)

    def fleet_counts(self, variant: str) -> Counts:
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
