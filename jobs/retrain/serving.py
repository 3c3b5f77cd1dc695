"""The challenger's arrival on the endpoint and the rollout's start, for the retraining runner (clients injected).

Deploy is `tide deploy`'s path for the target. SageMaker: SageMakerDeployer adds the model as a variant at weight
0 (a no-op when it already serves, which makes a repeated run safe) and VariantGuards gives it the champion's
alarms and autoscaling. KServe (`tide deploy --target kserve`): KServeDeployer makes the model the
InferenceService's canary revision at canaryTrafficPercent 0 (a no-op when it is the latest revision already);
champion and challenger are KServe's revision tags, "prev" and "latest". The rollout goes through
functions.traffic's Rollouts.start under a rollout id fixed per model version, so starting it twice is refused by
the service and read here as already started.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from functions.traffic.config import RolloutConfig
from functions.traffic.ports import BackendError, RolloutIdTaken
from functions.traffic.service import Rollouts
from jobs.deploy.guards import VariantGuards
from jobs.deploy.kserve import KServeDeployer
from jobs.deploy.sagemaker import DeployError, SageMakerDeployer, request_for_model

KSERVE_CHAMPION, KSERVE_CHALLENGER = "prev", "latest"  # functions.traffic.adapters.kserve's revision roles


@dataclass(frozen=True)
class Deployed:
    endpoint: str
    champion: str  # the live variant with the most traffic besides the new one
    challenger: str


class ChallengerDeploy(Protocol):
    def deploy(self, model_url: str) -> Deployed: ...


class RolloutStart(Protocol):
    def start(self, config: RolloutConfig, rollout_id: str, reason: str) -> str: ...


def split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise DeployError(f"the retraining runner deploys from S3; got {url!r}")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key.rstrip("/")


class SageMakerChallenger:
    def __init__(self, s3: Any, sagemaker: Any, guards: VariantGuards, settings: dict[str, str]) -> None:
        self.s3, self.sm, self.guards, self.settings = s3, sagemaker, guards, settings

    def deploy(self, model_url: str) -> Deployed:
        bucket, prefix = split_s3(model_url)
        metadata = json.loads(self.s3.get_object(Bucket=bucket, Key=f"{prefix}/metadata.json")["Body"].read())
        request = request_for_model(model_url, metadata, **self.settings)
        deployer = SageMakerDeployer(self.sm)
        result = deployer.deploy(request)
        # Read the champion from the live endpoint, not from this deploy's result: a repeated deploy (after a
        # crash) changes nothing and returns no source variant.
        live = deployer.live_variants(result.endpoint) or []
        others = [v for v in live if v["VariantName"] != request.model_name]
        if not others:
            raise DeployError(f"{result.endpoint} has no variant but {request.model_name}: nothing to roll out from")
        champion = max(others, key=lambda v: v["InitialVariantWeight"])["VariantName"]
        # Autoscaling registers a variant that is in service: wait for the update to finish first.
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName=result.endpoint)
        self.guards.copy(result.endpoint, champion, request.model_name)
        return Deployed(result.endpoint, champion, request.model_name)


class KServeChallenger:
    """The stack's InferenceService only: it exists from stage serving, and the runner may not create one."""

    def __init__(self, custom_objects: Any, namespace: str, inference_service: str, image: str, account: str) -> None:
        self.deployer = KServeDeployer(custom_objects, namespace)
        self.name, self.image, self.account = inference_service, image, account

    def deploy(self, model_url: str) -> Deployed:
        if self.deployer.get(self.name) is None:  # left at its step: the next run tries again
            raise BackendError(f"InferenceService {self.name} does not exist (stage serving creates it)")
        self.deployer.deploy(self.name, model_url.rstrip("/"), image=self.image, service_account=self.account)
        return Deployed(self.name, KSERVE_CHAMPION, KSERVE_CHALLENGER)


class TrafficRollouts:
    def __init__(self, rollouts: Rollouts) -> None:
        self.rollouts = rollouts

    def start(self, config: RolloutConfig, rollout_id: str, reason: str) -> str:
        try:
            self.rollouts.start(config, rollout_id, reason=reason)
        except RolloutIdTaken:
            pass  # started by an earlier run that stopped before recording it
        except BackendError:
            pass  # created; the endpoint takes the first weights at the traffic function's next tick
        return rollout_id
