"""Where a service may keep what it writes: never in the system's read-only folders.

systemd's ``ProtectSystem=`` (``full`` or ``strict``; both RetroGuard units are ``strict``) makes
``/usr``, ``/boot``, ``/efi`` and ``/etc`` read-only to a service whoever owns them, and the FHS
keeps state out of them anyway (``/var/lib``). A relative path in a config is relative to the
config file's folder, ``/etc/retroguard`` for both services: a relative event store, prompt
cache or control socket landed there, where the service could never write, and ``config
--check`` run as root (root may write ``/etc``) said nothing. Asked here, the answer is the same
whoever asks, so the check refuses what a start under the unit refuses.
"""

from __future__ import annotations

import os
from pathlib import Path

READ_ONLY_SYSTEM_DIRS = ("/etc", "/usr", "/boot", "/efi")
"""The folders ``ProtectSystem=full`` makes read-only (``strict`` makes everything read-only
but the unit's own state, runtime and temporary folders)."""


def read_only_system_dir(path: str | Path) -> str | None:
    """The read-only system folder ``path`` lies in (made absolute, ``..`` folded), or None."""
    absolute = Path(os.path.abspath(path))
    for folder in READ_ONLY_SYSTEM_DIRS:
        if absolute.is_relative_to(folder):
            return folder
    return None


def written_path_problem(key: str, path: str | Path, instead: str) -> str | None:
    """``key: ...`` when ``path``, something the service writes, is in a read-only system folder
    (``instead`` says what to write instead, e.g. "name a file in /var/lib/retroguard"), else
    None."""
    folder = read_only_system_dir(path)
    if folder is None:
        return None
    return (
        f"{key}: {path} is in {folder}, which the service can never write (its unit's "
        f"ProtectSystem= makes {folder} read-only, whoever owns it; a relative path is "
        f"relative to the config file's folder): {instead}"
    )
