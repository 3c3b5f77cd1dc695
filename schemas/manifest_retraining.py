"""The retraining runner of the kubernetes target: its RBAC rules and its objects (a ServiceAccount, Roles in the
training and serving namespaces, two CronJobs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.manifest_cluster import namespaced_role, role_binding, service_account
from schemas.manifest_fields import Manifest
from schemas.manifest_jobs import PYTORCHJOB_API, cron_job
from schemas.manifest_serving import rollout_tick_rules


def retraining_runner_rules(inference_service: str | None) -> dict[str, list[Manifest]]:
    """The RBAC rules of the retraining runner on the kubernetes target, all of them, per namespace. training:
    create (launch) and get (find after a crash, read the state) PyTorchJobs. serving (once the InferenceService
    exists): get and patch that InferenceService only (the canary revision at 0 %, the rollout's first weights) and
    the ConfigMap store's verbs (rollout_tick_rules: get, list, create, update). No delete, watch, Secrets or
    Events (a rollout's start publishes none); nothing cluster-wide."""
    group = PYTORCHJOB_API.split("/")[0]
    rules: dict[str, list[Manifest]] = {
        "training": [{"apiGroups": [group], "resources": ["pytorchjobs"], "verbs": ["create", "get"]}],
    }
    if inference_service is not None:
        rules["serving"] = [r for r in rollout_tick_rules([inference_service]) if r["resources"] != ["events"]]
    return rules


def k8s_retraining_runner(
    name: str, *, namespace: str, serving_namespace: str, image: str, command: Sequence[str], schedule: str,
    firing_name: str, firing_schedule: str, dataset: str, config_map: tuple[str, str], env: Mapping[str, str],
    inference_service: str | None, storage_secret: str | None = None, priority_class: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Manifest]:  # fmt: skip
    """The retraining runner of the kubernetes target, one account for its two CronJobs: `name` runs `command`
    on `schedule` (moves earlier retrainings on: deploy, rollout), `firing_name` runs it on `firing_schedule` with
    `--scheduled-dataset dataset` (each run is a firing of the schedule). Its Roles are retraining_runner_rules,
    the serving one bound across namespaces to the account in the training namespace. storage_secret: the object
    store's keys (env), the only Secret it reads, and only through its pod spec, never the API."""
    rules = retraining_runner_rules(inference_service)
    common: dict[str, Any] = dict(
        namespace=namespace, image=image, service_account=name, priority_class=priority_class, env=env,
        cpu="500m", memory="1Gi", backoff_limit=0, labels=labels, config_map=config_map,
        env_from_secret=storage_secret,
    )  # fmt: skip
    found = {
        "service_account": service_account(name, namespace=namespace),
        "role": namespaced_role(name, namespace=namespace, rules=rules["training"]),
        "role_binding": role_binding(name, namespace=namespace, role=name, service_account=name),
        "cron_job": cron_job(name, schedule=schedule, command=command, **common),
        "firing_cron_job": cron_job(
            firing_name, schedule=firing_schedule, command=[*command, "--scheduled-dataset", dataset], **common
        ),
    }
    if "serving" in rules:
        found["serving_role"] = namespaced_role(name, namespace=serving_namespace, rules=rules["serving"])
        found["serving_role_binding"] = role_binding(
            name, namespace=serving_namespace, role=name, service_account=name, account_namespace=namespace
        )
    return found
