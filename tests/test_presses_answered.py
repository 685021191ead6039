"""Presses that used to get no answer at all: a blind walker presses and must hear something.

On the monitor's own loop (simulated MPU-6050, gpiozero mock pins, the session runner with a
voice that keeps what it was asked to say): the after-trip words once help was called, a
double press in STANDBY while a session is under way. None of them arms.
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
    TripAt,
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


def _call_for_help(rig: Rig) -> None:
    now = rig.clock.monotonic()
    for n in range(3):
        rig.button.press_at(now + 0.25 * n, now + 0.25 * n + 0.1)


def _tripped_with_alarm(tmp_path: Path) -> tuple[Rig, SessionRunner, Heard]:
    rig = make_rig(tmp_path, detector=TripAt(2.0))
    rig.run_for(1.0)
    rig.press_reset()
    runner, heard = _voiced(rig)
    rig.run_for(1.0)
    assert rig.state == "TRIPPED" and rig.app.gpio.buzzer.pattern == "alarm"
    return rig, runner, heard


def test_after_a_call_for_help_the_trip_words_say_help_was_called(tmp_path: Path) -> None:
    """TRIPPED, the alarm sounding: the walker calls for help (three quick presses), hears
    "Help called", and then the after-trip words said "To call for help, press reset three
    times quickly" — as if their call had not been heard. Until a caregiver answers, they say
    help has been called, and still how to re-arm."""
    rig, runner, heard = _tripped_with_alarm(tmp_path)
    texts = runner.prompts.file.prompts
    _call_for_help(rig)
    rig.run_for(0.6 + 1.3 + 0.1)  # help_sent (1.24 s) played out: the buzzer quiet
    assert rig.app.gpio.buzzer.pattern is None
    assert heard.said == [texts.help_sent, texts.tripped_help_called]
    assert "Help has been called" in texts.tripped_help_called
    assert "three times" not in texts.tripped_help_called
    assert texts.tripped_help_called in runner.prompts.all_for_plan(PLAN)
    # Re-armed while they may still play: the words said are the ones withdrawn.
    rig.press_reset()
    assert rig.state == "ARMED" and heard.withdrawn == [texts.tripped_help_called]
    detach_session(rig.app, runner)


def test_a_call_answered_before_the_trip_words_leaves_them_as_they_were(tmp_path: Path) -> None:
    rig, runner, heard = _tripped_with_alarm(tmp_path)
    texts = runner.prompts.file.prompts
    controller = rig.app.controller
    _call_for_help(rig)
    rig.run_for(0.6)
    assert controller.help_waiting
    incident = controller.incident
    assert incident is not None
    controller.on_incident_closed(incident, rig.clock.monotonic())  # a caregiver answered
    assert not controller.help_waiting
    rig.run_for(3.0)
    assert heard.said[-1] == texts.tripped
    detach_session(rig.app, runner)


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
