"""`tide rollout ... --target kubernetes`: the CLI over the fake API server (tests/kube_fake.py) and a Prometheus
answering on loopback; the error paths through the real kubernetes client against loopback servers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import rollout_target
from jobs.cli import main
from tests.kube_fake import FakeKubeApi

NS = "tidewater-dev-serving"  # the CLI's default namespace for --project tidewater --stack dev
STORE = "tidewater-dev-rollouts"
ENDPOINT = "tidewater-dev-fraud"
K8S = ["--target", "kubernetes"]
Route = Callable[[str], tuple[int, Any]]


def _serve(route: Route) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_PUT(self) -> None:
            self._answer()

        def _answer(self) -> None:
            code, doc = route(self.path)
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prometheus() -> Iterator[dict[str, Any]]:
    """A Prometheus answering /api/v1/alerts with `firing` and every range query with no series."""
    seen: dict[str, Any] = {"firing": [], "paths": []}

    def route(path: str) -> tuple[int, Any]:
        seen["paths"].append(path)
        if path.startswith("/api/v1/alerts"):
            alerts = [{"labels": {"alertname": name}, "state": "firing"} for name in seen["firing"]]
            return 200, {"status": "success", "data": {"alerts": alerts}}
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": []}}

    for url in _serve(route):
        seen["url"] = url
        yield seen


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeKubeApi:
    fake = FakeKubeApi((NS,))
    fake.add_inference_service(NS, ENDPOINT)
    asked: list[tuple[Any, Any]] = []

    def clients(kubeconfig: str | None, context: str | None) -> tuple[Any, Any]:
        asked.append((kubeconfig, context))
        return fake, fake

    monkeypatch.setattr(rollout_target, "kube_clients", clients)
    fake.asked = asked  # type: ignore[attr-defined]
    return fake


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump({
        "endpoint": ENDPOINT, "champion": "prev", "challenger": "latest", "alarms": ["FraudHigh5xx"],
        "strategy": {"kind": "canary", "steps": [0.1, 0.5, 1.0]},
    }))  # fmt: skip
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["rollout", *args])


def one_line_error(result: Result, *needles: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_rollout_on_the_kubernetes_target_start_to_retry(
    api: FakeKubeApi, prometheus: dict[str, Any], tmp_path: Path
) -> None:
    url = ["--prometheus-url", prometheus["url"]]
    out = _run("start", str(_config(tmp_path)), "--rollout-id", "k1", *K8S)
    assert out.exit_code == 0 and "started k1" in out.output, out.output
    assert api.percent(NS, ENDPOINT) == 10
    state_object = api.config_maps[(NS, f"{ENDPOINT}-rollout")]
    assert state_object["metadata"]["labels"]["tidewater.io/rollout-store"] == STORE
    out = _run("tick", *K8S, *url)  # healthy, just started: wait
    assert out.exit_code == 0 and json.loads(out.output) == {"endpoint": ENDPOINT, "action": "wait"}, out.output
    prometheus["firing"] = ["FraudHigh5xx"]
    out = _run("tick", *K8S, *url)
    assert out.exit_code == 0 and json.loads(out.output)["action"] == "rollback", out.output
    assert api.percent(NS, ENDPOINT) == 0
    assert [e["reason"] for e in api.events.values()] == ["RolloutRolledBack"]
    assert next(iter(api.events.values()))["type"] == "Warning"
    out = _run("tick", *K8S, *url)  # nothing live: nothing to tick
    assert out.exit_code == 0 and out.output == "", out.output
    status = json.loads(_run("status", ENDPOINT, "--json", *K8S).output)
    assert status["state"]["status"] == "rolled_back" and [r["action"] for r in status["audit"]] == ["wait", "rollback"]
    one_line_error(_run("pause", ENDPOINT, "--reason", "x", "--by", "bo", *K8S), "it is rolled_back")
    prometheus["firing"] = []
    out = _run("retry", ENDPOINT, "--reason", "fixed", "--by", "bo", "--rollout-id", "k2", *K8S)
    assert out.exit_code == 0 and "started k2" in out.output and api.percent(NS, ENDPOINT) == 10, out.output
    out = _run("promote", ENDPOINT, "--reason", "urgent", "--by", "carol", *K8S)
    assert out.exit_code == 0 and api.percent(NS, ENDPOINT) == 100, out.output
    status = json.loads(_run("status", ENDPOINT, "--json", *K8S).output)
    assert status["audit"][-1]["actor"] == "carol" and status["state"]["rollout_id"] == "k2"
    assert [e["reason"] for e in api.events.values()] == ["RolloutRolledBack", "RolloutPromoted"]
    assert set(api.asked) == {(None, None)}  # no --kubeconfig/--context: the default config (or in-cluster)


def test_kubeconfig_and_context_reach_the_client(api: FakeKubeApi) -> None:
    out = _run("status", ENDPOINT, *K8S, "--kubeconfig", "/k/config", "--context", "onprem", "--namespace", NS)
    one_line_error(out, f"no rollout on {ENDPOINT}", f"namespace {NS}", f"store {STORE}")
    assert api.asked == [("/k/config", "onprem")]  # type: ignore[attr-defined]


def test_a_tick_that_needs_metrics_without_prometheus_says_so(api: FakeKubeApi, tmp_path: Path) -> None:
    assert _run("start", str(_config(tmp_path)), *K8S).exit_code == 0
    one_line_error(_run("tick", *K8S), "pass --prometheus-url", "TIDE_PROMETHEUS_URL")


def test_prometheus_unreachable_is_one_line(api: FakeKubeApi, tmp_path: Path) -> None:
    assert _run("start", str(_config(tmp_path)), *K8S).exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    one_line_error(_run("tick", *K8S, "--prometheus-url", f"http://127.0.0.1:{port}"), "cannot query Prometheus")


def test_a_missing_namespace_is_named(api: FakeKubeApi, tmp_path: Path) -> None:
    out = _run("start", str(_config(tmp_path)), *K8S, "--namespace", "nope")
    one_line_error(out, "namespace 'nope' does not exist")


def test_kubernetes_options_on_the_aws_target_are_a_usage_error() -> None:
    out = _run("status", ENDPOINT, "--namespace", NS)
    assert out.exit_code == 2 and "--namespace: only with --target kubernetes" in out.output


def test_an_endpoint_that_cannot_be_a_configmap_name_is_one_line(api: FakeKubeApi) -> None:
    one_line_error(_run("status", "Not_A_Name", *K8S), "must be a DNS label")


def test_prometheus_api_reads_the_matrix_and_the_firing_alerts_and_retries_a_5xx() -> None:
    import datetime as dt
    import urllib.parse
    import urllib.request

    from functions.traffic.adapters.prometheus import PrometheusAPI, PrometheusError

    asked: list[dict[str, list[str]]] = []
    failures = [1]

    def route(path: str) -> tuple[int, Any]:
        if path.startswith("/api/v1/alerts"):
            alerts = [
                {"labels": {"alertname": "A"}, "state": "firing"},
                {"labels": {"alertname": "B"}, "state": "pending"},
            ]
            return 200, {"status": "success", "data": {"alerts": alerts}}
        if "bad" in path:
            return 400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}
        if failures[0]:
            failures[0] -= 1
            return 503, {"status": "error", "error": "overloaded"}
        asked.append(urllib.parse.parse_qs(urllib.parse.urlsplit(path).query))
        result = [{"metric": {"variant": "prev"}, "values": [[1700000040, "5"]]}]
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    for url in _serve(route):
        api = PrometheusAPI(url + "/", urllib.request.build_opener())
        start, end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
        assert api.query_range("up", start, end, 60) == [{"metric": {"variant": "prev"}, "values": [[1700000040, "5"]]}]
        assert asked == [{"query": ["up"], "start": [f"{start.timestamp():.0f}"], "end": [f"{end.timestamp():.0f}"],
                          "step": ["60"]}]  # fmt: skip
        assert api.firing_alerts() == ["A"]
        with pytest.raises(PrometheusError, match=r"refused .*HTTP 400.*parse error"):
            api.query_range("bad", start, end, 60)


# ---------------------------------------------------------------------------------------------- the real client


def _kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    return str(path)


@pytest.fixture(autouse=True)
def _not_in_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _run("status", ENDPOINT, *K8S, "--kubeconfig", _kubeconfig(tmp_path, f"http://127.0.0.1:{port}"))
    one_line_error(out, "cannot reach the Kubernetes API server")


def test_a_forbidden_answer_is_one_line_naming_the_namespace(tmp_path: Path) -> None:
    paths: list[str] = []

    def forbidden(path: str) -> tuple[int, Any]:
        paths.append(path)
        return 403, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                     "message": f'configmaps "{ENDPOINT}-rollout" is forbidden: User "bo" cannot get resource '
                                f'"configmaps" in API group "" in the namespace "{NS}"'}  # fmt: skip

    for url in _serve(forbidden):
        out = _run("status", ENDPOINT, *K8S, "--kubeconfig", _kubeconfig(tmp_path, url))
    one_line_error(out, "refused (403 Forbidden)", 'cannot get resource "configmaps"', f"namespace {NS}")
    assert paths == [f"/api/v1/namespaces/{NS}/configmaps/{ENDPOINT}-rollout"]


def test_a_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    out = _run("status", ENDPOINT, *K8S, "--kubeconfig", str(tmp_path / "absent"))
    one_line_error(out, "cannot load the Kubernetes config", str(tmp_path / "absent"))


def test_a_429_is_retried_by_the_client(tmp_path: Path) -> None:
    paths: list[str] = []

    def busy_once(path: str) -> tuple[int, Any]:
        paths.append(path)
        if len(paths) == 1:
            return 429, {"kind": "Status", "status": "Failure", "reason": "TooManyRequests", "code": 429,
                         "message": "too many requests, please try again later"}  # fmt: skip
        return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                     "message": f'configmaps "{ENDPOINT}-rollout" not found',
                     "details": {"name": f"{ENDPOINT}-rollout", "kind": "configmaps"}}  # fmt: skip

    for url in _serve(busy_once):
        out = _run("status", ENDPOINT, *K8S, "--kubeconfig", _kubeconfig(tmp_path, url))
    one_line_error(out, f"no rollout on {ENDPOINT}")
    assert len(paths) == 2


class _Opener:
    """urllib's opener, answering every URL with one body."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def open(self, url: str, timeout: float) -> Any:
        import io

        return io.BytesIO(self.body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["status", "data", "result", "alerts", "labels", "alertname", "state", "error"]), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(doc=_json | st.fixed_dictionaries({"status": st.just("success"), "data": _json}))
@settings(max_examples=150, deadline=None)
def test_any_prometheus_answer_is_data_or_a_prometheus_error(doc: Any) -> None:
    import datetime as dt

    from functions.traffic.adapters.prometheus import PrometheusAPI, PrometheusError

    api = PrometheusAPI("http://prometheus", _Opener(json.dumps(doc).encode()), attempts=1)  # type: ignore[arg-type]
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for read in (lambda: api.query_range("up", t, t, 60), api.firing_alerts):
        try:
            got = read()
        except PrometheusError:
            continue
        assert isinstance(got, list)
