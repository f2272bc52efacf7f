"""Leader election for background work: one lock that at most one process holds at a time.

- On PostgreSQL the lock is a session-level advisory lock (``pg_try_advisory_lock``) on a
  connection of its own, so replicas on different machines share it and a leader that dies
  (process killed, host gone) releases it when PostgreSQL notices its connection is gone.
- On SQLite every process serves one data directory on one machine, so an exclusive ``flock``
  on a file beside the database does the same, and the kernel drops it with the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from modelyard.metadata.sql import raw_connector

# The advisory lock's key: any constant the deployment's other users of the database avoid.
ADVISORY_KEY = 0x6D6F64656C79  # "modely"


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; whether this process holds it now."""

    def still_held(self) -> bool:
        """Whether the lock is still this process's (a lost database connection loses it)."""

    def release(self) -> None: ...


class FileLeaderLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class PostgresLeaderLock:
    """The advisory lock on its own connection.

    Every method holds ``_mutex``: the background loop calls ``still_held`` in a worker thread,
    and cancelling that loop at shutdown does not stop the thread, so ``release`` can run while
    a check is still using the connection.
    """

    def __init__(self, engine: Engine) -> None:
        import psycopg  # here, not at the top: a registry on SQLite never loads the driver

        self._errors = psycopg.Error
        self._connect = raw_connector(engine)
        self._conn: Any = None
        self._mutex = threading.Lock()

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._conn is not None:
                return self._check()
            return self._acquire()

    def _acquire(self) -> bool:
        conn = self._connect()
        try:
            acquired = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0])
        except self._errors:
            conn.close()
            raise
        if not acquired:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        with self._mutex:
            return self._check()

    def _check(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except self._errors:  # any failure of the connection means the session and its lock are gone
            self._drop()
            return False
        return True

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None:
                with contextlib.suppress(self._errors):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
                self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(self._errors):
                conn.close()


def leader_lock(engine: Engine, data_dir: Path) -> LeaderLock:
    """The lock that fits the metadata backend."""
    if engine.dialect.name == "postgresql":
        return PostgresLeaderLock(engine)
    return FileLeaderLock(data_dir / "leader.lock")
