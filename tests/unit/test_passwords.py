"""Password hashes: new ones at OWASP's argon2id minimum, old ones (argon2-cffi's defaults) still
verifying, so lowering the memory cost locks nobody out."""

from __future__ import annotations

import argon2

from modelyard.services.passwords import BoundedHasher


async def test_new_hashes_use_owasps_argon2id_minimum() -> None:
    hasher = BoundedHasher(concurrency=1, queue=0)
    try:
        stored = await hasher.hash("correct horse")
        # 19 MiB and one lane, not the library default's 64 MiB and four: a worker's peak RSS.
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored
        assert await hasher.verify(stored, "correct horse")
        assert not await hasher.verify(stored, "correct horse ")
    finally:
        hasher.shutdown()


async def test_hashes_made_with_the_former_parameters_still_verify() -> None:
    former = argon2.PasswordHasher()  # what passwords set before this change were hashed with
    stored = former.hash("battery staple")
    assert ",p=4$" in stored and "m=65536" in stored
    hasher = BoundedHasher(concurrency=1, queue=0)
    try:
        assert await hasher.verify(stored, "battery staple")
        assert not await hasher.verify(stored, "battery stapler")
    finally:
        hasher.shutdown()
