"""The demos' speaker (tools.session_demo.PrintedSpeaker): prints what a board with a speaker
would say, off the loop thread, as a real player would play it (docs/sessions.md, "Spoken
prompts")."""

from __future__ import annotations

import io
import math
import threading

import pytest

from core.clock import SimClock
from firmware.safety import SafetyState
from firmware.session.plan import resolve_plan
from firmware.session.runner import SessionRunner, SessionState
from firmware.status_light import StatusLight
from hal.gpio import GpioStatusLed
from sim.pins import ClockedMockFactory
from tests.test_status_light import LED_PIN
from tests.test_voice import Armed, QuietBuzzer
from tools.session_demo import CuePrinter, PrintedSpeaker, format_cue

TRIPPED = "The belt is stopped. Press and hold reset until the chirp."
RESUME = "Resume walking backward."
HELP = "Help called. Your caregivers are being told."


def _printing(
    clock: SimClock, out: io.StringIO | None = None, poll_s: float = 0.05
) -> tuple[PrintedSpeaker, SessionRunner, CuePrinter, io.StringIO]:
    """A speaker on a runner, and its printer, not started: the test drains it."""
    speaker = PrintedSpeaker(clock)
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=Armed(),
        buzzer=QuietBuzzer(),
        device_id="t",
        speaker=speaker,
    )
    out = out if out is not None else io.StringIO()
    return speaker, runner, CuePrinter(runner, out, poll_s=poll_s), out


def _said(out: io.StringIO) -> list[str]:
    lines = [line.strip() for line in out.getvalue().splitlines()]
    return [line.removeprefix('says "')[:-1] for line in lines if line.startswith('says "')]


def test_a_prompt_said_is_printed_once_and_say_returns_with_no_printer_running() -> None:
    clock = SimClock()
    speaker, _, printer, out = _printing(clock)
    speaker.say(TRIPPED)  # returns: nothing prints on the caller's thread, nothing waits
    assert out.getvalue() == ""
    clock.advance(1.0)
    printer.drain()
    printer.drain()
    assert _said(out) == [TRIPPED]
    assert out.getvalue() == f'{"":10}says "{TRIPPED}"\n'


def test_a_prompt_withdrawn_before_it_is_printed_is_never_printed() -> None:
    """As the prompt player drops a prompt still queued: one withdrawn as it was said, or while
    it waited behind another, is not printed; one withdrawn once it began is (the player cuts
    it short: the walker heard it begin); said again after a withdrawal, it is printed."""
    clock = SimClock()
    speaker, _, printer, out = _printing(clock)
    speaker.say(TRIPPED)
    speaker.withdraw(TRIPPED)  # the same moment: it never began
    clock.advance(1.0)
    printer.drain()
    assert _said(out) == []
    speaker.say(TRIPPED)  # about 4 s of speech at 150 words a minute
    speaker.say(RESUME)  # waits behind it
    clock.advance(1.0)
    speaker.withdraw(TRIPPED)  # cut short as it plays: printed, and the next begins now
    speaker.withdraw(RESUME)  # withdrawn as it would begin: dropped
    speaker.say(RESUME)
    clock.advance(10.0)
    printer.drain()
    assert _said(out) == [TRIPPED, RESUME]


def test_the_printer_prints_what_the_runner_says_through_its_thread_at_stop() -> None:
    """A session's words, said by the runner on the loop (this thread), printed by the printer's
    own thread: each once, its cue's line first."""
    clock = SimClock()
    _, runner, printer, out = _printing(clock)
    printer.start()
    runner.start(clock.monotonic())
    assert runner.state is SessionState.RUNNING
    clock.advance(1.0)
    printer.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  [ 0:00] cue backward")
    (cue,) = runner.cues
    assert _said(out) == [cue.spoken] and lines[1] == f'{"":10}says "{cue.spoken}"'


class WrittenBy(io.StringIO):
    """An output that notes the thread of each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: set[int] = set()

    def write(self, text: str) -> int:
        self.writers.add(threading.get_ident())
        return super().write(text)


def test_the_printer_prints_its_last_lines_on_its_own_thread_even_if_it_never_ran_before() -> None:
    """A walk that ends before the printer's thread first wakes (a CI host with both cores
    taken by real-time loops): its stop still prints everything from the printer's thread,
    never from the caller's (the loop's, in the demos). It printed them on the caller's."""
    clock = SimClock()
    out = WrittenBy()
    _, runner, printer, _ = _printing(clock, out, poll_s=3600.0)  # never wakes before its stop
    printer.start()
    runner.start(clock.monotonic())
    clock.advance(1.0)
    printer.stop()
    (cue,) = runner.cues
    assert _said(out) == [cue.spoken]
    assert out.writers and threading.get_ident() not in out.writers


