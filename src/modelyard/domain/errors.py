"""Errors as data: every OCI error code is declared once, with its HTTP status.

Services and the layers below them raise :class:`RegistryError` or one of its typed
subclasses, and know nothing of HTTP: a refusal carries its code, message and detail, and a
typed one the facts the client needs (an upload's offset, how long to wait). Exactly one
handler (``api/errors.py``) renders them as the spec's ``{"errors": [{"code", "message",
"detail"}]}`` body with the code's status; it alone maps a typed error to another status or
adds headers, so a code can never answer with two different statuses in two places::

    RegistryError                     code's status, no headers
    ├── ValidationFailed              VALIDATION_FAILED (422), each field and why
    ├── UploadOutOfOrder              BLOB_UPLOAD_INVALID, 416 + Range, Location, Docker-Upload-UUID
    ├── ManifestTooLarge              MANIFEST_INVALID, 413
    ├── DeniedByState                 DENIED, 409
    │   ├── TagImmutable
    │   └── ManifestReferenced
    └── RetryLater                    TOOMANYREQUESTS, 429 + Retry-After
        ├── TooManyLogins
        └── PasswordChecksBusy

The ``/v2`` codes are those of the OCI distribution spec (``code-1`` .. ``code-14``), plus the
few that CNCF Distribution also uses and clients know (``TAG_INVALID``, ``UNKNOWN``). The admin
API adds ``NOT_FOUND``, ``CONFLICT`` and ``VALIDATION_FAILED``.

An immutable tag that a push would move, or a delete would remove, is refused with ``DENIED``
and status ``409 Conflict`` (detail ``reason: TAG_IMMUTABLE``): ``DENIED`` because every OCI
client prints its message, 409 because the request conflicts with the repository's state
rather than the caller's permissions (:class:`DeniedByState`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any


class ErrorCode(enum.Enum):
    """An OCI error code, its default HTTP status and its default message."""

    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    TAG_INVALID = (400, "invalid tag")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    UNKNOWN = (500, "unknown error")
    # The admin API (/api/v1) shares the error body; these codes are its own.
    NOT_FOUND = (404, "resource not found")
    CONFLICT = (409, "resource conflict")
    VALIDATION_FAILED = (422, "request validation failed")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def default_message(self) -> str:
        return self.value[1]


class RegistryError(Exception):
    """A refusal the client should see, carrying its OCI code (see the module docstring)."""

    def __init__(self, code: ErrorCode, message: str | None = None, *, detail: Any = None) -> None:
        self.code = code
        self.message = message or code.default_message
        self.detail = detail
        super().__init__(f"{code.name}: {self.message}")

    def to_json(self) -> dict[str, Any]:
        """The single error object for the ``errors`` list."""
        entry: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry


class ValidationFailed(RegistryError):
    """A request whose fields break the rules: ``problems`` lists ``(field, why)`` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        summary = "; ".join(f"{name}: {message}" for name, message in problems[:5])
        detail = [{"field": name, "message": message} for name, message in problems]
        super().__init__(ErrorCode.VALIDATION_FAILED, f"invalid request: {summary}", detail=detail)
        self.problems = list(problems)


class UploadOutOfOrder(RegistryError):
    """A chunk that does not continue an upload where it stands (or races another writer).

    The client resumes from ``offset``, the acknowledged bytes of upload ``upload_id`` of
    ``repository`` (the spec answers 416 with the upload's ``Range`` and ``Location``).
    """

    def __init__(self, repository: str, upload_id: str, offset: int, message: str) -> None:
        super().__init__(ErrorCode.BLOB_UPLOAD_INVALID, message, detail={"offset": offset})
        self.repository = repository
        self.upload_id = upload_id
        self.offset = offset


class ManifestTooLarge(RegistryError):
    """A manifest of ``size`` bytes over this registry's ``limit`` (413)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            ErrorCode.MANIFEST_INVALID,
            f"manifest is {size} bytes; this registry accepts manifests up to {limit} bytes",
            detail={"size": size, "limit": limit},
        )
        self.size = size
        self.limit = limit


class DeniedByState(RegistryError):
    """``DENIED`` because of the repository's state, not the caller's rights (409; see above)."""

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(ErrorCode.DENIED, message, detail=detail)


class TagImmutable(DeniedByState):
    """Tag ``tag`` of ``repository`` is immutable (it points to ``digest``): it cannot be ``action``
    (``"moved"``, ``"deleted"``)."""

    def __init__(self, repository: str, tag: str, digest: str, action: str) -> None:
        super().__init__(
            f"tag {tag} of {repository} is immutable and points to {digest}; it cannot be {action}. "
            "Push this content under a new tag (e.g. a new version), or change the repository's "
            "immutability settings",
            detail={"reason": "TAG_IMMUTABLE", "repository": repository, "tag": tag, "digest": digest},
        )
        self.repository = repository
        self.tag = tag
        self.digest = digest


class ManifestReferenced(DeniedByState):
    """Manifest ``digest`` of ``repository`` cannot be deleted: the ``indexes`` list it.

    Deleting it would leave them dangling (clients pulling them fail on "manifest unknown"), so
    the delete is refused, as Zot does, rather than allowed, as Distribution does: refusing
    loses nothing, and deleting the index first makes the delete possible.
    """

    def __init__(self, repository: str, digest: str, indexes: list[str]) -> None:
        shown = ", ".join(indexes[:5]) + (f" and {len(indexes) - 5} more" if len(indexes) > 5 else "")
        which, verb = ("the index", "lists") if len(indexes) == 1 else ("the indexes", "list")
        super().__init__(
            f"manifest {digest} of {repository} cannot be deleted: {which} {shown} {verb} it; "
            f"delete {which} first (DELETE /v2/{repository}/manifests/<index digest>)",
            detail={"reason": "MANIFEST_REFERENCED", "repository": repository, "digest": digest, "indexes": indexes},
        )
        self.repository = repository
        self.digest = digest
        self.indexes = indexes


class RetryLater(RegistryError):
    """``TOOMANYREQUESTS``: the same request may succeed after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(ErrorCode.TOOMANYREQUESTS, message)
        self.retry_after = retry_after


class TooManyLogins(RetryLater):
    """The login throttle refuses this attempt for ``retry_after`` more seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} seconds", retry_after)


class PasswordChecksBusy(RetryLater):
    """Every place for a password check is taken (``services/passwords.py``); retry in a moment."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(
            "the registry is busy checking other passwords; retry in a moment (an API key is checked without "
            "this cost)",
            retry_after,
        )
