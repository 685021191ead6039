"""Buzzer (and status-LED) patterns as data, and a pure player for them.

A pattern is a tuple of ``(on_s, off_s)`` segments played from the moment it
is started; a repeating pattern starts over after its last segment, a finite
one falls silent. Patterns are plain frozen data so that tests, the simulated
buzzer and the real one agree on one timeline, and so that a later issue can
add audio cues without touching any player code.

Priority bands (higher wins; a lower-priority pattern never replaces a
higher-priority one that is still playing, see :class:`PatternPlayer`):

* ``0`` to ``19``: confirmations (``chirp``: a button press was accepted).
* ``20`` to ``49``: walking cues of a guided session
  (:mod:`firmware.session.cues`): ``cue_backward`` (three short beeps: turn
  and walk backward), ``cue_forward`` (one long beep: turn and walk forward),
  ``cue_rest`` (two long beeps: stop walking and rest), ``cue_one_minute``
  (two medium beeps: one minute left), ``cue_turn_ahead`` (two pairs of short
  beeps: a turn is coming, slow the belt and hold the rail) and ``cue_done`` (long-short-long:
  session done), and the balance check's ``sway_start`` (short-short-long:
  stand still, feet together), ``sway_eyes_closed`` (three medium beeps)
  and ``sway_done`` (long-short), and ``walker_1`` .. ``walker_8`` (a long
  lead-in and n ticks: the button chose walker n, when there is no voice).
  They sit below ``fault`` and ``alarm`` so a cue can never mask a safety
  signal, and above ``chirp`` so a cue is not lost to one.
* ``50`` to ``89``: ``fault`` (the monitor cannot watch: IMU lost, FIFO overflow)
  ``refused`` (a reset press did not arm: alerts cannot be stored now,
  see :meth:`firmware.safety.SafetyController.on_button`) and ``not_worn``
  (a reset press did not arm: the sensor shows no body), and ``help_sent``
  (two groups of four quick beeps: the walker's call for help went to the
  caregivers; see :meth:`firmware.safety.SafetyController.on_help`) and
  ``help_answered`` (a long beep and three quick ones: a caregiver closed the
  incident the walker called about). Safety
  signals: no cue or chirp may mask them.
* ``90`` to ``100``: ``alarm`` (a fall or stumble was detected; the relay dropped).

Adding a pattern is one entry in :data:`PATTERNS`; names are the public
vocabulary the firmware uses (``buzzer.play("alarm", now)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Pattern:
    """One named on/off pattern.

    ``segments`` are ``(on_s, off_s)`` pairs: the output is on for ``on_s``
    then off for ``off_s``, segment after segment. Each segment's interval is
    half-open — at exactly ``on_s`` after a segment began the output is
    already off — so consecutive segments tile time without overlap.
    """

    name: str
    segments: tuple[tuple[float, float], ...]
    repeat: bool
    priority: int
    period: float = field(init=False, repr=False, compare=False)
    """Length of one pass through all segments, in seconds (summed once: the loop asks for
    it at every step of an LED or buzzer pattern)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "period", sum(on_s + off_s for on_s, off_s in self.segments))
        if not self.name:
            raise ValueError("a pattern needs a name")
        if not self.segments:
            raise ValueError(f"pattern {self.name!r} has no segments")
        for on_s, off_s in self.segments:
            if on_s < 0 or off_s < 0:
                raise ValueError(f"pattern {self.name!r}: segment times must be >= 0")
        if self.period <= 0:
            # A zero-length pattern would make a repeating player spin forever.
            raise ValueError(f"pattern {self.name!r} has zero total duration")

    def level_at(self, elapsed: float) -> bool | None:
        """Output level ``elapsed`` seconds after the pattern started.

        Returns None once a finite pattern has ended (the caller falls
        silent); negative ``elapsed`` counts as 0.
        """
        if elapsed < 0:
            elapsed = 0.0
        period = self.period
        if elapsed >= period:
            if not self.repeat:
                return None
            elapsed %= period
        start = 0.0
        for on_s, off_s in self.segments:
            if elapsed < start + on_s:
                return True
            start += on_s + off_s
            if elapsed < start:
                return False
        # Only reachable through float rounding at the very end of the period.
        return False

    def span_end(self, elapsed: float) -> float:
        """The end of the on or off span ``elapsed`` falls in: until then :meth:`level_at`
        says what it says at ``elapsed`` (the same arithmetic). A finite pattern's last span
        ends at its :attr:`period`, where it ends; after that, never."""
        if elapsed < 0:
            elapsed = 0.0
        period = self.period
        base = 0.0
        if elapsed >= period:
            if not self.repeat:
                return math.inf
            base = elapsed - elapsed % period
            elapsed %= period
        start = 0.0
        for on_s, off_s in self.segments:
            if elapsed < start + on_s:
                return base + start + on_s
            start += on_s + off_s
            if elapsed < start:
                return base + start
        return base + period

    def edges(self, start: float = 0.0, until: float | None = None) -> list[tuple[float, bool]]:
        """The documented timeline: ``(time, level)`` at every change of level.

        Begins with ``(start, True)`` when the first segment has an on-time;
        a finite pattern ends with its final ``False``. A repeating pattern
        needs ``until`` (exclusive). Tests compare a pin's recorded history
        against this list.
        """
        if self.repeat and until is None:
            raise ValueError(f"pattern {self.name!r} repeats: give 'until'")
        out: list[tuple[float, bool]] = []
        level = False
        t = start
        while until is None or t < until:
            for on_s, off_s in self.segments:
                for duration, seg_level in ((on_s, True), (off_s, False)):
                    if duration <= 0:
                        continue
                    if until is not None and t >= until:
                        return out
                    if seg_level != level:
                        out.append((t, seg_level))
                        level = seg_level
                    t += duration
            if not self.repeat:
                break
        if level:
            # Finite pattern ending on an "on" segment: it falls silent here.
            out.append((t, False))
        return out


