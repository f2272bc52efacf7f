"""A SHA-256 whose state can be saved with an upload session and resumed anywhere.

``hashlib`` cannot export a hash's state, so a chunk landing on another worker or replica (or
the same one after a restart) would have to re-read every acknowledged byte to rebuild it --
about a second per GB, and a full download of the object on S3. Quay keeps this state in its
database through the ``rehash`` package, which reaches into OpenSSL 1.x internals and refuses
OpenSSL 3. This module uses OpenSSL's public low-level SHA-256 interface instead
(``SHA256_Init``/``SHA256_Update``/``SHA256_Final`` over a ``SHA256_CTX``, a plain struct of
112 bytes declared in ``openssl/sha.h``): the same assembly as ``hashlib`` (measured at the
same speed), the GIL released during updates, and a state that is just bytes.

The interface is deprecated in OpenSSL 3 and could go in a later major version, and the struct
layout is checked rather than trusted: at import, a hash is saved and resumed mid-message and
compared with ``hashlib``. Where that fails, :data:`AVAILABLE` is false and callers fall back
to re-hashing the acknowledged bytes -- slower, never wrong.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib

STATE_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len -- 32-bit words
_Ctx = ctypes.c_ubyte * STATE_SIZE


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        for symbol in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
            getattr(lib, symbol).restype = ctypes.c_int
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
        lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib


_LIB = _load()


class ResumableSha256:
    """SHA-256 with :meth:`state` and :meth:`resume`; ``update`` and ``hexdigest`` as hashlib's."""

    __slots__ = ("_ctx",)

    def __init__(self) -> None:
        if _LIB is None:
            raise RuntimeError("OpenSSL's SHA-256 interface is not available here")
        self._ctx = _Ctx()
        _LIB.SHA256_Init(ctypes.byref(self._ctx))

    @classmethod
    def resume(cls, state: bytes) -> ResumableSha256:
        if len(state) != STATE_SIZE:
            raise ValueError(f"a SHA-256 state is {STATE_SIZE} bytes, not {len(state)}")
        hasher = cls.__new__(cls)
        hasher._ctx = _Ctx.from_buffer_copy(state)
        return hasher

    def update(self, data: bytes | bytearray | memoryview) -> None:
        assert _LIB is not None
        view = memoryview(data)
        if not view.nbytes:
            return
        pointer: bytes | int
        if isinstance(data, bytes):
            pointer = data
        elif view.readonly:
            pointer = bytes(view)  # a view of bytes: rare, copied
        else:
            # A reused receive buffer: hashed where it is (a copy would fault in fresh pages for
            # every piece: ~40 % of an upload's CPU, measured with perf).
            pointer = ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(view))
        _LIB.SHA256_Update(ctypes.byref(self._ctx), pointer, view.nbytes)

    def state(self) -> bytes:
        return bytes(self._ctx)

    def hexdigest(self) -> str:
        assert _LIB is not None
        ctx = _Ctx.from_buffer_copy(self._ctx)  # Final clears the context: finish a copy
        out = (ctypes.c_ubyte * 32)()
        _LIB.SHA256_Final(out, ctypes.byref(ctx))
        return bytes(out).hex()


def _self_test() -> bool:
    if _LIB is None:
        return False
    message = bytes(range(256)) * 5
    try:
        first = ResumableSha256()
        first.update(message[:333])
        resumed = ResumableSha256.resume(first.state())
        resumed.update(message[333:])
        return (
            resumed.hexdigest() == hashlib.sha256(message).hexdigest()
            and first.hexdigest() == hashlib.sha256(message[:333]).hexdigest()
        )
    except (OSError, ValueError, RuntimeError):
        return False


AVAILABLE = _self_test()
