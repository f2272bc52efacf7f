"""Which tags of a repository are immutable.

``is_immutable`` means "every tag"; ``immutable_tag_patterns`` names some (globs such as
``v*``); ``mutable_tag_exclusions`` carves exceptions out of either (``latest``), which is how
users get "versions immutable, ``latest`` mutable". Globs use :func:`fnmatch.fnmatchcase`
(``*``, ``?``, ``[...]``), case-sensitively, as tags are.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from modelyard.domain.records import RepositoryRecord


def _matches(tag: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(tag, pattern) for pattern in patterns)


def tag_is_immutable(repository: RepositoryRecord, tag: str) -> bool:
    if _matches(tag, repository.mutable_tag_exclusions):
        return False
    return repository.is_immutable or _matches(tag, repository.immutable_tag_patterns)
