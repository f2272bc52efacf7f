"""A real, throwaway PostgreSQL server for the test suite, started by the tests themselves.

``tests/conftest.py`` re-exports both fixtures for every suite::

    from tests.pg import postgres_server, postgres_url  # noqa: F401

Another conftest that imports ``postgres_server`` registers its own session fixture, i.e. starts a
second server: don't.

``postgres_server`` (session scope) runs ``initdb`` into a temporary directory and starts
``postgres`` on ``127.0.0.1`` with a free port, its unix socket in the same directory, then stops
it and deletes the directory at session end. ``postgres_url`` (function scope) creates a fresh
database per test (``test_<n>``) and drops it afterwards, so tests never see each other's rows.

Where the binaries come from: ``$MODELYARD_PG_BINDIR`` if set, else the newest
``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql`` package, which
``scripts/bootstrap --system`` installs). Missing binaries FAIL the tests that need them, with
that instruction: a skipped PostgreSQL run would look green while proving nothing.

Root: ``initdb`` and ``postgres`` refuse to run as root, and the tests and CI do run as root, so
then both run as the ``postgres`` system user (created by the Debian package) through
``runuser -u postgres --``, in a temporary directory chowned to that user.

Collation: the cluster's default collation is ICU ``en-US`` (a linguistic order where ``-``,
``_`` and ``.`` do not sort by byte), which is what a typical production database has. The
schema promises bytewise order through ``COLLATE "C"`` columns; under a ``C`` default the
contract tests could not tell whether that promise is kept.

Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the
server lives for one test session and its data is thrown away.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

BINDIR_ENV = "MODELYARD_PG_BINDIR"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
NEEDED = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT_S = 30


class PostgresUnavailableError(RuntimeError):
    """The server cannot be started; the message says what to do about it."""


def find_bindir() -> Path:
    """The directory holding ``initdb``/``pg_ctl``/``postgres``: the override, or Debian's newest."""
    override = os.environ.get(BINDIR_ENV)
    candidates = [Path(override)] if override else _debian_bindirs()
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in NEEDED):
            return bindir
    where = f"${BINDIR_ENV}={override}" if override else f"{DEBIAN_ROOT}/*/bin"
    raise PostgresUnavailableError(
        f"PostgreSQL server binaries ({', '.join(NEEDED)}) not found in {where}. "
        "The PostgreSQL tests need a real server: run `scripts/bootstrap --system` "
        "(installs Debian's postgresql package), or point $MODELYARD_PG_BINDIR at a bin directory."
    )


def _debian_bindirs() -> list[Path]:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    return sorted(DEBIAN_ROOT.glob("*/bin"), key=version, reverse=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running throwaway cluster: trust authentication, superuser ``postgres``."""

    bindir: Path
    root: Path
    port: int
    host: str = "127.0.0.1"
    startup_seconds: float = 0.0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for ``database``."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname=database, autocommit=True, connect_timeout=5
        )

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whatever still holds it open."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def start(self) -> None:
        began = time.monotonic()
        _run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--locale-provider=icu",
                "--icu-locale=en-US",
                "--no-sync",
            ],
            what="initdb",
        )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                f"-c listen_addresses={self.host}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        _run(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_S),
            ],
            what="pg_ctl start",
            log=self.root / "server.log",
        )
        self._wait_ready()
        self.startup_seconds = time.monotonic() - began

    def _wait_ready(self) -> None:
        # ``pg_ctl -w`` already waited for the postmaster; this also proves TCP on our port works.
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresUnavailableError(f"PostgreSQL on port {self.port} never accepted: {exc}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            # The data is thrown away, so there is nothing to flush: immediate is fine and fast.
            _run(
                [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "immediate", "-w"], "pg_ctl stop"
            )


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` as the ``postgres`` system user when we are root (initdb/postgres refuse root)."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", SYSTEM_USER, "--", *argv]


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        details = (result.stderr or result.stdout).strip()
        if log is not None and log.exists():
            details += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
        raise PostgresUnavailableError(f"{what} failed (exit {result.returncode}):\n{details}")


def _make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            shutil.rmtree(root)
            raise PostgresUnavailableError(
                f"running as root, but there is no {SYSTEM_USER!r} system user to run PostgreSQL as: "
                "run `scripts/bootstrap --system` (Debian's postgresql package creates it)"
            ) from None
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


def start_server() -> PostgresServer:
    """Start a throwaway cluster; the caller must :meth:`PostgresServer.stop` it and delete ``root``."""
    bindir = find_bindir()
    root = _make_root()
    server = PostgresServer(bindir=bindir, root=root, port=free_port())
    try:
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (fails, never skips, when it cannot start)."""
    problem: str | None = None
    try:
        server = start_server()
    except PostgresUnavailableError as exc:
        problem = str(exc)
    if problem is not None:  # outside the ``except``: one clear message, no chained traceback
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty database for this test only."""
    name = f"test_{next(_database_numbers)}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
