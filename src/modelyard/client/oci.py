"""A typed, synchronous OCI distribution client on httpx, for pushing and pulling big blobs.

What it does, and why it is shaped this way:

- **Token auth as Docker clients do it.** The first request learns how the registry wants to be
  spoken to (``GET /v2/``: 200 means no auth, 401 with a ``Bearer realm=…`` challenge means token
  auth). From then on a token for the exact scopes of a request (``repository:acme/llm:pull,push``)
  is fetched *before* the request, so a streamed body never has to be replayed after a 401. Tokens
  are cached per scope set until shortly before they expire. A 401 or 403 whose challenge says
  ``insufficient_scope`` makes the client ask once for a token with the scopes the challenge names.
  Credentials, in order: explicit user name and password (or API key) as Basic at the realm, a
  stored refresh token (``modelyard login``) as an OAuth2 refresh grant, else anonymous.
- **Uploads stream from disk in 8 MiB pieces** with flat memory, either in one ``PUT`` (small
  blobs) or in ``PATCH`` chunks with ``Content-Range`` (big ones). The upload URL of a chunked upload
  is kept in a small state file under the config directory, keyed by registry, repository and
  digest, so a run that was killed resumes from the offset the registry acknowledged (``GET`` on
  the upload URL) instead of starting over.
- **Downloads stream too**, hashed while they are written, and resume a partial file with
  ``Range``.

Every refusal is an :class:`~modelyard.client.admin.ApiError` with the registry's error code and
message; a registry that cannot be reached is a :class:`RegistryUnreachableError`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import httpx

from modelyard.client.admin import ApiError, RegistryUnreachableError
from modelyard.client.auth import config_dir, stored_refresh_token

PIECE = 8 * 1024 * 1024
"""Bytes read from disk (or the network) at a time: memory stays flat whatever the blob size."""
DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024
"""Blobs larger than this go up in ``PATCH`` chunks of this size (the unit of resumption)."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

Advance = Callable[[int], None]
"""Called with the number of bytes just sent or received (progress bars)."""


class DigestMismatchError(Exception):
    """Bytes read do not hash to the digest they were asked for (a corrupt or changed blob or file)."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class NotFoundError(ApiError):
    """The repository, manifest, tag or blob does not exist (or the caller may not see it)."""


class AuthenticationError(ApiError):
    """The registry wants credentials, or refused the ones given (401)."""


class PermissionDeniedError(ApiError):
    """The credentials are good but do not allow this (403, ``DENIED``)."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hasher(digest: str) -> Any:
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise ValueError(f"unsupported digest algorithm in {digest!r}")
    return hashlib.new(algorithm)


def file_digest(path: Path, advance: Advance | None = None) -> str:
    """The sha256 digest of a file, read in :data:`PIECE` pieces."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(PIECE):
            hasher.update(piece)
            if advance is not None:
                advance(len(piece))
    return "sha256:" + hasher.hexdigest()


@dataclass(frozen=True)
class Credentials:
    """How to get tokens: ``username``/``password`` (a password or an API key) sent as Basic to
    the token realm, or a ``refresh_token`` from ``modelyard login``."""

    username: str = ""
    password: str | None = None
    refresh_token: str | None = None

    @classmethod
    def for_registry(cls, url: str, *, api_key: str | None = None) -> Credentials | None:
        """What the CLI and SDK use by default: an API key (given, else ``MODELYARD_API_KEY``),
        else the refresh token stored by ``modelyard login`` for ``url``, else none."""
        key = api_key or os.environ.get("MODELYARD_API_KEY")
        if key:
            return cls(password=key)
        refresh = stored_refresh_token(url)
        return cls(refresh_token=refresh) if refresh else None


@dataclass
class _Token:
    value: str
    expires_at: float


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _challenge(response: httpx.Response) -> tuple[str, dict[str, str]]:
    header = response.headers.get("WWW-Authenticate", "")
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def error_of(response: httpx.Response, what: str = "") -> ApiError:
    """The registry's ``{"errors": [...]}`` body as an :class:`ApiError` (HEAD answers have no
    body: the code is guessed from the status)."""
    status = response.status_code
    kind = {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError}.get(status, ApiError)
    try:
        first = response.json()["errors"][0]
        return kind(status, str(first["code"]), str(first["message"]), first.get("detail"))
    except (ValueError, KeyError, IndexError, TypeError, httpx.ResponseNotRead):
        pass
    code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND", 429: "TOOMANYREQUESTS"}.get(status, "UNKNOWN")
    message = f"{what}: HTTP {status} {response.reason_phrase}".lstrip(": ")
    return kind(status, code, message)


def repository_scope(name: str, *actions: str) -> str:
    return f"repository:{name}:{','.join(actions)}"


# -- resumable upload state ------------------------------------------------------------------


class UploadState:
    """Where an unfinished chunked upload lives, one small JSON file per (registry, repository,
    digest) under ``$MODELYARD_CONFIG_DIR/uploads``: the next run asks the registry how far it got
    and continues from there. Removed once the blob is committed."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else config_dir() / "uploads"

    def _path(self, registry: str, repository: str, digest: str) -> Path:
        key = hashlib.sha256(f"{registry}\n{repository}\n{digest}".encode()).hexdigest()[:32]
        return self.directory / f"{key}.json"

    def get(self, registry: str, repository: str, digest: str) -> str | None:
        try:
            data = json.loads(self._path(registry, repository, digest).read_text())
        except (OSError, ValueError):
            return None
        location = data.get("location") if isinstance(data, dict) else None
        return location if isinstance(location, str) else None

    def put(self, registry: str, repository: str, digest: str, location: str) -> None:
        path = self._path(registry, repository, digest)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        body = {"registry": registry, "repository": repository, "digest": digest, "location": location,
                "updated_at": time.time()}  # fmt: skip
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle)
        os.replace(tmp, path)

    def drop(self, registry: str, repository: str, digest: str) -> None:
        self._path(registry, repository, digest).unlink(missing_ok=True)


