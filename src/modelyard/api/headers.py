"""Header values that a success and an error response share: where an upload lives and how far
it got (``Location`` and ``Range`` of a session, on its 202/204 and on a 416 refusal)."""

from __future__ import annotations


def range_header(offset: int) -> str:
    """The ``Range: 0-<last byte>`` value for ``offset`` acknowledged bytes (``0-0`` when none)."""
    return f"0-{max(offset - 1, 0)}"


def upload_location(repository: str, upload_id: str) -> str:
    return f"/v2/{repository}/blobs/uploads/{upload_id}"


def upload_headers(repository: str, upload_id: str, offset: int) -> dict[str, str]:
    """``Location``, ``Range`` and ``Docker-Upload-UUID`` of an upload that stands at ``offset``."""
    return {
        "Location": upload_location(repository, upload_id),
        "Range": range_header(offset),
        "Docker-Upload-UUID": upload_id,
    }
