"""Button presses: decisions that hand mutation (mut30) found no test noticing.

Safety rule 2 (only a person at the machine re-arms) rests on the reset button's press
patterns being told apart: :mod:`firmware.presses` (the loop's reset presses and calls for
help), :mod:`firmware.session.gestures` (the session's double and long presses) and
:mod:`firmware.session.walker_choice` (a double press in STANDBY choosing the next walker).
The rules are the table in docs/safety.md, "Button press patterns". The recognisers are pure
(edges in, outcomes out), so their tests feed them edges whose times are exact in binary; the
walker-choice tests drive the chooser with the real buzzer output on a gpiozero mock pin; the
controller's tests (a press at a state's own instant, a repeated call for help) run the whole
monitor on the simulated hardware (:mod:`tests.app_support`).

Survivors left alone, each equivalent (no input tells it from the original):

* presses: ``not downs or`` dropped in ``_settle`` (an empty sequence ends as nothing);
  ``MAX_EDGES`` a step (a bound, its tests read the constant).
* gestures: the double press's own gap test (``_settle`` already ends a pattern whose pause
  ran out before the next press); ``>`` for ``>=`` and the strokes kept in ``_release``'s long
  press (unreachable: ``_settle`` at the release's own time fires it first).
* walker_choice: ``self.beep = None`` in ``cycle`` (a stale beep is dropped by
  ``_choice_holds``); the beep made even with no buzzer pattern, or with ``ends`` set when
  refused (the next ``watch_beep`` turns it into a wait); ``playing == pattern`` after a late
  play, ``>`` for ``>=`` at its end (a tick later, same silence).
* safety: ``pressed_at > since`` dropped in STARTING (no press predates the start; either
  way nothing arms).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from core.clock import SimClock
from core.protocol.events import EventType
from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.link.messages import WalkerRoster
from firmware.presses import HelpSource, ResetButtonPatterns, ResetPress
from firmware.safety import HELP_REPEAT_S, SafetyState
from firmware.session.cues import CUT_SLACK_S
from firmware.session.gestures import SHORT_PRESS_S, GestureKind, GestureRecognizer
from firmware.session.safety_view import SafetyView
from firmware.session.voice import Prompts
from firmware.session.walker_choice import WalkerChooser
from hal.buzzer_patterns import get_pattern
from hal.gpio import GpioBuzzer
from sim.pins import ClockedMockFactory
from tests.app_support import Frozen, TripOnDemand, armed_rig, close_rigs, make_rig

BUZZER_PIN = 22


def _edges(*spans: tuple[float, float]) -> list[tuple[float, bool]]:
    """(down, up) presses as the edges the button reports."""
    return [edge for down, up in spans for edge in ((down, True), (up, False))]


# -- firmware.presses --------------------------------------------------------------------


def test_a_double_press_begun_the_instant_standby_began_is_refused_not_left_to_the_session() -> (
    None
):
    """The session takes a double press in STANDBY as its own (the next walker) only if its
    first press went down *after* STANDBY began (``first_press > safety.since`` in
    :meth:`SessionRunner._on_gesture`); the controller, too, counts a press at ``since`` as
    made before the state began. So the loop must report (and the controller refuse) one whose
    first press went down at ``since`` itself: left to the session it is ignored there, and the
    walker hears nothing at all (mutant: ``<`` for ``<=`` in the ``sessions_double_after``
    comparison of ``ResetButtonPatterns._settle``)."""
    since = 10.0
    double = _edges((since, since + 0.125), (since + 0.375, since + 0.5))
    found = ResetButtonPatterns().feed(double, 12.0, armable=True, sessions_double_after=since)
    assert found == [ResetPress(since, held=False, presses=2)]
    # One begun a moment later is the session's: not reported.
    later = _edges((since + 0.25, since + 0.375), (since + 0.625, since + 0.75))
    quiet = ResetButtonPatterns().feed(later, 12.0, armable=True, sessions_double_after=since)
    assert quiet == []


# -- firmware.session.gestures -----------------------------------------------------------


def test_a_double_press_of_presses_just_under_the_documented_short_limit_is_one() -> None:
    """docs/sessions.md: a double press is "two presses under 0.6 s each". A walker's slower
    presses of 0.55 s (let go after the arming chirp's 0.4 s, which ARMED ignores) still start
    or pause the session (mutant: ``SHORT_PRESS_S`` a step down, 0.5 s: such presses were
    "medium" and spoilt the pattern, so the walker's double press did nothing)."""
    rec = GestureRecognizer(double_gap_s=0.6, long_press_s=2.0)
    found = rec.feed(_edges((1.0, 1.5625), (1.875, 2.4375)), 4.0)
    assert [(g.kind, g.first_press) for g in found] == [(GestureKind.DOUBLE, 1.0)]


def test_a_long_press_no_longer_than_a_short_one_is_refused() -> None:
    """A long press (stop) must outlast any press of a double press (start, pause): the
    recogniser refuses one that does not, whoever builds it (mutant: the check of
    ``long_press_s`` against :data:`SHORT_PRESS_S` dropped: a 0.5 s "long" press made every
    press of a double press a stop)."""
    with pytest.raises(ValueError, match="long_press_s > the short press"):
        GestureRecognizer(double_gap_s=0.6, long_press_s=SHORT_PRESS_S)
    assert GestureRecognizer(double_gap_s=0.6, long_press_s=2.0).long_press_s == 2.0


def test_a_double_press_right_after_a_stop_that_followed_a_fumble_is_a_double_press() -> None:
    """A fumbled press (between short and long), then the long press that stops the session,
    then at once a double press to start again: the long press ends the pattern before it,
    fumble and all, so the double press counts (mutant: the fumble's spoilt flag kept when the
    long press fired while held: the walker's double press did nothing)."""
    rec = GestureRecognizer(double_gap_s=0.6, long_press_s=2.0)
    # A 1 s fumble, a stop held 2.5 s from 1.5 s, let go at 4.0; taps at 4.25 and 4.75.
    presses = _edges((0.0, 1.0), (1.5, 4.0), (4.25, 4.375), (4.75, 4.875))
    found = rec.feed(presses, 7.0)
    assert [(g.kind, g.first_press) for g in found] == [
        (GestureKind.LONG, 1.5),
        (GestureKind.DOUBLE, 4.25),
    ]


# -- firmware.session.walker_choice --------------------------------------------------------


@dataclass
class _Standby:
    """What the chooser reads of the controller (:class:`SafetyView`'s ``state`` and
    ``since``, and nothing else): STANDBY since a fixed time."""

    state: SafetyState = SafetyState.STANDBY
    since: float = 1.0


@pytest.fixture
def buzzer() -> Iterator[tuple[GpioBuzzer, SimClock]]:
    """The real buzzer output on a gpiozero mock pin, on a simulated clock."""
    clock = SimClock(10.0)
    factory = ClockedMockFactory(clock)
    out = GpioBuzzer(BUZZER_PIN, factory)
    yield out, clock
    out.close()
    factory.close()


def test_a_walkers_number_found_cut_within_the_loops_slack_of_its_end_is_not_beeped_again(
    buzzer: tuple[GpioBuzzer, SimClock],
) -> None:
    """Without a voice, a walker's number cut short by another pattern is beeped again once
    the buzzer is free; one found cut within :data:`CUT_SLACK_S` (the loop's period) of its
    end had played out, and beeping it again counts the walker's place twice over (mutant:
    the slack dropped from ``watch_beep``'s played-out test: the whole number again)."""
    out, clock = buzzer
    chooser = WalkerChooser(cast(SafetyView, _Standby()), out, Prompts.for_language("en"))
    chooser.walkers = (DEFAULT_WALKER, Walker("anna", "Anna"))
    chooser.cycle(clock.monotonic(), None)  # walker 2: "walker_2" plays at once
    assert out.pattern == "walker_2"
    beep = chooser.beep
    assert beep is not None and beep.ends is not None
    assert beep.ends == clock.monotonic() + get_pattern("walker_2").period
    # Its last tick is over; a moment before its end a call for help's cue takes the buzzer.
    clock.advance(beep.ends - CUT_SLACK_S / 2 - clock.monotonic())
    out.update(clock.monotonic())
    out.play("help_sent", clock.monotonic())
    assert out.pattern == "help_sent"
    chooser.watch_beep(clock.monotonic(), False)
    assert chooser.beep is None  # played out: not again after the cue


def _refused_choice(
    out: GpioBuzzer, clock: SimClock, safety: _Standby | None = None
) -> WalkerChooser:
    """Walker 2 (of three) chosen while the controller's ``refused`` sounds (priority 60 over
    the number's 28): the number waits for the buzzer."""
    view = cast(SafetyView, safety or _Standby())
    chooser = WalkerChooser(view, out, Prompts.for_language("en"))
    chooser.walkers = (DEFAULT_WALKER, Walker("anna", "Anna"), Walker("ben", "Ben"))
    out.play("refused", clock.monotonic())
    chooser.cycle(clock.monotonic(), None)
    assert out.pattern == "refused" and chooser.beep is not None and chooser.beep.ends is None
    return chooser


def _free(out: GpioBuzzer, clock: SimClock) -> None:
    """Past the end of ``refused``: the buzzer free again."""
    clock.advance(get_pattern("refused").period + 0.01)
    out.update(clock.monotonic())
    assert out.pattern is None


def test_a_waiting_number_is_dropped_once_another_walker_is_chosen_otherwise(
    buzzer: tuple[GpioBuzzer, SimClock],
) -> None:
    """A number waiting for the buzzer names the walker chosen then; chosen otherwise since
    (``retroguard walker select`` through the courier, the runner's ``walker``), it would say
    the wrong walker's place, so it is dropped, not beeped (mutant: the chosen-walker check
    dropped from ``_choice_holds``: "walker 2" beeped for Ben's session)."""
    out, clock = buzzer
    chooser = _refused_choice(out, clock)
    chooser.walker = chooser.walkers[2]  # Ben, chosen from the command line meanwhile
    _free(out, clock)
    chooser.watch_beep(clock.monotonic(), False)
    assert chooser.beep is None and out.pattern is None


def test_a_waiting_number_is_beeped_once_the_buzzer_is_free(
    buzzer: tuple[GpioBuzzer, SimClock],
) -> None:
    """The counterpart of the test above: nothing changed, the number is beeped."""
    out, clock = buzzer
    chooser = _refused_choice(out, clock)
    _free(out, clock)
    chooser.watch_beep(clock.monotonic(), False)
    assert out.pattern == "walker_2" and chooser.beep is not None


def test_a_waiting_number_is_dropped_once_the_roster_moves_its_walker(
    buzzer: tuple[GpioBuzzer, SimClock],
) -> None:
    """A roster from the courier that moves the chosen walker to another place (a profile
    added or removed before them): the number waiting would name the wrong place, so it is
    dropped (mutant: the check that the walker is still at that place dropped from
    ``_choice_holds``: "walker 2" beeped for Anna, now the third)."""
    out, clock = buzzer
    chooser = _refused_choice(out, clock)
    anna = chooser.walker
    chooser.walkers = (DEFAULT_WALKER, Walker("ben", "Ben"), anna)
    _free(out, clock)
    chooser.watch_beep(clock.monotonic(), False)
    assert chooser.walker == anna and chooser.beep is None and out.pattern is None


@pytest.mark.parametrize(
    "change",
    ["armed", "standby-again", "session"],
)
def test_a_waiting_number_is_dropped_once_its_standby_is_over(
    buzzer: tuple[GpioBuzzer, SimClock], change: str
) -> None:
    """A number waiting for the buzzer belongs to the STANDBY it was chosen in, with no session
    under way: armed since (the walk's chirp is the answer now), STANDBY entered again (a trip
    and a recovery: another moment), or a session started, it is dropped, not beeped into the
    walk or the session (mutants: each of the state, ``since`` and session checks dropped from
    ``_choice_holds``)."""
    out, clock = buzzer
    safety = _Standby()
    chooser = _refused_choice(out, clock, safety)
    under_way = False
    if change == "armed":
        safety.state = SafetyState.ARMED
    elif change == "standby-again":
        safety.since = clock.monotonic()
    else:
        under_way = True
    _free(out, clock)
    chooser.watch_beep(clock.monotonic(), under_way)
    assert chooser.beep is None and out.pattern is None


def test_a_roster_without_the_chosen_walker_gives_its_selection_even_before_the_latest_press(
    buzzer: tuple[GpioBuzzer, SimClock],
) -> None:
    """A roster the courier sent before it stored the walker's latest press keeps that press's
    choice, but only while the walker chosen is still in it: removed meanwhile (``retroguard
    walker remove``), the next session must be the roster's selection, not a profile that no
    longer exists (mutant: the membership check dropped from ``take_roster``: the removed
    walker stayed the walker of the next session)."""
    out, _ = buzzer
    anna, ben = Walker("anna", "Anna"), Walker("ben", "Ben")
    sent: list[tuple[WalkerRoster, bool]] = []
    chooser = WalkerChooser(
        cast(SafetyView, _Standby()),
        out,
        Prompts.for_language("en"),
        new_roster=lambda: sent.pop() if sent else None,
    )
    chooser.walkers, chooser.walker = (DEFAULT_WALKER, anna, ben), anna  # Anna, by the button
    # Older than the press (not current): Anna still listed, her choice holds ...
    sent.append((WalkerRoster(1, [DEFAULT_WALKER, anna, ben], selected=ben), False))
    assert chooser.take_roster() and chooser.walker == anna
    # ... Anna removed: the roster's selection, whatever the courier has stored.
    sent.append((WalkerRoster(2, [DEFAULT_WALKER, ben], selected=DEFAULT_WALKER), False))
    assert chooser.take_roster()
    assert chooser.walker == DEFAULT_WALKER and list(chooser.walkers) == [DEFAULT_WALKER, ben]


def test_a_walkers_number_stopped_outright_is_not_beeped_again(
    buzzer: tuple[GpioBuzzer, SimClock],
) -> None:
    """A number stopped outright (the buzzer silenced, nothing sounding after it: the monitor
    stopping) is over, not cut short by another pattern: it is not beeped again once the buzzer
    is free, which it already is (mutant: the ``playing is None`` test dropped from
    ``watch_beep``: the stopped number started again on its own)."""
    out, clock = buzzer
    chooser = WalkerChooser(cast(SafetyView, _Standby()), out, Prompts.for_language("en"))
    chooser.walkers = (DEFAULT_WALKER, Walker("anna", "Anna"))
    chooser.cycle(clock.monotonic(), None)
    assert out.pattern == "walker_2"
    clock.advance(0.25)  # in its lead-in
    out.stop()
    chooser.watch_beep(clock.monotonic(), False)
    assert chooser.beep is None  # over: nothing waits to beep it again
    clock.advance(get_pattern("walker_2").period)
    out.update(clock.monotonic())
    assert out.pattern is None


# -- firmware.safety: the reset press in FAULT -------------------------------------------


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_press_at_the_instant_a_fault_began_is_no_answer_to_it(tmp_path: Path) -> None:
    """A press counts as made in a state only if it went down after the state began (docs/
    safety.md, "local reset"): one at the fault's own instant was made before it (a tap while
    ARMED, reported once its sequence was over) and is nobody's answer to it, so it leaves the
    fault's beeps sounding; a press a moment later is refused (mutant: ``>=`` for ``>`` in
    ``on_button``'s FAULT test: the press at the boundary silenced the fault's beeps with a
    refusal, as :mod:`tests.test_arming_mutants` requires of a press from before the fault)."""
    rig = make_rig(tmp_path, motion=Frozen())  # stuck on one reading since power-on: FAULT
    rig.run_for(1.0)
    controller, buzzer = rig.app.controller, rig.app.gpio.buzzer
    assert rig.state == "FAULT" and buzzer.pattern == "fault"
    now = rig.clock.monotonic()
    controller.on_button(controller.since, now)
    assert buzzer.pattern == "fault"  # not answered: the fault's beeps go on
    controller.on_button(controller.since + 0.005, now)
    assert buzzer.pattern == "refused" and rig.state == "FAULT"


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_press_at_the_instant_of_a_trip_does_not_rearm(tmp_path: Path) -> None:
    """Only a press that went down after the trip may re-arm: one at the trip's own instant
    was made while the walk was still ARMED (the stumble and the walker's hand on the button
    together), not by a walker who saw the belt stop (mutant: ``<`` for ``<=`` in
    ``on_button``'s "pressed before this state began" test: that press armed the belt again
    at once)."""
    detector = TripOnDemand()
    rig = armed_rig(tmp_path, detector=detector, relay_drive="static")
    controller = rig.app.controller
    rig.run_for(0.5)
    detector.trip = True
    rig.run_for(0.1)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    controller.on_button(controller.since, rig.clock.monotonic())  # held, as for the chirp
    rig.run_for(0.1)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    assert rig.app.gpio.buzzer.pattern == "alarm"  # not answered: the alarm sounds on
    rig.press_reset()  # a press after the trip re-arms, as always
    assert rig.state == "ARMED"


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_call_for_help_once_the_repeat_time_is_over_is_sent_again(tmp_path: Path) -> None:
    """A call for help within :data:`HELP_REPEAT_S` of the last is confirmed, not sent again
    (the caregivers are being paged); one that long after is a new call, sent (mutant: ``<=``
    for ``<`` in ``on_help``: a call exactly that long after was swallowed). The times are
    exact in binary."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    controller = rig.app.controller
    now = rig.clock.monotonic()
    controller.on_help(HelpSource.RESET_BUTTON, 64.0, now)
    controller.on_help(HelpSource.RESET_BUTTON, 64.0 + HELP_REPEAT_S / 2, now)  # confirmed only
    controller.on_help(HelpSource.RESET_BUTTON, 64.0 + HELP_REPEAT_S, now)
    rig.run_for(0.1)
    assert rig.events().count(EventType.HELP) == 2
