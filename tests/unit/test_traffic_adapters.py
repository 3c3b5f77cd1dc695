"""Adapters with in-memory fakes: KServe (custom objects API), Prometheus (range query), the memory store,
and the pure request builders of the SageMaker and CloudWatch adapters."""

from __future__ import annotations

import copy
import datetime as dt
import threading
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from functions.traffic import controls, machine
from functions.traffic.adapters.cloudwatch import metric_queries
from functions.traffic.adapters.kserve import GROUP, PLURAL, VERSION, KServeBackend
from functions.traffic.adapters.prometheus import PrometheusMetrics
from functions.traffic.adapters.sagemaker import variant_configs
from functions.traffic.adapters.store import FileStateStore, MemoryStateStore
from functions.traffic.config import BusinessMetric, ConfigError, load_config
from functions.traffic.model import Decision
from functions.traffic.ports import BackendError, ConcurrentUpdate, RolloutExists, normalise
from functions.traffic.shadow import Answer, ShadowPair, compare, sampled

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


class FakeCustomObjects:
    """Stores InferenceServices and applies merge patches, like the API server."""

    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.patches: list[dict[str, Any]] = []

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> Any:
        assert (group, version, plural) == (GROUP, VERSION, PLURAL)
        return copy.deepcopy(self.objects[f"{ns}/{name}"])

    def patch_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, name: str, body: dict[str, Any]
    ) -> Any:
        self.patches.append(body)
        obj = self.objects[f"{ns}/{name}"]
        obj.setdefault("spec", {}).setdefault("predictor", {}).update(body["spec"]["predictor"])
        return copy.deepcopy(obj)


def test_kserve_backend_patches_canary_traffic_percent() -> None:
    api = FakeCustomObjects({"ml/fraud": {"spec": {"predictor": {"model": {"storageUri": "s3://m"}}}}})
    backend = KServeBackend(api, "ml", champion="stable", challenger="latest")
    assert backend.weights("fraud") == {"stable": 0.0, "latest": 1.0}  # no canary field: latest takes all
    assert backend.set_weights("fraud", {"stable": 0.75, "latest": 0.25}) == {"stable": 0.75, "latest": 0.25}
    assert api.patches == [{"spec": {"predictor": {"canaryTrafficPercent": 25}}}]
    assert api.objects["ml/fraud"]["spec"]["predictor"]["model"] == {"storageUri": "s3://m"}  # merge, not replace
    with pytest.raises(BackendError, match="only"):
        backend.set_weights("fraud", {"other": 1.0})


def test_kserve_backend_confirms_by_reading_back() -> None:
    class Ignoring(FakeCustomObjects):
        def patch_namespaced_custom_object(self, *args: Any) -> Any:
            return {}

    api = Ignoring({"ml/fraud": {"spec": {"predictor": {"canaryTrafficPercent": 10}}}})
    with pytest.raises(BackendError, match="canaryTrafficPercent=50"):
        KServeBackend(api, "ml", "stable", "latest").set_weights("fraud", {"stable": 0.5, "latest": 0.5})


def test_sagemaker_configs_always_carry_weight_and_instance_count() -> None:
    configs = variant_configs({"blue": 0.9, "green": 0.1}, {"blue": 2, "green": 1, "old": 1})
    assert all(set(c) == {"VariantName", "DesiredWeight", "DesiredInstanceCount"} for c in configs)
    assert {c["VariantName"]: (c["DesiredWeight"], c["DesiredInstanceCount"]) for c in configs} == {
        "blue": (0.9, 2), "green": (0.1, 1), "old": (0.0, 1)
    }  # fmt: skip
    with pytest.raises(BackendError, match="not on the endpoint"):
        variant_configs({"nope": 1.0}, {"blue": 1})


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(allow_nan=True, allow_infinity=True), min_size=1))
@example({"a": 8.988465674311579e307, "b": 8.98846567431158e307})  # their plain sum overflows to inf (CI found it)
@example({"a": 5e-324, "b": 0.0})
def test_normalise_refuses_bad_weights(weights: dict[str, float]) -> None:
    try:
        out = normalise(weights)
    except ValueError as err:
        assert "weights must be" in str(err)
    else:
        assert sum(out.values()) == pytest.approx(1.0)


