"""The demos' speaker (tools.session_demo.PrintedSpeaker): prints what a board with a speaker
would say, off the loop thread, as a real player would play it (docs/sessions.md, "Spoken
prompts")."""

from __future__ import annotations

import io

from core.clock import SimClock
from firmware.session.plan import resolve_plan
from firmware.session.runner import SessionRunner, SessionState
from tests.test_voice import Armed, QuietBuzzer
from tools.session_demo import CuePrinter, PrintedSpeaker

TRIPPED = "The belt is stopped. Press and hold reset until the chirp."
RESUME = "Resume walking backward."


def _printing(clock: SimClock) -> tuple[PrintedSpeaker, SessionRunner, CuePrinter, io.StringIO]:
    """A speaker on a runner, and its printer, not started: the test drains it."""
    speaker = PrintedSpeaker(clock)
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=Armed(),
        buzzer=QuietBuzzer(),
        device_id="t",
        speaker=speaker,
    )
    out = io.StringIO()
    return speaker, runner, CuePrinter(runner, out), out


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
