"""Presses that used to get no answer at all: a blind walker presses and must hear something.

On the monitor's own loop (simulated MPU-6050, gpiozero mock pins, the session runner with a
voice that keeps what it was asked to say): a press in FAULT, the after-trip words once help
was called, a double press in STANDBY while a session is under way, a press before the IMU data
was healthy long enough (STARTING; STANDBY or TRIPPED after a break). None of them arms.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.protocol.events import EventType
from core.protocol.messages import FaultSaid
from firmware.config import SafetyConfig
from firmware.safety import FAULT_CLASSES, FAULT_SAID, NOT_READY_REASON, FaultClass, FaultKind
from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionRunner, SessionState, attach_session, detach_session
from sim import scenarios as sc
from tests.app_support import (
    Explodes,
    Frozen,
    Heard,
    Rig,
    Standing,
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
    assert set(FAULT_SAID) == set(FaultClass)
    assert set(FAULT_SAID.values()) == set(FaultSaid)


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


def test_a_press_after_a_stall_hears_to_wait_not_that_the_belt_cannot_run(
    tmp_path: Path,
) -> None:
    """The loop (or the IMU) paused for longer than the relay's hold while ARMED: the belt
    stopped, and the FAULT clears by itself after half a second of healthy data. A walker who
    held reset at once heard the monitor's own fault words — "the belt cannot run ... call for
    help" — and was sent to call for help when a reset seconds later arms again. Now the
    stall's own words say to wait and press again, and that press arms."""
    safety = SafetyConfig(worn_check=False, healthy_before_arm_s=2.0)
    rig = make_rig(tmp_path, safety=safety)
    rig.run_for(2.5)
    rig.press_reset()
    assert rig.state == "ARMED"
    runner, heard = _voiced(rig)
    hold_s = rig.hardware.hold_s  # type: ignore[attr-defined]
    rig.clock.advance(4 * hold_s)  # no heartbeat edge for 200 ms: the latch let go
    rig.run_for(0.05)
    controller = rig.app.controller
    assert rig.state == "FAULT" and controller.fault_kind is FaultKind.HEARTBEAT_GAP
    assert controller.fault_class is FaultClass.STALL
    texts = runner.prompts.file.prompts
    _press(rig, hold=1.0)  # the re-arm gesture at once: answered at the chirp, in FAULT
    rig.run_for(0.4 + 0.05)
    assert rig.state == "FAULT" and rig.app.gpio.buzzer.pattern == "refused"
    assert heard.said == [texts.fault_stall]
    assert "wait" in texts.fault_stall.lower() and "cannot run" not in texts.fault_stall
    assert texts.fault_stall in runner.prompts.all_for_plan(PLAN)  # rendered ahead of time
    rig.run_for(3.0)  # healthy data for healthy_before_arm_s: STANDBY
    assert rig.state == "STANDBY"
    rig.press_reset()
    assert rig.state == "ARMED" and rig.app.gpio.relay.holding
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


# ------------------------------------------------- before the data was healthy long enough


@pytest.mark.parametrize("hold", [2.0, 0.15], ids=["held-for-the-chirp", "let-go-at-once"])
def test_a_press_while_starting_is_refused_and_told_to_wait(tmp_path: Path, hold: float) -> None:
    """STARTING, the first half second after a start (the IMU not yet healthy long enough):
    a press was logged and nothing more — no beep, no words — whether held for the chirp or
    let go. Now it is refused: the ``refused`` beeps and, with a voice, to wait a few seconds
    and press again. Held, it is refused at the chirp, still in STARTING; let go at once, its
    report comes once its sequence is over, after STANDBY began, and is refused there. It
    never arms, and a press afterwards does."""
    rig = make_rig(tmp_path)
    runner, heard = _voiced(rig)
    texts = runner.prompts.file.prompts
    buzzer = rig.app.gpio.buzzer
    rig.run_for(0.05)
    assert rig.state == "STARTING"
    _press(rig, hold=hold)
    if hold > 0.4:
        rig.run_for(0.4 + 0.02)
        assert rig.state == "STARTING" and rig.button.is_down
    else:
        rig.run_for(hold + 0.6 + 0.05)
        assert rig.state == "STANDBY"
    assert buzzer.pattern == "refused"
    assert rig.app.controller.reason == NOT_READY_REASON
    rig.run_for(0.05)
    assert heard.said == [texts.refused_measuring]
    rig.run_for(hold + 0.6 + REFUSED_S)
    assert heard.said == [texts.refused_measuring]  # once: the release is not a second press
    assert rig.state == "STANDBY" and rig.hardware.history == []
    rig.press_reset()
    assert rig.state == "ARMED"
    detach_session(rig.app, runner)