def test_cloudwatch_queries_use_exact_dimensions() -> None:
    queries, ids = metric_queries("ep", ["blue", "green"], {"conv": BusinessMetric(namespace="ns", metric_name="C")})
    assert len(queries) == 8 and set(ids.values()) >= {("green", "errors"), ("blue", "conv")}
    q = next(q for q in queries if ids[q["Id"]] == ("green", "errors"))
    assert q["MetricStat"]["Metric"]["MetricName"] == "Invocation5XXErrors"
    assert q["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "green"}
    ]  # fmt: skip
    assert q["MetricStat"]["Stat"] == "Sum" and q["MetricStat"]["Period"] == 60


def test_prometheus_metrics_from_range_queries() -> None:
    ts = T0.timestamp()
    answers = {
        "requests_total": [
            {"metric": {"variant": "blue"}, "values": [[ts, "900"], [ts + 60, "880"]]},
            {"metric": {"variant": "green"}, "values": [[ts, "100"]]},
            {"metric": {"variant": "someone-else"}, "values": [[ts, "5"]]},
        ],
        'code=~"5.."': [{"metric": {"variant": "green"}, "values": [[ts, "3"]]}],
        "seconds_sum": [{"metric": {"variant": "blue"}, "values": [[ts, "0.02"], [ts + 60, "NaN"]]}],
    }
    seen: list[str] = []

    def query_range(promql: str, start: dt.datetime, end: dt.datetime, step: int) -> list[dict[str, Any]]:
        seen.append(promql)
        assert step == 60 and 'endpoint="fraud"' in promql
        for key in ('code=~"5.."', "seconds_sum", "requests_total"):
            if key in promql:
                return answers[key]
        return []

    metrics = PrometheusMetrics(query_range, lambda: ["FraudHigh5xx", "Other"])
    out = metrics.intervals("fraud", ["blue", "green"], T0, T0 + dt.timedelta(minutes=5), {})
    assert [i.start for i in out] == [T0, T0 + dt.timedelta(minutes=1)]
    assert out[0].variants["green"].errors == 3 and out[0].variants["blue"].latency == 0.02
    assert out[1].variants["blue"].invocations == 880 and out[1].variants["blue"].latency is None
    assert out[1].variants["green"].invocations == 0
    assert len(seen) == 3
    assert metrics.alarms_firing(["FraudHigh5xx", "Quiet"]) == ["FraudHigh5xx"]


def _state() -> Any:
    cfg = load_config({"endpoint": "ep", "champion": "a", "challenger": "b", "strategy": {"kind": "canary"}})
    return machine.start(cfg, "r", T0)


def _store(kind: str, tmp_path: Any) -> Any:
    if kind == "memory":
        return MemoryStateStore()
    if kind == "file":
        return FileStateStore(tmp_path / "rollouts")
    from functions.traffic.adapters.configmap_store import ConfigMapStateStore
    from tests.kube_fake import FakeKubeApi

    return ConfigMapStateStore(FakeKubeApi(("ml",)), "ml", "tidewater-dev-rollouts")


