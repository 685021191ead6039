"""Backends outside the HAL, found by name the way gpiozero finds pin factories.

``hal`` knows its real drivers (the MPU-6050 over smbus2, gpiozero pins). Any
other backend named in a config — the simulation is the one that ships — is
an entry point of the installed distribution, loaded only when a config asks
for it. The dependency is declared in ``pyproject.toml``, not in an import:
``retroguard run`` on a Pi never loads the simulation, and ``hal`` does not
know it exists.
"""

from __future__ import annotations

from typing import Any

from hal.errors import HalError

IMU_BACKENDS = "retroguard.imu_backends"
"""Entry point group of IMU backends: ``name = "module:open"``, ``open(config, clock) -> Imu``."""
GPIO_BACKENDS = "retroguard.gpio_backends"
"""Entry point group of GPIO backends: ``open(config, clock) -> GpioDevices``."""


_WHAT = {IMU_BACKENDS: "IMU backend", GPIO_BACKENDS: "GPIO backend"}


def load_backend(group: str, name: str) -> Any:
    """The callable registered as ``name`` in ``group``; :class:`HalError` if none is."""
    from importlib.metadata import entry_points  # scans installed packages: only when asked

    for entry in entry_points(group=group, name=name):
        return entry.load()
    known = sorted(e.name for e in entry_points(group=group))
    raise HalError(
        f"no {_WHAT.get(group, group)} named {name!r} is installed"
        + (f" (installed: {', '.join(known)})" if known else "")
    )
