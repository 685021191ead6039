"""A made-up IMU recording of a trip that became a fall, for the dashboard's tests,
screenshots and demos that have no monitor to make one (the monitor's own come from
:func:`core.protocol.recording.encode_recording` on what it measured)."""

from __future__ import annotations

import math

from core.protocol.messages import ImuMarks, ImuRecording
from core.protocol.recording import encode_recording
from core.samples import ImuSample


def fall_recording(rate_hz: float = 100.0) -> ImuRecording:
    """What a monitor sends 10 s after a trip that became a fall (docs/incidents.md): upright
    walking until the trip at 0 s, a backward rotation to lying (85 degrees) by 1.5 s, the
    impact at 1.6 s, the fall confirmed at 2.4 s, then lying still until +10 s. The upright
    learned before the trip is the sensor's +z."""
    samples = []
    for i in range(int(14 * rate_hz)):
        t = -4.0 + i / rate_hz
        if t < 0:
            angle, rate, mag = 0.0, 10.0 * math.sin(6 * t), 1.0 + 0.15 * math.sin(11 * t)
        elif t < 1.5:
            angle, rate, mag = math.radians(85 * t / 1.5), 57.0, 1.0
        else:
            angle, rate, mag = math.radians(85), 0.5, 1.0 + (2.2 if 1.58 < t < 1.64 else 0.0)
        samples.append(
            ImuSample(t, mag * math.sin(angle), 0.0, mag * math.cos(angle), 0.0, rate, 0.0)
        )
    return encode_recording(
        samples,
        trip_t=0.0,
        accel_range_g=8.0,
        gyro_range_dps=1000.0,
        upright=(0.0, 0.0, 1.0),
        marks=ImuMarks(impact=1.6, confirm=2.4),
    )


FALL_FIGURES = {
    "impact_g": 3.2,
    "impulse_gs": 0.3,
    "descent_mps": 1.1,
    "tilt_deg": 83.0,
    "tilt_rate_dps": 57.0,
}
"""The figures a monitor would send with that fall (docs/mqtt.md)."""
