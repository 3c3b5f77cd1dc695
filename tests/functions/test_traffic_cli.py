"""`tide rollout start|status|abort` against the embedded cloud."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from tests.functions.test_traffic import ENDPOINT, create_endpoint, create_table


def test_rollout_start_status_abort(cloud: EmbeddedCloud, tmp_path: Path) -> None:
    create_endpoint(cloud.client("sagemaker"))
    create_table(cloud.client("dynamodb"))
    cloud.client("events").create_event_bus(Name="tidewater-dev-events")
    config = tmp_path / "rollout.yaml"
    config.write_text(yaml.safe_dump({
        "endpoint": ENDPOINT, "champion": "blue", "challenger": "green",
        "strategy": {"kind": "canary", "steps": [0.1, 0.5, 1.0]},
    }))  # fmt: skip
    runner = CliRunner()
    out = runner.invoke(main, ["rollout", "start", str(config), "--rollout-id", "r1"])
    assert out.exit_code == 0, out.output
    assert "started r1" in out.output and "'green': 0.1" in out.output
    again = runner.invoke(main, ["rollout", "start", str(config)])
    assert again.exit_code != 0 and "already active" in again.output
    out = runner.invoke(main, ["rollout", "tick"])  # what the schedule runs, by hand (default --target aws)
    assert out.exit_code == 0 and json.loads(out.output) == {"endpoint": ENDPOINT, "action": "wait"}, out.output
    out = runner.invoke(main, ["rollout", "status", ENDPOINT])
    assert out.exit_code == 0 and "running" in out.output and "no settled traffic yet" in out.output, out.output
    out = runner.invoke(main, ["rollout", "pause", ENDPOINT, "--reason", "looking at a dashboard", "--by", "bo"])
    assert out.exit_code == 0 and "paused r1" in out.output, out.output
    again = runner.invoke(main, ["rollout", "pause", ENDPOINT, "--reason", "twice", "--by", "bo"])
    assert again.exit_code == 1 and "it is paused" in again.output and "Traceback" not in again.output
    out = runner.invoke(
        main, ["rollout", "resume", ENDPOINT, "--reason", "fine", "--by", "bo", "--extend-minutes", "30"]
    )
    assert out.exit_code == 0 and "resumed r1" in out.output, out.output
    out = runner.invoke(main, ["rollout", "abort", ENDPOINT, "--reason", "pager went off", "--by", "alice"])
    assert out.exit_code == 0 and "aborted r1" in out.output
    status = json.loads(runner.invoke(main, ["rollout", "status", ENDPOINT, "--json"]).output)
    assert status["state"]["status"] == "aborted" and status["state"]["extra_minutes"] >= 30
    assert [r["action"] for r in status["audit"]] == ["wait", "pause", "resume", "abort"]  # the tick, then the controls
    assert status["audit"][-1]["reason"] == "aborted by alice: pager went off"
    assert status["audit"][-1]["actor"] == "alice" and status["audit"][1]["actor"] == "bo"
    weights = {
        v["VariantName"]: v["CurrentWeight"]
        for v in cloud.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    }
    assert weights == {"blue": 1.0, "green": 0.0}
    out = runner.invoke(main, ["rollout", "abort", ENDPOINT, "--reason", "again"])  # repeatable: re-applies
    assert out.exit_code == 0 and "aborted r1" in out.output
    out = runner.invoke(main, ["rollout", "promote", ENDPOINT, "--reason", "x", "--by", "bo"])
    assert out.exit_code == 1 and "cannot promote rollout r1: it is aborted" in out.output
    out = runner.invoke(main, ["rollout", "retry", ENDPOINT, "--reason", "fixed the image", "--by", "bo",
                               "--rollout-id", "r2"])  # fmt: skip
    assert out.exit_code == 0 and "started r2" in out.output, out.output
    out = runner.invoke(main, ["rollout", "promote", ENDPOINT, "--reason", "urgent fix", "--by", "carol"])
    assert out.exit_code == 0 and "promoted r2" in out.output, out.output
    status = json.loads(runner.invoke(main, ["rollout", "status", ENDPOINT, "--json"]).output)
    assert status["state"]["rollout_id"] == "r2" and status["state"]["status"] == "promoted"
    assert status["audit"][-1]["actor"] == "carol" and "urgent fix (by carol)" in status["audit"][-1]["reason"]
    out = runner.invoke(main, ["rollout", "retry", ENDPOINT, "--reason", "x", "--rollout-id", "r1"])
    assert out.exit_code == 1 and "cannot retry" in out.output


def test_rollout_start_names_the_bad_key(cloud: EmbeddedCloud, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"endpoint": "e", "champion": "a", "challenger": "b",
                                      "strategy": {"kind": "linear", "increment": 3}}))  # fmt: skip
    out = CliRunner().invoke(main, ["rollout", "start", str(config)])
    assert out.exit_code != 0 and "strategy.linear.increment" in out.output
    out = CliRunner().invoke(main, ["rollout", "status", "nowhere"])
    assert out.exit_code != 0


def test_a_stack_that_is_not_deployed_is_one_clear_line(cloud: EmbeddedCloud) -> None:
    for args in (["status", ENDPOINT], ["abort", ENDPOINT, "--reason", "r"]):
        out = CliRunner().invoke(main, ["rollout", *args, "--stack", "nowhere"])
        assert out.exit_code == 1 and out.exception is not None and isinstance(out.exception, SystemExit)
        assert "tidewater-nowhere-rollouts" in out.output and "deployed" in out.output, out.output