def test_a_printer_never_started_prints_at_its_stop_on_the_callers_thread() -> None:
    clock = SimClock()
    _, runner, printer, out = _printing(clock)
    runner.start(clock.monotonic())
    printer.stop()
    printer.stop()  # again: nothing more
    (cue,) = runner.cues
    assert _said(out) == [cue.spoken]


def test_close_drops_what_has_not_begun_and_nothing_said_after_it_is_printed() -> None:
    """As the prompt player's ``close``: the prompt playing was heard to begin (printed), the
    one queued behind it never plays, and nothing said after the close is printed."""
    clock = SimClock()
    speaker, _, printer, out = _printing(clock)
    speaker.say(TRIPPED)  # about 4 s of speech
    speaker.say(RESUME)  # queued behind it
    clock.advance(1.0)
    speaker.close()
    speaker.say(RESUME)  # after the close: not said
    clock.advance(10.0)
    printer.drain(final=True)
    assert _said(out) == [TRIPPED]


def test_a_prompt_begins_when_the_one_before_ends_at_the_speech_rate_and_time_scale() -> None:
    """Each prompt lasts its words at ``rate_wpm``, compressed ``time_scale`` times like the
    demo's plan: at 150 words a minute eleven words take 4.4 s, 0.44 s at 10x; the next begins
    then."""
    clock = SimClock()
    speaker = PrintedSpeaker(clock, rate_wpm=150.0, time_scale=10.0)
    speaker.say(TRIPPED)  # eleven words
    speaker.say(RESUME)
    assert speaker.heard(math.inf) == [(0.0, TRIPPED), (pytest.approx(0.44), RESUME)]


def test_a_prompt_cut_short_lets_the_next_begin_at_once_and_no_other_withdrawal_does() -> None:
    """Withdrawing the prompt playing cuts it short: the one queued behind begins at once.
    Withdrawing another prompt (not playing) leaves the one playing to finish."""
    clock = SimClock()
    speaker = PrintedSpeaker(clock)  # 150 words a minute: TRIPPED lasts 4.4 s
    speaker.say(TRIPPED)
    speaker.say(RESUME)
    clock.advance(1.0)
    speaker.withdraw(TRIPPED)
    assert speaker.heard(math.inf) == [(0.0, TRIPPED), (1.0, RESUME)]

    clock.advance(10.0)  # 11.0: quiet again
    speaker.say(TRIPPED)
    clock.advance(1.0)
    speaker.withdraw(RESUME)  # not playing: TRIPPED plays on
    speaker.say(RESUME)
    assert speaker.heard(math.inf) == [(11.0, TRIPPED), (pytest.approx(15.4), RESUME)]


def test_a_speaker_refuses_a_rate_or_time_scale_that_is_not_positive() -> None:
    for rate, scale in ((0.0, 1.0), (150.0, 0.0), (-1.0, 1.0), (math.nan, 1.0)):
        with pytest.raises(ValueError, match="must be positive"):
            PrintedSpeaker(SimClock(), rate_wpm=rate, time_scale=scale)


def test_the_printer_at_stop_prints_what_was_said_in_the_last_moment() -> None:
    """The drains while the walk goes on hold back the last HORIZON_SLACK_S (the loop may
    still hand over something timed in it); the one at stop prints everything left."""
    clock = SimClock()
    _, runner, printer, out = _printing(clock)
    runner.start(clock.monotonic())  # its first cue and words, at the very end of the walk
    printer.start()
    printer.stop()
    (cue,) = runner.cues
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  [ 0:00] cue backward") and _said(out) == [cue.spoken]


