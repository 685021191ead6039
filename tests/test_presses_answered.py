"""Presses that used to get no answer at all: a blind walker presses and must hear something.

On the monitor's own loop (simulated MPU-6050, gpiozero mock pins, the session runner with a
voice that keeps what it was asked to say): a press in FAULT, the after-trip words once help
was called, a double press in STANDBY while a session is under way. None of them arms.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.protocol.events import EventType
from firmware.safety import FAULT_CLASSES, FaultClass, FaultKind
from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionRunner, SessionState, attach_session, detach_session
from tests.app_support import (
    Explodes,
    Frozen,
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


def _press(rig: Rig, hold: float = 0.15) -> None:
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + hold)


def _double_press(rig: Rig) -> None:
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)
    rig.button.press_at(now + 0.35, now + 0.5)


def _call_for_help(rig: Rig) -> None:
    now = rig.clock.monotonic()
    for n in range(3):
        rig.button.press_at(now + 0.25 * n, now + 0.25 * n + 0.1)


def test_every_fault_kind_has_a_class_the_walker_is_told() -> None:
    assert set(FAULT_CLASSES) == set(FaultKind)
    assert set(FAULT_CLASSES.values()) == set(FaultClass)


def _in_fault(tmp_path: Path, fault: FaultClass) -> Rig:
    """A rig in FAULT of ``fault``'s class, the alarm or the fault's beeps over."""
    if fault is FaultClass.SENSOR:
        rig = make_rig(tmp_path, motion=Frozen())  # stuck on one reading since power-on
        rig.run_for(1.0)
    elif fault is FaultClass.MONITOR:
        rig = make_rig(tmp_path, detector=Explodes(1.0))  # raises at every sample from 1 s
        rig.run_for(1.5)
    else:
        rig = make_rig(tmp_path)
        rig.run_for(1.0)
        rig.hardware.weld_contact()  # closed while released: the belt may run on
        rig.run_for(0.5)
    assert rig.state == "FAULT"
    assert rig.app.controller.fault_class is fault
    return rig


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (FaultClass.SENSOR, "fault_sensor"),
        (FaultClass.MONITOR, "fault_monitor"),
        (FaultClass.CONTACT, "fault_contact"),
    ],
)
def test_a_press_in_fault_is_refused_with_what_is_wrong(
    tmp_path: Path, fault: FaultClass, words: str
) -> None:
    """FAULT, the belt stopped: a reset press was logged and nothing more, the walker heard
    nothing (or the fault's slow beeps going on) and could not tell the press was taken. Now
    every press is refused — the ``refused`` beeps, and with a voice what is wrong in the
    fault class's words and how to call for help — whatever it was: let go at once, held for
    the chirp (refused at the chirp, while still held), pressed twice. The fault's reason
    stays (the dashboard's), nothing arms, nothing closes the relay."""
    rig = _in_fault(tmp_path, fault)
    runner, heard = _voiced(rig)
    controller = rig.app.controller
    buzzer = rig.app.gpio.buzzer
    texts = runner.prompts.file.prompts
    spoken = getattr(texts, words)
    assert (
        spoken and "three times quickly" in spoken and spoken in runner.prompts.all_for_plan(PLAN)
    )
    reason, transitions = controller.reason, len(controller.transitions)
    history = list(rig.hardware.history)

    _press(rig)  # let go before the chirp: answered once its sequence is over
    rig.run_for(0.15 + 0.6 + 0.05)
    assert buzzer.pattern == "refused" and heard.said[-1:] == [spoken]
    rig.run_for(REFUSED_S)

    said = len(heard.said)
    _press(rig, hold=2.0)  # held for the chirp: answered at the chirp, still held
    rig.run_for(0.4 + 0.05)
    assert rig.button.is_down and buzzer.pattern == "refused"
    assert heard.said[said:] == [spoken]
    rig.run_for(1.6 + 0.6 + REFUSED_S)
    assert heard.said[said:] == [spoken]  # once: the release is not a second press

    said = len(heard.said)
    _double_press(rig)
    rig.run_for(0.5 + 0.6 + 0.05)
    assert buzzer.pattern == "refused" and heard.said[said:] == [spoken]

    assert rig.state == "FAULT" and controller.reason == reason
    assert len(controller.transitions) == transitions
    assert not rig.app.gpio.relay.holding
    assert rig.hardware.history == history
    detach_session(rig.app, runner)


@pytest.mark.parametrize(
    ("fault", "after"), [(FaultClass.CONTACT, "fault"), (FaultClass.SENSOR, None)]
)
def test_a_contact_faults_beeps_come_back_after_a_refused_press(
    tmp_path: Path, fault: FaultClass, after: str | None
) -> None:
    """A welded contact may leave the belt running with nothing the monitor can open: its
    fault beeps are the warning a walker without a voice has. A refused press plays its own
    beeps, then the fault's come back, for the fault's event; a sensor fault (the belt
    stopped) stays quiet after the refusal, the press having been answered."""
    rig = _in_fault(tmp_path, fault)
    buzzer = rig.app.gpio.buzzer
    controller = rig.app.controller
    _press(rig)
    rig.run_for(0.15 + 0.6 + 0.05)
    assert buzzer.pattern == "refused"
    rig.run_for(REFUSED_S + 0.1)
    assert buzzer.pattern == after
    if after is not None:
        sounding = controller.sounding
        assert sounding is not None and sounding.pattern == "fault"
        faults = [s.event for s in rig.app.stored_events() if s.event.type is EventType.FAULT]
        assert sounding.event == faults[-1].id
    assert rig.state == "FAULT" and not rig.app.gpio.relay.holding


def test_help_works_in_fault_and_its_press_is_no_refusal(tmp_path: Path) -> None:
    """Three quick presses in FAULT call for help, as anywhere: ``help_sent`` and its words,
    the ``help`` event; not a refused press."""
    rig = _in_fault(tmp_path, FaultClass.SENSOR)
    runner, heard = _voiced(rig)
    texts = runner.prompts.file.prompts
    _call_for_help(rig)
    rig.run_for(0.6)
    assert rig.app.gpio.buzzer.pattern == "help_sent"
    rig.run_for(2.0)
    assert heard.said == [texts.help_sent]
    assert EventType.HELP in rig.events() and rig.state == "FAULT"
    detach_session(rig.app, runner)


def test_without_a_voice_a_press_in_fault_still_beeps_refused(tmp_path: Path) -> None:
    rig = _in_fault(tmp_path, FaultClass.MONITOR)
    _press(rig)
    rig.run_for(0.15 + 0.6 + 0.05)
    assert rig.app.gpio.buzzer.pattern == "refused" and rig.state == "FAULT"


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
