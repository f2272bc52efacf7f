"""``modelyard doctor``: is this machine's configuration able to serve, and serve with others?

Every check runs against what the settings name -- the metadata database and the blob store --
from the machine a replica will run on, and says in one line what is right or wrong. It writes
nothing that stays: a temporary table in a rolled-back transaction, one small test blob pushed
through the blob store's own upload interface (so a bucket policy that allows ``PutObject``
but not multipart or conditional writes shows up here, not in the first large push) and
deleted again. It never migrates: a database behind this modelyard's schema is reported.

Clock skew matters between replicas: tokens one replica signs carry times the others check,
and leases are judged by the database's and the store's clocks.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from modelyard.config import Settings
from modelyard.domain.digest import Digest
from modelyard.storage.base import BlobStore, UploadBusyError

MAX_SKEW_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    subject: str
    message: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.subject}: {self.message}"


@runtime_checkable
class HasClock(Protocol):
    """A store that can tell its server's time (the S3 store: the ``Date`` of a response)."""

    def server_time(self) -> datetime: ...


def _skew(subject: str, theirs: datetime) -> Check:
    skew = (theirs - datetime.now(UTC)).total_seconds()
    if abs(skew) > MAX_SKEW_SECONDS:
        return Check(
            False,
            subject,
            f"clock {skew:+.1f} s off this machine's (more than {MAX_SKEW_SECONDS:.0f} s): tokens signed "
            "by one replica look expired or not yet valid on another; run NTP (systemd-timesyncd, chrony)",
        )
    return Check(True, subject, f"clock within {abs(skew):.1f} s of this machine's")


def check_database(settings: Settings, engine: Engine) -> Iterator[Check]:
    subject = "database"
    url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            yield Check(True, subject, f"{url} reachable")
            now = conn.execute(text("SELECT CURRENT_TIMESTAMP")).scalar()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        yield Check(False, subject, f"{url} unreachable: {reason}")
        return
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TEMPORARY TABLE modelyard_doctor (n integer)")
            conn.exec_driver_sql("INSERT INTO modelyard_doctor VALUES (1)")
            conn.exec_driver_sql("DROP TABLE modelyard_doctor")
        yield Check(True, subject, "writable")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        yield Check(False, subject, f"not writable (a read-only replica or missing privileges?): {reason}")
    yield _schema(engine)
    if engine.dialect.name == "postgresql" and isinstance(now, datetime):
        yield _skew(subject, now if now.tzinfo else now.replace(tzinfo=UTC))


def _schema(engine: Engine) -> Check:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from modelyard.metadata.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return Check(True, "database", f"schema at {head}, the version this modelyard needs")
    if current is None:
        return Check(False, "database", f"empty (no modelyard schema): the first `modelyard serve` creates it ({head})")
    return Check(
        False,
        "database",
        f"schema at {current}, this modelyard needs {head}: start one `modelyard serve` of this version "
        "(it migrates before serving), or run the version that wrote it",
    )


def check_store(settings: Settings, store: BlobStore) -> Iterator[Check]:
    subject = f"storage ({settings.storage_backend})"
    where = (
        f"s3://{settings.s3_bucket}/{settings.s3_prefix}"
        if settings.storage_backend == "s3"
        else str(settings.data_dir.resolve())
    )
    data = secrets.token_bytes(1024)
    digest = Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())
    upload_id = f"doctor-{secrets.token_hex(8)}"
    step = "reach it"
    try:
        list(zip(range(1), store.scan_blobs(), strict=False))
        yield Check(True, subject, f"{where} reachable")
        step = "start an upload"
        store.start_upload(upload_id)
        step = "write to an upload"
        writer = store.open_upload(upload_id, 0)
        try:
            try:
                store.open_upload(upload_id, 0).close()
                exclusive = False
            except UploadBusyError:
                exclusive = True
            writer.write([data])
            writer.sync()
        finally:
            writer.close()
        step = "commit a blob"
        store.commit_upload(upload_id, digest, len(data))
        step = "read a blob back"
        if b"".join(store.read(digest)) != data:
            yield Check(False, subject, "a test blob read back differs from what was written")
            return
        step = "delete a blob"
        store.delete(digest)
        yield Check(True, subject, "writable (a test blob uploaded, committed, read back and deleted)")
    except Exception as exc:  # any backend's error: a diagnosis reports it, never crashes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        yield Check(False, subject, f"cannot {step} at {where}: {reason}")
        return
    finally:
        with contextlib.suppress(Exception):  # best-effort cleanup; a failure was reported above
            store.abort_upload(upload_id)
    if exclusive:
        yield Check(True, subject, "one writer per upload enforced")
    else:
        yield Check(
            False,
            subject,
            "a second writer could open an upload that was being written: the store ignores conditional "
            "writes (If-None-Match); replicas may corrupt an upload two clients write at once",
        )
    if isinstance(store, HasClock):
        try:
            yield _skew(subject, store.server_time())
        except Exception as exc:
            yield Check(False, subject, f"cannot read the server's clock: {exc}")


def check_tokens(settings: Settings) -> Check:
    if settings.token_secret is not None:
        return Check(True, "tokens", "signed with token_secret from the settings: give every replica the same one")
    return Check(True, "tokens", "signed with the secret kept in the database, shared by every replica using it")


def run_checks(settings: Settings) -> list[Check]:
    from modelyard.bootstrap import open_blob_store
    from modelyard.metadata.sql import create_metadata_engine

    checks: list[Check] = []
    engine = create_metadata_engine(settings.resolved_database_url)
    try:
        checks.extend(check_database(settings, engine))
    finally:
        engine.dispose()
    try:
        store = open_blob_store(settings)
    except Exception as exc:
        checks.append(Check(False, f"storage ({settings.storage_backend})", f"cannot be opened: {exc}"))
    else:
        checks.extend(check_store(settings, store))
    checks.append(check_tokens(settings))
    return checks
