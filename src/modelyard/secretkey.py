"""Where the key of :class:`~modelyard.services.secretbox.SecretBox` comes from.

``secret_key`` (base64 of 32 bytes) when set -- what several replicas with separate data
directories must share -- else ``DATA_DIR/secret.key``, created once with mode 0600 (created
atomically, so two workers starting at once agree on one key).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from modelyard.config import Settings

KEY_FILE = "secret.key"


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError(f"{where} must be the base64 of 32 bytes (e.g. `openssl rand -base64 32`)")
    return key


def load_secret_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return _decode(settings.secret_key.get_secret_value(), "invalid setting 'secret_key'")
    path = Path(settings.data_dir).resolve() / KEY_FILE
    if not path.exists():
        # Written whole under a temporary name, then linked into place: link fails if another
        # worker got there first, so every worker reads the same, complete key.
        temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, base64.b64encode(secrets.token_bytes(32)) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink()
    return _decode(path.read_text(), f"{path}")
