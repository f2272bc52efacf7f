"""A real ``modelyard serve`` that the crash tests SIGKILL and restart on the same data dir and port,
on SQLite + the filesystem and on PostgreSQL + S3 (``tests/backends.py``: the server inherits
``MODELYARD_*`` variables), and a witness of what its blob store holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import served_backend  # noqa: F401  (every crash_server test: both backends)
from tests.crash.support import S3_LEASE_S, FilesystemBytes, S3Bytes, StoredBytes
from tests.interop.serverproc import ServerProcess, attach_server_logs, register_servers

pytest_runtest_makereport = attach_server_logs


@pytest.fixture
def stored_bytes(request: pytest.FixtureRequest, tmp_path: Path, served_backend: str) -> StoredBytes:  # noqa: F811
    if served_backend == "sqlite+filesystem":
        return FilesystemBytes(tmp_path / "data")
    options = request.getfixturevalue("s3_options")
    return S3Bytes(request.getfixturevalue("s3_server").client(), options.bucket, options.prefix)


@pytest.fixture
def crash_server(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    served_backend: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServerProcess]:
    """One server (fsync on, as in production); ``kill()`` SIGKILLs it, ``restart()`` brings it back.

    On S3: blobs stream through the registry (the suite reads them back with plain HTTP; the
    redirect has its own tests), and an upload whose writer died is free again after 3 s, not 30
    (the retry of a killed request waits for the lease: see ``retry_while_busy``).
    """
    if served_backend != "sqlite+filesystem":
        monkeypatch.setenv("MODELYARD_BLOB_REDIRECT", "false")
        monkeypatch.setenv("MODELYARD_S3_UPLOAD_LEASE", str(S3_LEASE_S))
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    register_servers(request.node, [server])
    server.start()
    yield server
    server.stop()
