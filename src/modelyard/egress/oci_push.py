"""The write side of the server's outbound OCI client, for push replication: a subclass of
:class:`~modelyard.egress.oci.OciRegistryClient` (auth, errors and the connection pool are the
read side's), so nothing of the token dance is written twice.

What it adds, per the distribution spec:

- **Blob existence**: ``HEAD /v2/<name>/blobs/<digest>`` (the read side's ``head_blob``); what
  the target has is never sent.
- **Tags**: the target's tag list, for a scheduled pass that mirrors deletes.
- **Cross-repository mount**: ``POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>``; a
  ``201`` is the blob linked without a byte sent, a ``202`` is a session to upload into (the
  target could not mount), which is used rather than thrown away.
- **Upload**: one streamed ``PUT <location>?digest=`` (monolithic) for blobs up to
  ``chunk_size``, else ``PATCH`` chunks with ``Content-Range`` then the closing ``PUT`` (the
  spec's chunked flow; Distribution and modelyard both take it). The bytes come from a factory of
  async chunks read from the local store, so a blob of any size costs one chunk of memory.
- **Manifests**: ``HEAD`` (is it there, what does a tag point to), ``PUT`` by digest or tag, and
  ``DELETE``. A manifest with a ``subject`` put to a registry without the referrers API (no
  ``OCI-Subject`` in the answer, e.g. Distribution 2.8) also updates the referrers tag
  ``<alg>-<hex>`` of the subject (the spec's fallback), so clients there still find it.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urljoin

from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.replication import DeleteSkipped, TargetAccess
from modelyard.egress.oci import (
    BodyNotReplayed,
    OciRegistryClient,
    UpstreamCredentials,
    UpstreamError,
    UpstreamNotFound,
)

#: Blobs larger than this go in ``PATCH`` chunks of this size.
CHUNK_SIZE = 64 << 20
MAX_REFERRERS_INDEX = 4 << 20
#: A tag delete that must fall back to the manifest checks at most this many other tags first.
MAX_TAGS_CHECKED = 1000
#: The referrers tag schema's tags (``sha256-<hex>``).
REFERRERS_TAG = re.compile(r"^[a-z0-9]+-[a-f0-9]{32,}$")

#: A blob's bytes from an offset on (read from the local store afresh for each call).
Chunks = Callable[[int], AsyncIterator[bytes]]
#: An upload chunk refused for an expired token is resumed this many times per blob at most.
MAX_RESUMES = 5
#: An upload status's ``Range`` (``0-<last byte>``; Distribution says ``0--1`` for none yet).
RANGE = re.compile(r"^\s*0-(-?\d+)\s*$")


async def _window(source: AsyncIterator[bytes], first: bytes, limit: int, rest: list[bytes]) -> AsyncIterator[bytes]:
    """Up to ``limit`` bytes: ``first``, then from ``source``; what passes the limit is kept in
    ``rest`` for the next window (one read chunk at most, so memory stays flat)."""
    sent = 0
    piece = first
    while True:
        if piece:
            take = piece[: limit - sent]
            sent += len(take)
            yield take
            if len(take) < len(piece):
                rest.append(piece[len(take) :])
                return
            if sent >= limit:
                return
        try:
            piece = await anext(source)
        except StopAsyncIteration:
            return


def _once(stream: AsyncIterator[bytes]) -> Callable[[], AsyncIterator[bytes]]:
    return lambda: stream


async def _close(stream: AsyncIterator[bytes]) -> None:
    closing = getattr(stream, "aclose", None)
    if closing is not None:
        await closing()


class OciPushClient(OciRegistryClient):
    """A target registry that replication writes to."""

    def __init__(self, *args: Any, chunk_size: int = CHUNK_SIZE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chunk_size = chunk_size

    @staticmethod
    def _push_scope(repository: str) -> str:
        return f"repository:{repository}:pull,push"

    def _path_of(self, location: str) -> str:
        """The path and query of an upload ``Location`` (absolute or relative) on this registry."""
        absolute = urljoin(self.base_url + "/", location)
        if not absolute.startswith(self.base_url + "/"):
            raise UpstreamError(f"the target sent an upload location on another host: {absolute[:200]!r}")
        return absolute[len(self.base_url) :]

    async def has_blob(self, repository: str, digest: str) -> bool:
        try:
            await self.head_blob(repository, digest)
        except UpstreamNotFound:
            return False
        return True

    async def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` on the target (following ``Link`` pages); none if it has
        no such repository."""
        found: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=1000"
        while path is not None:
            try:
                response = await self._send("GET", path, self._push_scope(repository), {}, f"the tags of {repository}")
            except UpstreamNotFound:
                return found
            try:
                body = json.loads(await response.aread())
            finally:
                await response.aclose()
            found += [tag for tag in body.get("tags") or [] if isinstance(tag, str)]
            following = response.links.get("next", {}).get("url")
            path = self._path_of(following) if following else None
        return found

    async def push_blob(
        self, repository: str, digest: str, size: int, chunks: Chunks, *, mount_from: str | None
    ) -> bool:
        """Put a blob into ``repository``: mounted from ``mount_from`` if the target can (then
        ``False``: no byte sent), else uploaded (``True``)."""
        scope = self._push_scope(repository)
        query = ""
        if mount_from:
            # A token server grants the mount only with pull on the source repository as well.
            scope = f"{scope} repository:{mount_from}:pull"
            query = f"?mount={quote(digest)}&from={quote(mount_from)}"
        what = f"an upload of {digest} to {repository}"
        response = await self._send(
            "POST", f"/v2/{repository}/blobs/uploads/{query}", scope, {"Content-Length": "0"}, what
        )
        await response.aclose()
        if response.status_code == 201:
            return False
        location = response.headers.get("Location")
        if not location:
            raise UpstreamError(f"the target started {what} without a Location")
        path = self._path_of(location)
        if size > self.chunk_size:
            path = await self._patch_chunks(path, scope, size, chunks, what)
        body = (lambda: chunks(0)) if size <= self.chunk_size else None
        separator = "&" if "?" in path else "?"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size if body else 0)}
        response = await self._send(
            "PUT", f"{path}{separator}digest={quote(digest)}", scope, headers, what, body or b""
        )
        await response.aclose()
        return True

    async def _patch_chunks(self, path: str, scope: str, size: int, chunks: Chunks, what: str) -> str:
        """Send the blob in ``PATCH`` requests of ``chunk_size`` bytes; the last ``Location``.

        A chunk's body is read once from the store, so it cannot be sent again: a ``401`` on it
        (a token that ran out despite the refresh ahead of time: a clock, a revocation) raises
        :class:`BodyNotReplayed`, and the upload goes on from the offset the target reports
        (``GET`` of the upload's location, its ``Range``), read afresh from the store -- at most
        ``MAX_RESUMES`` times per blob."""
        source = chunks(0)
        rest: list[bytes] = []
        offset = 0
        resumes = 0
        while offset < size:
            length = min(self.chunk_size, size - offset)
            first = rest.pop() if rest else b""
            window = _window(source, first, length, rest)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
                "Content-Range": f"{offset}-{offset + length - 1}",
            }
            try:
                response = await self._send("PATCH", path, scope, headers, what, _once(window), replayable=False)
            except BodyNotReplayed:
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise
                await _close(source)
                offset, path = await self._upload_offset(path, scope, what)
                source, rest = chunks(offset), []
                continue
            await response.aclose()
            offset += length
            path = self._path_of(response.headers.get("Location") or path)
        await _close(source)
        return path

    async def _upload_offset(self, path: str, scope: str, what: str) -> tuple[int, str]:
        """How many bytes of an upload the target holds (``Range: 0-<last>``) and its location."""
        response = await self._send("GET", path, scope, {}, what)
        await response.aclose()
        found = RANGE.match(response.headers.get("Range") or "")
        if found is None:
            raise UpstreamError(f"the target's upload status for {what} has no usable Range")
        last = int(found.group(1))
        # "0-0" is one byte or none (modelyard says it for none); chunks are never one byte long.
        return (last + 1 if last > 0 else 0), self._path_of(response.headers.get("Location") or path)

    async def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest names on the target, or ``None`` if it has none."""
        try:
            return (await self.head_manifest(repository, reference)).digest
        except UpstreamNotFound:
            return None

    async def put_manifest(
        self, repository: str, reference: str, media_type: str, content: bytes, subject: str | None = None
    ) -> None:
        what = f"manifest {repository}:{reference}"
        headers = {"Content-Type": media_type, "Content-Length": str(len(content))}
        path = f"/v2/{repository}/manifests/{reference}"
        response = await self._send("PUT", path, self._push_scope(repository), headers, what, content)
        await response.aclose()
        if subject is not None and "OCI-Subject" not in response.headers:
            await self._add_to_referrers_tag(repository, subject, media_type, content)

    async def _add_to_referrers_tag(self, repository: str, subject: str, media_type: str, content: bytes) -> None:
        """The referrers tag schema: the index tagged ``<alg>-<hex>`` lists the subject's referrers."""
        tag = subject.replace(":", "-", 1)[:128]
        manifest = json.loads(content)
        entry: dict[str, Any] = {"mediaType": media_type, "digest": str(Digest.of(content)), "size": len(content)}
        artifact_type = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
        if artifact_type:
            entry["artifactType"] = artifact_type
        if manifest.get("annotations"):
            entry["annotations"] = manifest["annotations"]
        try:
            index = json.loads((await self.get_manifest(repository, tag, max_bytes=MAX_REFERRERS_INDEX)).content)
        except UpstreamNotFound:
            index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": []}
        listed = index.setdefault("manifests", [])
        if any(item.get("digest") == entry["digest"] for item in listed):
            return
        listed.append(entry)
        body = json.dumps(index, separators=(",", ":")).encode()
        await self.put_manifest(repository, tag, mediatypes.OCI_INDEX, body)

    async def delete_manifest(self, repository: str, reference: str) -> bool:
        """Delete a manifest (by digest) or a tag; ``False`` if the target had none.

        A registry that cannot delete a tag alone (the spec makes it optional; Distribution 2.8,
        Docker Hub, GHCR answer 400/405) can only lose the tag by losing the manifest it names,
        which takes every other tag on that manifest with it: tags the rule does not select,
        tags the source still has, tags other writers pushed. So the manifest is deleted only
        when no other tag on the target names it (its tag list, read in full up to
        ``MAX_TAGS_CHECKED``, each tag HEADed); otherwise :class:`DeleteSkipped` says why it was
        left. (A tag pushed there between the check and the delete is still lost: the spec
        offers no conditional delete.)"""
        what = f"manifest {repository}:{reference}"
        try:
            response = await self._send(
                "DELETE", f"/v2/{repository}/manifests/{reference}", self._push_scope(repository), {}, what
            )
        except UpstreamNotFound:
            return False
        except UpstreamError as exc:
            if is_digest(reference) or exc.status not in (400, 405):
                raise
            digest = await self.manifest_digest(repository, reference)
            if digest is None:
                return False
            shared = await self._other_tag_on(repository, reference, digest)
            if shared is not None:
                raise DeleteSkipped(
                    f"skipped: manifest still tagged: the target cannot delete tag {repository}:{reference} alone,"
                    f" and its manifest {digest} is also {shared}, so the tag was left there"
                ) from None
            return await self.delete_manifest(repository, digest)
        await response.aclose()
        return True

    async def _other_tag_on(self, repository: str, tag: str, digest: str) -> str | None:
        """Another tag of ``repository`` on the target naming ``digest`` (or a reason to assume
        one: too many tags to check), else ``None``."""
        others = [other for other in await self.tags(repository) if other != tag]
        if len(others) > MAX_TAGS_CHECKED:
            return f"possibly tagged otherwise (the repository has more than {MAX_TAGS_CHECKED} tags to check)"
        for other in others:
            if REFERRERS_TAG.match(other):
                continue  # the referrers tag schema's index of a subject, never an image itself
            if await self.manifest_digest(repository, other) == digest:
                return f"tagged {other}"
        return None


def target_client(access: TargetAccess, timeout: float, *, chunk_size: int = CHUNK_SIZE) -> OciPushClient:
    """A client for a replication target: its credentials, and its TLS options (verification
    off, or a CA bundle of its own in PEM)."""
    verify: bool | ssl.SSLContext = access.tls_verify
    if access.tls_verify and access.ca_pem:
        verify = ssl.create_default_context(cadata=access.ca_pem)
    credentials = UpstreamCredentials(access.username, access.password or "") if access.username else None
    return OciPushClient(
        access.url,
        credentials=credentials,
        verify_tls=verify,
        timeout=timeout,
        max_connections=8,
        chunk_size=chunk_size,
    )
