"""A caregiver's ``silence`` decided on the loop: only the alarm it names, and what it did.

Real parts: the GPIO buzzer on gpiozero's mock pins, the whole monitor on a simulated clock
with its courier on a thread (no broker: the loop's answer is read off the link, where the
courier would take it). The MQTT path is in ``tests/test_app_mqtt.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from core.clock import SimClock
from core.protocol.commands import CommandRefused, Silence, encode_command, parse_command
from core.protocol.events import Event, EventType
from core.protocol.messages import SilenceOutcome, SilenceResult
from core.samples import ImuSample
from firmware.app import silence_alarm
from firmware.detection.base import NO_DETECTIONS, Detection, DetectionKind
from firmware.link import messages
from firmware.safety import SoundingAlarm
from hal.gpio import GpioBuzzer
from sim.pins import ClockedMockFactory
from tests.app_support import Explodes, Rig, TripsAt, armed_rig, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

BUZZER = 18
E1, E2 = "1" * 32, "2" * 32
I1, I2 = "a" * 32, "b" * 32


@pytest.fixture
def buzzer() -> Iterator[GpioBuzzer]:
    clock = SimClock(10.0)
    factory = ClockedMockFactory(clock)
    buzzer = GpioBuzzer(BUZZER, factory)
    buzzer.play("alarm", clock.monotonic())
    yield buzzer
    buzzer.close()
    factory.close()


NEWER = SoundingAlarm("alarm", E2, I2)
"""The alarm sounding: a second trip (event E2, incident I2) after the first (E1, I1)."""


@pytest.mark.parametrize(
    ("named", "outcome"),
    [
        ({}, "stopped"),  # blank: whatever alarm sounds, as before
        ({"event_id": E2}, "stopped"),
        ({"incident": I2}, "stopped"),
        ({"event_id": E2, "incident": I2}, "stopped"),
        ({"event_id": E1}, "not_that_alarm"),  # late, for the first trip
        ({"incident": I1}, "not_that_alarm"),
        ({"event_id": E2, "incident": I1}, "not_that_alarm"),  # every field named must match
        ({"event_id": E1, "incident": I2}, "not_that_alarm"),  # an older event of the incident
    ],
    ids=str,
)
def test_a_named_silence_stops_only_the_alarm_it_names(
    buzzer: GpioBuzzer, named: dict[str, str], outcome: SilenceOutcome
) -> None:
    said = silence_alarm(buzzer, NEWER, **named)
    assert said == SilenceResult(silence=outcome, pattern="alarm", event_id=E2, incident=I2)
    assert buzzer.pattern == (None if outcome == "stopped" else "alarm")


def test_a_named_silence_keeps_an_alarm_it_cannot_tell_the_owner_of(buzzer: GpioBuzzer) -> None:
    """An alarm sounding that the controller did not note (or noted for another pattern) is
    not the one named: kept, and said so; a blank silence stops it as before."""
    for sounding in (None, SoundingAlarm("fault", E1, I1)):
        said = silence_alarm(buzzer, sounding, event_id=E1)
        assert said == SilenceResult(silence="not_that_alarm", pattern="alarm")
        assert buzzer.pattern == "alarm"
    assert silence_alarm(buzzer, None) == SilenceResult(silence="stopped", pattern="alarm")
    assert silence_alarm(buzzer, NEWER, event_id=E2) == SilenceResult(silence="nothing_sounding")


def test_a_named_silence_leaves_a_cue_playing_and_says_so(buzzer: GpioBuzzer) -> None:
    buzzer.stop()
    buzzer.play("cue_forward", 11.0)
    said = silence_alarm(buzzer, NEWER, event_id=E2)
    assert said == SilenceResult(silence="cue_left_playing", pattern="cue_forward")
    assert buzzer.pattern == "cue_forward"


# ------------------------------------------------------------- parsing the command


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"event_id": 12}', "event_id"),
        (b'{"event_id": "latest"}', "event_id"),
        (b'{"event_id": "' + b"A" * 32 + b'"}', "event_id"),
        (b'{"event_id": "' + b"1" * 32 + b'\\n"}', "event_id"),
        (b'{"event_id": null, "incident": ["x"]}', "incident"),
        (b'{"incident": "abc"}', "incident"),
        (b'{"incident": true}', "incident"),
        (b'{"alarm": "alarm"}', "unknown field(s): alarm"),
    ],
)
def test_a_silence_naming_a_malformed_alarm_is_refused_naming_the_field(
    payload: bytes, field: str
) -> None:
    with pytest.raises(CommandRefused) as refused:
        parse_command("silence", payload)
    assert str(refused.value).startswith(field)


def test_a_silence_round_trips_what_it_names() -> None:
    for silence in (Silence(), Silence(E1), Silence(incident=I1), Silence(E1, I1)):
        parsed = parse_command("silence", encode_command(silence, "r1").encode())
        assert parsed.command == silence and parsed.request_id == "r1"
    assert parse_command("silence", b"").command == Silence()  # Home Assistant's button


# ------------------------------------------------------------- the loop, whole


def _stumbles(rig: Rig) -> list[Event]:
    return [s.event for s in rig.app.stored_events() if s.event.type is EventType.STUMBLE]


def test_the_loop_stops_only_the_alarm_of_the_trip_named_and_answers_each_silence(
    tmp_path: Path,
) -> None:
    """The second trip after the walker re-armed sounds its alarm; a silence for the first
    trip, taken by the loop, keeps it and answers so; one for the second stops it. The
    controller knows which event its alarm sounds for (:attr:`SafetyController.sounding`)."""
    rig = make_rig(tmp_path, detector=TripsAt(3.0, 6.0))
    controller, buzzer = rig.app.controller, rig.app.gpio.buzzer
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(2.5)
    (first,) = _stumbles(rig)
    assert controller.sounding == SoundingAlarm("alarm", first.id, first.incident)
    rig.run_for(1.0)
    rig.press_reset()  # up again: the first incident is over
    assert controller.sounding is None  # the chirp is no alarm of the controller's
    rig.run_for(6.5 - rig.clock.monotonic())
    second = _stumbles(rig)[-1]
    assert second.id != first.id
    assert controller.sounding == SoundingAlarm("alarm", second.id, second.incident)

    heard: list[SilenceResult] = []
    sent: list[messages.SilenceAnswered] = []
    link = rig.app.link
    real_answer = link.answer_silence

    def answer(request_id: str | None, result: SilenceResult) -> None:
        sent.append(messages.SilenceAnswered(result, request_id))
        heard.append(result)
        real_answer(request_id, result)

    link.answer_silence = answer  # type: ignore[method-assign]
    link._apply(messages.SilenceBuzzer("late", event_id=first.id))  # as the courier's arrive
    link._apply(messages.SilenceBuzzer("old-incident", incident=first.incident))
    rig.run_for(0.02)
    assert buzzer.pattern == "alarm" and [s.request_id for s in sent] == ["late", "old-incident"]
    kept = SilenceResult(
        silence="not_that_alarm", pattern="alarm", event_id=second.id, incident=second.incident
    )
    assert heard == [kept, kept]
    link._apply(messages.SilenceBuzzer("now", event_id=second.id))
    link._apply(messages.SilenceBuzzer("twice", event_id=second.id))
    rig.run_for(0.02)
    assert buzzer.pattern is None and controller.sounding is None
    assert heard[2:] == [
        SilenceResult(
            silence="stopped", pattern="alarm", event_id=second.id, incident=second.incident
        ),
        SilenceResult(silence="nothing_sounding"),
    ]
    assert rig.state == "TRIPPED" and not rig.app.gpio.relay.holding  # nothing armed


def test_help_sounds_for_its_own_event_in_the_trips_incident(tmp_path: Path) -> None:
    """A call for help after a trip sounds ``help_sent`` for the help event (the incident the
    trip's): a silence naming the trip's event, sent before the call, no longer fits it."""
    rig = make_rig(tmp_path, detector=TripsAt(3.0))
    controller = rig.app.controller
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(2.5)
    (trip,) = _stumbles(rig)
    controller.on_help("the help button", rig.clock.monotonic(), rig.clock.monotonic())
    (help_event,) = [s.event for s in rig.app.stored_events() if s.event.type is EventType.HELP]
    assert help_event.incident == trip.incident
    assert controller.sounding == SoundingAlarm("help_sent", help_event.id, trip.incident)
    said = silence_alarm(rig.app.gpio.buzzer, controller.sounding, event_id=trip.id)
    assert said.silence == "not_that_alarm" and rig.app.gpio.buzzer.pattern == "help_sent"
    said = silence_alarm(rig.app.gpio.buzzer, controller.sounding, incident=trip.incident)
    assert said.silence == "stopped"
    # asked again at once: not sent again, and it sounds for the help already sent
    now = rig.clock.monotonic()
    controller.on_help("the help button", now + 0.1, now + 0.1)
    assert controller.sounding == SoundingAlarm("help_sent", help_event.id, trip.incident)


def test_a_help_answer_drowned_by_a_newer_alarm_leaves_that_alarm_silenceable_by_name(
    tmp_path: Path,
) -> None:
    """The walker asked for help in the first trip, re-armed, and tripped again. A caregiver
    closing the first incident meanwhile plays ``help_answered`` under the second trip's
    alarm (lower: the buzzer keeps the alarm). The controller must still know the alarm's
    owner: noting the drowned pattern instead left :attr:`sounding` empty, and the
    dashboard's Silence for the second trip's alarm (naming its event) kept it sounding."""
    rig = make_rig(tmp_path, detector=TripsAt(3.0, 6.0))
    controller, buzzer = rig.app.controller, rig.app.gpio.buzzer
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(2.5)
    (first,) = _stumbles(rig)
    now = rig.clock.monotonic()
    controller.on_help("the help button", now, now)
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(6.5 - rig.clock.monotonic())
    second = _stumbles(rig)[-1]
    assert second.incident != first.incident
    assert first.incident is not None
    controller.on_incident_closed(first.incident, rig.clock.monotonic())
    assert buzzer.pattern == "alarm"  # the answer's beeps never cut the alarm
    assert controller.sounding == SoundingAlarm("alarm", second.id, second.incident)
    said = silence_alarm(buzzer, controller.sounding, event_id=second.id)
    assert said.silence == "stopped" and buzzer.pattern is None


def test_help_answered_and_a_refused_press_sound_for_their_incident(tmp_path: Path) -> None:
    """``help_answered`` and a refused press's beeps are safety signals a caregiver may
    silence: they belong to no event but to the incident (the one answered; the one open),
    so a silence naming that incident stops them, and one naming another keeps them."""
    rig = make_rig(tmp_path, detector=TripsAt(3.0))
    controller, buzzer = rig.app.controller, rig.app.gpio.buzzer
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(2.5)
    (trip,) = _stumbles(rig)
    assert trip.incident is not None
    # a press let go before the chirp, in TRIPPED: refused, with the trip's incident open
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.002)
    rig.run_for(1.0)
    assert buzzer.pattern == "refused" and rig.state == "TRIPPED"
    assert controller.sounding == SoundingAlarm("refused", None, trip.incident)
    assert silence_alarm(buzzer, controller.sounding, incident=I1).silence == "not_that_alarm"
    said = silence_alarm(buzzer, controller.sounding, incident=trip.incident)
    assert said == SilenceResult(silence="stopped", pattern="refused", incident=trip.incident)
    # help, then a caregiver answers it: the answer's beeps are the incident's
    now = rig.clock.monotonic()
    controller.on_help("the help button", now, now)
    controller.on_incident_closed(trip.incident, rig.clock.monotonic())
    assert buzzer.pattern == "help_answered"
    assert controller.sounding == SoundingAlarm("help_answered", None, trip.incident)
    said = silence_alarm(buzzer, controller.sounding, incident=trip.incident)
    assert said.silence == "stopped" and buzzer.pattern is None


class _StaysDown:
    """A detector that decides a stumble at ``t``, then no recovery a second later."""

    def __init__(self, t: float) -> None:
        self.found = [(t, DetectionKind.STUMBLE), (t + 1.0, DetectionKind.NO_RECOVERY)]

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if self.found and sample.t >= self.found[0][0]:
            _, kind = self.found.pop(0)
            return (Detection(kind, sample.t, "test", {}),)
        return NO_DETECTIONS

    def reset(self) -> None:
        pass


def test_no_recovery_sounds_the_alarm_again_for_its_own_event(tmp_path: Path) -> None:
    """The walker is still down after a trip whose alarm a caregiver silenced: the no-recovery
    detection sounds the alarm again (people nearby must come), for the no-recovery event, so
    a late silence naming the trip's event does not stop it."""
    rig = armed_rig(tmp_path, detector=_StaysDown(3.0))
    controller, buzzer = rig.app.controller, rig.app.gpio.buzzer
    rig.run_for(3.1 - rig.clock.monotonic())
    (trip,) = _stumbles(rig)
    assert silence_alarm(buzzer, controller.sounding, event_id=trip.id).silence == "stopped"
    rig.run_for(1.5)
    (down,) = [s.event for s in rig.app.stored_events() if s.event.type is EventType.NO_RECOVERY]
    assert buzzer.pattern == "alarm"
    assert controller.sounding == SoundingAlarm("alarm", down.id, trip.incident)
    late = silence_alarm(buzzer, controller.sounding, event_id=trip.id)
    assert late.silence == "not_that_alarm" and buzzer.pattern == "alarm"


def test_a_fault_s_alarm_sounds_for_its_fault_event_and_incident(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, detector=Explodes(3.0))
    controller, buzzer = rig.app.controller, rig.app.gpio.buzzer
    rig.run_for(2.5)
    assert rig.state == "FAULT"
    (fault,) = [s.event for s in rig.app.stored_events() if s.event.type is EventType.FAULT]
    assert fault.incident is not None
    assert buzzer.pattern == "fault"
    assert controller.sounding == SoundingAlarm("fault", fault.id, fault.incident)
    said = silence_alarm(buzzer, controller.sounding, event_id=fault.id, incident=fault.incident)
    assert said.silence == "stopped" and buzzer.pattern is None
