"""A double press in STANDBY with a press let go just past the hold, before the loop saw it held.

Since a release is no longer settled while its press is down (firmware/presses.py), a press let
go a few ms past :data:`~firmware.presses.ARM_HOLD_S`, before the loop's next look, is one let
go before the chirp. Two such presses in STANDBY with no session under way were left to the
session (the next walker), and the session leaves a double press with a press held to the hold
time to the reset (``Gesture.longest_s``): nobody answered, the walker heard nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from firmware.presses import ARM_HOLD_S, PATTERN_GAP_S, ResetButtonPatterns, ResetPress
from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionRunner, attach_session, detach_session
from tests.app_support import Heard, Rig, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

PLAN = Plan("short", (Interval("backward", 0.6, 30.0), Interval("forward", 0.8, 30.0)))


def _voiced(rig: Rig) -> tuple[SessionRunner, Heard]:
    config = rig.app.config
    session = dataclasses.replace(config.session, balance_check=False)
    rig.app.config = dataclasses.replace(config, session=session)
    heard = Heard()
    return attach_session(rig.app, PLAN, record=False, speaker=heard), heard


def _held_past_the_hold_let_go_unseen(rig: Rig) -> None:
    """Down now, the loop looking until just short of the hold, let go before its next look."""
    monitor = rig.app.monitor
    rig.button.down()
    down_at = rig.clock.monotonic()
    while rig.clock.monotonic() - down_at < ARM_HOLD_S:
        monitor.step()
    rig.button.up()


@pytest.mark.parametrize("which", ["first", "second"])
def test_a_double_press_with_a_press_let_go_just_past_the_hold_is_answered(
    tmp_path: Path, which: str
) -> None:
    """STANDBY, no session under way, a voice: two presses, one of them let go a few ms past
    the hold before the loop looked. It is refused once its sequence is over, as two presses
    are where they choose no walker ("press once and hold"); nothing arms, no walker chosen.
    It used to be answered by nobody."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    runner, heard = _voiced(rig)
    texts = runner.prompts.file.prompts
    if which == "first":
        _held_past_the_hold_let_go_unseen(rig)
        now = rig.clock.monotonic()
        rig.button.press_at(now + 0.2, now + 0.35)  # a quick second press
        rig.run_for(0.35 + PATTERN_GAP_S + 0.1)
    else:
        now = rig.clock.monotonic()
        rig.button.press_at(now, now + 0.15)  # a quick first press
        rig.run_for(0.35)
        _held_past_the_hold_let_go_unseen(rig)
        rig.run_for(PATTERN_GAP_S + 0.1)
    assert rig.app.gpio.buzzer.pattern == "refused", (rig.app.controller.reason, heard.said)
    assert not runner.walker_choices
    assert heard.said[-1:] == [texts.refused_twice], heard.said
    assert rig.state == "STANDBY" and not rig.app.gpio.relay.holding
    detach_session(rig.app, runner)


def test_patterns_report_such_a_double_press_where_the_session_chooses_walkers() -> None:
    """The pure view: begun in STANDBY (the session's doubles), the first press held past
    the hold and let go before a look found it held: reported, two presses, not held."""
    patterns = ResetButtonPatterns()
    after = -1.0  # STANDBY began before the presses: a double of quick presses is the session's
    patterns.feed([(0.0, True)], 0.0, armable=True, sessions_double_after=after)
    patterns.feed([], ARM_HOLD_S - 0.01, armable=True, sessions_double_after=after)
    let_go = ARM_HOLD_S + 0.005
    edges = [(let_go, False), (0.6, True), (0.7, False)]
    assert patterns.feed(edges, 0.71, armable=True, sessions_double_after=after) == []
    out = patterns.feed([], 0.7 + PATTERN_GAP_S + 0.01, armable=True, sessions_double_after=after)
    assert out == [ResetPress(0.0, held=False, presses=2)]


def test_a_double_press_with_a_press_let_go_at_exactly_the_hold_is_reported() -> None:
    """Let go at exactly :data:`ARM_HOLD_S` (the session leaves a double press whose longer
    press is that long to the reset, ``longest_s < ARM_HOLD_S`` being the walker's): reported
    as two presses, or nobody answers it (mut39: ``>`` for ``>=`` in ``_release``)."""
    patterns = ResetButtonPatterns()
    after = -1.0
    edges = [(0.0, True), (ARM_HOLD_S, False), (0.75, True), (0.875, False)]
    assert patterns.feed(edges, 0.875, armable=True, sessions_double_after=after) == []
    out = patterns.feed(
        [], 0.875 + PATTERN_GAP_S + 0.125, armable=True, sessions_double_after=after
    )
    assert out == [ResetPress(0.0, held=False, presses=2)]


def test_a_press_let_go_past_the_hold_leaves_the_next_sequence_s_double_press_to_the_session() -> (
    None
):
    """A lone press let go just past the hold is its own sequence (refused, too short); the
    walker's double press of quick presses a while later is the session's again (the next
    walker), not refused (mut39: the flag kept past its sequence's end)."""
    patterns = ResetButtonPatterns()
    after = -1.0
    edges = [(0.0, True), (ARM_HOLD_S + 0.125, False)]
    assert patterns.feed(edges, 0.625, armable=True, sessions_double_after=after) == []
    out = patterns.feed([], 2.0, armable=True, sessions_double_after=after)
    assert out == [ResetPress(0.0, held=False)]
    edges = [(3.0, True), (3.125, False), (3.375, True), (3.5, False)]
    assert patterns.feed(edges, 3.5, armable=True, sessions_double_after=after) == []
    assert (
        patterns.feed([], 3.5 + PATTERN_GAP_S + 0.125, armable=True, sessions_double_after=after)
        == []
    )
