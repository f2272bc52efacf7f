"""Push a model directory and pull one back: the work behind ``modelyard push``/``pull`` and the
SDK's ``Registry.push_model``/``pull_model``.

Push: scan and classify the files (:mod:`modelyard.client.modelpack`), hash them in parallel,
then for each distinct blob, in parallel: skip it if the repository has it (``HEAD``), else mount
it from a repository it may already be in (``--base``, or ones named by the caller), else upload
it (resuming an interrupted chunked upload). The config and the manifest go last, so a tag never
points at missing blobs.

Pull: read the manifest, work out every file's path and refuse the whole pull before writing
anything if one would land outside the destination (``..``, absolute, through a symlink). Then
download in parallel: each file streams to a hidden partial file beside its target while it is
hashed, is checked against its digest and renamed into place. A file already there with the
right size and digest is kept; a partial file left by an interrupted pull is resumed with
``Range``. Tar layers (KitOps ModelKits, ModelPack ``.tar`` types) are verified, then extracted
member by member under the same path rules.

Progress is reported through a callback taking :class:`ProgressEvent` (called from worker
threads, one event at a time).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

from modelyard.client.modelpack import (
    ArtifactFile,
    Kind,
    ModelFile,
    PackedModel,
    build,
    files_of,
    parse_mtime,
    scan,
)
from modelyard.client.oci import (
    INDEX_TYPES,
    PIECE,
    DigestMismatchError,
    OciClient,
    file_digest,
)

Phase = Literal["hash", "upload", "download"]
EventKind = Literal["start", "file_start", "advance", "file_done", "done"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a push or pull, for progress bars.

    ``start`` (``total`` bytes, ``files``) and ``done`` open and close a phase (``hash``,
    ``upload`` or ``download``); ``file_start`` (``path``, ``size``), ``advance`` (``path``,
    ``nbytes``) and ``file_done`` (``path``, ``status``: ``sent``, ``resumed``, ``mounted``,
    ``exists``, ``present``, ``downloaded``) report each file."""

    kind: EventKind
    phase: Phase
    path: str = ""
    size: int = 0
    nbytes: int = 0
    total: int = 0
    files: int = 0
    status: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


class UnsafePathError(ValueError):
    """A file of the artifact would be written outside the destination directory."""


class _Reporter:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        if self._callback is not None:
            with self._lock:
                self._callback(event)

    def advancer(self, phase: Phase, path: str) -> Callable[[int], None] | None:
        if self._callback is None:
            return None
        return lambda n: self(ProgressEvent("advance", phase, path=path, nbytes=n))


def default_jobs() -> int:
    return min(4, (os.cpu_count() or 1) * 2)


def split_host(text: str) -> tuple[str | None, str]:
    """``localhost:5000/acme/llm:v1`` -> (``localhost:5000``, ``acme/llm:v1``): a first component
    with a ``.`` or ``:`` (or ``localhost``) names a registry host, as docker reads references."""
    first, sep, rest = text.partition("/")
    if sep and rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, text


def parse_reference(text: str) -> tuple[str, str]:
    """``acme/llm:v1`` -> (``acme/llm``, ``v1``); ``acme/llm@sha256:…`` -> (…, ``sha256:…``);
    no tag means ``latest``."""
    if "@" in text:
        name, digest = text.split("@", 1)
        return name, digest
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = text.rsplit(":", 1)
        return name, tag
    return text, "latest"


# -- push ------------------------------------------------------------------------------------


@dataclass
class PushResult:
    """What a push did. ``sent_bytes`` counts the bytes that crossed the wire (blobs, config and
    manifest); ``skipped_bytes`` those the registry already had or mounted."""

    repository: str
    tag: str
    digest: str
    files: int
    total_bytes: int
    sent_bytes: int = 0
    skipped_bytes: int = 0
    skipped_files: int = 0
    mounted_files: int = 0
    resumed_files: int = 0
    seconds: float = 0.0
    manifest: bytes = b""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    def summary(self) -> str:
        from modelyard.client.units import human_bytes

        line = (
            f"sent {human_bytes(self.sent_bytes)}, skipped {human_bytes(self.skipped_bytes)} "
            f"({self.skipped_files} file{'s' if self.skipped_files != 1 else ''} already there)"
        )
        if self.mounted_files:
            line += f", {self.mounted_files} mounted"
        if self.resumed_files:
            line += f", {self.resumed_files} resumed"
        return line