@dataclass(frozen=True)
class BlobUpload:
    """How one blob reached the registry: bytes actually sent, and whether it was already there
    (``existed``) or mounted from another repository (``mounted_from``)."""

    digest: str
    size: int
    sent: int = 0
    existed: bool = False
    mounted_from: str | None = None
    resumed_at: int = 0


@dataclass
class Manifest:
    body: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        if not isinstance(value, dict):
            raise ValueError("a manifest must be a JSON object")
        return value


@dataclass
class OciClient:
    """A client for one registry's ``/v2`` API.

    >>> client = OciClient("http://localhost:5000", credentials=Credentials.for_registry("http://localhost:5000"))
    >>> client.blob_exists("acme/llm", "sha256:…")  # doctest: +SKIP
    False
    """

    base_url: str
    credentials: Credentials | None = None
    timeout: float = 300.0
    transport: httpx.BaseTransport | None = None
    verify: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    state: UploadState = field(default_factory=UploadState)
    max_connections: int = 16

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout, connect=30.0),
            transport=self.transport,
            verify=self.verify,
            limits=limits,
            follow_redirects=True,
        )
        self._lock = threading.Lock()
        self._probed = False
        self._realm: tuple[str, str] | None = None  # (realm, service) when the registry wants tokens
        self._basic = False  # the registry challenged with Basic
        self._tokens: dict[tuple[str, ...], _Token] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OciClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- auth --------------------------------------------------------------------------------

    def _probe(self) -> None:
        with self._lock:
            if self._probed:
                return
            try:
                response = self._http.get("/v2/")
            except httpx.TransportError as exc:
                raise RegistryUnreachableError(f"cannot reach the registry at {self.base_url}: {exc}") from None
            if response.status_code == 401:
                scheme, params = _challenge(response)
                if scheme == "bearer" and "realm" in params:
                    self._realm = (params["realm"], params.get("service", ""))
                elif scheme == "basic":
                    self._basic = True
            elif response.status_code != 200:
                raise error_of(response, f"GET {self.base_url}/v2/")
            self._probed = True

    def _fetch_token(self, scopes: tuple[str, ...]) -> _Token:
        assert self._realm is not None
        realm, service = self._realm
        creds = self.credentials
        try:
            if creds is not None and creds.refresh_token and creds.password is None:
                form = {"grant_type": "refresh_token", "refresh_token": creds.refresh_token, "service": service,
                        "client_id": "modelyard-cli", "scope": " ".join(scopes)}  # fmt: skip
                response = self._http.post(realm, data=form)
            else:
                params: list[tuple[str, str | int | float | bool | None]] = [("service", service)]
                params += [("scope", s) for s in scopes]
                auth = (creds.username, creds.password) if creds is not None and creds.password is not None else None
                response = self._http.get(realm, params=params, auth=auth)
        except httpx.TransportError as exc:
            raise RegistryUnreachableError(f"cannot reach the token service at {realm}: {exc}") from None
        if response.status_code != 200:
            error = error_of(response, f"token request to {realm}")
            if response.status_code == 401:
                hint = "log in again (modelyard login) or check MODELYARD_API_KEY"
                raise AuthenticationError(401, error.code, f"{error.message}; {hint}", error.detail)
            raise error
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str):
            raise ApiError(502, "UNKNOWN", f"the token service at {realm} answered without a token")
        expires_in = body.get("expires_in") if isinstance(body.get("expires_in"), int) else 60
        return _Token(token, time.monotonic() + max(int(expires_in) - 30, 10))

    def _token(self, scopes: tuple[str, ...], *, renew: bool = False) -> str | None:
        self._probe()
        if self._realm is None:
            return None
        key = tuple(sorted(set(scopes)))
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and not renew and cached.expires_at > time.monotonic():
                return cached.value
        token = self._fetch_token(key)
        with self._lock:
            self._tokens[key] = token
        return token.value

    def _headers(self, scopes: tuple[str, ...], extra: dict[str, str] | None, *, renew: bool = False) -> dict[str, str]:
        headers = dict(extra or {})
        token = self._token(scopes, renew=renew) if scopes else None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str] = (),
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: Callable[[], bytes | Iterator[bytes]] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request with the right token. ``content`` is a factory so a body can be sent again
        after a token refresh (a file is reopened, never held in memory)."""
        scope_tuple = tuple(scopes)
        self._probe()
        auth: tuple[str, str] | None = None
        if self._basic and self.credentials is not None and self.credentials.password is not None:
            auth = (self.credentials.username, self.credentials.password)
        renewed = False
        while True:
            request = self._http.build_request(
                method,
                url,
                headers=self._headers(scope_tuple, headers, renew=renewed),
                params=params,
                content=content() if content is not None else None,
            )
            if auth is not None:
                request.headers["Authorization"] = _basic_header(*auth)
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                raise RegistryUnreachableError(f"{method} {request.url}: {exc}") from None
            if response.status_code not in (401, 403) or renewed:
                return response
            scheme, challenge = _challenge(response)
            if scheme != "bearer" or "realm" not in challenge:
                return response
            if response.status_code == 403 and challenge.get("error") != "insufficient_scope":
                return response
            with self._lock:
                self._realm = self._realm or (challenge["realm"], challenge.get("service", ""))
            # A token refused for these scopes: ask once more, with what the challenge names.
            wanted = challenge.get("scope")
            if wanted:
                scope_tuple = tuple(dict.fromkeys([*scope_tuple, *wanted.split()]))
            response.close()
            renewed = True

    def _check(self, response: httpx.Response, *ok: int, what: str) -> httpx.Response:
        if response.status_code not in ok:
            if not response.is_stream_consumed:
                response.read()
            raise error_of(response, what)
        return response

    def absolute(self, location: str) -> str:
        return urljoin(self.base_url + "/", location)

    # -- blobs -------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        scopes = (repository_scope(repository, "pull"),)
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scopes=scopes)
        if response.status_code == 404:
            return False
        self._check(response, 200, what=f"HEAD blob {digest} in {repository}")
        return True

    def mount(self, repository: str, digest: str, source: str) -> str | None:
        """Mount ``digest`` from ``source``: ``None`` when mounted, else the upload URL of the
        session the registry opened instead (use it for the upload)."""
        scopes = (repository_scope(repository, "pull", "push"), repository_scope(source, "pull"))
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes, params={"mount": digest, "from": source}
        )
        self._check(response, 201, 202, what=f"mount {digest} from {source} into {repository}")
        if response.status_code == 201:
            return None
        return self.absolute(response.headers["Location"])

    def start_upload(self, repository: str) -> tuple[str, int]:
        """A new upload session: its absolute URL and the registry's minimum chunk length."""
        scopes = (repository_scope(repository, "pull", "push"),)
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes)
        self._check(response, 202, what=f"start an upload to {repository}")
        minimum = response.headers.get("OCI-Chunk-Min-Length", "0")
        return self.absolute(response.headers["Location"]), int(minimum) if minimum.isdigit() else 0

    def upload_offset(self, repository: str, location: str) -> int | None:
        """Bytes the registry acknowledged for an upload session, ``None`` if it is gone."""
        scopes = (repository_scope(repository, "pull", "push"),)
        response = self.request("GET", location, scopes=scopes)
        if response.status_code in (404, 400):
            return None
        self._check(response, 204, 200, what="upload status")
        return _range_end(response.headers.get("Range"))

    def check_push(self, repository: str) -> None:
        """Fail early, with the registry's own message, when ``repository`` can't be pushed to
        (no permission, no create-on-first-push): open an upload session and drop it."""
        location, _ = self.start_upload(repository)
        self.cancel_upload(repository, location)

    def cancel_upload(self, repository: str, location: str) -> None:
        """Drop an upload session nobody will finish (best effort)."""
        with contextlib.suppress(RegistryUnreachableError):
            self.request("DELETE", location, scopes=(repository_scope(repository, "pull", "push"),)).close()

    def upload_blob(
        self,
        repository: str,
        path: Path,
        digest: str,
        size: int,
        *,
        advance: Advance | None = None,
        location: str | None = None,
    ) -> BlobUpload:
        """Upload the file at ``path`` (which hashes to ``digest``) unless the registry has it.

        Small blobs go in one ``PUT``; bigger ones in ``PATCH`` chunks, resumable across runs
        through :class:`UploadState`. ``location`` is a session already opened (by a failed mount).
        """
        scopes = (repository_scope(repository, "pull", "push"),)
        resumed = self.state.get(self.base_url, repository, digest) if location is None else None
        offset = 0
        if resumed is not None:
            acknowledged = self.upload_offset(repository, resumed)
            if acknowledged is None or acknowledged > size:
                self.state.drop(self.base_url, repository, digest)
            else:
                location, offset = resumed, acknowledged
        minimum = 0
        if location is None:
            location, minimum = self.start_upload(repository)
        chunk = max(self.chunk_size, minimum, 1)
        if offset == 0 and size <= chunk:
            self._put_final(location, scopes, digest, path, 0, size, advance)
            return BlobUpload(digest, size, sent=size)
        self.state.put(self.base_url, repository, digest, location)
        if advance is not None and offset:
            advance(offset)
        sent = self._send_chunks(repository, location, path, digest, size, offset, chunk, advance)
        self.state.drop(self.base_url, repository, digest)
        return BlobUpload(digest, size, sent=sent, resumed_at=offset)

    def _send_chunks(
        self, repository: str, location: str, path: Path, digest: str, size: int, offset: int, chunk: int,
        advance: Advance | None,
    ) -> int:  # fmt: skip
        """``PATCH`` the rest of the file from ``offset``, then close the session: bytes sent."""
        scopes = (repository_scope(repository, "pull", "push"),)
        sent = 0
        failures = 0
        while offset < size:
            end = min(offset + chunk, size)
            headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end - 1}",
                       "Content-Length": str(end - offset)}  # fmt: skip

            def body(start: int = offset, stop: int = end) -> Iterator[bytes]:
                return _file_range(path, start, stop, advance)

            try:
                response = self.request("PATCH", location, scopes=scopes, headers=headers, content=body)
            except RegistryUnreachableError:
                failures += 1
                acknowledged = self.upload_offset(repository, location) if failures <= 3 else None
                if acknowledged is None:
                    raise
                time.sleep(0.5 * failures)
                offset = acknowledged
                continue
            if response.status_code == 416:
                failures += 1
                acknowledged = self.upload_offset(repository, location) if failures <= 3 else None
                if acknowledged is None:
                    raise error_of(response, "chunk out of order")
                offset = acknowledged
                continue
            self._check(response, 202, what=f"PATCH chunk {offset}-{end - 1} of {digest}")
            if "Location" in response.headers:
                location = self.absolute(response.headers["Location"])
                self.state.put(self.base_url, repository, digest, location)
            sent += end - offset
            offset = end
        self._put_final(location, scopes, digest, None, 0, 0, None)
        return sent

    def _put_final(
        self,
        location: str,
        scopes: tuple[str, ...],
        digest: str,
        path: Path | None,
        start: int,
        stop: int,
        advance: Advance | None,
    ) -> None:
        headers = {"Content-Length": str(stop - start)}
        if path is not None:
            headers["Content-Type"] = "application/octet-stream"
        response = self.request(
            "PUT",
            _with_query(location, {"digest": digest}),
            scopes=scopes,
            headers=headers,
            content=(lambda: _file_range(path, start, stop, advance)) if path is not None else None,
        )
        self._check(response, 201, what=f"commit blob {digest}")

    def upload_bytes(self, repository: str, data: bytes, media_type: str = "application/octet-stream") -> str:
        """A small blob from memory (a config): ``POST`` then ``PUT``, unless it exists."""
        digest = sha256_digest(data)
        if self.blob_exists(repository, digest):
            return digest
        location, _ = self.start_upload(repository)
        response = self.request(
            "PUT",
            _with_query(location, {"digest": digest}),
            scopes=(repository_scope(repository, "pull", "push"),),
            headers={"Content-Type": "application/octet-stream"},
            content=lambda: data,
        )
        self._check(response, 201, what=f"commit blob {digest}")
        return digest

    def fetch_blob(self, repository: str, digest: str, *, max_size: int = 16 * 1024 * 1024) -> bytes:
        """A small blob (a config) in memory, verified."""
        scopes = (repository_scope(repository, "pull"),)
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", scopes=scopes, stream=True)
        try:
            self._check(response, 200, what=f"GET blob {digest} from {repository}")
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > max_size:
                    raise ApiError(413, "SIZE_INVALID", f"blob {digest} is larger than {max_size} bytes")
        finally:
            response.close()
        actual = _hasher(digest)
        actual.update(data)
        if f"{digest.split(':', 1)[0]}:{actual.hexdigest()}" != digest:
            raise DigestMismatchError(f"blob from {repository}", digest, actual.hexdigest())
        return bytes(data)

    def download_blob(
        self, repository: str, digest: str, target: IO[bytes], *, offset: int = 0, hasher: Any = None,
        advance: Advance | None = None,
    ) -> int:  # fmt: skip
        """Stream a blob into ``target`` from byte ``offset`` (a partial file being resumed; the
        caller already fed its first ``offset`` bytes to ``hasher``). Returns the offset the
        bytes were written from: 0 when the registry ignored the range (``target`` is rewound
        and truncated, and the caller must restart its hash)."""
        headers = {"Accept-Encoding": "identity"}  # blobs are stored bytes: nothing to decode
        if offset:
            headers["Range"] = f"bytes={offset}-"
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", scopes=(repository_scope(repository, "pull"),),
            headers=headers, stream=True,
        )  # fmt: skip
        try:
            self._check(response, 200, 206, what=f"GET blob {digest} from {repository}")
            start = offset if response.status_code == 206 else 0
            if start == 0 and offset:
                target.seek(0)
                target.truncate()
            for piece in response.iter_raw():
                target.write(piece)
                if hasher is not None:
                    hasher.update(piece)
                if advance is not None:
                    advance(len(piece))
            return start
        except httpx.TransportError as exc:
            raise RegistryUnreachableError(f"download of {digest} from {repository} broke off: {exc}") from None
        finally:
            response.close()

    # -- manifests and tags ------------------------------------------------------------------

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST) -> str:
        response = self.request(
            "PUT", f"/v2/{repository}/manifests/{reference}", scopes=(repository_scope(repository, "pull", "push"),),
            headers={"Content-Type": media_type}, content=lambda: body,
        )  # fmt: skip
        self._check(response, 201, what=f"PUT manifest {repository}:{reference}")
        return response.headers.get("Docker-Content-Digest") or sha256_digest(body)

    def get_manifest(self, repository: str, reference: str, *, accept: Sequence[str] = MANIFEST_TYPES) -> Manifest:
        response = self.request(
            "GET", f"/v2/{repository}/manifests/{reference}", scopes=(repository_scope(repository, "pull"),),
            headers={"Accept": ", ".join(accept)},
        )  # fmt: skip
        self._check(response, 200, what=f"manifest {repository}:{reference}")
        body = response.content
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatchError(f"manifest {repository}@{reference}", reference, digest)
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        return Manifest(body, media_type or OCI_MANIFEST, digest)

    def manifest_exists(self, repository: str, reference: str) -> bool:
        response = self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", scopes=(repository_scope(repository, "pull"),),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )  # fmt: skip
        if response.status_code == 404:
            return False
        self._check(response, 200, what=f"HEAD manifest {repository}:{reference}")
        return True

    def tags(self, repository: str) -> list[str]:
        found: list[str] = []
        url: str | None = f"/v2/{repository}/tags/list"
        while url is not None:
            response = self.request("GET", url, scopes=(repository_scope(repository, "pull"),))
            self._check(response, 200, what=f"tags of {repository}")
            found += response.json().get("tags") or []
            link = response.links.get("next", {}).get("url")
            url = self.absolute(link) if link else None
        return found


def _range_end(value: str | None) -> int:
    """``Range: 0-<last>`` of an upload session -> acknowledged bytes (``0-0`` and none are 0:
    the spec's notation cannot tell one byte from none, and a one-byte blob is never chunked)."""
    if not value:
        return 0
    match = re.fullmatch(r"(?:bytes=)?0-(\d+)", value.strip())
    if match is None:
        return 0
    last = int(match.group(1))
    return 0 if last == 0 else last + 1


def _basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _file_range(path: Path, start: int, stop: int, advance: Advance | None) -> Iterator[bytes]:
    """Bytes ``start``..``stop`` of a file, in :data:`PIECE` pieces (never the whole file)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        remaining = stop - start
        while remaining > 0:
            piece = handle.read(min(PIECE, remaining))
            if not piece:
                raise OSError(f"{path} shrank while it was being sent")
            remaining -= len(piece)
            if advance is not None:
                advance(len(piece))
            yield piece
