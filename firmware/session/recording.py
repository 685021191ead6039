"""What a guided session counted, and the record built from it.

:class:`SessionTally` is the session under way as the runner keeps count of it: its
intervals (:class:`IntervalLog`: time, steps, trips, gait), its pauses, its balance check,
its walker, its wall times. :func:`session_record` turns it into the
:class:`~core.protocol.messages.SessionRecord` the courier stores and publishes
(:mod:`.record` does that, in the courier process); :func:`follow_wall_clock` corrects its
wall times for a step of the wall clock before each record. A :class:`CountedTrip` credits
what the detector decides later in a trip's incident to the interval it happened in. Plain
data and pure functions: the runner owns the tally and calls these on the loop thread.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from dataclasses import dataclass, field

from core.protocol.messages import (
    BalanceFigures,
    Direction,
    GaitFigures,
    IntervalSummary,
    RecordStatus,
    SessionRecord,
)
from core.protocol.walker import DEFAULT_WALKER, Walker
from core.wallclock import STEP_S, WallClock, after_step
from firmware.detection.base import DetectionKind
from firmware.gait import figures as gait_figures
from firmware.session.plan import Plan
from firmware.session.steps import StepCounts

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IntervalLog:
    """One planned interval and what was measured in it (while the session ran)."""

    index: int
    direction: Direction
    speed: str
    planned_s: float
    done_s: float = 0.0
    steps: int = 0
    walking_s: float = 0.0
    trips: int = 0
    stumbles: int = 0
    falls: int = 0
    no_recovery: int = 0
    gait: GaitFigures | None = None

    @property
    def cadence_spm(self) -> float:
        return StepCounts(self.steps, self.walking_s).cadence_spm

    def summary(self) -> IntervalSummary:
        """The interval as the session record keeps it (seconds to a tenth)."""
        return IntervalSummary(
            index=self.index,
            direction=self.direction,
            speed=self.speed,
            planned_s=round(self.planned_s, 1),
            done_s=round(self.done_s, 1),
            steps=self.steps,
            walking_s=round(self.walking_s, 1),
            cadence_spm=round(self.cadence_spm, 1),
            trips=self.trips,
            stumbles=self.stumbles,
            gait=self.gait,
            falls=self.falls,
            no_recovery=self.no_recovery,
        )


@dataclass(slots=True)
class SessionTally:
    id: str
    plan: Plan
    started_wall: str
    started_t: float
    intervals: list[IntervalLog]
    status: RecordStatus = "running"
    ended_wall: str | None = None
    plan_t: float = 0.0
    paused_s: float = 0.0
    pauses: int = 0
    current: int = 0
    warned: set[int] = field(default_factory=set)
    turn_warned: dict[int, int] = field(default_factory=dict)
    """Intervals whose walker was told to get ready for the turn that ends them, with the count
    of pauses then: a trip (or a pause) since, and the walker who re-armed is told again."""
    ever_ran: bool = False
    balance: dict[int, BalanceFigures] = field(default_factory=dict)
    """Balance checks by index (0 eyes open, 1 eyes closed), as measured so far."""
    moved_in_check: set[int] = field(default_factory=set)
    """Checks during which the step counter counted steps: their figures are not sway."""
    walker: Walker = DEFAULT_WALKER
    amended: int = 0
    """Times the record changed after the session ended (the runner's ``_amend``: a fall
    confirmed later in the incident of its trip)."""
    breaks: list[float] = field(default_factory=list)
    """Plan times at which the session paused (a trip, a fault, the walker's pause): a
    backward stretch is straight only between two of them (:func:`longest_backward_stretch`)."""
    wall_offset: float = 0.0
    """The wall clock's offset from the monotonic clock when the wall times were last
    right (:func:`follow_wall_clock`): a change is a step of the wall clock."""
    ended_offset: float = 0.0
    """The same for ``ended_wall``, read later (perhaps after a step)."""
    wall_synced: bool = False
    """The wall clock was seen synchronised at the start or at a record since."""


@dataclass(slots=True)
class CountedTrip:
    """A trip counted in a session's interval, while its incident is open (until the walker
    re-arms): what the detector decides later in that incident is credited to it, also once
    the session has ended."""

    session: SessionTally
    interval: IntervalLog
    kind: DetectionKind
    incident: str | None
    """The safety controller's incident the trip opened."""
    no_recovery: bool = False

    def credit(self, kind: DetectionKind) -> bool:
        """A detection in the trip's incident: a fall confirmed after a stumble makes the trip
        a fall (not a stumble any more); a no-recovery is noted once. True when it changed the
        counts."""
        if kind is DetectionKind.FALL and self.kind is DetectionKind.STUMBLE:
            self.interval.stumbles -= 1
            self.interval.falls += 1
            self.kind = DetectionKind.FALL
            log.info("the trip's stumble was confirmed as a fall")
            return True
        if kind is DetectionKind.NO_RECOVERY and not self.no_recovery:
            self.no_recovery = True
            self.interval.no_recovery += 1
            return True
        return False


