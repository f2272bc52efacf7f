"""Starting the two registries on loopback with fresh storage, and reading their costs from /proc.

CPU time is ``utime + stime`` from ``/proc/<pid>/stat`` summed over the server process and all
its descendants (modelyard's workers). Peak RSS is ``VmHWM`` from ``/proc/<pid>/status``, reset
before each workload by writing ``5`` to ``/proc/<pid>/clear_refs``, summed over the process tree
(for modelyard with several workers that counts the idle parent too: a conservative figure).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from common import CommandError, fetch_token, free_port, log

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    children = _children_map()
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _listeners(port: int) -> int:
    """How many sockets LISTEN on 127.0.0.1:``port`` (one per SO_REUSEPORT worker)."""
    wanted = f"0100007F:{port:04X}"
    count = 0
    with open("/proc/net/tcp") as handle:
        for line in handle.readlines()[1:]:
            parts = line.split()
            if parts[1] == wanted and parts[3] == "0A":
                count += 1
    return count


def _has_no_auth_flag(src: Path | None) -> bool:
    """Auth became on-by-default with a ``--no-auth`` flag; older trees (``--rev``) have neither."""
    cli = (src if src is not None else Path(__file__).resolve().parent.parent / "src") / "modelyard" / "cli"
    return any("no-auth" in path.read_text(errors="replace") for path in cli.glob("*.py"))


@dataclass
class Server:
    """One registry process (tree) on a loopback port with its own fresh data directory."""

    name: str  # "distribution" or "modelyard"
    label: str  # e.g. "modelyard[w2]"
    root: Path
    workers: int = 1
    src: Path | None = None  # modelyard source tree to run (None: whatever the venv imports)
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    pids: list[int] = field(default_factory=list)
    state: dict[str, object] = field(default_factory=dict)  # what setup already pushed
    env: dict[str, str] = field(default_factory=dict)  # extra environment (bench/s3.py: MODELYARD_S3_*)
    config: str | None = None  # Distribution's config.yml with {root} and {port}; default DISTRIBUTION_CONFIG
    keep_root: bool = False  # start on the data directory as it is (a second process on shared storage)
    # modelyard only: None = ``--no-auth``; "docker" = auth on, clients fetch one token per scope and
    # reuse it (docker, containerd, skopeo); "crane" = auth on, a token fetch before every request
    # (go-containerregistry clients: crane, ko). Distribution always runs without auth.
    auth: str | None = None
    user: str = "admin"
    password: str = "bench-password-0123"  # MODELYARD_ADMIN_PASSWORD of the bench server
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def authenticated(self) -> bool:
        return self.name == "modelyard" and self.auth is not None

    def token(self, scope: str, *, fresh: bool = False) -> str:
        """A token for ``scope`` from the server's ``/auth/token`` (Basic credentials); docker-style
        callers reuse one per scope, ``fresh`` asks again (what crane does before every request)."""
        if fresh or scope not in self._tokens:
            self._tokens[scope] = fetch_token(self.base_url, self.user, self.password, scope)
        return self._tokens[scope]

    def auth_headers(self, scope: str, *, per_request: bool = False) -> dict[str, str]:
        """``Authorization`` for a request needing ``scope`` ({} without auth). ``per_request``:
        a fresh token when the server runs crane-style (the fetch is on the caller's clock)."""
        if not self.authenticated:
            return {}
        fresh = per_request and self.auth == "crane"
        return {"Authorization": f"Bearer {self.token(scope, fresh=fresh)}"}

    @property
    def log_path(self) -> Path:
        return self.root / ("server.log" if not self.keep_root else f"server-{self.label}.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.root.exists() and not self.keep_root:
            shutil.rmtree(self.root)
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        if self.name == "distribution":
            config = self.root / "config.yml"
            config.write_text((self.config or DISTRIBUTION_CONFIG).format(root=data, port=self.port))
            argv = ["docker-registry", "serve", str(config)]
        else:
            argv = [
                sys.executable, "-m", "modelyard", "serve",
                "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(data),
                "--workers", str(self.workers), "--no-access-log",
            ]  # fmt: skip
            if self.auth is None and _has_no_auth_flag(self.src):
                argv.append("--no-auth")  # Distribution runs without auth too
        env = {**os.environ, **self.env}
        if self.authenticated:
            env["MODELYARD_ADMIN_PASSWORD"] = self.password  # user admin, registry admin role
        self._tokens.clear()
        for name in [k for k, v in self.env.items() if v == ""]:
            env.pop(name)  # an empty value in ``env`` removes the variable
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)  # ahead of the venv's editable-install .pth entry
        logfile = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            argv,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.root,
            env=env,
        )
        logfile.close()
        self._wait_ready()
        self.pids = process_tree(self.process.pid)
        log(f"started {self.label} on {self.host} (pids {self.pids})")

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        expected = self.workers if self.name == "modelyard" else 1
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommandError(f"{self.label} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/v2/", timeout=2) as resp:
                    ok = resp.status == 200
            except urllib.error.HTTPError as exc:
                ok = exc.code == 401 and self.authenticated  # auth on: /v2/ challenges
            except OSError:
                ok = False
            if ok and _listeners(self.port) >= expected:
                return
            time.sleep(0.05)
        self.stop()
        raise CommandError(f"{self.label} did not become ready in 60 s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def refresh_pids(self) -> None:
        if self.process is not None:
            self.pids = process_tree(self.process.pid)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def reset_peak_rss(self) -> None:
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as handle:
                    handle.write("5")
            except OSError:
                pass

    def peak_rss_mib(self) -> float:
        return sum(status_kib(pid, "VmHWM") for pid in self.pids) / 1024

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: modelyard's spawned workers when it runs several
        (not the idle parent, which migrated and hashed the first admin's password, nor
        multiprocessing's resource tracker), else the server process itself."""
        if self.process is None or self.name != "modelyard" or self.workers < 2:
            return self.pids[:1]
        workers = []
        for pid in self.pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing.spawn" in cmdline:
                workers.append(pid)
        return workers or self.pids

    def peak_rss_max_mib(self) -> float:
        """The largest peak RSS of one serving process (the issue's RSS budget is per worker)."""
        return max((status_kib(pid, "VmHWM") for pid in self.worker_pids()), default=0) / 1024

    def rss_mib(self) -> float:
        return sum(status_kib(pid, "VmRSS") for pid in self.pids) / 1024

    def stop(self) -> None:
        """SIGTERM the process we started (modelyard forwards it to its workers), then SIGKILL."""
        if self.process is None:
            return
        known = [pid for pid in self.pids if pid != self.process.pid]
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in known:  # workers we started through it, if any outlived the parent
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing" not in cmdline and b"modelyard" not in cmdline:
                continue  # the pid was reused by something that is not ours
            log(f"{self.label}: worker {pid} outlived its parent; killing it")
            os.kill(pid, signal.SIGKILL)
        self.process = None
        shutil.rmtree(self.root / "data", ignore_errors=True)