@pytest.mark.parametrize("kind", ["memory", "file", "configmap"])
def test_store_allows_one_writer_per_version(kind: str, tmp_path: Any) -> None:
    """The StateStore contract, for every store."""
    store = _store(kind, tmp_path)
    state = store.create(_state())
    with pytest.raises(RolloutExists):
        store.create(_state())
    wins: list[int] = []
    losses: list[int] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        new = state.model_copy(update={"decisions": state.decisions + 1})
        try:
            store.commit(state, new, Decision("wait", f"w{i}", state.weights), T0)
            wins.append(i)
        except ConcurrentUpdate:
            losses.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert len(store.audit("ep", "r")) == 1 and store.active() == ["ep"]
    done, _ = controls.abort(store.load("ep"), "x", T0)  # type: ignore[arg-type]
    done = store.commit(store.load("ep"), done, Decision("abort", "x", done.weights), T0)  # type: ignore[arg-type]
    assert store.active() == ["ep"]  # aborted, but its weights are not yet confirmed on the endpoint
    store.commit(done, done.model_copy(update={"applied_at": T0}), None, T0)
    assert store.active() == [] and store.create(_state()).version == 5
    assert [r["action"] for r in store.audit("ep", "r")] == ["wait", "abort"]
    assert store.load("ep") == _state().model_copy(update={"version": 5})


def test_shadow_comparison_and_sampling() -> None:
    pairs = [
        ShadowPair("e", "1", T0, Answer("fraud", 0.9), Answer("fraud", 0.8)),
        ShadowPair("e", "2", T0, Answer("ok", 0.1), Answer("fraud", 0.6)),
        ShadowPair("e", "3", T0, Answer("ok", 0.2), None),
    ]
    report = compare(pairs)
    assert (report.pairs, report.label_agreement, report.challenger_errors) == (2, 0.5, 1)
    assert report.mean_score_difference == pytest.approx(0.3)
    share = sum(sampled(f"r{i}", 0.1) for i in range(5000)) / 5000
    assert 0.08 < share < 0.12 and sampled("r1", 0.1) == sampled("r1", 0.1)


def test_shadow_mirror_never_surfaces_a_challenger_failure() -> None:
    from functions.traffic.shadow import MemoryShadowLog, ShadowMirror

    def invoke(variant: str, body: bytes) -> bytes:
        if variant == "green":
            raise TimeoutError("challenger down")
        return b"ok,0.1"

    log = MemoryShadowLog()
    mirror = ShadowMirror(
        "e", "blue", "green", 1.0, invoke, lambda b: Answer(*b.decode().split(",")[:1], 0.1), log.record,
        failures=(TimeoutError,), clock=lambda: T0,
    )  # fmt: skip
    assert mirror("r", b"x") == b"ok,0.1"
    report = log.report("e", T0)
    assert report is not None and report.challenger_errors == 1 and report.pairs == 0


def test_a_kubernetes_rollout_runs_end_to_end_on_fakes(tmp_path: Any) -> None:
    """KServe + Prometheus + ConfigMap store + Events, wired as the `kubernetes` target wires them, over fakes."""
    from functions.traffic.wiring import kubernetes_rollouts
    from tests.kube_fake import FakeKubeApi

    api = FakeKubeApi(("ml",))
    api.add_inference_service("ml", "fraud")
    served: dict[float, tuple[int, int]] = {}  # minute timestamp -> challenger percent, minute no.

    def query_range(promql: str, start: dt.datetime, end: dt.datetime, step: int) -> list[dict[str, Any]]:
        rows: dict[str, list[list[Any]]] = {"prev": [], "latest": []}
        for ts, (percent, _) in served.items():
            if start.timestamp() <= ts < end.timestamp():
                n = {"prev": 2000 * (100 - percent) // 100, "latest": 2000 * percent // 100}
                for variant, count in n.items():
                    value = count * 0.05 if 'code=~"5.."' in promql else (0.02 if "seconds" in promql else count)
                    rows[variant].append([ts, str(value)])
        return [{"metric": {"variant": v}, "values": vals} for v, vals in rows.items()]

    clock = [T0]
    rollouts = kubernetes_rollouts(api, api, "ml", "tidewater-dev-rollouts", query_range, lambda: [])
    rollouts.clock = lambda: clock[0]
    config = load_config({
        "endpoint": "fraud", "champion": "prev", "challenger": "latest",
        "strategy": {"kind": "canary", "steps": [0.2, 0.5, 1.0], "bake_minutes": 2, "min_requests": 200},
    })  # fmt: skip
    rollouts.start(config, "k1")
    assert api.percent("ml", "fraud") == 20
    action = None
    for minute in range(60):
        percent = api.percent("ml", "fraud")
        served[(T0 + dt.timedelta(minutes=minute)).timestamp()] = (percent, minute)
        clock[0] = T0 + dt.timedelta(minutes=minute + 3)
        decision = rollouts.tick("fraud")
        action = decision.action if decision else None
        if action == "promote":
            break
    assert action == "promote" and api.percent("ml", "fraud") == 100
    assert [p["spec"]["predictor"]["canaryTrafficPercent"] for p in api.patches] == [20, 50, 100]
    # Each step's and the promotion's event is one Event on the InferenceService, found by its uid.
    events = list(api.events.values())  # in the order they were created
    assert [e["reason"] for e in events] == ["RolloutStepAdvanced", "RolloutPromoted"]
    involved = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "fraud",
                "namespace": "ml", "uid": "uid-fraud"}  # fmt: skip
    assert all(e["involvedObject"] == involved for e in events)
    assert rollouts.store.active() == [] and rollouts.store.audit("fraud", "k1")[-1]["action"] == "promote"


