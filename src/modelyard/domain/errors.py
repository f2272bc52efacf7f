"""Errors as data: every OCI error code is declared once, with its HTTP status.

Services raise :class:`RegistryError`; exactly one handler (``api/errors.py``) renders it as
the spec's ``{"errors": [{"code", "message", "detail"}]}`` body. Nothing else maps errors to
statuses, so a code can never answer with two different statuses in two places.

The ``/v2`` codes are those of the OCI distribution spec (``code-1`` .. ``code-14``), plus the
few that CNCF Distribution also uses and clients know (``TAG_INVALID``, ``UNKNOWN``). The admin
API adds ``NOT_FOUND``, ``CONFLICT`` and ``VALIDATION_FAILED``.

An immutable tag that a push would move, or a delete would remove, is refused with ``DENIED``
and status ``409 Conflict`` (detail ``reason: TAG_IMMUTABLE``): ``DENIED`` because every OCI
client prints its message, 409 because the request conflicts with the repository's state
rather than the caller's permissions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
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
    """A refusal the client should see, carrying its OCI code.

    ``status`` overrides the code's default where the spec asks for another one (for example
    ``416`` for an out-of-order chunk, ``413`` for an oversized manifest). ``headers`` are
    added to the error response (for example the current ``Range`` of an upload).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        detail: Any = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.default_message
        self.detail = detail
        self.status = status or code.status
        self.headers = dict(headers or {})
        super().__init__(f"{code.name}: {self.message}")

    def to_json(self) -> dict[str, Any]:
        """The single error object for the ``errors`` list."""
        entry: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry
