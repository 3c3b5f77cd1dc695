"""The ConfigMap rollout store (kubernetes target) over the fake of the API server's optimistic concurrency
(tests/kube_fake.py): racing ticks through the real service, the audit trail's spill to chunks, a failure at
every call of a multi-write operation, bad endpoint names. The StateStore contract itself is shared with the
other stores in test_traffic_adapters.py."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from functions.traffic import controls, machine
from functions.traffic.adapters.configmap_store import PART_LABEL, ConfigMapStateStore
from functions.traffic.config import load_config
from functions.traffic.model import Decision, RolloutState
from functions.traffic.ports import ConcurrentUpdate, RolloutExists
from functions.traffic.service import tick_all
from functions.traffic.wiring import kubernetes_rollouts
from schemas.naming import ROLLOUT_STORE_LABEL
from tests.kube_fake import FakeKubeApi

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
NS, STORE = "ml", "tidewater-dev-rollouts"


def _config(**extra: Any) -> Any:
    return load_config({"endpoint": "fraud", "champion": "prev", "challenger": "latest",
                        "strategy": {"kind": "canary", "steps": [0.1, 0.5, 1.0]}, **extra})  # fmt: skip


def _state(rollout_id: str = "r1") -> RolloutState:
    return machine.start(_config(), rollout_id, T0)


def _wait(store: ConfigMapStateStore, state: RolloutState, n: int) -> RolloutState:
    new = state.model_copy(update={"decisions": state.decisions + 1})
    return store.commit(state, new, Decision("wait", f"tick {n} " + "x" * 200, state.weights), T0)


def test_two_ticks_race_one_commits_the_other_applies_only_what_it_rereads() -> None:
    api = FakeKubeApi((NS,))
    api.add_inference_service(NS, "fraud")
    services = [kubernetes_rollouts(api, api, NS, STORE, lambda *a: [], lambda: ["FraudHigh5xx"]) for _ in range(2)]
    for service in services:
        service.clock = lambda: T0 + dt.timedelta(minutes=5)
    services[0].start(_config(alarms=["FraudHigh5xx"]), "r1")
    assert api.percent(NS, "fraud") == 10
    barrier = threading.Barrier(2, timeout=10)
    racing = [2]

    def both_have_read() -> None:  # the first two replaces wait for each other: both ticks read version v
        if racing[0] > 0:
            racing[0] -= 1
            barrier.wait()

    api.before_replace = both_have_read
    outcomes: list[dict[str, str]] = []
    threads = [threading.Thread(target=lambda s=s: outcomes.append(tick_all(s))) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o["fraud"] for o in outcomes) == ["rollback", "skipped: another invocation moved it first"]
    state, audit = services[0].status("fraud")
    assert state is not None and state.status == "rolled_back" and not state.pending
    assert [r["action"] for r in audit] == ["rollback"]  # the loser's decision is nowhere in the trail
    assert api.percent(NS, "fraud") == 0
    assert [e["reason"] for e in api.events.values()] == ["RolloutRolledBack"]  # published once
    assert services[1].store.active() == []


def test_a_stale_commit_is_a_conflict_and_changes_nothing() -> None:
    api = FakeKubeApi((NS,))
    store = ConfigMapStateStore(api, NS, STORE)
    first = store.create(_state())
    _wait(store, first, 1)
    before = dict(api.config_maps)
    with pytest.raises(ConcurrentUpdate):
        _wait(store, first, 2)
    assert api.config_maps == before and [r["reason"][:6] for r in store.audit("fraud", "r1")] == ["tick 1"]


def test_a_write_between_read_and_replace_is_the_api_servers_409() -> None:
    api = FakeKubeApi((NS,))
    store = ConfigMapStateStore(api, NS, STORE)
    state = store.create(_state())
    other = ConfigMapStateStore(api, NS, STORE)
    api.before_replace = lambda: (setattr(api, "before_replace", None), _wait(other, state, 1))  # type: ignore[func-returns-value]
    with pytest.raises(ConcurrentUpdate):
        _wait(store, state, 2)  # its version check passed on the read; the replace carries a stale resourceVersion
    assert [r["reason"][:6] for r in store.audit("fraud", "r1")] == ["tick 1"]


def test_a_long_trail_spills_to_immutable_chunks_and_reads_back_whole() -> None:
    api = FakeKubeApi((NS,))
    store = ConfigMapStateStore(api, NS, STORE, spill_bytes=2000)
    state = store.create(_state())
    for n in range(40):
        state = _wait(store, state, n)
    records = store.audit("fraud", "r1")
    assert [r["decision"] for r in records] == list(range(1, 41))
    chunks = [o for o in api.config_maps.values() if o["metadata"]["labels"][PART_LABEL] == "audit"]
    assert len(chunks) >= 5 and all(c["immutable"] for c in chunks)
    assert all(c["metadata"]["labels"][ROLLOUT_STORE_LABEL] == STORE for c in chunks)
    state_object = api.config_maps[(NS, "fraud-rollout")]
    assert len(state_object["data"]["audit"]) < 2000 + 1000  # the spill threshold plus one record
    # A new rollout on the endpoint keeps the finished one's trail readable and starts its own.
    done, decision = controls.abort(state, "x", T0)
    done = store.commit(state, done, decision, T0)
    store.commit(done, done.model_copy(update={"applied_at": T0}), None, T0)
    store.create(_state("r2"))
    assert [r["decision"] for r in store.audit("fraud", "r1")] == list(range(1, 42))
    assert store.audit("fraud", "r2") == []


def _calls_of(setup: Any, operation: Any) -> list[str]:
    api = FakeKubeApi((NS,))
    store, state = setup(api)
    before = len(api.calls)
    operation(store, state)
    return api.calls[before:]


def _spilling(api: FakeKubeApi) -> tuple[ConfigMapStateStore, RolloutState]:
    store = ConfigMapStateStore(api, NS, STORE, spill_bytes=1200)
    state = store.create(_state())
    while len(api.config_maps[(NS, "fraud-rollout")]["data"]["audit"]) <= 1200:  # until the next commit spills
        state = _wait(store, state, state.decisions)
    return store, state


def test_a_failure_at_any_call_of_a_spilling_commit_leaves_all_or_nothing() -> None:
    calls = _calls_of(_spilling, lambda store, state: _wait(store, state, 99))
    assert calls == ["read", "create", "replace"]  # this commit moves the trail to a chunk first
    for k in range(1, len(calls) + 1):
        api = FakeKubeApi((NS,))
        store, state = _spilling(api)
        before = [r["decision"] for r in store.audit("fraud", "r1")]
        api.fail_call(k)
        with pytest.raises(ApiException):
            _wait(store, state, 99)
        loaded = store.load("fraud")  # none of it: the old version and the old trail, each record once
        assert loaded is not None and loaded.version == state.version, k
        assert [r["decision"] for r in store.audit("fraud", "r1")] == before, k
        again = _wait(store, loaded, 100)  # and the next commit goes through, the trail whole
        assert [r["decision"] for r in store.audit("fraud", "r1")] == [*before, again.decisions], k


def _finished(api: FakeKubeApi) -> tuple[ConfigMapStateStore, RolloutState]:
    store = ConfigMapStateStore(api, NS, STORE)
    state = store.create(_state())
    state = _wait(store, state, 1)
    done, decision = controls.abort(state, "x", T0)
    done = store.commit(state, done, decision, T0)
    return store, store.commit(done, done.model_copy(update={"applied_at": T0}), None, T0)


def test_a_failure_at_any_call_of_a_start_over_a_finished_rollout_leaves_all_or_nothing() -> None:
    calls = _calls_of(_finished, lambda store, state: store.create(_state("r2")))
    assert calls == ["read", "create", "replace"]  # the finished trail to its chunk, then the new rollout
    for k in range(1, len(calls) + 1):
        api = FakeKubeApi((NS,))
        store, _ = _finished(api)
        api.fail_call(k)
        with pytest.raises(ApiException):
            store.create(_state("r2"))
        current = store.load("fraud")
        assert current is not None and current.rollout_id == "r1" and current.status == "aborted", k
        assert [r["action"] for r in store.audit("fraud", "r1")] == ["wait", "abort"], k  # never lost or doubled
        assert store.create(_state("r2")).rollout_id == "r2"
        assert [r["action"] for r in store.audit("fraud", "r1")] == ["wait", "abort"] and store.active() == ["fraud"]


def test_a_start_is_refused_while_a_rollout_is_live_even_when_two_start_at_once() -> None:
    api = FakeKubeApi((NS,))
    stores = [ConfigMapStateStore(api, NS, STORE) for _ in range(4)]
    barrier = threading.Barrier(4, timeout=10)
    won: list[str] = []
    refused: list[str] = []

    def start(i: int) -> None:
        barrier.wait()
        try:
            stores[i].create(_state(f"r{i}"))
            won.append(f"r{i}")
        except RolloutExists:
            refused.append(f"r{i}")

    threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 3
    loaded = stores[0].load("fraud")
    assert loaded is not None and loaded.rollout_id == won[0] and loaded.version == 1


def test_a_missing_namespace_is_the_api_servers_404_not_a_silent_success() -> None:
    store = ConfigMapStateStore(FakeKubeApi(()), "absent", STORE)
    assert store.load("fraud") is None and store.active() == []
    with pytest.raises(ApiException) as err:
        store.create(_state())
    assert err.value.status == 404 and '"namespaces"' in str(err.value.body)


@given(st.text(max_size=80).filter(lambda s: not (s and s[0].isalnum() and s[-1].isalnum()
                                                  and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in s)
                                                  and len(s) <= 63)))  # fmt: skip
def test_an_endpoint_that_is_not_a_dns_label_is_refused_by_name(endpoint: str) -> None:
    store = ConfigMapStateStore(FakeKubeApi((NS,)), NS, STORE)
    with pytest.raises(ValueError, match="must be a DNS label"):
        store.load(endpoint)


def test_one_endpoint_the_api_server_refuses_does_not_stop_the_others_ticks() -> None:
    api = FakeKubeApi((NS,))
    for name in ("fraud", "churn"):
        api.add_inference_service(NS, name)
    service = kubernetes_rollouts(api, api, NS, STORE, lambda *a: [], lambda: ["FraudHigh5xx"])
    service.clock = lambda: T0 + dt.timedelta(minutes=5)
    for name in ("fraud", "churn"):
        service.start(_config(alarms=["FraudHigh5xx"]).model_copy(update={"endpoint": name}), f"{name}-1")
    del api.objects[(NS, "churn")]  # e.g. deleted, or not the stack's InferenceService (the tick's Role: 403)
    outcome = tick_all(service)
    assert outcome["fraud"] == "rollback" and api.percent(NS, "fraud") == 0
    assert outcome["churn"].startswith("backend error: churn: the API server answered 404 NotFound")


def test_an_event_published_twice_is_one_kubernetes_event_and_a_refusal_is_raised() -> None:
    from functions.traffic.adapters.kube_events import DETAIL_ANNOTATION, KubernetesEventPublisher
    from schemas.events import RolloutPromoted

    api = FakeKubeApi((NS,))
    api.add_inference_service(NS, "fraud")
    publisher = KubernetesEventPublisher(api, api, NS, clock=lambda: T0)
    weights = {"prev": 0.0, "latest": 1.0}
    event = RolloutPromoted(endpoint="fraud", rollout_id="r1", strategy="canary", champion="prev",
                            challenger="latest", weights=weights, reason="all steps passed")  # fmt: skip
    publisher.publish(event)
    publisher.publish(event)  # at least once -> once
    (body,) = api.events.values()
    assert body["reason"] == "RolloutPromoted" and body["type"] == "Normal" and body["count"] == 1
    assert body["message"] == "rollout r1: all steps passed (weights latest=100%, prev=0%)"
    assert body["firstTimestamp"] == "2026-11-22T12:00:00Z"
    assert json.loads(body["metadata"]["annotations"][DETAIL_ANNOTATION])["detail"]["rollout_id"] == "r1"
    api.fail_call(2, status=403)  # the get of the InferenceService passes, the create is refused
    with pytest.raises(ApiException):
        publisher.publish(event.model_copy(update={"reason": "again"}))


_ops = st.lists(
    st.one_of(st.tuples(st.just("wait"), st.integers(0, 400)), st.just(("confirm",)), st.just(("restart",))),
    max_size=25,
)


@given(ops=_ops, spill=st.integers(300, 3000))
@settings(max_examples=60, deadline=None)
def test_the_configmap_store_reads_like_the_memory_store_whatever_the_sequence(ops: list[Any], spill: int) -> None:
    """A model check: any sequence of commits, confirmations and new rollouts, with any spill threshold."""
    from functions.traffic.adapters.store import MemoryStateStore

    api = FakeKubeApi((NS,))
    stores = [ConfigMapStateStore(api, NS, STORE, spill_bytes=spill), MemoryStateStore()]
    ids = ["r0"]
    states = [store.create(_state("r0")) for store in stores]
    for op in ops:
        for i, store in enumerate(stores):
            state = states[i]
            if op[0] == "wait" and state.live:
                new = state.model_copy(update={"decisions": state.decisions + 1})
                states[i] = store.commit(state, new, Decision("wait", "x" * op[1], state.weights), T0)
            elif op[0] == "confirm":
                states[i] = store.commit(state, state.model_copy(update={"applied_at": T0}), None, T0)
            elif op[0] == "restart" and state.live:
                done, decision = controls.abort(state, "x", T0)
                states[i] = store.commit(state, done, decision, T0)
            elif op[0] == "restart":
                states[i] = store.create(_state(f"r{len(ids)}"))
        if op[0] == "restart" and states[0].rollout_id not in ids:
            ids.append(states[0].rollout_id)
        assert stores[0].load("fraud") == stores[1].load("fraud")
        for rid in ids:
            assert stores[0].audit("fraud", rid) == stores[1].audit("fraud", rid)
        assert stores[0].active() == stores[1].active()
    assert all(len(o["data"].get("audit", "")) <= spill + 1000 for o in api.config_maps.values()
               if o["metadata"]["labels"][PART_LABEL] == "state")  # fmt: skip