def test_sagemaker_backend_waits_for_an_endpoint_in_update() -> None:
    from functions.traffic.adapters.sagemaker import SageMakerBackend
    from functions.traffic.ports import BackendBusy

    class Updating:
        def __init__(self) -> None:
            self.calls: list[Any] = []

        def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
            variants = [
                {"VariantName": "blue", "CurrentWeight": 1.0, "CurrentInstanceCount": 1},
                {"VariantName": "green", "CurrentWeight": 0.0, "DesiredWeight": 0.5, "CurrentInstanceCount": 1},
            ]
            return {"EndpointStatus": "Updating", "ProductionVariants": variants}

        def update_endpoint_weights_and_capacities(self, **kwargs: Any) -> None:
            self.calls.append(kwargs)

    client = Updating()
    backend = SageMakerBackend(client)
    assert backend.weights("e") == {"blue": pytest.approx(2 / 3), "green": pytest.approx(1 / 3)}  # desired wins
    with pytest.raises(BackendBusy, match="Updating"):
        backend.set_weights("e", {"blue": 0.5, "green": 0.5})
    assert client.calls == []


def test_tick_all_reports_a_busy_backend_and_goes_on() -> None:
    from functions.common.events import RecordingPublisher
    from functions.traffic.ports import BackendBusy
    from functions.traffic.service import Rollouts, tick_all

    class Backend:
        def __init__(self) -> None:
            self.current: dict[str, dict[str, float]] = {}

        def weights(self, endpoint: str) -> dict[str, float]:
            return self.current.get(endpoint, {})

        def set_weights(self, endpoint: str, weights: dict[str, float]) -> dict[str, float]:
            if endpoint == "busy" and endpoint in self.current:
                raise BackendBusy("busy is Updating")
            self.current[endpoint] = weights
            return weights

    class NoMetrics:
        def intervals(self, *args: Any) -> list[Any]:
            return []

        def alarms_firing(self, names: list[str]) -> list[str]:
            return []

    store = MemoryStateStore()
    backend = Backend()
    rollouts = Rollouts(store, backend, NoMetrics(), RecordingPublisher(), clock=lambda: T0)
    for endpoint in ("busy", "fine"):
        cfg = load_config({"endpoint": endpoint, "champion": "a", "challenger": "b", "strategy": {"kind": "canary"}})
        rollouts.start(cfg, endpoint)
    backend.current["busy"] = {"a": 1.0, "b": 0.0}  # drifted: the tick will try to re-apply and hit Updating
    assert tick_all(rollouts) == {"busy": "backend error: busy is Updating", "fine": "wait"}


def test_rollout_names_come_from_the_naming_module() -> None:
    from schemas.naming import ROLLOUT_TABLE_KEYS, Names, variant_alarm

    names = Names("tidewater", "dev")
    assert names.rollout_table == "tidewater-dev-rollouts" and ROLLOUT_TABLE_KEYS == ("pk", "sk")
    assert variant_alarm(names.endpoint("fraud"), "green", "5xx-rate") == "tidewater-dev-fraud-green-5xx-rate"


