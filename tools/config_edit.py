"""Change a few ``[imu]`` values in a config file in place, keeping everything else.

The config in ``/etc/retroguard/config.toml`` is a commented file a person
edited (MQTT account, pins, notes): rewriting it from the parsed values
would throw all of that away. ``tomlkit`` parses TOML into a document that
keeps comments, ordering and formatting, and writes back only what changed.

The new text is validated (:func:`firmware.config.parse_config`) before the
file is touched, then written atomically — a temporary file in the same
directory, with the original's mode and owner (the installer makes it 0640
root:retroguard), renamed over the original — and loaded again with
:func:`firmware.config.load_config`, so a calibration can never leave behind
a config the service would refuse.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from firmware.config import Config, load_config, parse_config


def updated_imu_text(text: str, values: dict[str, Any]) -> str:
    """``text`` with ``[imu]`` keys set to ``values`` (the table is added if missing)."""
    doc = tomlkit.parse(text)
    imu = doc.get("imu")
    if imu is None:
        imu = tomlkit.table()
        doc["imu"] = imu
    for key, value in values.items():
        if isinstance(value, tuple | list):
            array = tomlkit.array()
            array.extend(value)
            imu[key] = array
        else:
            imu[key] = value
    return tomlkit.dumps(doc)


def _write_atomically(path: Path, text: str) -> None:
    st = path.stat()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):  # only root can give it away; keep ours
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def update_imu_values(path: Path, values: dict[str, Any]) -> Config:
    """Set ``[imu]`` keys in the file at ``path``; return the re-loaded, validated config.

    Raises :class:`core.errors.ConfigError` (file untouched) when the
    result would not validate.
    """
    old = path.read_text(encoding="utf-8")
    new = updated_imu_text(old, values)
    parse_config(tomllib.loads(new), str(path))
    _write_atomically(path, new)
    try:
        return load_config(path)
    except Exception:
        _write_atomically(path, old)
        raise
