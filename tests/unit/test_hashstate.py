"""The resumable SHA-256: its saved state resumes to hashlib's digest at any split point."""

from __future__ import annotations

import hashlib
import os

import pytest

from modelyard.storage import hashstate
from modelyard.storage.hashstate import STATE_SIZE, ResumableSha256


def test_available_on_this_machine() -> None:
    # The project's machines ship OpenSSL 3 with the interface: without it uploads stay
    # correct but re-read bytes, which the suite should not let pass unnoticed.
    assert hashstate.AVAILABLE


@pytest.mark.parametrize("split", [0, 1, 55, 56, 63, 64, 65, 4096, 100_000])
def test_state_saved_at_any_point_resumes_to_the_same_digest(split: int) -> None:
    data = os.urandom(100_003)
    first = ResumableSha256()
    first.update(data[:split])
    state = first.state()
    assert len(state) == STATE_SIZE

    resumed = ResumableSha256.resume(state)
    resumed.update(memoryview(data)[split:])
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    assert first.hexdigest() == hashlib.sha256(data[:split]).hexdigest()  # hexdigest does not end it
    first.update(data[split:])
    assert first.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_state_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="112 bytes"):
        ResumableSha256.resume(b"short")