SAFETY_PRIORITY = 50
"""The lowest priority of a safety signal (``fault`` .. ``alarm``, the ``50`` to ``100`` bands
above): what a caregiver's ``silence`` stops. Below it are the walker's own sounds — a
guided session's cues, the balance check's, the walker number, the chirp — which a
silence leaves alone (:func:`is_safety_signal`)."""


def is_safety_signal(name: str | None) -> bool:
    """Whether the pattern named ``name`` (a buzzer's :attr:`pattern`; None: silent) is an
    alarm or safety signal a caregiver may silence, rather than a cue the walker needs.

    A caregiver's ``silence`` means "stop that alarm": the fall or stumble alarm, the fault
    alarm, a call for help's beeps, a not-worn or refused answer. A cue sounding when no
    alarm is ("slow the belt and hold the rail before you turn", to a walker walking
    backward who cannot see the screen) is not what they heard, and cut, it is not played
    again. An unknown name is treated as a safety signal: silenced, as before."""
    if name is None:
        return False
    pattern = PATTERNS.get(name)
    return pattern is None or pattern.priority >= SAFETY_PRIORITY


MAX_WALKER_BEEPS = 8
"""The walker profiles the button can beep (``walker_1`` .. ``walker_8``)."""


def walker_pattern_name(position: int) -> str:
    """The pattern that says "walker number ``position``" (1-based) when there is no voice."""
    return f"walker_{max(1, min(position, MAX_WALKER_BEEPS))}"


WALKER_PATTERNS = tuple(
    # The button chose walker n (a double press in STANDBY, voice off): a 0.5 s lead-in, then n
    # ticks to count. Cue band (20-49): below every safety signal; unlike any cue by its lead-in.
    Pattern(
        walker_pattern_name(n),
        ((0.5, 0.35), *(((0.08, 0.22),) * (n - 1)), (0.08, 0.0)),
        repeat=False,
        priority=28,
    )
    for n in range(1, MAX_WALKER_BEEPS + 1)
)

PATTERNS: Mapping[str, Pattern] = MappingProxyType(
    {
        p.name: p
        for p in (
            # Two 40 ms beeps: "I heard you" after a button press or arming.
            Pattern("chirp", ((0.04, 0.04), (0.04, 0.0)), repeat=False, priority=10),
            # Walking cues (priority 20-49): distinct rhythms, each under 2 s.
            # Three short beeps: "turn and walk backward".
            Pattern(
                "cue_backward", ((0.12, 0.12), (0.12, 0.12), (0.12, 0.0)), repeat=False, priority=30
            ),
            # One long beep: "turn and walk forward".
            Pattern("cue_forward", ((0.7, 0.0),), repeat=False, priority=30),
            # Two long beeps: "stop walking, rest".
            Pattern("cue_rest", ((0.6, 0.3), (0.6, 0.0)), repeat=False, priority=30),
            # Two medium beeps: "one minute left".
            Pattern("cue_one_minute", ((0.25, 0.25), (0.25, 0.0)), repeat=False, priority=25),
            # Two pairs of short beeps: "a turn is coming: slow the belt, hold the rail"
            # (TURN_AHEAD_S before an interval that turns the walker round). Below the turn
            # cues (30), as "one minute left" is: the turn itself always wins.
            Pattern(
                "cue_turn_ahead",
                ((0.12, 0.12), (0.12, 0.5), (0.12, 0.12), (0.12, 0.0)),
                repeat=False,
                priority=25,
            ),
            # Long-short-long: "session done".
            Pattern("cue_done", ((0.6, 0.2), (0.15, 0.2), (0.6, 0.0)), repeat=False, priority=35),
            # The standing balance check before a session (priority 20-49 too; named
            # sway_* because the cue_* names are the walking cues' vocabulary).
            # Short-short-long: "stand still, feet together, look ahead".
            Pattern(
                "sway_start", ((0.12, 0.12), (0.12, 0.3), (0.6, 0.0)), repeat=False, priority=30
            ),
            # Three medium beeps: "close your eyes and stand still".
            Pattern(
                "sway_eyes_closed", ((0.3, 0.2), (0.3, 0.2), (0.3, 0.0)), repeat=False, priority=30
            ),
            # Long-short: "balance check done, you may move".
            Pattern("sway_done", ((0.5, 0.15), (0.12, 0.0)), repeat=False, priority=35),
            # Slow double beep every 3 s: the monitor is not watching.
            Pattern("fault", ((0.4, 0.2), (0.4, 2.0)), repeat=True, priority=50),
            # Three quick beeps and a long one, once: "no - not armed" (alerts cannot be stored).
            Pattern(
                "refused",
                ((0.08, 0.08), (0.08, 0.08), (0.08, 0.3), (0.8, 0.0)),
                repeat=False,
                priority=60,
            ),
            # Three long beeps, once: "no - not armed: the sensor is not on a body".
            Pattern("not_worn", ((0.5, 0.25), (0.5, 0.25), (0.5, 0.0)), repeat=False, priority=60),
            # Four quick beeps, a pause, four again, once: "help is called". Unlike every
            # other pattern (no group of four anywhere), so it cannot be taken for a cue.
            Pattern(
                "help_sent",
                ((0.06, 0.06),) * 3 + ((0.06, 0.4),) + ((0.06, 0.06),) * 3 + ((0.06, 0.0),),
                repeat=False,
                priority=70,
            ),
            # One long beep and three quick ones, once: "a caregiver answered your call".
            Pattern(
                "help_answered",
                ((0.8, 0.25), (0.06, 0.06), (0.06, 0.06), (0.06, 0.0)),
                repeat=False,
                priority=70,
            ),
            # 5 Hz continuous until stopped: a fall was detected.
            Pattern("alarm", ((0.1, 0.1),), repeat=True, priority=100),
            *WALKER_PATTERNS,
        )
    }
)
"""Every pattern the buzzer knows, by name."""


