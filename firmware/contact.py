"""Does the relay's contact do what the controller asks? A debounced comparison.

The controller knows what it wants: the contact closed while ARMED, open in
every other state. The relay's contact, read back once per loop iteration
(:class:`hal.interfaces.RelaySense`), says what the hardware did. They
legitimately disagree for a few milliseconds around every change — at arming
the latch closes only at the first heartbeat edge after the press, plus the
relay's operate time; at a release the armature needs its drop-out time — so
a disagreement counts only once it has lasted ``debounce_s`` of *observed*
loop time (docs/safety.md, "Relay contact feedback", has the figures).

Observed: a gap between two readings longer than ``debounce_s`` (the loop
itself stalled) restarts the count, because nothing was seen in between. A
stall that drops the latch is still reported — the contact then stays open,
and the loop, running again, sees it for ``debounce_s`` — while a stall
between the arming and its first edge never looks like a dropped latch.

The count restarts once per disagreement, not at every gap: a loop whose readings
all come more than ``debounce_s`` apart (an IMU read that waits out its timeout, a
re-initialisation of the sensor) restarted it at every reading, so a welded contact
read back closed at each of them was never reported, and the self-test said it read
"closed ..., as it should". After one restart the disagreement counts from the
first reading after the stall, however far apart the later ones are: the relay had
all that time to follow the drive (its travel is a few ms), so a contact that still
disagrees then has disagreed for longer than the debounce, seen at both ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The contact has disagreed with the controller for at least the debounce time."""

    expected_closed: bool
    """What the controller wanted: True while ARMED."""
    since: float
    """Monotonic time of the first reading of this disagreement."""
    lasted_s: float
    widest_gap_s: float = field(default=0.0, compare=False)
    """The longest time between two of the readings that saw it: over ``debounce_s`` when the
    loop read the contact only that seldom (the reason then says so)."""


class ContactWatch:
    """Debounces the disagreement between what the controller wants and the contact read back.

    Plain arithmetic on the loop thread: no clock of its own, no allocation
    but the rare :class:`Mismatch`.
    """

    def __init__(self, debounce_s: float) -> None:
        if debounce_s <= 0:
            raise ValueError("debounce_s must be positive")
        self.debounce_s = debounce_s
        self.closed: bool | None = None
        """The latest reading (None before the first)."""
        self.longest_settled_s = 0.0
        """The longest disagreement that ended by itself, before the debounce: the measured
        margin (docs/safety.md). Disagreements that became a :class:`Mismatch` do not count."""
        self._expected: bool | None = None
        self._since: float | None = None
        self._restarted = False
        """This disagreement's count restarted at a gap already (it restarts once)."""
        self._widest_gap_s = 0.0
        self._reported = False
        self._agreed_since: float | None = None
        self._last_read: float | None = None

    def update(self, expected_closed: bool, closed: bool, now: float) -> Mismatch | None:
        """Take one reading; a :class:`Mismatch` while the disagreement has lasted long enough."""
        gap = 0.0 if self._last_read is None else now - self._last_read
        unseen = gap > self.debounce_s
        self._last_read = now
        self.closed = closed
        if expected_closed != self._expected:
            self._expected = expected_closed
            self._since = None  # a new wish: whatever disagreed before is another story
        if closed == expected_closed:
            if self._since is not None and not self._reported:
                self.longest_settled_s = max(self.longest_settled_s, now - self._since)
            self._since = None
            if self._agreed_since is None or unseen:
                self._agreed_since = now
            return None
        self._agreed_since = None
        if self._since is None or (unseen and not self._restarted):
            self._restarted = self._since is not None
            self._since = now
            self._widest_gap_s = 0.0
            self._reported = False
        else:
            self._widest_gap_s = max(self._widest_gap_s, gap)
        lasted = now - self._since
        if lasted < self.debounce_s:
            return None
        self._reported = True
        return Mismatch(expected_closed, self._since, lasted, self._widest_gap_s)

    def agreeing_for(self, now: float) -> float:
        """How long the readings have agreed with the wish, without a gap (0 when they do not)."""
        if self._agreed_since is None:
            return 0.0
        return now - self._agreed_since
