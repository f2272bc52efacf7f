"""Password hashes: new ones with OWASP's low-memory argon2id parameters, old ones (argon2-cffi's defaults) still
verifying, so lowering the memory cost locks nobody out."""

from __future__ import annotations

import argon2
import pytest

from modelyard.services.passwords import BoundedHasher


async def test_new_hashes_use_owasps_low_memory_argon2id_parameters() -> None:
    hasher = BoundedHasher(concurrency=1, queue=0)
    try:
        stored = await hasher.hash("correct horse")
        # 7 MiB, five passes, one lane, not the library default's 64 MiB and four: a worker's peak RSS.
        assert stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$"), stored
        assert await hasher.verify(stored, "correct horse")
        assert not await hasher.verify(stored, "correct horse ")
    finally:
        hasher.shutdown()


@pytest.mark.parametrize(
    ("former", "marker"),
    [
        (argon2.PasswordHasher(), "m=65536,t=3,p=4$"),  # argon2-cffi's default, before 2026-12-03
        (argon2.PasswordHasher(memory_cost=19 * 1024, time_cost=2, parallelism=1), "m=19456,t=2,p=1$"),
    ],
)
async def test_hashes_made_with_former_parameters_still_verify(former: argon2.PasswordHasher, marker: str) -> None:
    stored = former.hash("battery staple")
    assert marker in stored
    hasher = BoundedHasher(concurrency=1, queue=0)
    try:
        assert await hasher.verify(stored, "battery staple")
        assert not await hasher.verify(stored, "battery stapler")
    finally:
        hasher.shutdown()
