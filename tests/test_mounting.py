"""Sensor-to-body mounting rotations."""

from __future__ import annotations

import itertools

import pytest

from core.mounting import (
    DIRECTION_VECTORS,
    DIRECTIONS,
    SISFALL_MOUNTING,
    UNKNOWN_MOUNTING,
    Mounting,
    MountingError,
)


def _det(m: tuple[tuple[float, ...], ...]) -> float:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def test_exactly_the_24_right_handed_mountings_are_accepted() -> None:
    accepted = []
    for x, y, z in itertools.product(DIRECTIONS, repeat=3):
        try:
            accepted.append(Mounting(x, y, z))
        except MountingError:
            continue
    assert len(accepted) == 24  # the rotation group of the cube
    for m in accepted:
        assert _det(m.matrix) == 1.0
        assert Mounting.parse(str(m)) == m


def test_apply_maps_each_sensor_axis_to_its_body_direction() -> None:
    m = Mounting.parse("x=down y=left z=forward")
    assert m.apply((1.0, 0.0, 0.0)) == DIRECTION_VECTORS["down"]
    assert m.apply((0.0, 1.0, 0.0)) == DIRECTION_VECTORS["left"]
    assert m.apply((0.0, 0.0, 1.0)) == DIRECTION_VECTORS["forward"]
    v = (0.3, -0.7, 1.9)
    assert m.inverse(m.apply(v)) == v
    # Standing upright, the accelerometer reads +1 g along body up.
    assert SISFALL_MOUNTING.inverse((0.0, 0.0, 1.0)) == (0.0, -1.0, 0.0)


def test_parse_accepts_any_order_and_unknowns() -> None:
    assert Mounting.parse(" z=forward  x=right y=down ") == SISFALL_MOUNTING
    assert Mounting.parse("unknown") is UNKNOWN_MOUNTING
    assert Mounting.parse("x=unknown y=unknown z=unknown") == UNKNOWN_MOUNTING
    assert Mounting.parse("x=unknown y=down z=forward") == SISFALL_MOUNTING
    partial = Mounting.parse("x=unknown y=down z=unknown")
    assert str(partial) == "x=unknown y=down z=unknown"
    assert not partial.is_known
    with pytest.raises(MountingError, match="not fully known"):
        partial.apply((0.0, 0.0, 1.0))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x=right y=down z=backward", "left-handed: with y=down and z=backward, x must be left"),
        ("x=left y=down z=forward", "left-handed"),
        ("x=up y=down z=left", "same body axis"),
        ("x=up y=up z=unknown", "same body axis"),
        ("x=up y=left", "does not name axis z"),
        ("x=up y=left z=forward w=down", "bad mounting token"),
        ("x:up y=left z=forward", "bad mounting token"),
        ("x=Up y=left z=forward", "expected one of"),
        ("x=up x=up y=left z=forward", "given twice"),
        ("", "does not name axis x, y, z"),
    ],
)
def test_parse_rejects(text: str, match: str) -> None:
    with pytest.raises(MountingError, match=match):
        Mounting.parse(text)
