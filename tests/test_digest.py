"""core.digest: hashlib's SHA-256, without OpenSSL in the monitor process."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from core.digest import sha256


def test_the_digest_is_hashlibs() -> None:
    for data in (b"", b"retroguard", bytes(range(256)) * 100):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        h = sha256()
        h.update(data[:7])
        h.update(data[7:])
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def test_the_monitor_does_not_load_openssl() -> None:
    """libcrypto is 3.5 MB of resident memory in a process whose budget is 30 MB."""
    probe = (
        "import sys\nfrom pathlib import Path\n"
        "import firmware.app, firmware.session.runner, sim.backends\n"
        "from firmware.detection.factory import detector_class, source_digest\n"
        "from firmware.session.voice import PromptCache\n"
        'detector_class(); source_digest(); PromptCache(Path("p")).path_for("hello")\n'
        "print(sorted(m for m in sys.modules if m in ('_hashlib', '_ssl')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
