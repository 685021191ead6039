"""Where a service may keep what it writes: never in the system's read-only folders.

systemd's ``ProtectSystem=`` (``full`` or ``strict``; both RetroGuard units are ``strict``) makes
``/usr``, ``/boot``, ``/efi`` and ``/etc`` read-only to a service whoever owns them, and the FHS
keeps state out of them anyway (``/var/lib``). A relative path in a config is relative to the
config file's folder, ``/etc/retroguard`` for both services: a relative event store, prompt
cache or control socket landed there, where the service could never write, and ``config
--check`` run as root (root may write ``/etc``) said nothing. Asked here, the answer is the same
whoever asks, so the check refuses what a start under the unit refuses.

The local commands (``walker``, ``plan``, ``prompts``, ``caregiver add-user``) are run as root
as often as as the service's user, and they create files the service writes afterwards: its
database, the rendered prompts. Made by root in the service's state directory, such a file was
root's, and the service could not write its own store at its next start (a storage fault: no
arming). systemd's ``StateDirectory=`` does not mend it: it gives the whole tree to the
service's user only when the directory itself is not the user's yet, and after the first start
(or install) it is. :func:`created_as_folder_owner` gives what root created to the folder's
owner instead.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
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


SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database while it is open."""


@contextlib.contextmanager
def created_as_folder_owner(
    path: str | Path, *, companions: Sequence[str] = SQLITE_COMPANIONS, contents: bool = False
) -> Iterator[None]:
    """Run as root, what the block creates at ``path`` is given to the owner (user and group)
    of the nearest folder above it that exists: the file itself, the folders made above it,
    the ``companions`` beside it (SQLite's ``-wal``, ``-shm``, ``-journal``) and, ``contents``
    true (``path`` a folder: the prompt cache), the entries made in it. Given to the service's
    user in its state directory, so the service can write them at its next start.

    Nothing changes when not run as root, or when that folder is root's (a state directory
    root just made is given to the service with everything in it by ``StateDirectory=`` at its
    next start). Only what did not exist before the block, and is root's after it, is given:
    never a file that was there already, and never through a symbolic link (the folder is the
    service user's, who could have put one there).

    SQLite gives the ``-wal`` and ``-shm`` of an existing database the database file's owner
    by itself when run as root (its Unix VFS), so a root command on the service's database
    leaves nothing root's beside it; a database root creates is root's, hence this.
    """
    if os.geteuid() != 0:
        yield
        return
    target = Path(os.path.abspath(path))
    folder = target.parent
    made_above: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        made_above.append(folder)
        folder = folder.parent
    owner = folder.stat()
    if owner.st_uid == 0:
        yield
        return
    candidates = [*made_above, target, *(target.with_name(target.name + c) for c in companions)]
    before = {p for p in candidates if os.path.lexists(p)}
    inside_before = _entries(target) if contents else set()
    try:
        yield
    finally:
        made = [p for p in candidates if p not in before]
        if contents:
            made.extend(target / name for name in sorted(_entries(target) - inside_before))
        for made_path in made:
            _give(made_path, owner.st_uid, owner.st_gid)


def _entries(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _give(path: Path, uid: int, gid: int) -> None:
    """``path`` to ``uid``:``gid`` when it is there and root's; never a link's target."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:  # SQLite deleted its -wal at the close, a partial WAV replaced
        return
    if st.st_uid != 0 or stat.S_ISLNK(st.st_mode):
        return
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, uid, gid, follow_symlinks=False)
