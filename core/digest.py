"""SHA-256 for the monitor process, without OpenSSL where Python has its own.

``hashlib`` loads OpenSSL's libcrypto when it is imported: 3.5 MB of resident
memory in a process that hashes a few kilobytes at start-up (the detector's
sources, the spoken prompts' cache keys) and never again. Python's built-in
SHA-256 gives the same digest without it; ``hashlib`` is the fallback where a
build lacks it.
"""

from __future__ import annotations

import importlib
from typing import Protocol


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def sha256(data: bytes = b"") -> Hash:
    """A SHA-256 hash object (``hashlib.sha256``'s), fed ``data``."""
    for builtin in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        try:
            module = importlib.import_module(builtin)
        except ImportError:
            continue
        hash_: Hash = module.sha256(data)
        return hash_
    import hashlib

    return hashlib.sha256(data)
