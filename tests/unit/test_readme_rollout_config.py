"""The README's rollout config reference is a config `tide rollout start` accepts: every key it shows parses."""

from __future__ import annotations

from pathlib import Path

import yaml

from functions.traffic.config import load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_config_reference_parses_with_every_guardrail_it_shows() -> None:
    text = README.read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    raw = yaml.safe_load(block)
    config = load_config(raw)
    shown = [g["name"] for g in raw["judge"]["guardrails"]]
    assert [g.name for g in config.judge.guardrails] == shown
    assert {g["kind"] for g in raw["judge"]["guardrails"]} == {"rate", "mean", "shadow"}
