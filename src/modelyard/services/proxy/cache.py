"""The pull-through cache: a pull in a repository that a proxy rule covers falls through to the
upstream registry when the registry does not have what is asked for.

Manifests. By digest: served if stored, else fetched upstream by that digest (the bytes are
checked against it), stored, served. By tag: a tag fetched through the cache is trusted for the
rule's TTL after it was last checked (``proxy_tags``); after that one ``HEAD`` upstream
revalidates it, and only a moved tag costs a ``GET`` (by the new digest, so it is verified). A
tag pushed here (no ``proxy_tags`` row) is the registry's own and never revalidated. When the
upstream cannot answer -- down, refusing, or the tag gone -- whatever is cached is served
(``stale``); with nothing cached the client is told why. Manifests are stored through the
normal :class:`ManifestService` (events, quotas, tag history, create on first pull) but without
the check that their blobs are here: those come on their own first pull.

Blobs. A miss starts one download per (repository, digest) in this process (the single-flight
map ``_flights``); every client asking meanwhile reads the same download as it grows
(``flight.py``: the first bytes reach the first client while the upstream is still sending, and
no client gets a complete unverified blob). The bytes go through the normal upload path (hashed
while streaming, committed only if the digest matches, linked to the repository). A blob the
registry already stores for another repository is mounted after the upstream confirmed this
repository has it, without downloading it again.

Worker processes of one machine share the download too: its spool file is claimed with a lock
(``spool.py``), and a worker finding it claimed follows it. Replicas on other machines do not
share a spool directory and may each fetch a cold blob once; the content-addressed commit makes
that harmless (same bytes, stored once), only the upstream traffic is multiplied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from modelyard import metrics
from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.errors import ErrorCode, RegistryError, RetryLater
from modelyard.domain.events import Actor, RepositoryCreated
from modelyard.domain.manifest import ParsedManifest, parse_manifest
from modelyard.domain.proxy import ProxyRule
from modelyard.domain.records import AlreadyExistsError, ManifestRecord, RepositorySettings
from modelyard.domain.upstream import (
    UpstreamDenied,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from modelyard.metadata.base import MetadataStore
from modelyard.metadata.clock import utcnow
from modelyard.metadata.proxy import ProxyStore
from modelyard.services.audit import log_events
from modelyard.services.blobs import BlobInfo, BlobService
from modelyard.services.manifests import ManifestService
from modelyard.services.proxy.flight import Flight
from modelyard.services.proxy.rules import ProxyRules
from modelyard.services.proxy.spool import Follower, claim, spool_name, sweep
from modelyard.services.proxy.upstream import UpstreamClient
from modelyard.services.runner import BlockingRunner, Reader
from modelyard.services.uploads import UploadService

log = logging.getLogger(__name__)
#: Who the cache's writes are recorded as (audit events, tag history).
PROXY_ACTOR = Actor("system:pull-through", "local")
RETRY_AFTER = 10


def _refusal(exc: UpstreamError, rule: ProxyRule, what: str, unknown: ErrorCode) -> RegistryError:
    """What a client is told when the upstream could not supply ``what`` and nothing is cached.
    The upstream's own message goes along; its credentials never do (they are not in it)."""
    where = f"{rule.upstream_url} (proxy rule {rule.prefix!r})"
    if isinstance(exc, UpstreamNotFound):
        return RegistryError(unknown, f"{what} is not here and not upstream at {where}")
    if isinstance(exc, UpstreamDenied):
        return RegistryError(
            ErrorCode.DENIED, f"the upstream at {where} refused the cache's pull of {what}: {exc}; ask an admin"
        )
    if isinstance(exc, UpstreamUnavailable):
        return RetryLater(f"{what} is not cached and the upstream at {where} is unavailable: {exc}", RETRY_AFTER)
    return RegistryError(unknown, f"{what} is not cached and the upstream at {where} failed: {exc}")


