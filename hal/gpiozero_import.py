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
loaded, nothing is lent for it. ``gpiozero.output_devices`` imports
``colorzero`` (0.6 MB, with ``colorsys``) for one call, an RGB LED's
``color``: it is lent a ``Color`` that imports the real one on that call.

It also puts gpiozero's *package* in place without running its ``__init__``
(:func:`package_on_demand`): that ``__init__`` imports every device gpiozero
has — the boards with their fonts and ``pprint``, the SPI and internal
devices — some 1.1 MB of resident memory the monitor, which imports the few
classes it uses from their own modules (``gpiozero.output_devices``,
``gpiozero.input_devices``, ``gpiozero.pins.*``), never needs. The first
look-up of any other name on the package (``from gpiozero import Button``,
``gpiozero.Device``) runs the real ``__init__`` then, so every other user
sees the whole package as usual.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
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


def _color(*args: Any, **kwargs: Any) -> Any:
    """``colorzero.Color(...)``, colorzero imported on the first call."""
    return importlib.import_module("colorzero").Color(*args, **kwargs)


_LOANS: tuple[tuple[str, str, str, Callable[..., Any]], ...] = (
    ("importlib_metadata", "importlib.metadata", "entry_points", _entry_points),
    ("importlib_resources", "importlib.resources", "files", _files),
    ("colorzero", "colorzero", "Color", _color),
)
"""(module lent, module it defers, the one name gpiozero uses, its stand-in). A backport (the
first name not the second) is lent only where it is not installed; colorzero, which gpiozero
needs only for an RGB LED's ``color``, is lent unless it is imported already."""


_PACKAGE = "gpiozero"
_COMPLETING = threading.Lock()


def package_on_demand() -> None:
    """Put the ``gpiozero`` package in ``sys.modules`` with its ``__init__`` not yet run.

    Its submodules import as usual (they need the package's ``__path__`` only). The first
    look-up of a name the package does not have yet (any name but a submodule imported
    already) runs the real ``__init__`` into it, under :func:`lazy_lookups`, and answers from
    the whole package. Nothing is done when gpiozero is imported already or not installed."""
    if _PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(name: str) -> Any:
        with _COMPLETING:
            if package.__dict__.get("__getattr__") is complete:
                del package.__dict__["__getattr__"]
                with lazy_lookups():
                    loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}") from None

    package.__dict__["__getattr__"] = complete
    sys.modules[_PACKAGE] = package


@contextlib.contextmanager
def lazy_lookups() -> Iterator[None]:
    """Around an import of gpiozero: its ``entry_points`` and ``files`` imports stay lazy, and
    its package's ``__init__`` waits for a name only it defines (:func:`package_on_demand`)."""
    package_on_demand()
    lent: list[tuple[str, types.ModuleType]] = []
    for name, deferred, function, stand_in in _LOANS:
        if name in sys.modules or deferred in sys.modules:
            continue
        if name != deferred and importlib.util.find_spec(name):
            continue  # the backport is installed: gpiozero uses it
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
