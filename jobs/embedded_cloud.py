"""The embedded cloud: moto's server on a free 127.0.0.1 port, with every client pointed at it.

boto3, botocore and s3fs (through aiobotocore) all honour AWS_ENDPOINT_URL, so code under test creates its
clients exactly as in production. Fake credentials and a region are set for the duration and the previous
environment is restored on stop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from moto.server import ThreadedMotoServer

DEFAULT_REGION = "us-east-1"
_ENV_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_PROFILE",
    "GX_ANALYTICS_ENABLED",
)


def restore_environment(saved: dict[str, str | None]) -> None:
    """Put back environment variables saved as {name: value or None (was unset)}."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class EmbeddedCloud:
    """Start with `with EmbeddedCloud() as cloud:`; `cloud.endpoint_url` is the server's address."""

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._server: ThreadedMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self.endpoint_url = ""

    def start(self) -> EmbeddedCloud:
        if self._server is not None:
            raise RuntimeError("the embedded cloud is already running")
        # moto's request handler logs every request through werkzeug; keep the rehearsal's output readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        self._saved_env = {key: os.environ.get(key) for key in _ENV_KEYS}
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(key, None)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                # Never read a developer's real profile or credentials while pointed at the fake cloud.
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_CONFIG_FILE": os.devnull,
                "GX_ANALYTICS_ENABLED": "False",
            }
        )
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        restore_environment(self._saved_env)

    def reset(self) -> None:
        """Forget every resource, as moto's /moto-api/reset does, without restarting the server."""
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options for this cloud (explicit, for code that passes options rather than env)."""
        return {"client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region}}

    def __enter__(self) -> EmbeddedCloud:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def embedded_cloud(region: str = DEFAULT_REGION) -> Iterator[EmbeddedCloud]:
    with EmbeddedCloud(region) as cloud:
        yield cloud