def wall_text(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def follow_wall_clock(s: SessionTally, wall: WallClock) -> None:
    """Correct ``s``'s wall times by any step of the wall clock since they were read, and
    note whether it was ever synchronised.

    Without a battery-backed clock, a session started before NTP set the clock has the
    time of the last shutdown as its start (days off after a weekend, so its ISO week is
    wrong). The step NTP makes shows as a change of wall minus monotonic: the times read
    before it move by it. Read at each record (an interval's end, a pause, the end), not
    each tick: clock reads, and on the monitor "synchronised" as its
    :class:`~core.wallclock.SyncWatch` last read it (no system call on the loop's thread).
    Synchronised is read first: a clock synchronised by then has made its step, which the
    offset sees.
    """
    synced = wall.synchronized()
    offset = wall.offset()
    step = offset - s.wall_offset
    if abs(step) > STEP_S:
        s.started_wall = after_step(s.started_wall, s.wall_offset, offset, timespec="seconds")
        s.wall_offset = offset
        log.warning(
            "the wall clock was set by %+.0f s during session %s: its start is now %s",
            step,
            s.id,
            s.started_wall,
        )
    if s.ended_wall is not None and abs(offset - s.ended_offset) > STEP_S:
        # Its own offset: an end read after the step is right already.
        s.ended_wall = after_step(s.ended_wall, s.ended_offset, offset, timespec="seconds")
        s.ended_offset = offset
    s.wall_synced = s.wall_synced or synced


def longest_backward_stretch(s: SessionTally) -> float:
    """The session's longest straight stretch backward, in plan seconds: what the goal's "10
    straight minutes" reads (:func:`core.progress.at_goal`). Consecutive backward intervals
    (a speed change within the block) are one stretch; a pause (a trip, a fault, the walker's)
    ends it, so a 10-minute block broken by a trip is two shorter stretches, not 10 minutes."""
    runs: list[tuple[float, float]] = []  # plan-time spans of consecutive backward intervals
    start: float | None = None
    length = 0.0
    for at, interval in zip(s.plan.starts(), s.intervals, strict=True):
        if interval.direction == "backward":
            if start is None:
                start, length = at, 0.0
            length += interval.done_s
        elif start is not None:
            runs.append((start, start + length))
            start = None
    if start is not None:
        runs.append((start, start + length))
    longest = 0.0
    for a, b in runs:
        cuts = sorted({a, b, *(t for t in s.breaks if a < t < b)})
        longest = max([longest, *(y - x for x, y in itertools.pairwise(cuts))])
    return longest


def session_record(s: SessionTally, device_id: str) -> SessionRecord:
    """The session as stored and published (its summary: docs/mqtt/schemas/session.schema.json)."""
    intervals = [i.summary() for i in s.intervals]
    backward_gait = [i.gait for i in s.intervals if i.direction == "backward" and i.gait]
    forward_gait = [i.gait for i in s.intervals if i.direction == "forward" and i.gait]
    # Seconds are floats even when a plan has no backward interval (the link decodes them so).
    backward = [i.done_s for i in s.intervals if i.direction == "backward"]
    steps = sum(i.steps for i in s.intervals)
    walking_s = sum(i.walking_s for i in s.intervals)
    return SessionRecord(
        id=s.id,
        device_id=device_id,
        plan=s.plan.name,
        status=s.status,
        started_wall=s.started_wall,
        ended_wall=s.ended_wall,
        planned_s=round(s.plan.duration_s, 1),
        planned_backward_s=round(float(s.plan.backward_s), 1),
        done_s=round(s.plan_t, 1),
        backward_s=round(sum(backward, 0.0), 1),
        longest_backward_s=round(longest_backward_stretch(s), 1),
        paused_s=round(s.paused_s, 1),
        pauses=s.pauses,
        steps=steps,
        walking_s=round(walking_s, 1),
        cadence_spm=round(StepCounts(steps, walking_s).cadence_spm, 1),
        trips=sum(i.trips for i in s.intervals),
        stumbles=sum(i.stumbles for i in s.intervals),
        falls=sum(i.falls for i in s.intervals),
        no_recovery=sum(i.no_recovery for i in s.intervals),
        intervals=intervals,
        balance=[s.balance[k] for k in sorted(s.balance)],
        gait_backward=gait_figures.pool(backward_gait),
        gait_forward=gait_figures.pool(forward_gait),
        walker=s.walker,
        amended=s.amended,
        wall_unsynced=not s.wall_synced,
    )
