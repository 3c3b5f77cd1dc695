"""The rollout tick on the kubernetes target under Pulumi mocks: its RBAC exactly (any widening fails), and its
CronJob's command and environment run through the real CLI against the fake API server, landing on the store and
namespace an operator's `tide rollout --target kubernetes` uses by default; every call it makes is one the Role
allows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pulumi
from click.testing import CliRunner

from functions.traffic import controls, machine
from functions.traffic.adapters.configmap_store import ConfigMapStateStore
from functions.traffic.config import load_config
from infra.k8s import build_kubernetes_stack
from jobs import rollout_target
from jobs.cli import main
from jobs.rollout_cli import rollout
from schemas.naming import ENV_PROMETHEUS_URL, ROLLOUT_STORE_LABEL, Names, platform_image
from tests.infra import k8s_harness as h
from tests.kube_fake import FakeKubeApi

NAMES = Names("tidewater", "onprem")
NS = "tidewater-onprem-serving"
ISVC = "tidewater-onprem-fraud"
VERSION = "3f9c2a71b04d8e65"
# The whole grant, spelt out here rather than derived from the builder: a widened Role fails this test.
EXPECTED_RULES = [
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "resourceNames": [ISVC],
     "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]  # fmt: skip
# What each call of the fake API server is, in RBAC terms.
CALLS = {
    "read": ("", "configmaps", "get"), "list": ("", "configmaps", "list"), "create": ("", "configmaps", "create"),
    "replace": ("", "configmaps", "update"), "create-event": ("", "events", "create"),
    "get-isvc": ("serving.kserve.io", "inferenceservices", "get"),
    "patch-isvc": ("serving.kserve.io", "inferenceservices", "patch"),
}  # fmt: skip
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def _deploy(check: Any, **overrides: Any) -> pulumi.Output[None]:
    mocks = h.start("onprem", h.stack_config("onprem", overrides))
    served = ("fraud", VERSION) if overrides.get("stage", "serving") == "serving" else None
    component = build_kubernetes_stack(NAMES, served_model=served)
    return h.after_all(component, lambda: check(mocks, component))


def _allowed(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def _run_cron_job(container: dict[str, Any], api: FakeKubeApi) -> Any:
    """The CronJob's command and env through the real CLI, the kubernetes clients being the fake's."""
    command, env = container["command"], {e["name"]: e["value"] for e in container["env"]}
    assert command[:3] == ["tide", "rollout", "tick"]
    original = rollout_target.kube_clients
    rollout_target.kube_clients = lambda kubeconfig, context: (api, api)  # in a pod: its service account
    try:
        return CliRunner().invoke(main, command[1:], env=env)
    finally:
        rollout_target.kube_clients = original


@pulumi.runtime.test
def test_the_rollout_tick_is_a_minutely_cronjob_with_exactly_its_rbac() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, component: Any) -> None:
        roles = [r.inputs for r in mocks.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
                 if r.inputs["metadata"]["namespace"] == NS]  # fmt: skip
        assert [r["metadata"]["name"] for r in roles] == [NAMES.rollout_ticker]
        assert roles[0]["rules"] == EXPECTED_RULES
        assert not [r for r in mocks.resources if "ClusterRole" in r.typ]  # nothing cluster-wide
        (binding,) = [b.inputs for b in mocks.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
                      if b.inputs["metadata"]["namespace"] == NS]  # fmt: skip
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": NAMES.rollout_ticker}  # fmt: skip
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAMES.rollout_ticker, "namespace": NS}]
        accounts = {a.inputs["metadata"]["name"] for a in mocks.of_type("kubernetes:core/v1:ServiceAccount")
                    if a.inputs["metadata"]["namespace"] == NS}  # fmt: skip
        assert NAMES.rollout_ticker in accounts and NAMES.rollout_ticker != NAMES.k8s_service_account("serving")

        (job,) = mocks.of_type("kubernetes:batch/v1:CronJob")
        meta, spec = job.inputs["metadata"], job.inputs["spec"]
        assert meta["name"] == NAMES.rollout_ticker and meta["namespace"] == NS
        assert spec["schedule"] == "* * * * *" and spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == NAMES.rollout_ticker and pod["priorityClassName"] == NS
        (container,) = pod["containers"]
        assert container["image"] == platform_image("train")  # k8s_dask_image's default: the CLI's image
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {"TIDE_PROJECT": "tidewater", "TIDE_STACK": "onprem",
                       ENV_PROMETHEUS_URL: "http://prometheus-operated.monitoring.svc:9090"}  # fmt: skip
        command = container["command"]
        cli_default = rollout_target.Deployment("tidewater", "onprem", target="kubernetes")
        assert command[command.index("--namespace") + 1] == cli_default.serving_namespace == NS
        assert cli_default.names.rollout_store == NAMES.rollout_store  # the store an operator's CLI reads
        tick = rollout.commands["tick"]
        (url_option,) = [p for p in tick.params if p.name == "prometheus_url"]
        assert url_option.envvar == ENV_PROMETHEUS_URL  # what the CronJob sets is what the CLI reads
        assert component.outputs["rollouts"] == {"cron_job": NAMES.rollout_ticker, "namespace": NS,
                                                  "store": NAMES.rollout_store,
                                                  "prometheus_url": env[ENV_PROMETHEUS_URL]}  # fmt: skip

        # An operator starts and aborts a rollout with the CLI's defaults; the abort did not reach the endpoint.
        api = FakeKubeApi((NS,))
        api.add_inference_service(NS, ISVC, percent=10)
        config = load_config({"endpoint": ISVC, "champion": "prev", "challenger": "latest",
                              "strategy": {"kind": "canary", "steps": [0.1, 1.0]}})  # fmt: skip
        store = ConfigMapStateStore(api, NAMES.k8s_namespace("serving"), NAMES.rollout_store)
        state = store.create(machine.start(config, "r1", T0).model_copy(update={"applied_at": T0}))
        aborted, decision = controls.abort(state, "pager", T0, "bo")
        store.commit(state, aborted, decision, T0)
        api.calls.clear()
        out = _run_cron_job(container, api)
        assert out.exit_code == 0, out.output
        assert out.output.strip() == f'{{"endpoint": "{ISVC}", "action": "no running rollout"}}'
        assert api.percent(NS, ISVC) == 0 and store.active() == []  # the deployed tick converged it
        assert all(
            o["metadata"]["labels"][ROLLOUT_STORE_LABEL] == NAMES.rollout_store for o in api.config_maps.values()
        )
        made = {CALLS[c] for c in api.calls}
        assert made <= _allowed(EXPECTED_RULES) and ("", "configmaps", "list") in made, made

    return _deploy(check)


@pulumi.runtime.test
def test_no_rollout_tick_before_a_model_is_served() -> pulumi.Output[None]:
    def check(mocks: h.RecordingMocks, component: Any) -> None:
        assert mocks.of_type("kubernetes:batch/v1:CronJob") == [] and "rollouts" not in component.outputs

    return _deploy(check, stage="platform", champion_model_version="")


def test_a_bad_prometheus_url_is_named() -> None:
    import pytest

    from infra.k8s import config as k8s_config

    h.start("onprem", h.stack_config("onprem", {"k8s_prometheus_url": "prometheus:9090"}))
    with pytest.raises(k8s_config.K8sConfigError, match="tidewater:k8s_prometheus_url must be an http"):
        k8s_config.load()
