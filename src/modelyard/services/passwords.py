"""Password hashing with bounded cost, and a short memory of passwords that were right.

New passwords are hashed with argon2id at the lowest-memory row of OWASP's Password Storage
Cheat Sheet (7 MiB, 5 passes, one lane: :func:`new_password_hasher`); the sheet lists it with
19 MiB/2 passes and 46 MiB/1 pass as giving the same defence, trading memory for CPU. Not
argon2-cffi's default (RFC 9106's low-memory choice, 64 MiB and 4 lanes): each check's memory
lands in the peak RSS of the worker that runs it -- 64 MiB took a ~106 MiB worker to 172 MiB on
its first login, 19 MiB a 90 MiB one to 110 (bench/README.md); a check costs ~16 ms here
either way. A stored hash carries its own parameters,
so passwords hashed before keep verifying (at their own cost) until they are changed; they are
not re-hashed on login, which would end the account's refresh tokens (their generation is the hash).

argon2 is slow and memory-hungry on purpose.
Run on the shared I/O thread pool, 64 parallel bad logins took a worker from 95 MB to 2 GB and
stalled blob traffic queued behind them. So hashing gets its own pool of a few threads
(``password_hash_concurrency``) and an admission limit: once that many checks run and
``password_hash_queue`` more wait, a further one is refused at once (:class:`PasswordChecksBusy`:
429 with a ``Retry-After``) -- a flood costs a bounded amount of memory and never touches blob I/O.

Clients like crane fetch a token per request, each with the same password: the
:class:`CredentialCache` remembers a successful check for ``credential_cache_ttl`` seconds so
they pay argon2 once a minute, not every time. It never holds a password: entries are keyed by
an HMAC (with a per-process random key) of the user name and password, and hold the user's id
and a digest of the password hash that matched. A hit counts only if the user as stored *now*
still has that id and that password hash and is enabled, so a password change, deletion or
disabling ends a cached login at once, in every worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import argon2

from modelyard.domain.errors import PasswordChecksBusy
from modelyard.domain.principals import UserRecord

T = TypeVar("T")


def new_password_hasher() -> argon2.PasswordHasher:
    """argon2id as the OWASP Password Storage Cheat Sheet's m=7 MiB, t=5, p=1 row (see above)."""
    return argon2.PasswordHasher(memory_cost=7 * 1024, time_cost=5, parallelism=1)


class BoundedHasher:
    """argon2 on a pool of its own, refusing work beyond ``concurrency + queue`` at once."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self._hasher = new_password_hasher()
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="modelyard-argon2")
        self._limit = concurrency + queue
        self._admitted = 0

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold a place for one password check (and the bookkeeping around it), or refuse now.

        Only touched from the event loop's thread, so a plain counter is enough.
        """
        if self._admitted >= self._limit:
            raise PasswordChecksBusy(retry_after=1)
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str) -> str:
        """An argon2 hash of ``password``; the caller holds an :meth:`admission`."""
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored``; the caller holds an :meth:`admission`."""
        try:
            await self._run(self._hasher.verify, stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
        return True

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _fingerprint(password_hash: str) -> bytes:
    return hashlib.sha256(password_hash.encode()).digest()


class CredentialCache:
    """Recently verified (user name, password) pairs; see the module docstring."""

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[float, int, bytes]] = OrderedDict()

    def key(self, username: str, password: str) -> bytes:
        """The pair's entry key: an HMAC under a per-process random key (never the password)."""
        message = f"{len(username)}:{username}:{password}".encode(errors="surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def hit(self, username: str, password: str, user: UserRecord | None) -> bool:
        """Whether this pair was verified within the TTL for the account ``user`` is now."""
        if self._ttl <= 0 or user is None or user.disabled:
            return False
        key = self.key(username, password)
        entry = self._entries.get(key)
        if entry is None:
            return False
        expires, user_id, fingerprint = entry
        if time.monotonic() >= expires or user_id != user.id or fingerprint != _fingerprint(user.password_hash):
            del self._entries[key]
            return False
        return True

    def remember(self, username: str, password: str, user: UserRecord) -> None:
        if self._ttl <= 0:
            return
        key = self.key(username, password)
        self._entries[key] = (time.monotonic() + self._ttl, user.id, _fingerprint(user.password_hash))
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
