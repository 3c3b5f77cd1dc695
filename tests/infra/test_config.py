"""The stack config: defaults declared once (Pulumi.yaml), read into a typed object, bad keys named."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.config import K8S_KEY_PREFIX, LOG_RETENTION_DAYS, ConfigError, StackConfig, declared_keys, load
from infra.k8s import config as k8s_config
from jobs.train.config import TrainConfig
from schemas.naming import DEFAULT_MODEL_NAME, MODEL_VERSION_PATTERN, model_version_name
from tests.infra.stack_run import REPO, stack_config


def test_every_key_is_declared_once_in_pulumi_yaml_and_typed_once() -> None:
    declared = set(declared_keys())
    aws_keys = {key for key in declared if not key.startswith(K8S_KEY_PREFIX)}
    assert aws_keys == set(StackConfig.model_fields)
    # The k8s_* keys belong to infra/k8s/config.py: every declared one is read there (target is shared).
    assert declared - aws_keys <= set(k8s_config.declared_keys())
    # No default hides in the model: a key missing from Pulumi.yaml's defaults must come from the stack.
    assert all(field.is_required() for field in StackConfig.model_fields.values())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_example_stacks_load(stack: str) -> None:
    cfg = load("tidewater", stack_config(stack))
    assert cfg.target == "aws" and cfg.stage == "serving"
    # Variants are named <model>-<version>, as `tide deploy` names every later one.
    assert set(cfg.weights) == {model_version_name("fraud", v) for v in cfg.model_versions.values()}


def test_the_stack_serves_the_model_name_training_writes_by_default() -> None:
    assert declared_keys()["model_name"]["default"] == DEFAULT_MODEL_NAME
    assert TrainConfig.model_fields["model_name"].default == DEFAULT_MODEL_NAME
    assert declared_keys()["stage"]["default"] == "lake"  # a new stack starts where nothing is needed first


def test_stage_serving_needs_a_trained_model_version() -> None:
    values = stack_config("dev") | {"tidewater:champion_model_version": ""}
    with pytest.raises(ConfigError, match="stage serving needs champion_model_version"):
        load("tidewater", values)
    assert load("tidewater", values | {"tidewater:stage": "platform"}).model_versions == {}


@pytest.mark.parametrize("stage", ["lakes", "serve", ""])
def test_an_unknown_stage_is_named(stage: str) -> None:
    with pytest.raises(ConfigError, match="tidewater:stage"):
        load("tidewater", stack_config("dev") | {"tidewater:stage": stage})


@settings(max_examples=40, deadline=None)
@given(version=st.text(max_size=40).filter(lambda v: v and not re.fullmatch(MODEL_VERSION_PATTERN, v)))
def test_a_version_training_could_not_have_written_is_refused(version: str) -> None:
    with pytest.raises(ConfigError, match="tidewater:champion_model_version"):
        load("tidewater", stack_config("dev") | {"tidewater:champion_model_version": version})


def test_champion_and_challenger_versions_must_differ() -> None:
    prod = stack_config("prod")
    values = prod | {"tidewater:challenger_model_version": prod["tidewater:champion_model_version"]}
    with pytest.raises(ConfigError, match="must differ"):
        load("tidewater", values)


def test_every_example_stack_file_is_tested() -> None:
    assert {p.name for p in REPO.glob("Pulumi.*.yaml")} == {"Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.onprem.yaml"}


def test_defaults_apply_and_stack_values_override() -> None:
    dev = load("tidewater", stack_config("dev"))
    assert dev.log_retention_days == declared_keys()["log_retention_days"]["default"]
    assert dev.ingest_reserved_concurrency == 2  # Pulumi.dev.yaml overrides the default of 10
    prod = load("tidewater", stack_config("prod"))
    assert sorted(prod.weights.values()) == [10, 90]
    assert prod.weights[prod.variant_names["champion"]] == 90


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match="tidewater:ingest_batchsize"):
        load("tidewater", stack_config("dev") | {"tidewater:ingest_batchsize": "3"})


def test_missing_required_key_is_named() -> None:
    values = stack_config("dev")
    del values["tidewater:endpoint_image"]
    with pytest.raises(ConfigError, match=r"missing config key.*tidewater:endpoint_image"):
        load("tidewater", values)


def test_other_namespaces_are_left_to_their_providers() -> None:
    assert load("tidewater", stack_config("dev") | {"aws:profile": "ml"}).target == "aws"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("target", "gcp"),
        ("log_retention_days", "31"),
        ("drift_schedule", "every hour"),
        ("champion_weight", "-1"),
        ("alert_email", "not-an-address"),
        ("ingest_batch_size", "11"),
        ("ingest_image_tag", "has space"),
        ("endpoint_instance_type", "m5.large"),
        ("raw_infrequent_access_days", "7"),
        ("endpoint_image", "docker.io/library/python:3.12"),
    ],
)
def test_invalid_value_is_named(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"tidewater:{key}"):
        load("tidewater", stack_config("dev") | {f"tidewater:{key}": value})


def test_inconsistent_values_are_refused_naming_the_keys() -> None:
    values = stack_config("prod") | {"tidewater:champion_weight": "0", "tidewater:challenger_weight": "0"}
    with pytest.raises(ConfigError, match="champion_weight and challenger_weight"):
        load("tidewater", values)
    values = stack_config("dev") | {"tidewater:endpoint_min_instances": "3", "tidewater:endpoint_max_instances": "2"}
    with pytest.raises(ConfigError, match="endpoint_max_instances"):
        load("tidewater", values)


@settings(max_examples=40, deadline=None)
@given(days=st.integers(min_value=-10, max_value=4000).filter(lambda d: d not in LOG_RETENTION_DAYS))
def test_any_unsupported_log_retention_is_refused(days: int) -> None:
    with pytest.raises(ConfigError, match="tidewater:log_retention_days"):
        load("tidewater", stack_config("dev") | {"tidewater:log_retention_days": str(days)})


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=12).filter(lambda t: not t.strip().lstrip("-").isdigit()))
def test_non_numeric_integers_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="tidewater:ingest_memory_mb"):
        load("tidewater", stack_config("dev") | {"tidewater:ingest_memory_mb": text})
