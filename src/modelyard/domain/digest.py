"""Content digests (``algorithm:encoded``) as the OCI image spec defines them.

Only the registered algorithms are accepted: ``sha256`` (64 lowercase hex) and ``sha512``
(128 lowercase hex). Anything else is ``DIGEST_INVALID``, so that a digest can be used as a
storage key without further checks: it never contains ``/``, ``..`` or upper-case variants
of the same content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from modelyard.domain.errors import ErrorCode, RegistryError

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_LOWER_HEX = re.compile(r"^[a-f0-9]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated digest; ``str(digest)`` is its canonical ``algorithm:hex`` form."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and validate, raising ``DIGEST_INVALID`` with the reason."""
        if not _GRAMMAR.match(value):
            raise RegistryError(
                ErrorCode.DIGEST_INVALID,
                f"invalid digest {value[:200]!r}: expected 'algorithm:hex', e.g. 'sha256:<64 hex>'",
            )
        algorithm, _, encoded = value.partition(":")
        expected = _HEX_LENGTH.get(algorithm)
        if expected is None:
            raise RegistryError(
                ErrorCode.DIGEST_INVALID,
                f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
            )
        if len(encoded) != expected or not _LOWER_HEX.match(encoded):
            raise RegistryError(
                ErrorCode.DIGEST_INVALID,
                f"invalid {algorithm} digest: expected {expected} lowercase hex characters",
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of in-memory bytes (manifests only; blobs are hashed while streaming)."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def is_digest(value: str) -> bool:
    """Whether a manifest reference looks like a digest rather than a tag (it has a ``:``)."""
    return ":" in value
