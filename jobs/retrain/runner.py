"""One pass of the retraining runner: carry on with earlier retrainings, then take the new asks.

The asks come from a trigger source (jobs.retrain.triggers): the retraining queue on aws, the run's own schedule
firing on kubernetes; every step after that is this one implementation.
Three events ask for a retraining (schemas.events.RETRAINING_TRIGGERS, routed to the queue by one bus rule):
DriftDetected names its dataset; RetrainingScheduled (the stack's schedule) names the model and dataset;
ModelQualityDegraded names the degraded model version, whose dataset is read from that version's metadata.json
(what training writes) unless the event carries it. Each trains the model on the newest version of that dataset.
The model version is a hash of the manifest and the hyper-parameters (jobs.train.config), so the same request
seen twice, or a schedule firing on an unchanged dataset version, asks for the same version and launches once;
a version already written by `tide train` (often the degraded one itself, when no new data came) is not trained
again either.
The message is deleted only after the launch is accepted and recorded; a message that cannot be used (not one
of those events, another model, no dataset version, a degraded version whose dataset cannot be told) stays in
the queue and reaches its DLQ after the queue's maxReceiveCount, with the reason printed here.

For each unfinished record: once the model is written (its metadata.json is the training's completion marker)
it joins the endpoint as a challenger at weight 0; then policy `auto` starts the rollout with the stack's
rollout config and `manual` stops there, saying so. Every step is idempotent, so a run that crashed between
two steps is resumed by the next one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from functions.traffic.config import ConfigError, load_config
from functions.traffic.ports import BackendError as TrafficBackendError
from functions.traffic.ports import RolloutExists
from jobs.deploy.guards import GuardError
from jobs.deploy.sagemaker import DeployError
from jobs.retrain.records import Record, RecordStore
from jobs.retrain.serving import ChallengerDeploy, RolloutStart
from jobs.retrain.training import TrainingBackend
from jobs.retrain.triggers import MessageRejected, Trigger, TriggerSource
from jobs.train.config import TrainConfig
from schemas.events import ModelQualityDegraded, RetrainingScheduled
from schemas.naming import check_dataset, check_model_version, model_prefix, retraining_job_name

Policy = Literal["auto", "manual"]
MANIFEST = "manifest.json"
_MISSING = ("404", "NoSuchKey", "NotFound")
try:  # the kubernetes target's API errors (the client comes with the jobs extra)
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    _KUBE_ERRORS: tuple[type[Exception], ...] = (ApiException, HTTPError)
except ImportError:  # pragma: no cover - without the client there is no kubernetes backend to fail
    _KUBE_ERRORS = ()
# A cloud or API error on one retraining: it stays at its step and the next run tries again.
_RETRIED: tuple[type[Exception], ...] = (ClientError, BotoCoreError, RolloutExists, TrafficBackendError, *_KUBE_ERRORS)


class RetrainError(RuntimeError):
    """The runner cannot work as configured (the message says what to fix)."""


@dataclass
class Summary:
    launched: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    training: list[str] = field(default_factory=list)
    deployed: list[str] = field(default_factory=list)
    rollouts: list[str] = field(default_factory=list)
    awaiting_approval: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)  # "<version>: <error>" a later run tries again

    def to_dict(self) -> dict[str, list[str]]:
        return dict(self.__dict__)


@dataclass
class Retrainer:
    triggers: Sequence[TriggerSource]  # the retraining queue (aws); this run's schedule firing (kubernetes)
    s3: Any  # boto3 S3 client: datasets (read) and artifacts (records)
    datasets_bucket: str
    artifacts_bucket: str
    records: RecordStore
    training: TrainingBackend
    deploy: ChallengerDeploy | None  # None: the stack has no endpoint yet (stage platform)
    rollouts: RolloutStart | None
    policy: Policy
    rollout_template: dict[str, Any]  # a rollout config without endpoint/champion/challenger
    model_name: str
    train_options: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (steps, batch_size...)
    echo: Callable[[str], None] = print

    def __post_init__(self) -> None:
        if self.policy == "auto":
            self._rollout_config("check-endpoint", "check-champion", "check-challenger")

    def run(self) -> Summary:
        summary = Summary()
        for record in self.records.unfinished():
            # One retraining that cannot move on must not hold up the others, nor the queue.
            try:
                self._advance(record, summary)
            except (DeployError, GuardError) as err:  # the model or the endpoint's guards cannot take it
                self.records.put(record.moved(state="failed", reason=str(err)))
                summary.failed.append(record.version)
                self.echo(f"{record.model_url} cannot join the endpoint: {err}")
            except _RETRIED as err:
                summary.retry.append(f"{record.version}: {err}")
                self.echo(f"{record.model_url}: {err} (the next run tries again)")
        self._drain(summary)
        return summary

    # -- the asks ---------------------------------------------------------------------------------------------
    def _drain(self, summary: Summary) -> None:
        for source in self.triggers:
            for ask in source.asks():
                try:
                    event = ask.trigger()
                    config = self._train_config(self._dataset(event))
                except MessageRejected as err:
                    summary.rejected.append(f"{ask.ref}: {err}")
                    self.echo(source.left(ask, str(err)))
                    continue
                record = self.records.get(config.version)
                asked = f"{event.detail_type} {ask.event_id}"
                if record is None:
                    record = self._launch(config, ask.event_id, event.detail_type)
                    if record is None:
                        summary.duplicates.append(config.version)
                        self.echo(
                            f"{asked}: nothing new launched: dataset version {config.manifest_url} and the "
                            f"hyper-parameters give {config.model_url}, which exists already; a new dataset "
                            "version (`tide ingest`) retrains"
                        )
                    else:
                        summary.launched.append(record.version)
                        self.echo(f"{asked}: launched {record.job_id} ({record.backend}) for {record.model_url}")
                else:
                    summary.duplicates.append(record.version)
                    self.echo(
                        f"{asked}: nothing new launched: dataset version {config.manifest_url} and the "
                        f"hyper-parameters are unchanged since {record.model_url} ({record.state}, {record.job_id})"
                    )
                source.done(ask)

    def _dataset(self, event: Trigger) -> str:
        """The dataset whose newest version the retraining trains on."""
        if isinstance(event, RetrainingScheduled) and event.model != self.model_name:
            raise MessageRejected(f"scheduled for model {event.model!r}; this runner retrains {self.model_name!r}")
        if isinstance(event, ModelQualityDegraded):
            return event.dataset or self._dataset_of_version(event.model_version)
        return event.dataset

    def _dataset_of_version(self, version: str) -> str:
        """The dataset a model version was trained on, from its metadata.json (dataset.name, written by training)."""
        try:
            key = f"{model_prefix(self.model_name, check_model_version(version))}metadata.json"
        except ValueError as err:
            raise MessageRejected(str(err)) from None
        where = f"s3://{self.artifacts_bucket}/{key}"
        try:
            body = self.s3.get_object(Bucket=self.artifacts_bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _MISSING:
                raise MessageRejected(f"model version {version!r} has no {where}: its dataset is unknown") from None
            raise
        try:
            dataset = json.loads(body)["dataset"]["name"]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError) as err:
            raise MessageRejected(f"{where} names no dataset ({type(err).__name__}: {err})") from None
        if not isinstance(dataset, str):
            raise MessageRejected(f"{where} names no dataset (dataset.name is {dataset!r})")
        return dataset

    def _train_config(self, dataset: str) -> TrainConfig:
        try:
            dataset = check_dataset(dataset)
        except ValueError as err:
            raise MessageRejected(str(err)) from None
        manifests: list[dict[str, Any]] = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.datasets_bucket, Prefix=f"{dataset}/")
        for page in pages:
            manifests.extend(o for o in page.get("Contents", []) if o["Key"].endswith(f"/{MANIFEST}"))
        if not manifests:
            where = f"s3://{self.datasets_bucket}/{dataset}/"
            raise MessageRejected(f"no version of dataset {dataset!r} under {where} (build one with `tide ingest`)")
        newest = max(manifests, key=lambda o: (o["LastModified"], o["Key"]))
        try:
            return TrainConfig(manifest_url=f"s3://{self.datasets_bucket}/{newest['Key']}",
                               output_url=f"s3://{self.artifacts_bucket}", model_name=self.model_name,
                               **self.train_options)  # fmt: skip
        except ValidationError as err:
            raise RetrainError(f"training options: {err}".splitlines()[0]) from None

    def _launch(self, config: TrainConfig, event_id: str, trigger: str) -> Record | None:
        """Launch (or find, after a crash) the training and record it; None when the version exists already,
        trained outside this runner (`tide train`): often the very version whose quality degraded, and training it
        again would write over the model it serves."""
        name = retraining_job_name(config.version)
        job_id = self.training.find(name)
        if job_id is None:
            if self._model_at(config.model_url):
                return None
            job_id = self.training.launch(config, name)
        record = Record(model=config.model_name, version=config.version, model_url=config.model_url,
                        manifest_url=config.manifest_url, backend=self.training.name, job_name=name, job_id=job_id,
                        state="launched", events=[event_id], trigger=trigger)  # fmt: skip
        self.records.put(record)
        return record

    # -- records ---------------------------------------------------------------------------------------------
    def _advance(self, record: Record, summary: Summary) -> None:
        if record.state == "launched":
            if not self._model_written(record):
                state, reason = self.training.state(record.job_id)
                if state == "failed":
                    self.records.put(record.moved(state="failed", reason=reason))
                    summary.failed.append(record.version)
                    self.echo(reason)
                else:  # succeeded but not written yet counts as running: the model is the completion marker
                    summary.training.append(record.version)
                    self.echo(f"{record.job_id} still training ({reason or state})")
                return
            if self.deploy is None:
                summary.training.append(record.version)
                self.echo(f"{record.model_url} is trained; the stack has no endpoint yet (stage serving deploys it)")
                return
            deployed = self.deploy.deploy(record.model_url)
            record = record.moved(state="deployed", endpoint=deployed.endpoint, champion=deployed.champion,
                                  challenger=deployed.challenger)  # fmt: skip
            self.records.put(record)
            summary.deployed.append(record.version)
            self.echo(f"{deployed.challenger} joined {deployed.endpoint} at weight 0 (champion {deployed.champion})")
        if record.state == "deployed":
            self._roll_out(record, summary)

    def _roll_out(self, record: Record, summary: Summary) -> None:
        assert record.endpoint and record.champion and record.challenger  # set with state deployed
        if self.policy == "manual":
            self.records.put(record.moved(state="awaiting_approval"))
            summary.awaiting_approval.append(record.version)
            self.echo(
                f"policy manual: {record.challenger} waits at weight 0 on {record.endpoint}; start its rollout with "
                f"`tide rollout start` (champion {record.champion}, challenger {record.challenger})"
            )
            return
        if self.rollouts is None:
            raise RetrainError("policy auto needs the rollout service")
        config = self._rollout_config(record.endpoint, record.champion, record.challenger)
        reason = f"retrained after {record.trigger}"
        rollout_id = self.rollouts.start(config, retraining_job_name(record.version), reason)
        self.records.put(record.moved(state="rollout_started", rollout_id=rollout_id))
        summary.rollouts.append(rollout_id)
        self.echo(f"rollout {rollout_id} started on {record.endpoint}: {record.champion} -> {record.challenger}")

    def _rollout_config(self, endpoint: str, champion: str, challenger: str) -> Any:
        fixed = {"endpoint": endpoint, "champion": champion, "challenger": challenger}
        if clash := sorted(set(fixed) & set(self.rollout_template)):
            raise RetrainError(f"the rollout config must not set {', '.join(clash)} (the runner fills them in)")
        try:
            return load_config({**self.rollout_template, **fixed})
        except ConfigError as err:
            raise RetrainError(str(err)) from None

    def _model_written(self, record: Record) -> bool:
        return self._model_at(record.model_url)

    def _model_at(self, model_url: str) -> bool:
        """Whether a model is written at this URL (its metadata.json, the training's completion marker)."""
        bucket, _, prefix = model_url.removeprefix("s3://").partition("/")
        try:
            self.s3.head_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/metadata.json")
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise
        return True
