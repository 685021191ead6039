"""When an unlabelled fall hit the ground (:func:`fall_impact_t`).

Every lead time is measured to the impact, and SisFall labels none: this rule stands in for
the label. It has a module of its own because moving it moves every lead-time figure
(docs/detector.md tells how it was chosen), and it is tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LANDING_TO_LYING_S = 0.5
"""A fall's impact is followed by the trunk lying within this time (s): see
:func:`fall_impact_t`."""
LYING_DEG = 50.0
"""Tilt (degrees from upright, of the low-passed accelerometer) that counts
as lying for :func:`fall_impact_t` (the detector's ``lying_tilt_deg``)."""
_IMPACT_LOWPASS_S = 0.25
"""Width (s) of the centred moving mean of the accelerometer from which
:func:`fall_impact_t` takes the trunk's posture ..."""
_IMPACT_STILL_G = 0.2
"""... where that mean is within this of 1 g (the detector's ``accel_gate_g``)."""


def fall_impact_t(
    samples: Sequence[tuple[float, float, float, float]],
    up: tuple[float, float, float] | None,
) -> float:
    """The impact of an unlabelled fall recording: the sample of peak |a|
    among those followed within ``LANDING_TO_LYING_S`` by the trunk lying
    (the accelerometer's centred mean over ``_IMPACT_LOWPASS_S``, where it
    reads 1 g within ``_IMPACT_STILL_G``, more than ``LYING_DEG`` from ``up``; when
    ``up`` is unknown, from the mean direction of the first second); the
    peak of the whole recording if the trunk never lies (a fall that ends
    seated). ``samples``: ``(t, ax, ay, az)`` in g, in time order.

    Why not the peak of the whole recording: a fall's impact ends the fall,
    and the body lies right after it — a buttocks-first backward fall lies
    back within a few tenths of a second. A heel strike while walking, a
    stamp while jogging or a hand slapped on a table with the trunk still
    upright can exceed a soft landing (an elderly subject's 1.96 g step
    before her 1.9 g landing, F07_SE06_R04), and then the old rule put the
    "impact" seconds before the fall. On KFall, whose impacts are labelled
    from video, this rule moves six recordings from 0.4-0.8 s before the
    label to within 20 ms of it and no other (docs/detector.md)."""
    if not samples:
        raise ValueError("no samples")
    n = len(samples)
    peak_i = max(range(n), key=lambda i: _mag2(samples[i]))
    if up is None:
        first = [s for s in samples if s[0] - samples[0][0] < 1.0]
        up = _unit(
            (
                sum(s[1] for s in first),
                sum(s[2] for s in first),
                sum(s[3] for s in first),
            )
        )
        if up is None:
            return samples[peak_i][0]
    cos_lying = math.cos(math.radians(LYING_DEG))
    # Centred moving sums over _IMPACT_LOWPASS_S (prefix sums; look-ahead is
    # fine here, this is scoring, not detecting).
    px, py, pz = [0.0], [0.0], [0.0]
    for s in samples:
        px.append(px[-1] + s[1])
        py.append(py[-1] + s[2])
        pz.append(pz[-1] + s[3])
    half = _IMPACT_LOWPASS_S / 2.0
    lying = [False] * n
    lo = hi = 0
    for i, s in enumerate(samples):
        while samples[lo][0] < s[0] - half:
            lo += 1
        while hi < n and samples[hi][0] <= s[0] + half:
            hi += 1
        mx, my, mz = px[hi] - px[lo], py[hi] - py[lo], pz[hi] - pz[lo]
        norm = math.sqrt(mx * mx + my * my + mz * mz)
        # The mean shows gravity's direction only while the body is not
        # accelerating (it reads about 1 g): a body dropping reads less,
        # in any direction.
        if norm > 0.0 and abs(norm / (hi - lo) - 1.0) < _IMPACT_STILL_G:
            lying[i] = (mx * up[0] + my * up[1] + mz * up[2]) / norm < cos_lying
    best_i = None
    next_lying_t = math.inf
    for i in range(n - 1, -1, -1):
        t = samples[i][0]
        if lying[i]:
            next_lying_t = t
        if next_lying_t - t <= LANDING_TO_LYING_S and (
            best_i is None or _mag2(samples[i]) >= _mag2(samples[best_i])
        ):
            best_i = i
    return samples[peak_i if best_i is None else best_i][0]


def _mag2(s: tuple[float, float, float, float]) -> float:
    return s[1] * s[1] + s[2] * s[2] + s[3] * s[3]


def _unit(v: tuple[float, float, float]) -> tuple[float, float, float] | None:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return None if n == 0.0 else (v[0] / n, v[1] / n, v[2] / n)