class PullThrough:
    def __init__(
        self,
        metadata: MetadataStore,
        store: ProxyStore,
        rules: ProxyRules,
        manifests: ManifestService,
        blobs: BlobService,
        uploads: UploadService,
        runner: BlockingRunner,
        read: Reader,
        spool_dir: Path,
        *,
        reindex: Callable[[str, str, ParsedManifest], Awaitable[object]] | None = None,
    ) -> None:
        self._meta = metadata
        self._store = store
        self.rules = rules
        self._manifests = manifests
        self._blobs = blobs
        self._uploads = uploads
        self._runner = runner
        self._run = runner.run
        self._read = read
        self._spool_dir = spool_dir
        self._flights: dict[tuple[str, str], Flight] = {}
        self._pending: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._swept = False
        # The model index (ModelService.index): a manifest stored before its blobs came was
        # indexed without them; it is indexed again once its last blob arrived.
        self._reindex = reindex

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.rules.close()

    # -- manifests --------------------------------------------------------------------------

    async def manifest(self, repository: str, reference: str, lookup: Callable[[], ManifestRecord]) -> ManifestRecord:
        """The record ``lookup`` finds (it resolves and negotiates), fetched upstream first when
        ``repository`` is proxied and the reference is missing or its tag is due to revalidate."""
        rule = await self.rules.match(repository)
        if rule is None:
            return await self._read(lookup)

        def read() -> tuple[ManifestRecord | None, tuple[str, datetime] | None]:
            """Both reads in one call: one thread hop on PostgreSQL, none on SQLite."""
            try:
                found: ManifestRecord | None = lookup()
            except RegistryError as exc:
                if exc.code is not ErrorCode.MANIFEST_UNKNOWN:
                    raise
                found = None
            return found, None if is_digest(reference) else self._store.tag_checked(repository, reference)

        local, checked = await self._read(read)
        if local is not None:
            fresh = checked is None or utcnow() - checked[1] < timedelta(seconds=rule.tag_ttl_seconds)
            if is_digest(reference) or fresh:
                metrics.PROXY_REQUESTS.labels(kind="manifest", result="hit").inc()
                return local
        try:
            await self._once((repository, reference), lambda: self._fetch_manifest(rule, repository, reference))
        except (UpstreamError, RegistryError) as exc:
            # RegistryError: the registry refused to store what the upstream has now (an
            # immutable tag moved upstream, a quota): the cached copy is still the best answer.
            if local is not None:
                metrics.PROXY_REQUESTS.labels(kind="manifest", result="stale").inc()
                log.warning("serving cached %s:%s, the upstream failed: %s", repository, reference, exc)
                return local
            metrics.PROXY_REQUESTS.labels(kind="manifest", result="error").inc()
            if isinstance(exc, RegistryError):
                raise
            raise _refusal(exc, rule, f"manifest {repository}:{reference}", ErrorCode.MANIFEST_UNKNOWN) from None
        metrics.PROXY_REQUESTS.labels(kind="manifest", result="miss").inc()
        try:
            return await self._read(lookup)
        except RegistryError as exc:
            if exc.code is not ErrorCode.MANIFEST_UNKNOWN or is_digest(reference):
                raise
            # An index asked for by a client that cannot take one: the answer is its linux/amd64
            # image (ManifestService.negotiate), which may not have been pulled through yet.
            child = await self._read(self._absent_default_child, repository, reference)
            if child is None:
                raise
            try:
                await self._once((repository, child), lambda: self._fetch_manifest(rule, repository, child))
            except UpstreamError:
                raise exc from None
            return await self._read(lookup)

    def _absent_default_child(self, repository: str, tag: str) -> str | None:
        """The digest of the linux/amd64 image of the index ``tag`` names, if it is not here."""
        record = self._meta.manifests.resolve_tag(repository, tag)
        if record is None or record.media_type not in mediatypes.INDEXES:
            return None
        try:
            children = parse_manifest(record.content, record.media_type).children
        except RegistryError:
            return None
        for child in children:
            platform = child.platform
            if platform is None or (platform.os, platform.architecture) != ("linux", "amd64"):
                continue
            return child.digest if self._meta.manifests.get(repository, child.digest) is None else None
        return None

    async def _fetch_manifest(self, rule: ProxyRule, repository: str, reference: str) -> None:
        client = await self.rules.client(rule)
        upstream = self._upstream_name(rule, repository)
        max_bytes = self._manifests.max_bytes
        if is_digest(reference):
            fetched = await client.get_manifest(upstream, reference, max_bytes=max_bytes)
            await self._put_manifest(repository, reference, fetched.content, fetched.media_type)
            return
        head = await client.head_manifest(upstream, reference)
        now = utcnow()
        current = await self._read(self._meta.manifests.resolve_tag, repository, reference)
        if current is None or current.digest != head.digest:
            # By the digest the tag names now: the bytes are checked against it.
            fetched = await client.get_manifest(upstream, head.digest, max_bytes=max_bytes)
            await self._put_manifest(repository, reference, fetched.content, fetched.media_type)
        await self._run(self._store.record_tag, repository, reference, head.digest, now)

    async def _put_manifest(self, repository: str, reference: str, content: bytes, media_type: str) -> None:
        await self._ensure_repository(repository)
        await self._manifests.put(
            repository, reference, content, media_type or None, actor=PROXY_ACTOR, verify_references=False
        )

    async def _once(self, key: tuple[str, str], work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` once for every caller that asks for ``key`` while it runs (single flight)."""
        task = self._pending.get(key)
        if task is None:

            async def run() -> None:
                await work()

            task = asyncio.ensure_future(run())
            self._pending[key] = task

            def ended(done: asyncio.Task[None]) -> None:
                self._pending.pop(key, None)
                if not done.cancelled():
                    done.exception()  # retrieved: every caller that stayed got it

            task.add_done_callback(ended)
        await asyncio.shield(task)

    # -- blobs ------------------------------------------------------------------------------

    async def blob(self, repository: str, digest: Digest, miss: RegistryError, *, body: bool) -> BlobInfo:
        """A blob that :meth:`BlobService.stat` did not find (``miss``): fetched upstream when
        ``repository`` is proxied (``body``: a GET; a HEAD only asks the upstream), else ``miss``."""
        rule = await self.rules.match(repository)
        if rule is None:
            raise miss
        key = (repository, str(digest))
        flight = self._flights.get(key)
        what = f"blob {digest} of {repository}"
        try:
            if flight is None:
                client = await self.rules.client(rule)
                upstream = self._upstream_name(rule, repository)
                size = await client.head_blob(upstream, str(digest)) if not body else None
                if not body and size is not None:
                    metrics.PROXY_REQUESTS.labels(kind="blob", result="miss").inc()
                    return BlobInfo(digest, size, None)
                mounted = await self._mount(client, upstream, repository, digest)
                if mounted is not None:
                    return mounted
                begun = self._flights.get(key) or await self._start(key, rule, client, upstream, digest)
                if isinstance(begun, Follower):
                    return await self._follow(begun, client, upstream, repository, digest)
                flight = begun
            size = await flight.started()
        except UpstreamError as exc:
            metrics.PROXY_REQUESTS.labels(kind="blob", result="error").inc()
            raise _refusal(exc, rule, what, ErrorCode.BLOB_UNKNOWN) from None
        metrics.PROXY_REQUESTS.labels(kind="blob", result="miss").inc()
        if size is None:  # no Content-Length upstream: serve it once it is stored
            await flight.done()
            return await self._read(self._blobs.stat, repository, digest)
        stored = self._stored_reader(digest)
        return BlobInfo(digest, size, None, pieces=flight.reader(stored))

    def _stored_reader(self, digest: Digest) -> Callable[[int, int], AsyncIterator[bytes]]:
        def pieces(start: int, end: int) -> AsyncIterator[bytes]:
            return self._blobs.stream(digest, start, end)

        return pieces

    async def _mount(self, client: UpstreamClient, upstream: str, repository: str, digest: Digest) -> BlobInfo | None:
        """Link a blob stored for another repository, once the upstream confirmed that this
        repository has it there (so a digest seen elsewhere opens nothing it should not)."""
        if await self._read(self._meta.blobs.stored_size, str(digest)) is None:
            return None
        await client.head_blob(upstream, str(digest))
        await self._ensure_repository(repository)
        if await self._uploads.mount(repository, digest, None) is None:
            return None
        await self._complete(repository, digest)
        metrics.PROXY_REQUESTS.labels(kind="blob", result="hit").inc()
        return await self._read(self._blobs.stat, repository, digest)

    async def _follow(
        self, follower: Follower, client: UpstreamClient, upstream: str, repository: str, digest: Digest
    ) -> BlobInfo:
        """Serve a download another worker process runs: its size from the upstream (a HEAD)."""
        metrics.PROXY_REQUESTS.labels(kind="blob", result="miss").inc()
        size = await client.head_blob(upstream, str(digest))
        if size is None:
            await follower.done()
            return await self._read(self._blobs.stat, repository, digest)
        return BlobInfo(digest, size, None, pieces=follower.reader(self._stored_reader(digest)))

    async def _start(
        self, key: tuple[str, str], rule: ProxyRule, client: UpstreamClient, upstream: str, digest: Digest
    ) -> Flight | Follower:
        """Download the blob here, or follow the worker process that downloads it already."""
        repository = key[0]
        path = self._spool_dir / spool_name(*key)
        if not self._swept:
            self._swept = True
            await self._run(sweep, self._spool_dir)
        fd = await self._run(claim, path)
        found = self._flights.get(key)  # another request of this process claimed it meanwhile
        if found is not None:
            if fd is not None:
                os.close(fd)  # cannot happen: the name was ours to take only if nobody held it
            return found
        if fd is None:

            async def stored() -> bool:
                return await self._read(self._meta.blobs.linked_size, repository, str(digest)) is not None

            return Follower(path, self._runner, stored)
        flight = Flight(path, fd, self._runner)
        self._flights[key] = flight
        task = asyncio.ensure_future(self._download(flight, rule, client, upstream, repository, digest))
        self._tasks.add(task)

        def ended(_: object) -> None:
            self._tasks.discard(task)
            if self._flights.get(key) is flight:
                del self._flights[key]

        task.add_done_callback(ended)
        return flight

    async def _download(
        self, flight: Flight, rule: ProxyRule, client: UpstreamClient, upstream: str, repository: str, digest: Digest
    ) -> None:
        error: RegistryError | None = RegistryError(
            ErrorCode.BLOB_UNKNOWN, f"the download of blob {digest} from upstream was interrupted; retry"
        )
        try:
            async with client.blob(upstream, str(digest)) as download:
                await self._ensure_repository(repository)
                upload = await self._uploads.start(repository, None, declared=download.size, digest=digest)
                try:
                    flight.begin(download.size)
                    body = self._tee(download.chunks(), flight)
                    await self._uploads.commit(repository, upload.id, digest, body, None)
                except BaseException:
                    with contextlib.suppress(RegistryError, OSError):
                        await self._uploads.cancel(repository, upload.id)
                    raise
            error = None
        except UpstreamError as exc:
            error = _refusal(exc, rule, f"blob {digest} of {repository}", ErrorCode.BLOB_UNKNOWN)
        except RegistryError as exc:
            if exc.code is ErrorCode.DIGEST_INVALID:
                log.warning("the upstream sent wrong bytes for %s (%s): dropped", digest, exc.message)
                error = RegistryError(ErrorCode.BLOB_UNKNOWN, f"the upstream sent bytes that are not blob {digest}")
            else:
                error = exc
        except OSError as exc:
            error = RegistryError(ErrorCode.BLOB_UNKNOWN, f"the cache could not spool blob {digest}: {exc.strerror}")
        finally:
            flight.finish(error)
        await self._complete(repository, digest)

    async def _complete(self, repository: str, blob: Digest) -> None:
        """Index again the manifests of ``repository`` that ``blob`` was the last missing blob of."""
        if self._reindex is None:
            return
        for digest in await self._read(self._store.manifests_using, repository, str(blob)):
            record = await self._read(self._meta.manifests.get, repository, digest)
            if record is None:
                continue
            parsed = parse_manifest(record.content, record.media_type)
            if not await self._read(self._meta.blobs.missing, repository, parsed.required_blobs()):
                await self._reindex(repository, digest, parsed)

    async def _tee(self, chunks: AsyncIterator[bytes], flight: Flight) -> AsyncIterator[bytes]:
        """Each upstream chunk to the spool file (readers tail it) and on to the upload."""
        async for chunk in chunks:
            await self._run(flight.write, chunk)
            flight.advance(len(chunk))
            metrics.PROXY_UPSTREAM_BYTES.inc(len(chunk))
            yield chunk

    # -- shared -----------------------------------------------------------------------------

    @staticmethod
    def _upstream_name(rule: ProxyRule, repository: str) -> str:
        name = rule.upstream_name(repository)
        if name is None:
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN,
                f"proxy rule {rule.prefix!r} maps {repository} to no upstream repository: give it an upstream prefix",
            )
        return name

    async def _ensure_repository(self, name: str) -> None:
        """Create the repository on its first pull: the rule is the admin's consent, whatever the
        create-on-first-push settings say (they are about pushes)."""
        if await self._read(self._meta.repositories.get, name) is not None:
            return
        event = RepositoryCreated(actor=PROXY_ACTOR, repository=name, on_push=True)
        with contextlib.suppress(AlreadyExistsError):
            await self._run(
                self._meta.repo_admin.create, name, RepositorySettings(), PROXY_ACTOR.subject, create_compartment=True,
                events=[event],
            )  # fmt: skip
            log_events([event])
