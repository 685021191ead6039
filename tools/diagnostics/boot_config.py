"""The Pi's boot config as the doctor reads it: the device-tree overlays that give pins to
the kernel.

An audio overlay (wiring/README.md, section 11) hands GPIO pins to the kernel at boot, where
no process can see it: the monitor may still open such a pin, and then the kernel's I2S clock
and the monitor's buzzer drive one wire against each other. Only the boot config says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BOOT_CONFIG = Path("/boot/firmware/config.txt")
"""Where Raspberry Pi OS (Bookworm) reads its device-tree overlays at boot."""


@dataclass(frozen=True, slots=True)
class Overlay:
    """One ``dtoverlay=NAME,PARAM,...`` line."""

    name: str
    params: tuple[str, ...]
    line: str
    """The line as written (without its comment), to quote back to the technician."""

    def param(self, option: str) -> str | None:
        """The value of ``option=value`` among the parameters (None: not given)."""
        for param in self.params:
            key, _, value = param.partition("=")
            if key.strip() == option:
                return value.strip()
        return None


def read_overlays(boot_config: Path) -> list[Overlay] | None:
    """The overlays ``boot_config`` loads, in order; None when it cannot be read (not a Pi, or
    not Raspberry Pi OS's layout)."""
    try:
        text = boot_config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        key, _, value = line.partition("=")
        if key.strip() != "dtoverlay" or not value.strip():
            continue
        name, *params = [part.strip() for part in value.split(",")]
        found.append(Overlay(name, tuple(params), line))
    return found
