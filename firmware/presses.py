"""What the reset button's presses mean to the safety loop: a reset press, or a call for help.

One button arms the belt and calls for help, so the two must never be
confused (docs/safety.md, "Button press patterns", has the one table of every
pattern). Presses come in *sequences*: each press of a sequence starts within
``gap_s`` of letting go of the one before.

* **Reset press** — the first press of a sequence, in STANDBY or TRIPPED (or
  FAULT and STARTING, where the controller only refuses it, saying why), held for
  :data:`ARM_HOLD_S` ("press and hold until the chirp"). It is
  reported while the button is still down, because the hardware latch closes
  only while the button is held as the heartbeat edges begin (wiring/README.md,
  section 6). A lone press let go sooner is reported once its sequence is over
  (``gap_s`` after the release), marked not held, so the controller refuses it
  and says "hold reset until the chirp". Only a held reset press can arm, and
  only the controller decides whether it does.
* **Two presses** in any state but ARMED — a quick tap, then a press held for
  the chirp, or a double press outside the session's use of it — are the
  walker trying to arm: reported as a reset press not held (``presses=2``), so
  the controller refuses it, ends the alarm and says "press once and hold".
  Never one that can arm: the second press of a sequence is never a reset
  press, since it may be the second of a call for help. The tapped-then-held
  one is reported once the second press has been held for the chirp, while
  still down, so the walker holding for a chirp hears the refusal instead; a
  double press of two presses let go before the chirp, once its sequence is
  over — and in STANDBY not at all while it is the session's (the next walker
  profile while no session is under way, docs/safety.md), which it is only if
  its first press went down in STANDBY: one begun in STARTING or FAULT is
  reported, and refused as not ready (it used to be taken for the session's,
  which saw a press from before STANDBY and ignored it: nothing answered).
* **Help** — three presses of one sequence within :data:`HELP_WINDOW_S`
  (the first let go before the chirp), in any state. Reported when the third
  press goes down, so the walker hears "sent" at once.

Why three quick presses and not a long hold: the arming press *is* a hold,
so a long hold would begin as an arming press and close the latch before it
could be told apart; and a 2 s hold already stops a guided session. Three
presses cannot be taken for the arming press: the sequence's first press is
let go before the chirp, and the second and third are never reset presses.
A double press arms nothing either: it is left to the session, which acts on
it only while ARMED.

Pure: ``(t, pressed)`` edges in (:meth:`hal.interfaces.PressEdges.take_edges`),
outcomes out, time from the caller's monotonic clock; no thread, no sleep.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

ARM_HOLD_S = 0.4
"""A sequence's first press held this long is a reset press (the chirp follows at once)."""
PATTERN_GAP_S = 0.6
"""Most time between letting go and pressing again within one sequence (the session's
double-press gap, so both read the same sequences)."""
HELP_PRESSES = 3
HELP_WINDOW_S = 2.0
"""The help presses must all go down within this (first press to third)."""

# What ``session.long_press_s`` and ``session.double_press_gap_s`` may be, derived from the
# table of press patterns (docs/safety.md, "Button press patterns") so no two patterns can be
# taken for each other; the config loader refuses a value outside (``config --check`` too).
LONG_PRESS_MIN_S = HELP_WINDOW_S
"""A call for help's presses go down within :data:`HELP_WINDOW_S`, so each but its last is
shorter than that: a long press (stop the session) at least as long is never one of them (and
never a press of a double press, which is shorter still)."""
LONG_PRESS_MAX_S = 10.0
"""The longest a long press may be: a deliberate hold of a button is some seconds (a phone's
forced restart, the longest hold devices ask of a person, is about 10 s). A walker on a moving
belt asked to hold longer lets go first, so the session could not be stopped from the button
at all (``1e308`` passed the loader): the long press would never fire."""
PATTERN_GAP_MAX_S = (HELP_WINDOW_S - (HELP_PRESSES - 1) * ARM_HOLD_S) / (HELP_PRESSES - 1)
"""0.6 s: three presses each let go before the chirp, each within the gap of letting go of the
one before, are one sequence; the third goes down at most ``2 * (ARM_HOLD_S + gap)`` after
the first, inside the help window only up to this gap. A longer gap chains presses into
sequences that are neither a call for help nor a double press (the session ignores three or
more presses because they are help): a double press, then a press, would be lost, and two
separate double presses would add up to a call for help."""
PATTERN_GAP_MIN_S = 0.3
"""The pause between a walker's quick presses is some 0.2-0.3 s: a shorter gap splits a call
for help into sequences, its second and third presses then a double press (the session's start
or pause) and its first a lone reset press in STANDBY."""


