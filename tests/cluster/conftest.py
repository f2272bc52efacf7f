"""A whole deployment for the cluster tests: the suite's PostgreSQL, the moto S3 server, three
``modelyard serve`` replicas on their own ports, and a real nginx in front of them configured from
``deploy/nginx/modelyard.conf`` (the file users copy; only addresses and TLS are swapped out).

nginx comes from Debian (``scripts/bootstrap --system`` installs ``nginx-light``); a missing one
fails the tests with that instruction rather than skipping them.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.storage.s3 import S3Options
from tests.backends import s3_env
from tests.interop.conftest import skopeo  # noqa: F401  (the session fixture: fails without skopeo)
from tests.interop.serverproc import ServerProcess, attach_server_logs, free_port, register_servers

pytest_runtest_makereport = attach_server_logs

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = REPO_ROOT / "deploy" / "nginx" / "modelyard.conf"
ADMIN_PASSWORD = "cluster-admin-password-1"
REPLICAS = 3
GC_GRACE = 20  # seconds: longer than any push here (a retried one included), so no push loses its fresh blobs


def nginx_conf(shipped: str, port: int, replicas: list[int]) -> str:
    """The shipped server config with the test's addresses, plain HTTP on 127.0.0.1."""
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in replicas)
    conf = re.sub(r"(?m)^    server 10\.0\.0\.\d+:5000[^\n]*\n", "", shipped)
    conf = conf.replace("upstream modelyard {\n", "upstream modelyard {\n" + servers, 1)
    conf = conf.replace("    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{port};\n")
    conf = re.sub(r"(?m)^    ssl_certificate[^\n]*\n", "", conf)
    assert f"127.0.0.1:{replicas[-1]}" in conf and f"listen 127.0.0.1:{port};" in conf and "ssl" not in conf
    return conf


@dataclass
class Nginx:
    port: int
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_nginx(root: Path, port: int, replicas: list[int]) -> Nginx:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is not installed: run scripts/bootstrap --system (it installs Debian's nginx-light)")
    root.mkdir(parents=True, exist_ok=True)
    (root / "modelyard.conf").write_text(nginx_conf(SHIPPED_CONF.read_text(), port, replicas))
    temp = "".join(
        f"    {kind}_temp_path {root}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (root / "nginx.conf").write_text(
        f"daemon off;\nuser root;\nworker_processes 2;\npid {root}/nginx.pid;\nerror_log {root}/error.log info;\n"
        f"events {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log {root}/access.log;\n{temp}    include {root}/modelyard.conf;\n}}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "stderr.log", "wb"),  # noqa: SIM115 - the child keeps it
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(root / 'stderr.log').read_text()}{(root / 'error.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code in (200, 401):
                return Nginx(port, root, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("nginx did not answer within 20 s")


class Replica(ServerProcess):
    """A replica with authentication on: ready when ``/v2/`` answers at all (401 included)."""

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"modelyard serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/", timeout=2).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"replica on {self.port} did not answer:\n{self.log()}")


@dataclass
class Cluster:
    replicas: list[Replica]
    nginx: Nginx
    s3: S3Options
    database_url: str

    def logs(self) -> list[str]:
        return [replica.log() for replica in self.replicas]

    def leaders(self) -> list[Replica]:
        """The live replicas whose current run last said it leads background work."""
        found = []
        for replica in self.replicas:
            if replica.process is None or replica.process.poll() is not None:
                continue
            run = replica.log().rsplit("--- start #", 1)[-1]
            said = re.findall(r"this process (leads|no longer leads) background work", run)
            if said and said[-1] == "leads":
                found.append(replica)
        return found


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_server: Any, s3_server: Any
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    database_url = postgres_server.create_database("cluster")
    s3 = replace(s3_server.options, prefix=f"{s3_server.options.prefix}cluster-{secrets.token_hex(4)}/")
    ports = [free_port() for _ in range(REPLICAS)]
    nginx_port = free_port()
    monkeypatch = pytest.MonkeyPatch()
    replicas: list[Replica] = []
    register_servers(request.node, replicas)
    env = {
        **s3_server.env,
        **s3_env(s3),
        "MODELYARD_DATABASE_URL": database_url,
        "MODELYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MODELYARD_PUBLIC_HOST": f"127.0.0.1:{nginx_port}",
        "MODELYARD_TRUSTED_PROXIES": '["127.0.0.1"]',
        "MODELYARD_GC_INTERVAL": "1",
        "MODELYARD_GC_GRACE_PERIOD": str(GC_GRACE),
        "MODELYARD_LEADER_POLL_INTERVAL": "0.5",
        "MODELYARD_FSYNC": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nginx: Nginx | None = None
    try:
        for number, port in enumerate(ports):
            replica = Replica(
                root / f"replica{number}", root / f"replica{number}.log", port=port, extra=("--auth", "--access-log")
            )
            replicas.append(replica)
            replica.start()  # one after the other: the first migrates the database and creates admin
        nginx = start_nginx(root / "nginx", nginx_port, ports)
        yield Cluster(replicas, nginx, s3, database_url)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()
        monkeypatch.undo()