@pytest.mark.parametrize("session", [False, True], ids=["no-session", "session-waiting"])
def test_a_double_press_made_while_starting_is_refused_and_chooses_nobody(
    tmp_path: Path, session: bool
) -> None:
    """Both presses of a double press in STARTING (the first half second after a start): its
    sequence is over in STANDBY. With no session under way it was left to the session as a
    walker choice, and the session ignores a press from before STANDBY: no beep, no words, no
    walker — the one press that still got no answer. Now only a double press begun in STANDBY
    is the session's; this one is refused as a single press in STARTING is (the ``refused``
    beeps, the words to wait), chooses no walker and arms nothing; a held press later arms."""
    rig = make_rig(tmp_path)
    runner, heard = _voiced(rig)
    texts = runner.prompts.file.prompts
    walker = runner.walker
    if session:
        runner.request("start")
    rig.run_for(0.02)
    assert rig.state == "STARTING"
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.1)
    rig.button.press_at(now + 0.3, now + 0.4)
    rig.run_for(0.4 + 0.01)
    assert rig.state == "STARTING"  # both presses went down and up in STARTING
    rig.run_for(0.6 + 0.05)
    assert rig.state == "STANDBY"
    assert rig.app.gpio.buzzer.pattern == "refused"
    assert rig.app.controller.reason == NOT_READY_REASON
    rig.run_for(0.05)
    assert heard.said == [texts.refused_measuring]
    assert not runner.walker_choices and runner.walker == walker
    rig.run_for(REFUSED_S)
    assert heard.said == [texts.refused_measuring]
    assert rig.hardware.history == [] and not rig.app.gpio.relay.holding
    rig.press_reset()
    assert rig.state == "ARMED"
    detach_session(rig.app, runner)


def test_a_refusal_to_wait_is_taken_back_by_the_worn_checks_first_verdict(
    tmp_path: Path,
) -> None:
    """With the sensor-worn check on, a press from STARTING refused in STANDBY (its report
    came once its sequence was over) says to wait, while the check still measures; its first
    verdict replaces that reason, as it replaces "still measuring", and the LED goes from
    ``starting`` to ``standby``: the dashboard does not keep "not armed" until the next
    press."""
    rig = make_rig(tmp_path, motion=sc.scenario(sc.Standing(60.0)), worn_check=True)
    controller = rig.app.controller
    light = rig.app.status_light
    assert light is not None
    rig.run_for(0.05)
    _press(rig)
    rig.run_for(0.15 + 0.6 + 0.05)
    assert rig.state == "STANDBY" and controller.reason == NOT_READY_REASON
    assert rig.app.gpio.buzzer.pattern == "refused" and light.pattern == "starting"
    while controller.measuring:
        rig.run_for(0.05)
    rig.run_for(0.1)
    assert controller.reason == "IMU healthy; sensor worn; press reset to arm"
    assert light.pattern == "standby" and rig.hardware.history == []


class StuckFrom:
    """Standing, then stuck on one reading from ``t`` (the run of identical readings)."""

    duration = 1e9

    def __init__(self, t: float) -> None:
        self._t = t
        self._standing = Standing()
        self._stuck = Frozen()

    def at(self, t: float) -> tuple[float, ...]:
        return self._stuck.at(t) if t >= self._t else self._standing.at(t)


@pytest.mark.parametrize("state", ["STANDBY", "TRIPPED"])
def test_a_press_while_the_data_is_not_healthy_long_enough_is_refused(
    tmp_path: Path, state: str
) -> None:
    """STANDBY or TRIPPED while the IMU data has not been healthy for ``healthy_before_arm_s``
    (here a sensor stuck on one reading for longer than that, before its ``frozen_after_s``
    FAULT): a held press was logged ("IMU not healthy long enough") and answered by nothing.
    Now the ``refused`` beeps and the words to wait; nothing arms."""
    safety = SafetyConfig(worn_check=False, frozen_after_s=2.0)
    assert safety.healthy_before_arm_s < 1.0
    if state == "STANDBY":
        stuck_at = 1.0
        rig = make_rig(tmp_path, motion=StuckFrom(stuck_at), safety=safety)
    else:
        stuck_at = 2.5
        rig = make_rig(tmp_path, motion=StuckFrom(stuck_at), safety=safety, detector=TripAt(2.0))
        rig.run_for(1.0)
        rig.press_reset()
    runner, heard = _voiced(rig)
    texts = runner.prompts.file.prompts
    rig.run_for(stuck_at + 0.7 - rig.clock.monotonic())  # stuck for longer than 0.5 s
    assert rig.state == state
    history = list(rig.hardware.history)
    said = len(heard.said)
    _press(rig, hold=1.0)
    rig.run_for(0.4 + 0.05)
    assert rig.state == state and rig.button.is_down
    assert rig.app.gpio.buzzer.pattern == "refused"
    assert rig.app.controller.reason == NOT_READY_REASON
    assert heard.said[said:] == [texts.refused_measuring]
    assert not rig.app.gpio.relay.holding and rig.hardware.history == history
    rig.run_for(2.0)
    assert rig.state == "FAULT"  # the stuck sensor's own fault, as before
    detach_session(rig.app, runner)
