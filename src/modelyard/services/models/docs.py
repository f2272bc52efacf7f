"""Documentation files: the model card's first lines, and a license named by its text.

A ``README.md`` with a YAML front matter (Hugging Face model cards) declares ``license:`` there;
the excerpt shown is the text after the front matter.
"""

from __future__ import annotations

import re

CARD_LINES = 12
CARD_CHARS = 2000
_FRONT_LICENSE = re.compile(r"^license:\s*['\"]?([A-Za-z0-9.+-]+)", re.MULTILINE)
# The first lines of the common license texts -> their SPDX identifiers.
_LICENSE_TEXTS = (
    (re.compile(r"apache license\s*,?\s*version 2\.0", re.I), "apache-2.0"),
    (re.compile(r"^\s*mit license", re.I | re.M), "mit"),
    (re.compile(r"permission is hereby granted, free of charge", re.I), "mit"),
    (re.compile(r"gnu general public license\s*version 3", re.I), "gpl-3.0"),
    (re.compile(r"gnu lesser general public license\s*version 3", re.I), "lgpl-3.0"),
    (re.compile(r"bsd 3-clause", re.I), "bsd-3-clause"),
    (re.compile(r"mozilla public license,? version 2\.0", re.I), "mpl-2.0"),
    (re.compile(r"creative commons attribution 4\.0", re.I), "cc-by-4.0"),
    (re.compile(r"llama 3(\.\d)? community license", re.I), "llama3"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def card_excerpt(raw: bytes) -> tuple[str, str | None]:
    """The card's first lines (after a YAML front matter) and the license it declares."""
    text = _CONTROL.sub("", raw.decode("utf-8", errors="replace"))
    license_id = None
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            match = _FRONT_LICENSE.search(text[3:end])
            license_id = match.group(1).lower() if match else None
            text = text[end + 4 :]
    lines = [line.rstrip() for line in text.strip().splitlines()][:CARD_LINES]
    return "\n".join(lines)[:CARD_CHARS], license_id


def license_of(raw: bytes) -> str | None:
    """The SPDX identifier of a license text, if it is one of the common ones."""
    head = raw[:4096].decode("utf-8", errors="replace")
    for pattern, spdx in _LICENSE_TEXTS:
        if pattern.search(head):
            return spdx
    return None