def test_an_event_lost_to_a_crash_is_published_by_the_next_tick() -> None:
    from functions.common.events import RecordingPublisher
    from functions.traffic.service import Rollouts, tick_all
    from schemas.events import Event, RolloutRolledBack

    class Flaky(RecordingPublisher):
        fail = True

        def publish(self, event: Event) -> None:
            if self.fail:
                self.fail = False
                raise ConnectionError("bus unreachable")
            super().publish(event)

    class Backend:
        current: dict[str, float] = {}  # noqa: RUF012 (one instance per test)

        def weights(self, endpoint: str) -> dict[str, float]:
            return self.current

        def set_weights(self, endpoint: str, weights: dict[str, float]) -> dict[str, float]:
            self.current = weights
            return weights

    class Alarmed:
        def intervals(self, *args: Any) -> list[Any]:
            return []

        def alarms_firing(self, names: list[str]) -> list[str]:
            return names

    publisher = Flaky()
    store = MemoryStateStore()
    rollouts = Rollouts(store, Backend(), Alarmed(), publisher, clock=lambda: T0)
    cfg = load_config({"endpoint": "ep", "champion": "a", "challenger": "b", "strategy": {"kind": "canary"},
                       "alarms": ["x"]})  # fmt: skip
    rollouts.start(cfg, "r")
    with pytest.raises(ConnectionError):
        rollouts.tick("ep")  # rolled back and committed, but the event did not get out
    state = store.load("ep")
    assert state is not None and state.status == "rolled_back" and len(state.outbox) == 1
    assert store.active() == ["ep"]  # still visited by the schedule because of its outbox
    assert tick_all(rollouts) == {"ep": "no running rollout"}
    assert [type(e) for e in publisher.events] == [RolloutRolledBack]
    after = store.load("ep")
    assert after is not None and after.outbox == [] and store.active() == []
    assert len(store.audit("ep", "r")) == 1  # clearing the outbox is not a decision


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 1), st.integers(1, 64))
def test_capacity_follows_the_weights(share: float, full: int) -> None:
    from functions.traffic.adapters.sagemaker import capacity_for

    counts = capacity_for({"a": 1 - share, "b": share}, full)
    for variant, weight in (("a", 1 - share), ("b", share)):
        assert counts[variant] >= 1 and counts[variant] >= weight * full - 1e-6  # enough for its share
        assert counts[variant] <= max(1, weight * full + 1)  # and not more than one spare instance


def test_prometheus_reads_p99_from_the_histogram_and_a_users_promql() -> None:
    from functions.traffic.config import metric_sources

    ts = T0.timestamp()
    seen: list[str] = []

    def query_range(promql: str, start: dt.datetime, end: dt.datetime, step: int) -> list[dict[str, Any]]:
        seen.append(promql)
        if "histogram_quantile(0.99" in promql:
            return [{"metric": {"variant": "green"}, "values": [[ts, "0.25"]]}]
        if "checkout_ok" in promql:
            return [{"metric": {"variant": "green"}, "values": [[ts, "7"]]}]
        return []

    cfg = load_config({
        "endpoint": "fraud", "champion": "blue", "challenger": "green", "strategy": {"kind": "canary"},
        "business_metrics": {"ok": {"promql": 'sum by (variant) (increase(checkout_ok{endpoint="$endpoint"}[1m]))'}},
        "judge": {"guardrails": [{"name": "p99", "kind": "mean", "metric": "latency_p99", "margin": 0.2},
                                 {"name": "ok", "kind": "rate", "metric": "ok", "margin": 0.5,
                                  "lower_is_better": False}]},
    })  # fmt: skip
    out = PrometheusMetrics(query_range, list).intervals(
        "fraud", ["blue", "green"], T0, T0 + dt.timedelta(minutes=2), metric_sources(cfg)
    )
    assert out[0].variants["green"].extra == {"latency_p99": 0.25, "ok": 7.0}
    p99 = next(q for q in seen if "histogram_quantile" in q)
    assert 'tidewater_request_seconds_bucket{endpoint="fraud"}' in p99 and "by (variant, le)" in p99
    assert 'checkout_ok{endpoint="fraud"}' in next(q for q in seen if "checkout_ok" in q)


