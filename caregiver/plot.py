"""Series for the event plot, computed from the event's ``imu_window``.

* acceleration magnitude ``|a|`` in g;
* tilt in degrees: the angle between each sample's acceleration and the gravity
  direction, taken as the mean acceleration over the window's first second
  (the walker upright before the event) — so it needs no knowledge of how the
  belt unit is mounted;
* angular rate ``|ω|`` in °/s;
* the trip point is ``dt = 0`` (the device's detection), marked on the plot.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard


def series(window: dict[str, Any]) -> dict[str, Any]:
    rows: list[list[float]] = [[float(v) for v in r] for r in window.get("rows", [])]
    if not rows:
        return {"t": [], "accel_g": [], "tilt_deg": [], "rate_dps": [], "trip_t": 0.0}
    t0 = rows[0][0]
    first = [r for r in rows if r[0] <= t0 + 1.0] or rows[:1]
    gx = sum(r[1] for r in first) / len(first)
    gy = sum(r[2] for r in first) / len(first)
    gz = sum(r[3] for r in first) / len(first)
    g_norm = math.sqrt(gx * gx + gy * gy + gz * gz)
    t: list[float] = []
    accel: list[float] = []
    tilt: list[float | None] = []
    rate: list[float] = []
    for dt, ax, ay, az, wx, wy, wz in rows:
        a = math.sqrt(ax * ax + ay * ay + az * az)
        t.append(round(dt, 4))
        accel.append(round(a, 3))
        if a > 1e-6 and g_norm > 1e-6:
            cos = (ax * gx + ay * gy + az * gz) / (a * g_norm)
            tilt.append(round(math.degrees(math.acos(max(-1.0, min(1.0, cos)))), 2))
        else:
            tilt.append(None)  # free fall: no direction to measure against
        rate.append(round(math.sqrt(wx * wx + wy * wy + wz * wz), 2))
    return {"t": t, "accel_g": accel, "tilt_deg": tilt, "rate_dps": rate, "trip_t": 0.0}


def valid_window(window: object) -> TypeGuard[dict[str, Any]]:
    """An ``imu_window`` as docs/mqtt.md describes it (columns dt, ax..gz; rows of 7 numbers)."""
    if not isinstance(window, dict):
        return False
    rows = window.get("rows")
    return (
        window.get("columns") == ["dt", "ax", "ay", "az", "gx", "gy", "gz"]
        and isinstance(rows, list)
        and all(
            isinstance(r, list)
            and len(r) == 7
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
            for r in rows
        )
    )
