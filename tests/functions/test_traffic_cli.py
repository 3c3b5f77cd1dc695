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
    out = runner.invoke(main, ["rollout", "status", ENDPOINT])
    assert out.exit_code == 0 and "running" in out.output
    out = runner.invoke(main, ["rollout", "abort", ENDPOINT, "--reason", "pager went off"])
    assert out.exit_code == 0 and "aborted r1" in out.output
    status = json.loads(runner.invoke(main, ["rollout", "status", ENDPOINT, "--json"]).output)
    assert status["state"]["status"] == "aborted"
    assert status["audit"][-1]["reason"] == "aborted by operator: pager went off"
    weights = {
        v["VariantName"]: v["CurrentWeight"]
        for v in cloud.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    }
    assert weights == {"blue": 1.0, "green": 0.0}
    out = runner.invoke(main, ["rollout", "abort", ENDPOINT, "--reason", "again"])
    assert out.exit_code != 0 and "already aborted" in out.output


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
