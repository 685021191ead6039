"""Presses that used to get no answer at all: a blind walker presses and must hear something.

On the monitor's own loop (simulated MPU-6050, gpiozero mock pins, the session runner with a
voice that keeps what it was asked to say): a double press in STANDBY while a session is under
way. None of them arms.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionRunner, SessionState, attach_session, detach_session
from tests.app_support import (
    Heard,
    Rig,
    close_rigs,
    make_rig,
)

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

PLAN = Plan("short", (Interval("backward", 0.6, 30.0), Interval("forward", 0.8, 30.0)))

REFUSED_S = 1.5
"""The ``refused`` pattern's length (three quick beeps and a long one)."""


def _voiced(rig: Rig, *, balance_check: bool = False) -> tuple[SessionRunner, Heard]:
    config = rig.app.config
    session = dataclasses.replace(config.session, balance_check=balance_check)
    rig.app.config = dataclasses.replace(config, session=session)
    heard = Heard()
    return attach_session(rig.app, PLAN, record=False, speaker=heard), heard


def _double_press(rig: Rig) -> None:
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)
    rig.button.press_at(now + 0.35, now + 0.5)


@pytest.mark.parametrize("balance_check", [False, True])
def test_a_double_press_while_a_session_waits_in_standby_is_refused(
    tmp_path: Path, balance_check: bool
) -> None:
    """A session started in STANDBY (waiting for arming, or in the balance check): a double
    press chose no walker — the session keeps its own — and was ignored, not a beep. The
    walker, perhaps trying to start or resume as they would while armed, is now refused as two
    presses anywhere are: the ``refused`` beeps and "press reset once, and hold it until the
    chirp". Nothing arms; holding reset then arms as always."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    runner, heard = _voiced(rig, balance_check=balance_check)
    texts = runner.prompts.file.prompts
    runner.request("start")
    rig.run_for(0.5)
    expected = SessionState.BALANCE if balance_check else SessionState.PAUSED
    assert runner.state is expected and rig.state == "STANDBY"
    said = len(heard.said)
    _double_press(rig)
    rig.run_for(0.5 + 0.6 + 0.05)
    assert rig.app.gpio.buzzer.pattern == "refused"
    assert heard.said[said:] == [texts.refused_twice]
    assert not runner.walker_choices and rig.state == "STANDBY"
    assert rig.hardware.history == [] and not rig.app.gpio.relay.holding
    rig.run_for(REFUSED_S)
    rig.press_reset()
    assert rig.state == "ARMED"
    detach_session(rig.app, runner)


def test_with_no_session_a_double_press_in_standby_still_chooses_the_walker(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    runner, heard = _voiced(rig)
    _double_press(rig)
    rig.run_for(0.5 + 0.6 + 0.05)
    assert len(runner.walker_choices) == 1 and rig.app.gpio.buzzer.pattern == "chirp"
    assert heard.said[-1].startswith("Walker:")
    detach_session(rig.app, runner)
    # Detached, nobody chooses a walker: the double press is refused, not passed over.
    assert rig.app.monitor.chooses_walker is None
    rig.run_for(REFUSED_S)
    _double_press(rig)
    rig.run_for(0.5 + 0.6 + 0.05)
    assert rig.app.gpio.buzzer.pattern == "refused" and rig.state == "STANDBY"
