"""Import gpiozero without loading ``importlib.metadata`` or ``importlib.resources``.

gpiozero 2.0's ``gpiozero.devices`` and ``gpiozero.pins.mock`` run
``from importlib_metadata import entry_points`` (falling back to the standard
library's ``importlib.metadata``) *at import*, although they call
``entry_points`` only to look a pin factory or mock pin class up by name.
RetroGuard always passes its pin factory object explicitly (``pin_factory=``,
:func:`hal.gpio.pin_factory_for`), so that scan never runs — yet the import
alone costs the monitor about 1.4 MB of resident memory (with ``email``,
``zipfile``, ``csv``) on a target of 30 MB. Likewise ``gpiozero.boards``
runs ``import importlib_resources as resources`` (falling back to
``importlib.resources``, which brings ``tempfile``, ``shutil``, ``bz2`` and
``lzma``: 0.9 MB) for the fonts of its character displays, which RetroGuard
never drives.

:func:`lazy_lookups` lends gpiozero, for the length of its import only, an
``importlib_metadata`` module whose ``entry_points`` imports the standard
library's on first call and forwards to it, and an ``importlib_resources``
module whose ``files`` does the same: gpiozero behaves exactly as before (a
factory named through ``GPIOZERO_PIN_FACTORY`` still resolves, a display
still finds its font), and pays each import only if it is ever used. Where
the real backport is installed, or the standard library's module is already
loaded, nothing is lent for it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any


def _entry_points(**params: Any) -> Any:
    """``importlib.metadata.entry_points``, imported on the first call."""
    from importlib.metadata import entry_points

    return entry_points(**params)


def _files(anchor: Any = None) -> Any:
    """``importlib.resources.files``, imported on the first call."""
    from importlib.resources import files

    return files(anchor)


_LOANS: tuple[tuple[str, str, str, Callable[..., Any]], ...] = (
    ("importlib_metadata", "importlib.metadata", "entry_points", _entry_points),
    ("importlib_resources", "importlib.resources", "files", _files),
)
"""(backport lent, standard module it defers, the one function gpiozero uses, its stand-in)."""


@contextlib.contextmanager
def lazy_lookups() -> Iterator[None]:
    """Around an import of gpiozero: its ``entry_points`` and ``files`` imports stay lazy."""
    lent: list[tuple[str, types.ModuleType]] = []
    for name, standard, function, stand_in in _LOANS:
        if name in sys.modules or standard in sys.modules or importlib.util.find_spec(name):
            continue
        shim = types.ModuleType(name, "Lent by hal.gpiozero_import while gpiozero is imported.")
        setattr(shim, function, stand_in)
        sys.modules[name] = shim
        lent.append((name, shim))
    try:
        yield
    finally:
        for name, shim in lent:
            if sys.modules.get(name) is shim:
                del sys.modules[name]
