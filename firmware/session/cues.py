"""Session cues: buzzer patterns and, when a voice is configured, spoken prompts.

* turn backward: ``cue_backward``, three short beeps; "Turn around and walk backward."
  ("Walk backward." when there is no turn; "Resume walking backward." when the session
  resumes the interval after a trip or a pause)
* turn forward: ``cue_forward``, one long beep (0.7 s); "Turn around and walk forward."
  (the same variants)
* rest: ``cue_rest``, two long beeps; "Stop the belt, then rest." (the belt still runs: never
  "stop walking" on it)
* one minute left: ``cue_one_minute``, two medium beeps; "One minute left."
* a turn ahead: ``cue_turn_ahead``, two pairs of short beeps, some seconds before an interval
  that turns the walker round; "Get ready to turn." (spoken: slow the belt and hold the rail),
  so the belt is slow and a hand on the rail when the turn cue comes
* session done: ``cue_done``, long, short, long; "Session done. Well walked."
* paused by the walker (a double press while running): ``chirp``, "Session paused." (spoken:
  how to go on); without it the walker's pause was the one press pattern with no answer
* balance check: ``sway_start``, short, short, long; "Stand still, feet together, look
  ahead." — ``sway_eyes_closed``, three medium beeps; "Now close your eyes and stand
  still." — ``sway_done``, long, short; "Balance check done. You may move."

The patterns live in :data:`hal.buzzer_patterns.PATTERNS` at priorities 25-35:
above the arming chirp, below ``fault`` (50) and ``alarm`` (100), so a trip's
alarm always wins — a cue asked for while the alarm sounds is refused, and
the alarm cuts a cue short. A cue refused by a pattern that is not a trip's (a call for
help's beeps, a resume cue under "one minute left") is played once the buzzer is free,
unless stale by then (:meth:`firmware.session.cue_player.CuePlayer.retry`; the
rules in docs/sessions.md, "Cues"); one cut short after it started is beeped again on the
same terms, its words (queued as it started) not said twice
(:meth:`firmware.session.cue_player.CuePlayer.watch`).

Spoken prompts (:mod:`firmware.session.voice`) say more than these short texts:
the interval's number and length, the time left, and "slow the belt and hold
the rail before you turn". They are rendered to WAV files with ``espeak-ng``
before the walk and played by a worker thread: the loop only queues the text.
"""

from __future__ import annotations

import logging
import math
import operator
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.protocol.messages import Direction
from core.protocol.plan import Plan
from hal.buzzer_patterns import Pattern, faster, get_pattern

log = logging.getLogger(__name__)

CUT_SLACK_S = 0.005
"""A pattern found silent this close to its end played out (the loop's period is 5 ms): a
cue, or a walker's number, silent earlier was stopped or cut short."""


class Cue(StrEnum):
    BACKWARD = "backward"
    FORWARD = "forward"
    REST = "rest"
    ONE_MINUTE = "one_minute"
    TURN_AHEAD = "turn_ahead"
    DONE = "done"
    PAUSED = "paused"
    BALANCE = "balance"
    BALANCE_EYES_CLOSED = "balance_eyes_closed"
    BALANCE_DONE = "balance_done"


PATTERN: dict[Cue, str] = {
    Cue.BACKWARD: "cue_backward",
    Cue.FORWARD: "cue_forward",
    Cue.REST: "cue_rest",
    Cue.ONE_MINUTE: "cue_one_minute",
    Cue.TURN_AHEAD: "cue_turn_ahead",
    Cue.DONE: "cue_done",
    Cue.PAUSED: "chirp",
    Cue.BALANCE: "sway_start",
    Cue.BALANCE_EYES_CLOSED: "sway_eyes_closed",
    Cue.BALANCE_DONE: "sway_done",
}
"""The buzzer pattern of each cue (names in :data:`hal.buzzer_patterns.PATTERNS`)."""

ON_PLAN_TIME = frozenset(
    {Cue.BACKWARD, Cue.FORWARD, Cue.REST, Cue.ONE_MINUTE, Cue.TURN_AHEAD, Cue.DONE}
)
"""The cues the plan's clock times: in a session whose plan runs faster than real time (the
demos) their beeps run faster with it (:func:`compressed_patterns`). Not the pause's chirp
(the arming chirp's pattern too), nor the balance check's (it runs in real time)."""


def compressed_patterns(time_scale: float) -> dict[str, Pattern]:
    """The patterns of the :data:`ON_PLAN_TIME` cues played ``time_scale`` times faster, by
    name (:attr:`hal.gpio.GpioBuzzer.faster`); none at 1. A demo's plan runs 30 times faster
    and its speech and the LED's interval flash do too: its beeps did not, so a "get ready to
    turn" (1.2 s of beeps) 15 plan seconds before the turn, 0.5 s, was cut short by the turn's
    cue at every turn, a fault of no real plan (there it ends 14 s before the turn)."""
    if time_scale == 1:
        return {}
    return {PATTERN[cue]: faster(get_pattern(PATTERN[cue]), time_scale) for cue in ON_PLAN_TIME}


TEXT: dict[Cue, str] = {
    Cue.BACKWARD: "Turn around and walk backward.",
    Cue.FORWARD: "Turn around and walk forward.",
    Cue.REST: "Stop the belt, then rest.",
    Cue.ONE_MINUTE: "One minute left.",
    Cue.TURN_AHEAD: "Get ready to turn.",
    Cue.DONE: "Session done. Well walked.",
    Cue.PAUSED: "Session paused.",
    Cue.BALANCE: "Stand still, feet together, look ahead.",
    Cue.BALANCE_EYES_CLOSED: "Now close your eyes and stand still.",
    Cue.BALANCE_DONE: "Balance check done. You may move.",
}
"""What a spoken prompt says, and what the demo and the log print."""