def hash_files(files: list[ModelFile], jobs: int, report: _Reporter) -> None:
    report(ProgressEvent("start", "hash", total=sum(f.size for f in files), files=len(files)))

    def one(item: ModelFile) -> None:
        report(ProgressEvent("file_start", "hash", path=item.path, size=item.size))
        item.digest = file_digest(item.source, report.advancer("hash", item.path))
        report(ProgressEvent("file_done", "hash", path=item.path, status="hashed"))

    _run_all(one, files, jobs)
    report(ProgressEvent("done", "hash"))


def pack(
    directory: Path,
    *,
    overrides: Sequence[tuple[Kind, str]] = (),
    annotations: dict[str, str] | None = None,
    base: tuple[str, str] | None = None,
    name: str | None = None,
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
) -> PackedModel:
    """Scan, classify and hash ``directory``; the ModelPack config and manifest for it."""
    files = scan(directory, overrides)
    hash_files(files, jobs or default_jobs(), _Reporter(progress))
    return build(files, name=name, annotations=annotations, base=base)


def push_packed(
    client: OciClient,
    packed: PackedModel,
    repository: str,
    tag: str,
    *,
    mount_from: Sequence[str] = (),
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
) -> PushResult:
    """Send a packed (already hashed) model's blobs, config and manifest; see the module docstring."""
    started = time.monotonic()
    report = _Reporter(progress)
    unique: dict[str, ModelFile] = {}
    for item in packed.files:
        unique.setdefault(item.digest, item)
    result = PushResult(repository, tag, packed.manifest_digest, len(packed.files), sum(f.size for f in packed.files),
                        manifest=packed.manifest, config=packed.model_config)  # fmt: skip
    sender = _BlobSender(client, repository, mount_from, report, result)
    report(ProgressEvent("start", "upload", total=sum(f.size for f in unique.values()), files=len(unique)))
    _run_all(sender.send, list(unique.values()), jobs or default_jobs())
    _finish(client, packed, repository, tag, result)
    report(ProgressEvent("done", "upload"))
    result.seconds = time.monotonic() - started
    return result