def get_pattern(name: str) -> Pattern:
    """Look a pattern up by name; ValueError names the known ones when it is missing."""
    try:
        return PATTERNS[name]
    except KeyError:
        known = ", ".join(sorted(PATTERNS))
        raise ValueError(f"unknown buzzer pattern {name!r}; known patterns: {known}") from None


def faster(pattern: Pattern, factor: float) -> Pattern:
    """``pattern`` played ``factor`` times faster, under its name and priority: a session's
    cues when its plan runs ``factor`` times faster than real time (the demos), so a cue's
    beeps take the share of its interval they take on a real plan. Played at their own
    length, a "get ready to turn" 15 plan seconds before the turn (0.5 s at 30 times) was
    still beeping when the turn's cue came, and every turn read as cut short."""
    if not factor > 0:
        raise ValueError("factor must be positive")
    segments = tuple((on_s / factor, off_s / factor) for on_s, off_s in pattern.segments)
    return Pattern(pattern.name, segments, pattern.repeat, pattern.priority)


class PatternPlayer:
    """Which level an output should have now, given what was asked to play.

    Pure logic with no pins and no threads: the device wrapper calls
    :meth:`level` with the loop's clock and writes the answer to its pin.

    Replacement rules, so the loop can call :meth:`play` every iteration
    without thinking about what is already sounding:

    * a pattern whose priority is *lower* than the one still playing is
      ignored (an alarm is never cut short by a chirp);
    * asking for the pattern that is already playing leaves it running
      rather than restarting it (restarting every loop period would hold a
      repeating pattern in its first "on" segment forever);
    * an equal or higher priority pattern replaces the current one;
    * ``force=True`` (or :meth:`stop` first) overrides both rules.
    """

    def __init__(self) -> None:
        self._pattern: Pattern | None = None
        self._started = 0.0

    @property
    def pattern(self) -> Pattern | None:
        """The pattern playing, or None (a finished one is cleared by :meth:`level`)."""
        return self._pattern

    def play(self, pattern: Pattern, now: float, *, force: bool = False) -> bool:
        """Start ``pattern`` at ``now`` unless the rules above keep the current one.

        Returns True when ``pattern`` is what is playing afterwards (newly
        started or already running), False when it was refused.
        """
        self.level(now)  # let a finished pattern expire before comparing
        current = self._pattern
        if current is not None and not force:
            if current.name == pattern.name:
                return True
            if pattern.priority < current.priority:
                return False
        self._pattern = pattern
        self._started = now
        return True

    def stop(self) -> None:
        """Forget the current pattern; :meth:`level` returns False from now on."""
        self._pattern = None

    def level_until(self, now: float) -> tuple[bool, float]:
        """:meth:`level` at ``now``, and until when it stays so at least (``inf``: for good,
        while nothing new is played)."""
        pattern = self._pattern
        if pattern is None:
            return False, math.inf
        elapsed = now - self._started
        level = pattern.level_at(elapsed)
        if level is None:
            self._pattern = None
            return False, math.inf
        return level, self._started + pattern.span_end(elapsed)

    def level(self, now: float) -> bool:
        """Output level at ``now``; clears a finite pattern once it has ended."""
        pattern = self._pattern
        if pattern is None:
            return False
        level = pattern.level_at(now - self._started)
        if level is None:
            self._pattern = None
            return False
        return level
