import os
import socket

import boto3
import pytest
import s3fs
from pytest_socket import SocketConnectBlockedError

from jobs.embedded_cloud import EmbeddedCloud


def test_boto3_and_s3fs_reach_the_embedded_cloud_by_default(cloud: EmbeddedCloud) -> None:
    assert cloud.endpoint_url.startswith("http://127.0.0.1:")
    s3 = boto3.client("s3")  # created as production code creates it: no endpoint argument
    s3.create_bucket(Bucket="probe")
    fs = s3fs.S3FileSystem()
    with fs.open("probe/hello.txt", "wb") as f:
        f.write(b"hi")
    assert s3.get_object(Bucket="probe", Key="hello.txt")["Body"].read() == b"hi"
    assert fs.cat("probe/hello.txt") == b"hi"


def test_reset_forgets_resources(cloud: EmbeddedCloud) -> None:
    assert cloud.client("s3").list_buckets()["Buckets"] == []


def test_stop_restores_the_environment() -> None:
    before = os.environ.get("AWS_ENDPOINT_URL")
    with EmbeddedCloud() as inner:
        assert os.environ["AWS_ENDPOINT_URL"] == inner.endpoint_url
    assert os.environ.get("AWS_ENDPOINT_URL") == before


def test_non_loopback_sockets_are_blocked() -> None:
    with pytest.raises(SocketConnectBlockedError), socket.create_connection(("203.0.113.1", 443), timeout=1):
        pass