STRAIGHT_TEXT: dict[Cue, str] = {
    Cue.BACKWARD: "Walk backward.",
    Cue.FORWARD: "Walk forward.",
}
"""An interval's cue when the walker does not turn round for it (the first interval, or the
same direction as the one before)."""

RESUME_TEXT: dict[Cue, str] = {
    Cue.BACKWARD: "Resume walking backward.",
    Cue.FORWARD: "Resume walking forward.",
    Cue.REST: "Carry on resting.",
}
"""The interval's cue repeated when the session resumes it (after re-arming or the walker's
pause): the walker faces the way they were going, so nothing says to turn."""

RESTART_TEXT: dict[Cue, str] = {
    Cue.BACKWARD: "Start the belt, walk backward.",
    Cue.FORWARD: "Start the belt, walk forward.",
}
"""The same with the belt stopped since the pause began (a trip, a fault: the relay stopped it,
and the treadmill waits for its own start button)."""


def cue_text(
    cue: Cue, *, turn: bool = True, resumed: bool = False, belt_stopped: bool = False
) -> str:
    """The short text of ``cue``: as it resumes an interval (on a belt stopped since, or not),
    starts one without a turn, or (the rest) :data:`TEXT`."""
    if resumed and belt_stopped and cue in RESTART_TEXT:
        return RESTART_TEXT[cue]
    if resumed and cue in RESUME_TEXT:
        return RESUME_TEXT[cue]
    if not turn and cue in STRAIGHT_TEXT:
        return STRAIGHT_TEXT[cue]
    return TEXT[cue]


def turns_at(plan: Plan, index: int) -> bool:
    """Interval ``index`` turns the walker round: backward after forward or forward after
    backward (a rest between them is no turn: the walker stops first)."""
    intervals = plan.intervals
    if not 0 < index < len(intervals):
        return False
    return {intervals[index - 1].direction, intervals[index].direction} == {"backward", "forward"}


def cue_for(direction: Direction) -> Cue:
    """The cue that starts an interval of ``direction``."""
    return {"backward": Cue.BACKWARD, "forward": Cue.FORWARD, "rest": Cue.REST}[direction]


class Speaker(Protocol):
    """Says a prompt without making the caller wait."""

    def say(self, text: str) -> None: ...

    def withdraw(self, text: str) -> None:
        """``text``, asked for so far, no longer holds: drop it, or cut it short."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class MayGoQuiet(Protocol):
    """A speaker that can be unheard for a while: a sound card absent, or unplugged
    (:class:`firmware.session.voice.PromptPlayer` with ``session.voice = "auto"``). While
    ``audible`` is False the runner beeps every cue as it does with no speaker."""

    audible: bool


@runtime_checkable
class PreparesPrompts(Protocol):
    """A speaker that renders a plan's prompts ahead and forgets those no plan in use needs."""

    def prepare(self, plans: Sequence[Plan], extra: Sequence[str] = ()) -> None:
        """The plans in use now, and other sentences to keep (the walkers' names); never blocks
        (the loop thread calls it)."""
        ...


ESPEAK = "espeak-ng"


def espeak_command(
    text: str, *, voice: str = "en", rate_wpm: int = 150, wav: str | Path | None = None
) -> list[str]:
    """The ``espeak-ng`` command line: to the sound card, or to ``wav``."""
    cmd = [ESPEAK, "-v", voice, "-s", str(int(rate_wpm))]
    if wav is not None:
        cmd += ["-w", str(wav)]
    return [*cmd, "--", text]


def render_wav(text: str, path: str | Path, *, voice: str = "en", rate_wpm: int = 150) -> Path:
    """Speak ``text`` into a WAV file (the prompt cache, the doctor, tests); returns ``path``."""
    subprocess.run(
        espeak_command(text, voice=voice, rate_wpm=rate_wpm, wav=path),
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Path(path)


@dataclass(frozen=True, slots=True)
class WavFigures:
    duration_s: float
    rms: float
    """Root mean square of the samples, full scale = 1."""
    voiced_s: float
    """Time in 20 ms frames louder than -40 dBFS: speech, not silence."""


def wav_figures(path: str | Path) -> WavFigures:
    """Length and loudness of a 16-bit mono WAV file, to tell speech from silence."""
    import wave  # here: the tools and tests measure WAVs, the monitor never does

    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono, not {wav.getparams()}")
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    count = len(frames) // 2
    samples = struct.unpack(f"<{count}h", frames[: 2 * count])
    if not samples:
        return WavFigures(0.0, 0.0, 0.0)
    # Squares of the 16-bit counts, summed as integers: a sample at full scale 1/32768 per
    # count squares to a multiple of 2**-30, so these sums are exactly the floats a sum of
    # (s / 32768) ** 2 makes while under 2**53 of them (6 minutes at full scale), in C.
    squares = list(map(operator.mul, samples, samples))
    rms = math.sqrt(math.ldexp(sum(squares), -30) / count)
    frame = max(1, int(rate * 0.02))
    loud = 10 ** (-40 / 20)
    voiced = 0
    for i in range(0, count - frame + 1, frame):
        if math.sqrt(math.ldexp(sum(squares[i : i + frame]), -30) / frame) > loud:
            voiced += 1
    return WavFigures(count / rate, rms, voiced * frame / rate)