def push_directory(
    client: OciClient,
    directory: Path,
    repository: str,
    tag: str,
    *,
    overrides: Sequence[tuple[Kind, str]] = (),
    annotations: dict[str, str] | None = None,
    base: tuple[str, str] | None = None,
    name: str | None = None,
    mount_from: Sequence[str] = (),
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
) -> PushResult:
    """Scan, hash and push ``directory``, hashing overlapped with uploading.

    :func:`pack` then :func:`push_packed` read every byte twice in sequence: all files are
    hashed before the first upload starts, so the uploads wait for the whole model's hashing.
    Here each file is pushed as soon as its own digest is known (a blob's ``HEAD``, mount and
    final ``PUT ?digest=`` need it; the manifest, which needs them all, still goes last): one
    hashing lane per spare core feeds ``jobs`` upload workers, smallest files first so that the
    upload lanes fill at once while the big files hash. The bytes sent are the same as with
    ``pack`` + ``push_packed`` (a blob already there is still skipped before any byte goes).
    """
    started = time.monotonic()
    report = _Reporter(progress)
    files = scan(directory, overrides)
    total = sum(f.size for f in files)
    report(ProgressEvent("start", "hash", total=total, files=len(files)))
    report(ProgressEvent("start", "upload", total=total, files=len(files)))
    result = PushResult(repository, tag, "", len(files), total)
    sender = _BlobSender(client, repository, mount_from, report, result)
    hashing = threading.Semaphore(max(1, (os.cpu_count() or 2) // 2))
    lock = threading.Lock()
    pending = [len(files)]

    def one(item: ModelFile) -> None:
        with hashing:
            report(ProgressEvent("file_start", "hash", path=item.path, size=item.size))
            item.digest = file_digest(item.source, report.advancer("hash", item.path))
            report(ProgressEvent("file_done", "hash", path=item.path, status="hashed"))
        with lock:
            pending[0] -= 1
            if pending[0] == 0:
                report(ProgressEvent("done", "hash"))
        sender.send(item)

    _run_all(one, sorted(files, key=lambda f: (f.size, f.path)), jobs or default_jobs())
    packed = build(files, name=name, annotations=annotations, base=base)
    result.manifest, result.config = packed.manifest, packed.model_config
    _finish(client, packed, repository, tag, result)
    report(ProgressEvent("done", "upload"))
    result.seconds = time.monotonic() - started
    return result


class _BlobSender:
    """Pushes blobs of one push, each digest once even when several files share it (the others
    wait for the first and count as already there), adding up what was sent and skipped."""

    def __init__(
        self, client: OciClient, repository: str, mount_from: Sequence[str], report: _Reporter, result: PushResult
    ) -> None:
        self._client = client
        self._repository = repository
        self._sources = [s for s in dict.fromkeys(mount_from) if s and s != repository]
        self._report = report
        self._result = result
        self._lock = threading.Lock()
        self._claimed: dict[str, threading.Event] = {}

    def send(self, item: ModelFile) -> None:
        report, result = self._report, self._result
        report(ProgressEvent("file_start", "upload", path=item.path, size=item.size))
        with self._lock:
            first = self._claimed.get(item.digest)
            if first is None:
                self._claimed[item.digest] = threading.Event()
        if first is not None:
            first.wait()
            status, sent = "exists", 0
        else:
            try:
                status, sent = _push_blob(self._client, self._repository, item, self._sources, report)
            finally:
                self._claimed[item.digest].set()
        with self._lock:
            result.sent_bytes += sent
            if status in ("exists", "mounted"):
                result.skipped_bytes += item.size
                result.skipped_files += 1
                result.mounted_files += status == "mounted"
            elif status == "resumed":
                result.resumed_files += 1
                result.skipped_bytes += item.size - sent
        if status in ("exists", "mounted"):
            report(ProgressEvent("advance", "upload", path=item.path, nbytes=item.size))
        report(ProgressEvent("file_done", "upload", path=item.path, status=status))


def _finish(client: OciClient, packed: PackedModel, repository: str, tag: str, result: PushResult) -> None:
    """The config blob, then the manifest (last: a tag never points at missing blobs)."""
    if client.blob_exists(repository, packed.config_digest):
        result.skipped_bytes += len(packed.config)
    else:
        client.upload_bytes(repository, packed.config)
        result.sent_bytes += len(packed.config)
    result.digest = client.put_manifest(repository, tag, packed.manifest)
    result.sent_bytes += len(packed.manifest)


def _push_blob(
    client: OciClient, repository: str, item: ModelFile, sources: Sequence[str], report: _Reporter
) -> tuple[str, int]:
    if client.blob_exists(repository, item.digest):
        return "exists", 0
    location: str | None = None
    if client.state.get(client.base_url, repository, item.digest) is None:
        for source in sources:
            opened = client.mount(repository, item.digest, source)
            if opened is None:
                if location is not None:
                    client.cancel_upload(repository, location)
                return "mounted", 0
            if location is not None:
                client.cancel_upload(repository, opened)
            else:
                location = opened
    upload = client.upload_blob(
        repository, item.source, item.digest, item.size, advance=report.advancer("upload", item.path),
        location=location,
    )  # fmt: skip
    return ("resumed" if upload.resumed_at else "sent"), upload.sent


# -- pull ------------------------------------------------------------------------------------


@dataclass
class PullResult:
    repository: str
    reference: str
    digest: str
    destination: Path
    files: list[str] = field(default_factory=list)
    downloaded_bytes: int = 0
    skipped_bytes: int = 0
    skipped_files: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        from modelyard.client.units import human_bytes

        return (
            f"received {human_bytes(self.downloaded_bytes)}, kept {human_bytes(self.skipped_bytes)} "
            f"({self.skipped_files} file{'s' if self.skipped_files != 1 else ''} already there)"
        )


def _selected(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    def hit(pattern: str) -> bool:
        name = PurePosixPath(path).name
        return fnmatch.fnmatchcase(path, pattern) or ("/" not in pattern and fnmatch.fnmatchcase(name, pattern))

    if include and not any(hit(p) for p in include):
        return False
    return not any(hit(p) for p in exclude)


def safe_target(root: Path, path: str) -> Path:
    """Where ``path`` (from an artifact) goes under ``root``; :class:`UnsafePathError` if it is
    absolute, climbs out with ``..``, or passes through a symlink."""
    if not path or "\x00" in path:
        raise UnsafePathError(f"refusing to write file with an empty or NUL path {path!r}")
    normalized = path.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise UnsafePathError(f"refusing to write {path!r}: an absolute path would land outside {root}")
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafePathError(f"refusing to write {path!r}: it climbs out of {root} with '..'")
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise UnsafePathError(f"refusing to write {path!r}: {current} is a symlink (it could lead outside {root})")
    real_root = root.resolve()
    if not current.resolve().is_relative_to(real_root):
        raise UnsafePathError(f"refusing to write {path!r}: it resolves outside {root}")
    return current


def pull_artifact(
    client: OciClient,
    repository: str,
    reference: str,
    destination: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
) -> PullResult:
    """Write the files of ``repository:reference`` under ``destination``; see the module docstring."""
    started = time.monotonic()
    report = _Reporter(progress)
    manifest = client.get_manifest(repository, reference)
    body = manifest.json()
    if manifest.media_type in INDEX_TYPES or "manifests" in body:
        children = body.get("manifests") or []
        if not children:
            raise ValueError(f"{repository}:{reference} is an empty index")
        manifest = client.get_manifest(repository, str(children[0]["digest"]))
        body = manifest.json()
    entries = files_of(body)
    destination.mkdir(parents=True, exist_ok=True)
    by_path = {e.path: e for e in entries if e.archive is None and _selected(e.path, include, exclude)}
    raw = list(by_path.values())  # a path named twice is written once (the last layer wins, as in a tar)
    archives = [e for e in entries if e.archive is not None]
    targets = {e.path: safe_target(destination, e.path) for e in raw}  # refuse before writing anything
    result = PullResult(repository, reference, manifest.digest, destination)
    lock = threading.Lock()
    total = sum(e.size for e in raw) + sum(e.size for e in archives)
    report(ProgressEvent("start", "download", total=total, files=len(raw) + len(archives)))

    def one(entry: ArtifactFile) -> None:
        report(ProgressEvent("file_start", "download", path=entry.path, size=entry.size))
        if entry.archive is None:
            kept, received = _pull_file(client, repository, entry, targets[entry.path], report)
            written = [entry.path]
        else:
            kept, received = False, entry.size
            written = _pull_archive(client, repository, entry, destination, include, exclude, report)
        with lock:
            result.files += written
            result.downloaded_bytes += received
            if kept:
                result.skipped_bytes += entry.size
                result.skipped_files += 1
        if kept:
            report(ProgressEvent("advance", "download", path=entry.path, nbytes=entry.size))
        report(ProgressEvent("file_done", "download", path=entry.path, status="present" if kept else "downloaded"))

    _run_all(one, [*raw, *archives], jobs or default_jobs())
    report(ProgressEvent("done", "download"))
    result.files.sort()
    result.seconds = time.monotonic() - started
    return result


def _partial_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.modelyard-partial")


def _pull_file(
    client: OciClient, repository: str, entry: ArtifactFile, target: Path, report: _Reporter
) -> tuple[bool, int]:
    """Download one raw layer to ``target``: (kept an existing file, bytes received)."""
    if target.is_file() and target.stat().st_size == entry.size and _digest_of(target, entry.digest) == entry.digest:
        return True, 0
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_name(target)
    hasher = _new_hasher(entry.digest)
    offset = 0
    if partial.is_file() and not partial.is_symlink() and 0 < partial.stat().st_size < entry.size:
        offset = _feed(partial, hasher)
    else:
        partial.unlink(missing_ok=True)
    advance = report.advancer("download", entry.path)
    if advance is not None and offset:
        advance(offset)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "r+b") as handle:
        handle.seek(offset)
        start = client.download_blob(repository, entry.digest, handle, offset=offset, hasher=hasher, advance=advance)
        if start == 0 and offset:
            hasher = _rehash(handle, entry.digest)
        handle.flush()
        size = handle.tell()
    actual = f"{entry.digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if actual != entry.digest or size != entry.size:
        partial.unlink(missing_ok=True)
        raise DigestMismatchError(f"{entry.path} ({size} bytes)", entry.digest, actual)
    _apply_attributes(partial, entry)
    os.replace(partial, target)
    return False, size - offset if start else size


def _apply_attributes(path: Path, entry: ArtifactFile) -> None:
    if entry.mode is not None:
        with contextlib.suppress(OSError):
            os.chmod(path, (entry.mode & 0o777) | 0o600)
    moment = parse_mtime(entry.mtime) if entry.mtime else None
    if moment is not None:
        with contextlib.suppress(OSError, OverflowError):
            os.utime(path, (moment, moment))


def _new_hasher(digest: str) -> Any:
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise ValueError(f"unsupported digest algorithm in {digest!r}")
    return hashlib.new(algorithm)


def _feed(path: Path, hasher: Any) -> int:
    count = 0
    with open(path, "rb") as handle:
        while piece := handle.read(PIECE):
            hasher.update(piece)
            count += len(piece)
    return count


def _rehash(handle: IO[bytes], digest: str) -> Any:
    hasher = _new_hasher(digest)
    handle.seek(0)
    while piece := handle.read(PIECE):
        hasher.update(piece)
    return hasher


def _digest_of(path: Path, like: str) -> str:
    hasher = _new_hasher(like)
    _feed(path, hasher)
    return f"{like.split(':', 1)[0]}:{hasher.hexdigest()}"


def _pull_archive(
    client: OciClient,
    repository: str,
    entry: ArtifactFile,
    destination: Path,
    include: Sequence[str],
    exclude: Sequence[str],
    report: _Reporter,
) -> list[str]:
    """Download a tar layer to a temporary file (verified), then extract its regular files under
    ``destination`` with the same path rules; links and devices in it are refused."""
    if entry.archive == "tar+zstd":
        raise ValueError(f"{entry.path}: zstd-compressed tar layers are not supported yet ({entry.media_type})")
    hasher = _new_hasher(entry.digest)
    with tempfile.TemporaryFile(dir=destination) as spool:
        client.download_blob(repository, entry.digest, spool, hasher=hasher,
                             advance=report.advancer("download", entry.path))  # fmt: skip
        actual = f"{entry.digest.split(':', 1)[0]}:{hasher.hexdigest()}"
        if actual != entry.digest:
            raise DigestMismatchError(entry.path, entry.digest, actual)
        spool.seek(0)
        written: list[str] = []
        mode: Literal["r:gz", "r:"] = "r:gz" if entry.archive == "tar+gzip" else "r:"
        with tarfile.open(fileobj=spool, mode=mode) as archive:
            members = archive.getmembers()
            plan = []
            for member in members:
                if member.isdir() or not _selected(member.name.lstrip("./") or ".", include, exclude):
                    continue
                if not member.isfile():
                    raise UnsafePathError(f"refusing {member.name!r} in {entry.path}: only regular files are extracted")
                plan.append((member, safe_target(destination, member.name)))
            for member, target in plan:
                source = archive.extractfile(member)
                assert source is not None
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = _partial_name(target)
                with source, open(partial, "wb") as out:
                    while piece := source.read(PIECE):
                        out.write(piece)
                os.chmod(partial, (member.mode & 0o777) | 0o600)
                os.utime(partial, (member.mtime, member.mtime))
                os.replace(partial, target)
                written.append(target.relative_to(destination).as_posix())
    return written


# -- parallel helper -------------------------------------------------------------------------


def _run_all(work: Callable[[Any], None], items: Iterable[Any], jobs: int) -> None:
    """Run ``work`` over ``items`` on ``jobs`` threads; the first failure is raised after the
    others stop being scheduled."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=min(jobs, len(items)), thread_name_prefix="modelyard-transfer") as pool:
        futures = [pool.submit(work, item) for item in items]
        failure: BaseException | None = None
        for future in futures:
            try:
                future.result()
            except BaseException as exc:
                if failure is None:
                    failure = exc
                    for pending in futures:
                        pending.cancel()
        if failure is not None:
            raise failure
