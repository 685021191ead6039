"""Import gpiozero without loading ``importlib.metadata`` (and ``email``, ``zipfile``, ``csv``).

gpiozero 2.0's ``gpiozero.devices`` and ``gpiozero.pins.mock`` run
``from importlib_metadata import entry_points`` (falling back to the standard
library's ``importlib.metadata``) *at import*, although they call
``entry_points`` only to look a pin factory or mock pin class up by name.
RetroGuard always passes its pin factory object explicitly (``pin_factory=``,
:func:`hal.gpio.pin_factory_for`), so that scan never runs — yet the import
alone costs the monitor about 1.4 MB of resident memory on a target of 30 MB.

:func:`lazy_entry_points` lends gpiozero, for the length of its import only,
an ``importlib_metadata`` module whose ``entry_points`` imports the standard
library's on first call and forwards to it: gpiozero behaves exactly as before
(a factory named through ``GPIOZERO_PIN_FACTORY`` still resolves), and pays
the import only if it ever looks a name up. Where the real ``importlib_metadata``
backport is installed, or ``importlib.metadata`` is already loaded, nothing is
lent.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import Any

_NAME = "importlib_metadata"


def _entry_points(**params: Any) -> Any:
    """``importlib.metadata.entry_points``, imported on the first call."""
    from importlib.metadata import entry_points

    return entry_points(**params)


@contextlib.contextmanager
def lazy_entry_points() -> Iterator[None]:
    """Around an import of gpiozero: its ``entry_points`` import stays lazy."""
    if (
        _NAME in sys.modules
        or "importlib.metadata" in sys.modules
        or importlib.util.find_spec(_NAME) is not None
    ):
        yield
        return
    shim = types.ModuleType(_NAME, "Lent by hal.gpiozero_import while gpiozero is imported.")
    shim.entry_points = _entry_points  # type: ignore[attr-defined]
    sys.modules[_NAME] = shim
    try:
        yield
    finally:
        if sys.modules.get(_NAME) is shim:
            del sys.modules[_NAME]
