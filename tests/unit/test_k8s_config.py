"""infra/k8s/config.parse with generated bounds: accepted exactly when the bounds make a working cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.k8s.config import K8sConfigError, parse
from tests.infra.k8s_harness import stack_config

DEFAULTS = stack_config(None)


def _getter(**overrides: Any) -> Any:
    values: dict[str, Any] = {}
    for key, raw in DEFAULTS.items():
        name = key.removeprefix("tidewater:")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    values.update(overrides)
    return lambda name: values.get(name)


@given(low=st.integers(-2, 6), want=st.integers(-2, 6), high=st.integers(-2, 6), gpus=st.integers(0, 2))
@settings(max_examples=80, deadline=None)
def test_gpu_pool_bounds_and_gpu_requests(low: int, want: int, high: int, gpus: int) -> None:
    get = _getter(k8s_gpu_min_size=low, k8s_gpu_desired_size=want, k8s_gpu_max_size=high, k8s_training_gpus=gpus)
    valid = 0 <= low <= want <= high and (gpus == 0 or high >= 1)
    if valid:
        cfg = parse(get)
        assert (cfg.gpu_pool.min_size, cfg.gpu_pool.desired_size, cfg.gpu_pool.max_size) == (low, want, high)
        assert cfg.has_gpu_pool == (high >= 1)
    else:
        with pytest.raises(K8sConfigError, match="tidewater:k8s"):
            parse(get)


@given(low=st.integers(-3, 12), high=st.integers(-3, 12))
@settings(max_examples=60, deadline=None)
def test_dask_autoscaler_bounds(low: int, high: int) -> None:
    get = _getter(k8s_dask_min_workers=low, k8s_dask_max_workers=high)
    if 0 <= low <= high and high >= 1:
        cfg = parse(get)
        assert (cfg.dask_min_workers, cfg.dask_max_workers) == (low, high)
    else:
        with pytest.raises(K8sConfigError, match="k8s_dask_min_workers"):
            parse(get)


@given(st.text(max_size=10))
@settings(max_examples=40, deadline=None)
def test_unknown_target_or_vendor_is_rejected(word: str) -> None:
    if word not in ("aws", "kubernetes"):
        with pytest.raises(K8sConfigError, match="tidewater:target"):
            parse(_getter(target=word))
    if word not in ("nvidia", "amd", "intel"):
        with pytest.raises(K8sConfigError, match="tidewater:k8s_gpu_vendor"):
            parse(_getter(k8s_gpu_vendor=word))
