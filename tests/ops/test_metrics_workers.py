"""``/metrics`` of a real ``modelyard serve --workers 2``: a scrape lands on either worker and
still counts every request both answered (prometheus-client's multiprocess mode over a per-run
directory, ``metrics.py``), and shows two live workers."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.interop import serverproc
from tests.interop.serverproc import ServerProcess

REQUESTS = 40


@pytest.fixture
def two_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    # Each spawned worker imports the whole server; on a loaded 2-core machine that took 15 s.
    monkeypatch.setattr(serverproc, "START_TIMEOUT", 120.0)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # where the server makes its metrics directory
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", extra=("--workers", "2", "--no-access-log"))
    server.start()
    yield server
    server.stop()


def metrics_dirs(server: ServerProcess) -> list[Path]:
    return sorted((server.data_dir.parent / "tmp").glob("modelyard-metrics-*"))


def get(server: ServerProcess, path: str) -> tuple[int, str]:
    """One request on a connection of its own, so the kernel may hand it to either worker."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_two_workers_report_one_sum(two_workers: ServerProcess) -> None:
    workers = ("modelyard_workers", ())
    deadline = time.monotonic() + 120
    while samples(get(two_workers, "/metrics")[1]).get(workers) != 2:  # the port answers once one is up
        assert time.monotonic() < deadline, "the second worker never started"
        time.sleep(0.1)
    for _ in range(REQUESTS):
        assert get(two_workers, "/healthz")[0] == 200
    healthz = ("modelyard_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))
    seen = []
    for _ in range(8):  # several scrapes, on fresh connections: each worker answers some
        status, text = get(two_workers, "/metrics")
        assert status == 200
        scraped = samples(text)
        seen.append((scraped[healthz], scraped[workers]))
    assert seen == [(REQUESTS, 2)] * 8, "every scrape counts both workers' requests and sees two workers"
    log = two_workers.log()
    assert "2 worker(s)" in log
    (directory,) = metrics_dirs(two_workers)
    writers = {p.stem.rsplit("_", 1)[1] for p in directory.glob("counter_*.db")}
    assert len(writers) == 2, f"both workers count into the run's directory: {sorted(directory.iterdir())}"
    two_workers.stop()
    assert metrics_dirs(two_workers) == [], "the run's metrics directory goes with the server"
