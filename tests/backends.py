"""Whole-registry backends for the API, interop and crash suites: SQLite + filesystem (the
default every suite runs on) and PostgreSQL + S3 (the scaled-out deployment).

A module runs all its ``make_client``/``client`` tests on both by importing the fixture::

    from tests.backends import backend  # noqa: F401  (every test here: SQLite+files and PostgreSQL+S3)

which overrides the default ``backend`` of ``tests/conftest.py`` (``{}``: nothing changed) for that
module. The PostgreSQL is the suite's (``tests/pg.py``), the S3 the moto server of ``tests/s3.py``
(or the endpoint ``MODELYARD_TEST_S3_*`` names), each test with a fresh database and key prefix.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.storage.s3 import S3Options

BACKENDS = ["sqlite+filesystem", pytest.param("postgresql+s3", marks=pytest.mark.postgres)]


def s3_settings(options: S3Options, **extra: Any) -> dict[str, Any]:
    """``Settings`` values for the S3 store of ``options``."""
    return {
        "storage_backend": "s3",
        "s3_bucket": options.bucket,
        "s3_prefix": options.prefix,
        "s3_endpoint_url": options.endpoint_url,
        "s3_region": options.region,
        "s3_addressing_style": options.addressing_style,
        **extra,
    }


def s3_env(options: S3Options, **extra: str) -> dict[str, str]:
    """The same as ``MODELYARD_*`` environment variables, for a ``modelyard serve`` subprocess."""
    values = {key: value for key, value in s3_settings(options).items() if value is not None}
    return {f"MODELYARD_{key.upper()}": str(value) for key, value in {**values, **extra}.items()}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite+filesystem":
        return {}
    options: S3Options = request.getfixturevalue("s3_options")
    # Streamed through the registry, so these suites check its own Range answers; the redirect
    # (the S3 default) has its own tests in tests/api/test_blob_redirects.py.
    return {"database_url": request.getfixturevalue("postgres_url"), **s3_settings(options, blob_redirect=False)}


@pytest.fixture(params=BACKENDS)
def served_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """For suites that run ``modelyard serve`` subprocesses: their backends, through ``MODELYARD_*``
    environment variables the children inherit (PostgreSQL + S3 with the default 307 redirects,
    which the real clients then follow to the bucket)."""
    if request.param == "postgresql+s3":
        options: S3Options = request.getfixturevalue("s3_options")
        monkeypatch.setenv("MODELYARD_DATABASE_URL", request.getfixturevalue("postgres_url"))
        for name, value in s3_env(options).items():
            monkeypatch.setenv(name, value)
    return str(request.param)