def test_the_printer_prints_lines_in_time_order_across_drains() -> None:
    """A drain prints only what is older than the speaker's horizon (the clock less
    HORIZON_SLACK_S) and holds the rest: an LED change just before a drain waits for the
    words said before it, which have not begun by the horizon yet; and an LED change the loop
    timed just before the printer read the clock, handed over after that drain, still comes
    before words said after it."""
    clock = SimClock()
    safety = Armed(SafetyState.ARMED)
    factory = ClockedMockFactory(clock)
    led = GpioStatusLed(LED_PIN, factory)
    light = StatusLight(led, safety)
    speaker, runner, _, out = _printing(clock)
    printer = CuePrinter(runner, out, light=light)
    try:
        clock.advance(1.0)
        light.tick(1.0)  # armed
        clock.advance(0.92)
        speaker.say(TRIPPED)  # at 1.92
        clock.advance(0.03)
        safety.state, safety.reason = SafetyState.TRIPPED, "stumble detected"
        light.tick(1.95)
        clock.advance(0.05)
        printer.drain()  # at 2.0: the horizon is 1.9
        clock.advance(5.0)
        speaker.say(RESUME)  # at 7.0, after the trip's words ended
        clock.advance(0.05)
        printer.drain()  # at 7.05: the horizon is 6.95
        safety.state, safety.reason = SafetyState.ARMED, "armed by local reset from TRIPPED"
        light.tick(6.99)  # timed before that drain read the clock, handed over after it
        clock.advance(1.0)
        printer.drain()
    finally:
        led.close()
        factory.close()
    lines = [line.strip() for line in out.getvalue().splitlines()]
    kinds = [line.split()[4] if line.startswith("(loop") else line for line in lines]
    assert kinds == [
        "armed",
        f'says "{TRIPPED}"',
        "tripped",
        "armed",
        f'says "{RESUME}"',
    ]


def test_the_printer_prints_every_led_change_past_the_256_the_light_keeps() -> None:
    """The light keeps its last 256 changes; a printer that counted them by position printed
    none after the 256th of a process. 300 changes, drained every 10: all 300 printed, in
    order, each once."""
    clock = SimClock()
    safety = Armed(SafetyState.ARMED)
    factory = ClockedMockFactory(clock)
    led = GpioStatusLed(LED_PIN, factory)
    light = StatusLight(led, safety)
    _, runner, _, out = _printing(clock)
    printer = CuePrinter(runner, out, light=light)
    states = [SafetyState.ARMED, SafetyState.TRIPPED]
    try:
        for n in range(300):
            safety.state = states[n % 2]
            clock.advance(0.125)  # 5 of the light's steps, exact in binary
            light.tick(clock.monotonic())
            if n % 10 == 9:
                printer.drain(final=True)
    finally:
        led.close()
        factory.close()
    lines = [line.strip() for line in out.getvalue().splitlines()]
    names = [line.split()[4] for line in lines if line.startswith("(loop")]
    assert len(light.shown) == 256
    assert names == ["armed", "tripped"] * 150


@pytest.mark.parametrize("printed_speaker", [True, False], ids=["printed-speaker", "no-speaker"])
def test_a_cue_played_again_after_it_was_cut_short_shows_its_words_once(
    printed_speaker: bool,
) -> None:
    """A cue cut short by a call for help's beeps is beeped again once they end; its words
    were queued as it first started and are not said again. The printer shows the same walk
    whether the runner has a PrintedSpeaker (the words as said) or none (each cue's words from
    its record): the cue's line and its words, then the replay's line and that its words were
    said as it started. (With a speaker the runner also says that help was called.)"""
    clock = SimClock()
    buzzer = QuietBuzzer()
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=Armed(),
        buzzer=buzzer,
        device_id="t",
        speaker=PrintedSpeaker(clock) if printed_speaker else None,
    )
    out = io.StringIO()
    printer = CuePrinter(runner, out)
    runner.start(clock.monotonic())
    buzzer.pattern = "help_sent"  # the walker's call for help cuts the cue short
    for _ in range(3):
        clock.advance(0.1)
        runner.tick(clock.monotonic())
    buzzer.pattern = None  # its beeps ended: the cue is beeped again
    for _ in range(3):
        clock.advance(0.1)
        runner.tick(clock.monotonic())
    clock.advance(10.0)
    printer.drain(final=True)
    first, again = runner.cues
    assert again.replayed and not first.replayed
    lines = [line.strip() for line in out.getvalue().splitlines()]
    help_words = f'says "{HELP}"'  # the runner's own words for help_sent, said to a speaker
    assert lines.count(help_words) == (1 if printed_speaker else 0)
    assert [line for line in lines if line != help_words] == [
        format_cue(runner, 0).strip(),
        f'says "{first.spoken}"',
        format_cue(runner, 1).strip(),
        "(its words were said as it started)",
    ]