class HelpSource(StrEnum):
    """Which input asked for help (said in the event's reason)."""

    RESET_BUTTON = "three presses of the reset button"
    HELP_BUTTON = "the help button"


@dataclass(frozen=True, slots=True)
class ResetPress:
    """A reset press: the controller arms on it when it may."""

    pressed_at: float
    held: bool = True
    """Still down when reported (held until the chirp). False for a lone press let go
    sooner: it cannot close the latch, so the controller refuses it rather than arm."""
    presses: int = 1
    """2: the sequence's two presses (a tap then a hold, or a double press where it is not
    the session's); never held, the controller refuses it and says to press once."""


@dataclass(frozen=True, slots=True)
class HelpPattern:
    """Help was asked for with the reset button."""

    first_press: float
    at: float


PressOutcome = ResetPress | HelpPattern


class ResetButtonPatterns:
    """Turns the reset button's debounced edges into reset presses and help patterns."""

    def __init__(
        self,
        *,
        arm_hold_s: float = ARM_HOLD_S,
        gap_s: float = PATTERN_GAP_S,
        help_window_s: float = HELP_WINDOW_S,
    ) -> None:
        if not (arm_hold_s > 0 and gap_s > 0 and help_window_s > 0):
            raise ValueError("arm_hold_s, gap_s and help_window_s must be > 0")
        self.arm_hold_s = arm_hold_s
        self.gap_s = gap_s
        self.help_window_s = help_window_s
        self._down_at: float | None = None
        self._downs: list[float] = []
        """When each press of the sequence under way went down."""
        self._last_up = 0.0
        self._consumed = False
        """The press down now was reported as a reset press: it ends its sequence."""
        self._helped = False
        self._answered = False
        """The sequence's second press was reported (held for the chirp): not again at its end."""
        self._let_go_held = False
        """A press of the sequence under way was down :attr:`arm_hold_s` or longer, let go before
        a look found it held: its double press is not the session's (it ignores one with a press
        held to the chirp, ``Gesture.longest_s``), so it is reported here."""

    @property
    def down_at(self) -> float | None:
        """When the press down now (by the edges fed) went down; None: none is."""
        return self._down_at

    @property
    def idle(self) -> bool:
        """No press down and no sequence open: :meth:`feed` without edges completes nothing."""
        return self._down_at is None and not self._downs

    def feed(
        self,
        edges: Sequence[tuple[float, bool]],
        now: float,
        *,
        armable: bool,
        sessions_double_after: float | None = None,
    ) -> list[PressOutcome]:
        """The edges since the last call (oldest first); what they completed by ``now``.

        ``armable``: the controller answers a reset press here — STANDBY and TRIPPED,
        where it may arm, and FAULT and STARTING, where it refuses it saying why — so a
        first press held until the chirp is reported as a reset press while still down,
        and two presses as a reset press not held (``presses=2``). Elsewhere (ARMED: a long
        press is the session's) a held press is not one; a lone press let go before the
        chirp is reported as a reset press in any state once its sequence is over, and
        the controller ignores it in ARMED. ``sessions_double_after``: a double
        press of two presses let go before the chirp whose first press went down after
        this time is the session's (STANDBY's start, with no session under way: the walker
        profile), not reported; None: none is. One begun earlier (in STARTING, in FAULT)
        is reported, as the session ignores a press from before STANDBY: the controller
        refuses it, not ready.
        """
        if not edges and self.idle:
            return []  # the usual iteration: nothing pressed, nothing pending
        out: list[PressOutcome] = []
        for t, pressed in edges:
            # A release is not settled at its own time while its press is down: a press let
            # go after ARM_HOLD_S but before the loop's look that would have found it held
            # was reported held at the release, so the controller armed with the button up
            # and the latch open, and the next press (a call for help's second) closed it.
            # Let go before the chirp, it is one, as any press let go sooner is.
            if pressed or self._down_at is None:
                self._settle(t, armable, sessions_double_after, out)
            if pressed:
                self._press(t, out)
            else:
                self._release(t)
        self._settle(now, armable, sessions_double_after, out)
        return out

    def _press(self, t: float, out: list[PressOutcome]) -> None:
        if self._down_at is not None:
            return  # two presses without a release: keep the first
        self._down_at = t
        downs = self._downs
        downs.append(t)
        if (
            not self._helped
            and len(downs) >= HELP_PRESSES
            and t - downs[-HELP_PRESSES] <= self.help_window_s
        ):
            self._helped = True
            out.append(HelpPattern(downs[0], t))

    def _release(self, t: float) -> None:
        down = self._down_at
        if down is None:
            return
        self._down_at = None
        self._last_up = t
        if t - down >= self.arm_hold_s:
            self._let_go_held = True
        if self._consumed:
            self._consumed = False
            self._end_sequence()

    def _settle(
        self,
        now: float,
        armable: bool,
        sessions_double_after: float | None,
        out: list[PressOutcome],
    ) -> None:
        """A first press held long enough; a second press held as long; a sequence whose
        pause has run out."""
        down = self._down_at
        downs = self._downs
        if down is not None:
            if not armable or self._consumed or now - down < self.arm_hold_s:
                return
            if len(downs) == 1:
                self._consumed = True
                out.append(ResetPress(down))
            elif len(downs) == 2 and not self._answered:
                # A tap, then a press held for the chirp: it never arms (a second press may be
                # a call for help's), and it used to say nothing at all, the alarm sounding on
                # under a walker who held and waited. Refused now, while still held; the
                # sequence goes on, so a third press still calls for help.
                self._answered = True
                out.append(ResetPress(downs[0], held=False, presses=2))
            return
        if not downs or now - self._last_up <= self.gap_s:
            return
        if len(downs) == 1:
            # A lone press let go before the chirp: the walker's reset press, too short.
            out.append(ResetPress(downs[0], held=False))
        elif (
            len(downs) == 2
            and armable
            and not self._answered
            and (
                sessions_double_after is None
                or downs[0] <= sessions_double_after
                or self._let_go_held
            )
        ):
            # Two quick presses where they choose no walker (TRIPPED, FAULT, STARTING, STANDBY
            # with a session under way, or begun before STANDBY did, or with a press let go
            # just past the hold, which the session leaves to the reset): refused as one press
            # let go too soon is, not passed over in silence with the alarm sounding on.
            out.append(ResetPress(downs[0], held=False, presses=2))
        self._end_sequence()

    def _end_sequence(self) -> None:
        self._downs.clear()
        self._helped = False
        self._answered = False
        self._let_go_held = False


class EdgeFeed:
    """The reset button's edges passed on to one more reader (the guided session).

    The monitor takes the button's edges first (:meth:`publish`); a reader
    drains them with :meth:`take_edges` (the :class:`hal.interfaces.PressEdges`
    protocol). Bounded: edges nobody reads are dropped oldest first.
    """

    MAX_EDGES = 128

    def __init__(self) -> None:
        self._edges: deque[tuple[float, bool]] = deque(maxlen=self.MAX_EDGES)

    @property
    def backlog(self) -> deque[tuple[float, bool]]:
        """The edges not yet taken, for a reader that looks before it takes (read only: a
        non-empty backlog says an edge waits; :meth:`take_edges` takes them)."""
        return self._edges

    def publish(self, edges: Sequence[tuple[float, bool]]) -> None:
        if edges:
            self._edges.extend(edges)

    def take_edges(self) -> list[tuple[float, bool]]:
        if not self._edges:
            return []
        edges = list(self._edges)
        self._edges.clear()
        return edges
