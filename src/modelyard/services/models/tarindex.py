"""The member index of a tar layer, computed at push time.

An uncompressed tar is walked by its headers only: ``tarfile`` over a :class:`RangeFile` reads
each 512-byte header (and any long-name or PAX header) and seeks over the data, so listing a
50 GB weights tar reads a few kilobytes. Each regular file's data offset is recorded, which is
what lets ``…/files/{path}`` serve a member with a ranged read of the layer.

A gzip tar cannot be seeked: it is decompressed as a stream, within the extraction's budget
of bytes and time (a layer past it is listed as far as it got, and the version says so); small
members worth reading (a ``config.json``, a README) are captured as they pass. zstd tars are
not decompressed here (the standard library has no zstd before Python 3.14): such a layer is
listed as one file.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard.services.models.source import Budget, LimitExceeded, Unreadable

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Member:
    path: str
    size: int
    offset: int  # of the data, in the uncompressed stream
    mode: int


def clean_path(name: str) -> str | None:
    """A member's path as files are named here (``./a/b`` -> ``a/b``), or ``None`` for a name
    that escapes (absolute, ``..``) or carries control characters."""
    if _CONTROL.search(name) or name.startswith("/") or "\\" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


class _Counted(io.RawIOBase):
    """Decompressed bytes, charged to the budget as they come (a gzip bomb stops at the limit)."""

    def __init__(self, inner: Any, budget: Budget, limit: int) -> None:
        super().__init__()
        self._inner = inner
        self._budget = budget
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self._budget.check_time()
        data = self._inner.read(len(buffer))
        self.count += len(data)
        if self.count > self._limit:
            raise LimitExceeded(f"the layer decompresses to more than the {self._limit} bytes read at push time")
        buffer[: len(data)] = data
        return len(data)


def list_members(
    stream: Any,
    archive: str,
    *,
    budget: Budget,
    max_members: int,
    max_uncompressed: int,
    capture: Callable[[str, int], int] | None = None,
) -> tuple[list[Member], dict[str, bytes], str | None]:
    """Regular-file members of a tar layer, the bytes ``capture(path, size)`` asked for (gzip
    only), and a note when the listing stopped early or skipped names."""
    members: list[Member] = []
    captured: dict[str, bytes] = {}
    skipped = 0
    note: str | None = None
    try:
        if archive == "tar":
            tar = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 - closed below
        else:
            counted = _Counted(gzip.GzipFile(fileobj=stream, mode="rb"), budget, max_uncompressed)
            tar = tarfile.open(fileobj=io.BufferedReader(counted, 1024 * 1024), mode="r|")  # noqa: SIM115
        with tar:
            for info in tar:
                budget.check_time()
                if not info.isreg():
                    continue
                path = clean_path(info.name)
                if path is None:
                    skipped += 1
                    continue
                if len(members) >= max_members:
                    note = f"listing stopped at {max_members} files"
                    break
                members.append(Member(path, info.size, info.offset_data, info.mode))
                wanted = capture(path, info.size) if capture is not None and archive != "tar" else 0
                if wanted:
                    handle = tar.extractfile(info)
                    if handle is not None:
                        captured[path] = handle.read(min(wanted, info.size))
    except LimitExceeded as exc:
        note = f"listing stopped: {exc}"
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError, UnicodeError) as exc:
        if not members:
            raise Unreadable(f"the layer is not a readable tar: {exc}") from None
        note = f"listing stopped at a damaged entry: {exc}"
    if skipped:
        note = "; ".join(filter(None, [note, f"{skipped} member(s) with unsafe names skipped"]))
    return members, captured, note