def test_cloudwatch_queries_p99_and_expressions_per_variant() -> None:
    from functions.traffic.config import BusinessMetric, metric_sources

    cfg = load_config({
        "endpoint": "e", "champion": "blue", "challenger": "green", "strategy": {"kind": "canary"},
        "business_metrics": {"paid": {"expression": "SUM(SEARCH('Paid $endpoint $variant', 'Sum', 60))"}},
        "judge": {"guardrails": [{"name": "p99", "kind": "mean", "metric": "latency_p99", "margin": 0.2}]},
    })  # fmt: skip
    queries, ids = metric_queries("e", ["blue", "green"], metric_sources(cfg))
    by_field = {ids[q["Id"]]: q for q in queries}
    p99 = by_field[("green", "latency_p99")]["MetricStat"]
    assert p99["Stat"] == "p99" and p99["Metric"]["MetricName"] == "ModelLatency"
    assert by_field[("blue", "paid")]["Expression"] == "SUM(SEARCH('Paid e blue', 'Sum', 60))"
    with pytest.raises(ValueError, match="expression"):
        BusinessMetric()
    with pytest.raises(ConfigError, match="must be of kind mean"):
        rate_p99 = {"name": "p", "kind": "rate", "metric": "latency_p99", "margin": 1}
        load_config({**cfg.model_dump(mode="json"), "judge": {"guardrails": [rate_p99]}})


def test_kserve_revisions_map_to_prev_and_latest_for_prometheus_series() -> None:
    """The predictor labels its series with its Knative revision; KServe's status says which is prev/latest."""
    import datetime as dt

    from functions.traffic.adapters.kserve import revision_roles
    from functions.traffic.adapters.prometheus import PrometheusMetrics

    status = {"components": {"predictor": {"latestReadyRevision": "fraud-predictor-00002", "traffic": [
        {"revisionName": "fraud-predictor-00002", "tag": "latest", "percent": 10, "latestRevision": True},
        {"revisionName": "fraud-predictor-00001", "tag": "prev", "percent": 90, "latestRevision": False},
    ]}}}  # fmt: skip

    class Api:
        def __init__(self, status: dict[str, Any]) -> None:
            self.status = status

        def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
            return {"spec": {"predictor": {"canaryTrafficPercent": 10}}, "status": self.status}

    api = Api(status)
    assert revision_roles(api, "ns", "fraud") == {"fraud-predictor-00002": "latest", "fraud-predictor-00001": "prev"}
    single = {"components": {"predictor": {"latestReadyRevision": "fraud-predictor-00001"}}}
    assert revision_roles(Api(single), "ns", "fraud") == {"fraud-predictor-00001": "latest"}

    t0 = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)

    def query_range(promql: str, start: dt.datetime, end: dt.datetime, step: int) -> list[dict[str, Any]]:
        value = "3" if "5.." in promql else ("0.002" if "seconds" in promql else "100")
        return [{"metric": {"variant": rev}, "values": [[t0.timestamp(), value]]}
                for rev in ("fraud-predictor-00001", "fraud-predictor-00002", "fraud-predictor-00000")]  # fmt: skip

    metrics = PrometheusMetrics(query_range, list, variant_names=lambda ep: revision_roles(api, "ns", ep))
    (interval,) = metrics.intervals("fraud", ["prev", "latest"], t0, t0 + dt.timedelta(minutes=1), {})
    assert set(interval.variants) == {"prev", "latest"}  # the retired revision 00000 is nobody's
    assert interval.variants["latest"].invocations == 100 and interval.variants["prev"].errors == 3
