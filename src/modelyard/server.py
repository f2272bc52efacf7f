"""Running the app: one process, or several workers sharing the port with ``SO_REUSEPORT``.

Migrations run once in the parent before any worker starts. Workers are independent
processes: an upload started on one continues on another because its state lives in the
metadata store and the data directory, not in a worker's memory.

What stops the start (a data directory that cannot be created, an address already in use)
is raised as :class:`ServeError`, whose message is one line for the operator; with several
workers the parent probes the address first, so the error is reported once, not per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import ssl
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NoReturn

from aiohttp import web

from modelyard import metrics
from modelyard.app import create_app
from modelyard.bootstrap import build_registry, open_metadata
from modelyard.config import Settings
from modelyard.metadata.migrations import current_revision, head_revision

log = logging.getLogger("modelyard")


class ServeError(Exception):
    """The registry could not start (or a worker died); the message is one line naming the cause."""


def _listen_error(settings: Settings, exc: OSError) -> ServeError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return ServeError(f"cannot listen on {settings.host}:{settings.port} (settings 'host'/'port'): {reason}")


async def _probe_address(settings: Settings) -> None:
    """Bind the address the way the workers will, and let it go again."""
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(asyncio.Protocol, settings.host, settings.port, reuse_port=True)
    except OSError as exc:
        raise _listen_error(settings, exc) from None
    server.close()
    await server.wait_closed()


def _announce(settings: Settings) -> None:
    """Say where the registry listens, once the address is known to be ours."""
    scheme = "https" if settings.tls_cert else "http"
    log.info(
        "modelyard listening on %s://%s:%d (data in %s, %d worker(s))",
        scheme, settings.host, settings.port, settings.data_dir.resolve(), settings.workers,
    )  # fmt: skip


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


_MiB = 1024 * 1024


def _tune_malloc() -> None:
    """Keep upload receive buffers on the heap instead of fresh ``mmap``s (glibc only).

    asyncio receives into new 256 KiB ``bytes``; above glibc's mmap threshold (128 KiB at
    start, moved around dynamically) each one is a fresh ``mmap`` that is ``munmap``-ed when
    freed, so a large share of uploaded bytes land in freshly faulted, zeroed pages (~250,000
    page faults per 2 GiB). A fixed 1 MiB threshold, and an 8 MiB trim threshold so freed heap
    is reused rather than returned and faulted back, measured -14% server CPU per uploaded GB
    and +2 MiB RSS (bench/README.md, Results log). Explicit ``MALLOC_*`` settings win.
    """
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    mallopt(m_mmap_threshold, _MiB)
    mallopt(m_trim_threshold, 8 * _MiB)


async def _serve(settings: Settings, reuse_port: bool) -> None:
    _tune_malloc()  # in the process that serves: the parent with one worker, else each worker
    app = create_app(settings, migrate=False)
    runner = web.AppRunner(app, access_log=logging.getLogger("modelyard.access") if settings.access_log else None)
    await runner.setup()
    site = web.TCPSite(
        runner,
        settings.host,
        settings.port,
        ssl_context=_ssl_context(settings),
        reuse_port=reuse_port or None,
        backlog=1024,
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise _listen_error(settings, exc) from None
    if not reuse_port:
        _announce(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


async def _bootstrap_admin(settings: Settings) -> None:
    """Create the first administrator; a generated password is printed once, on the console only."""
    runtime = build_registry(settings, migrate=False)
    try:
        password = await runtime.registry.identity.bootstrap_admin()
    finally:
        runtime.close()
    if password is not None:
        print(
            "\n  modelyard: created the administrator 'admin' with the generated password\n\n"
            f"      {password}\n\n  It is shown only this once. Log in with: modelyard login --username admin\n",
            file=sys.stderr,
            flush=True,
        )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``\n`` -> ``\\n``, other control characters -> ``\\xNN``/``\\uNNNN``: one record, one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class OneLineFormatter(logging.Formatter):
    """Escapes control characters in every record's message, whatever field they came in through
    (a user name with ``\n`` in a failed login must not write a forged line into the log). A
    traceback, appended after the message, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """``log_format = "json"``: one JSON object per line (time, level, logger, message, and the
    traceback if any), for log collectors. ``json.dumps`` escapes every control character (and,
    with ``ensure_ascii``, U+2028/U+2029), so a record stays one line here too."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])


def _worker(settings: Settings) -> None:
    _configure_logging(settings)
    try:
        asyncio.run(_serve(settings, reuse_port=True))
    except ServeError as exc:
        log.error("%s", exc)
        sys.exit(1)


def _upgrade(settings: Settings) -> None:
    _configure_logging(settings)
    open_metadata(settings).close()


def _migrate(settings: Settings) -> None:
    """Bring the database to the newest schema, in a child process when there is anything to do:
    alembic (with Mako and Pygments) would stay in this process, which may go on to serve, for
    its whole life (~12 MiB). A failure is reported by migrating here once more."""
    store = open_metadata(settings, migrate=False)
    try:
        if current_revision(store.engine) == head_revision():
            return
    finally:
        store.close()
    child = multiprocessing.get_context("spawn").Process(target=_upgrade, args=(settings,), name="modelyard-migrate")
    child.start()
    child.join()
    if child.exitcode != 0:
        open_metadata(settings).close()


def run(settings: Settings) -> None:
    """Migrate, then serve until SIGINT/SIGTERM."""
    _configure_logging(settings)
    try:
        _migrate(settings)
    except OSError as exc:
        raise ServeError(f"invalid setting 'data_dir': cannot use {settings.data_dir}: {exc.strerror or exc}") from None
    if settings.auth_enabled:
        asyncio.run(_bootstrap_admin(settings))
    else:
        log.warning("authentication is disabled: anyone who can reach this port can push, pull and delete")
    if settings.workers == 1:
        _exec_serving_process(settings)
    asyncio.run(_probe_address(settings))
    _announce(settings)
    with _metrics_directory():
        _run_workers(settings)


def _exec_serving_process(settings: Settings) -> NoReturn:
    """Become a lean process that serves (same PID, signals and output), via ``exec``.

    The process that parsed the command line also holds the CLI (Typer, Rich, the HTTP
    clients: ~9 MiB) and whatever migrating and creating the first administrator touched
    (argon2's memory at its peak); a worker of ``--workers N`` holds none of it. ``exec`` gives
    the one-worker server the same footing. The settings travel through an inherited pipe,
    pickled (never through the environment or the command line, where their secrets would show).
    """
    payload = pickle.dumps(settings)
    if len(payload) > 65536:  # a pipe holds 64 KiB before a write blocks; settings are ~2 KiB
        raise ServeError("the settings are too large to hand to the serving process")
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # what was printed (a generated admin password) must not die with the image
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, "-m", "modelyard.serving", str(read_end)])


def serve_from_pipe(fd: int) -> None:
    """The exec'd serving process: settings from ``fd``, then serve until SIGINT/SIGTERM."""
    with os.fdopen(fd, "rb") as pipe:
        settings = pickle.loads(pipe.read())  # written by our own parent, just now
    if not isinstance(settings, Settings):
        raise SystemExit("modelyard: the serving process got no settings")
    _configure_logging(settings)
    try:
        asyncio.run(_serve(settings, reuse_port=False))
    except ServeError as exc:
        print(f"modelyard: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


@contextlib.contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory for this run's multiprocess metrics (``metrics.py``), set in the
    environment the workers inherit, and removed when they have all stopped."""
    directory = tempfile.mkdtemp(prefix="modelyard-metrics-")
    previous = os.environ.get(metrics.MULTIPROC_ENV)
    os.environ[metrics.MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(metrics.MULTIPROC_ENV, None)
        else:
            os.environ[metrics.MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def _run_workers(settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(settings,), daemon=True) for _ in range(settings.workers)]
    for process in workers:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in workers:
            if process.pid is not None and process.is_alive():
                process.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in workers:
        process.join()
        if process.pid is not None:
            metrics.worker_exited(process.pid)
    failed = [p.exitcode for p in workers if p.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT)]
    if failed:
        raise ServeError(f"{len(failed)} of {len(workers)} workers failed (exit codes {failed}); see the log above")
