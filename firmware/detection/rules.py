"""The stumble rules: when a loss of balance opens the relay before any impact.

Each rule is a named predicate over the detector's current estimates
(:class:`~firmware.detection.retro.FallDetector` attributes: ``tilt_deg``,
``tilt_speed_dps``, ``down_mps``, ``activity_g``, ``vigour_g``,
``freefall_s``, ``tilt_gain_deg``, ``unsupported_gain_mps``,
``descending_s``, ``level_known``) and its configuration, with the reason it
gives. The
detector tries them in table order and the first that holds names the
STUMBLE. ``docs/detector.md`` gives each rule's physical argument and the
figures that set its thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from firmware.detection.config import DetectorConfig

if TYPE_CHECKING:
    from firmware.detection.retro import FallDetector


@dataclass(frozen=True, slots=True)
class StumbleRule:
    """One way a loss of balance shows: a predicate and its explanation."""

    name: str
    holds: Callable[[FallDetector], bool]
    explain: Callable[[FallDetector], str]
    gate_mps: Callable[[DetectorConfig], float]
    """The downward velocity (m/s) the rule needs at least (``inf`` when it
    needs none): the detector skips the table while the body goes down
    slower than every rule's figure and neither free fall nor a tilt gain is
    under way, which is most of the time."""


def _no_gate(config: DetectorConfig) -> float:
    return math.inf


# --- descent with tilt ---------------------------------------------------------


def descent_with_tilt(d: FallDetector) -> bool:
    """The body goes down while the trunk has left upright."""
    c = d.config
    return d.down_mps > c.stumble_velocity_mps and d.tilt_deg > c.stumble_tilt_deg


def _explain_descent_with_tilt(d: FallDetector) -> str:
    return f"down {d.down_mps:.2f} m/s, tilt {d.tilt_deg:.0f} deg"


# --- loss-of-balance score -------------------------------------------------------


def tilt_ahead(d: FallDetector) -> float:
    """During calm gait, the tilt the trunk is heading for: a trunk tipping
    over at 100 deg/s is 10 deg further a tenth of a second later."""
    c = d.config
    speed = d.tilt_speed_dps
    if speed > 0.0 and d.activity_g < c.balance_extrapolate_max_activity_g:
        return d.tilt_deg + c.balance_extrapolate_s * speed
    return d.tilt_deg


def loss_of_balance(d: FallDetector) -> bool:
    """Downward velocity times the tilt the trunk is heading for, outside vigorous gait."""
    c = d.config
    down = d.down_mps
    return (
        down > c.balance_min_velocity_mps
        and d.tilt_deg > c.balance_min_tilt_deg
        and down * tilt_ahead(d) > c.balance_score
        and d.activity_g < c.balance_max_activity_g
        and d.vigour_g < c.balance_max_vigour_g
    )


def _explain_loss_of_balance(d: FallDetector) -> str:
    reason = f"loss of balance: down {d.down_mps:.2f} m/s x tilt {d.tilt_deg:.0f} deg"
    ahead = tilt_ahead(d)
    if ahead > d.tilt_deg + 0.5:
        reason += f" (heading for {ahead:.0f})"
    return reason


# --- very fast descent -------------------------------------------------------------


def fast_descent(d: FallDetector) -> bool:
    """A vertical collapse: faster down than any bounce of gait."""
    return d.level_known and d.down_mps > d.config.stumble_fast_velocity_mps


def _explain_fast_descent(d: FallDetector) -> str:
    return f"down {d.down_mps:.2f} m/s"


# --- upright collapse --------------------------------------------------------------


def upright_collapse(d: FallDetector) -> bool:
    """The pelvis drops unsupported, whatever the trunk does: legs folding
    under a walker whose feet the belt carries away."""
    c = d.config
    return (
        d.level_known
        and d.down_mps > c.collapse_velocity_mps
        and d.unsupported_gain_mps > c.collapse_gain_mps
        and c.collapse_descent_s <= d.descending_s <= c.collapse_max_descent_s
        and d.vigour_g < c.collapse_max_vigour_g
    )


def _explain_upright_collapse(d: FallDetector) -> str:
    return (
        f"collapse: down {d.down_mps:.2f} m/s, {d.unsupported_gain_mps:.2f} m/s of it "
        f"unsupported, tilt {d.tilt_deg:.0f} deg"
    )


# --- long free fall ----------------------------------------------------------------


def long_free_fall(d: FallDetector) -> bool:
    """Longer in free fall than a jogging flight phase."""
    return d.freefall_s >= d.config.freefall_min_s


def _explain_long_free_fall(d: FallDetector) -> str:
    return f"free fall {d.freefall_s * 1000:.0f} ms"


# --- sudden trunk rotation during gait -----------------------------------------------


def trunk_rotation(d: FallDetector) -> bool:
    """During calm gait, the trunk thrown away from upright within a fraction of a second."""
    c = d.config
    return (
        d.tilt_gain_deg > c.rotation_gain_deg
        and d.tilt_deg > c.rotation_tilt_deg
        and c.rotation_min_activity_g <= d.activity_g < c.rotation_max_activity_g
    )


def _explain_trunk_rotation(d: FallDetector) -> str:
    c = d.config
    return (
        f"trunk rotated {d.tilt_gain_deg:.0f} deg in {c.rotation_window_s:.1f} s "
        f"to {d.tilt_deg:.0f} deg"
    )


STUMBLE_RULES: tuple[StumbleRule, ...] = (
    StumbleRule(
        "descent with tilt",
        descent_with_tilt,
        _explain_descent_with_tilt,
        lambda c: c.stumble_velocity_mps,
    ),
    StumbleRule(
        "loss of balance",
        loss_of_balance,
        _explain_loss_of_balance,
        lambda c: c.balance_min_velocity_mps,
    ),
    StumbleRule(
        "fast descent", fast_descent, _explain_fast_descent, lambda c: c.stumble_fast_velocity_mps
    ),
    StumbleRule(
        "upright collapse",
        upright_collapse,
        _explain_upright_collapse,
        lambda c: c.collapse_velocity_mps,
    ),
    StumbleRule("long free fall", long_free_fall, _explain_long_free_fall, _no_gate),
    StumbleRule("trunk rotation", trunk_rotation, _explain_trunk_rotation, _no_gate),
)
"""The rules in the order they are tried (the first that holds names the STUMBLE)."""
