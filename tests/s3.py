"""An S3 server for the test suite: ``moto`` in server mode, or any endpoint the environment names.

``tests/conftest.py`` re-exports the fixtures for every suite::

    from tests.s3 import s3_server, s3_options  # noqa: F401

``s3_server`` (session scope) starts ``python -m moto.server`` on a free port of 127.0.0.1 (a real
HTTP server speaking the S3 API: signatures, multipart uploads, conditional writes, presigned
URLs), creates one bucket and stops the server at session end. ``s3_options`` (function scope)
gives each test its own key prefix in that bucket, so tests never see each other's objects.

Against another S3 (MinIO, Ceph RGW, AWS) run the same tests unchanged with::

    MODELYARD_TEST_S3_ENDPOINT=http://minio:9000   # omit for AWS itself
    MODELYARD_TEST_S3_BUCKET=modelyard-tests       # an existing bucket the credentials may write
    MODELYARD_TEST_S3_REGION=us-east-1             # optional
    MODELYARD_TEST_S3_ADDRESSING=path              # optional: auto | path | virtual
    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...  # or any source of the AWS credential chain

Then no moto is started; the tests write below ``modelyard-test-<random>/`` and delete what
they wrote only through the registry's own operations (run them on a scratch bucket).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import boto3
import httpx
import pytest
from botocore.config import Config

from modelyard.storage.s3 import S3Options

ENDPOINT_ENV = "MODELYARD_TEST_S3_ENDPOINT"
BUCKET_ENV = "MODELYARD_TEST_S3_BUCKET"
START_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class S3Server:
    """Where the tests' S3 is and how to reach it (``env``: what a child process needs)."""

    options: S3Options
    env: dict[str, str]

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.options.endpoint_url,
            region_name=self.options.region,
            aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY"),
            config=Config(s3={"addressing_style": self.options.addressing_style}),
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_moto(port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A moto server on 127.0.0.1 (a free port unless given); returns the process and its URL."""
    port = port or _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}: install it with scripts/bootstrap --dev")
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"moto server did not answer on {url} within {START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    bucket = os.environ.get(BUCKET_ENV)
    if bucket:
        options = S3Options(
            bucket=bucket,
            prefix=f"modelyard-test-{secrets.token_hex(4)}/",
            endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
            region=os.environ.get("MODELYARD_TEST_S3_REGION") or None,
            addressing_style=os.environ.get("MODELYARD_TEST_S3_ADDRESSING", "auto"),
        )
        yield S3Server(options, {k: v for k, v in os.environ.items() if k.startswith("AWS_")})
        return
    process, url = start_moto()
    env = {
        "AWS_ACCESS_KEY_ID": "modelyard",
        "AWS_SECRET_ACCESS_KEY": "modelyard-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    server = S3Server(
        S3Options(bucket="modelyard-tests", endpoint_url=url, region="us-east-1", addressing_style="path"), env
    )
    server.client().create_bucket(Bucket="modelyard-tests")  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def s3_options(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Options:
    """The tests' bucket with a fresh prefix; the AWS credential chain points at it."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return replace(s3_server.options, prefix=f"{s3_server.options.prefix}t-{secrets.token_hex(6)}/")
