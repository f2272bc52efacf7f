"""Secrets the registry must be able to read back (a webhook's signing secret) are stored
encrypted: AES-256-GCM under a key that is not in the database.

A signing secret cannot be hashed like a password: the registry needs it in clear to compute
each signature. So the database holds ``v1.`` + base64(nonce | ciphertext | tag), and the key
lives elsewhere: the ``secret_key`` setting (``MODELYARD_SECRET_KEY``, e.g. from a secret
manager), or a file ``secret.key`` (mode 0600) generated once in the data directory
(``secretkey.py``). A database dump or backup alone then reveals no secret, and a row moved to
another record fails to decrypt, since the associated data names what the value is for.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1."


class SecretBoxError(Exception):
    """A stored secret could not be decrypted (another key, or a damaged value)."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, purpose: str) -> str:
        if not token.startswith(_VERSION):
            raise SecretBoxError("unknown secret format")
        try:
            raw = base64.urlsafe_b64decode(token[len(_VERSION) :])
            return self._aead.decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretBoxError("the stored secret does not decrypt with this server's secret_key") from exc
