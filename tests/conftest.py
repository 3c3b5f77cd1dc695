"""Shared fixtures. Every non-loopback socket is refused (pytest-socket, see pyproject addopts)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from jobs.embedded_cloud import EmbeddedCloud

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "tidewater-tests")


@pytest.fixture(scope="session")
def _cloud_server() -> Iterator[EmbeddedCloud]:
    with EmbeddedCloud() as cloud:
        yield cloud


@pytest.fixture
def cloud(_cloud_server: EmbeddedCloud) -> Iterator[EmbeddedCloud]:
    """The embedded cloud, emptied before each test (one server for the whole session)."""
    _cloud_server.reset()
    yield _cloud_server
