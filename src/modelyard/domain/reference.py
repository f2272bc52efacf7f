"""Repository names and tags, validated by the distribution spec's grammar.

A name that fails the grammar is ``NAME_INVALID`` and a tag ``TAG_INVALID``; since the grammar
only admits ``[a-z0-9]`` components joined by ``.``, ``_``, ``__``, ``-`` and ``/``, a
path-traversal attempt (``..``, ``%2e``, absolute paths) is simply an invalid name.
"""

from __future__ import annotations

import re

from modelyard.domain.errors import ErrorCode, RegistryError

NAME_MAX_LENGTH = 255
TAG_MAX_LENGTH = 128

# The spec's grammar as patterns (also published in the admin API's OpenAPI document).
COMPONENT_PATTERN = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_PATTERN = rf"^{COMPONENT_PATTERN}(?:/{COMPONENT_PATTERN})*$"

_NAME = re.compile(NAME_PATTERN)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise ``NAME_INVALID``."""
    if len(name) > NAME_MAX_LENGTH:
        raise RegistryError(
            ErrorCode.NAME_INVALID,
            f"repository name is {len(name)} characters long; the limit is {NAME_MAX_LENGTH}",
        )
    if not _NAME.fullmatch(name):  # not ``match``: its ``$`` also matches before a final "\n"
        raise RegistryError(
            ErrorCode.NAME_INVALID,
            f"invalid repository name {name[:100]!r}: use lowercase letters, digits and "
            "separators '.', '_', '__', '-' between them, with '/' between path components",
        )
    return name


def is_valid_tag(tag: str) -> bool:
    return _TAG.fullmatch(tag) is not None


def validate_tag(tag: str) -> str:
    """Return ``tag`` if valid, else raise ``TAG_INVALID``."""
    if not is_valid_tag(tag):
        raise RegistryError(
            ErrorCode.TAG_INVALID,
            f"invalid tag {tag[:150]!r}: up to {TAG_MAX_LENGTH} characters of letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-'",
        )
    return tag


def split_compartment(name: str) -> tuple[str | None, str]:
    """``acme/team/llm`` -> (``acme``, ``team/llm``); a single component is in the root compartment."""
    if "/" not in name:
        return None, name
    compartment, rest = name.split("/", 1)
    return compartment, rest
