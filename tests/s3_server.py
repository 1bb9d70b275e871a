"""A real S3 API on loopback for tests: moto's server in a thread of the test process.

Other test modules import the fixtures into their namespace so pytest finds them,
``from tests.s3_server import new_bucket, s3_endpoint, s3_env  # noqa: F401``, or call
``start_moto_server()`` directly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto.server import ThreadedMotoServer

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"

# Anything that could send boto3 elsewhere than the loopback server: a proxy, a profile or config
# file, the EC2 metadata endpoint as a credential source.
_SCRUBBED = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
)


def start_moto_server() -> tuple[str, Callable[[], None]]:
    """Start moto on 127.0.0.1 with a port the OS picks; returns (endpoint_url, stop)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() returns once the listening socket is bound (moto sets an event right after binding).
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server.stop


def s3_env_vars(endpoint_url: str | None = None) -> dict[str, str]:
    """Environment for boto3 to talk to the test server and nothing else."""
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": "*",
        "no_proxy": "*",
    }
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


def create_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a fresh bucket (a unique name unless given) on the server and return its name."""
    bucket = name or f"vmsres-test-{uuid.uuid4().hex[:16]}"
    client: Any = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    try:
        client.create_bucket(Bucket=bucket)
    finally:
        client.close()
    return bucket


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto server for the whole session; tests isolate themselves with their own bucket."""
    endpoint_url, stop = start_moto_server()
    try:
        yield endpoint_url
    finally:
        stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the AWS environment variables at the test server; returns its endpoint URL."""
    for name in _SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_env_vars(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture
def new_bucket(s3_env: str) -> str:
    """A fresh, empty bucket on the test server (with the AWS environment pointed at it)."""
    return create_bucket(s3_env)
