"""The parts of the database the service goes on without: which cannot be used now, since
when, and what that costs the people who read the dashboard.

A side table (the walkers' names, a fall's sensor recording, the guided sessions, the
progression, the answers to commands) is information beside the alerts: when one is damaged,
missing or locked, ingest and the pages go on without it (a walker named by their id, a side
message let go, a fall stored and paged without its recording), so that no fall waits on it.
Going on must not be silent (docs/safety.md: a storage fault is reported, never silent), and
before only the log said it: the dashboard looked sound while walkers were named by id and
recordings were lost. :class:`SideFaults` is the one place that knows which parts failed; the
store carries it (:attr:`caregiver.storage.Store.side_faults`), so whatever swallowed a
fault says it there, which of the part's tables it used (:class:`Table`) and whether a read or
a write of them failed (:class:`Use`), and only evidence that what failed works again clears
it: a read of a table that succeeds clears its failed read, a write that commits its failed
write, never another table's of the same part (rows of the table written: a message handled
without writing one, a retained roster handed over again unchanged, succeeds whether the
table takes writes or not, and clears nothing). A read does not clear a write: a table
that reads but refuses writes (a permission revoked, a trigger refusing, a read-only or full
disk) was said to work by every read (the housekeeping look at its tables), said failing again
by the next refused write, and the banner, ``/healthz`` and the log's start and end lines
came and went every few seconds. The dashboard's banner and ``/healthz`` say what it holds
(``caregiver/routes/stream.py``, ``caregiver/health.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from core.protocol.walker import DEFAULT_WALKER

log = logging.getLogger(__name__)


class Use(StrEnum):
    """What was done with a part: a fault of one is cleared only by the same working again."""

    READ = "read"
    """Its rows read (a walker's name, a recording shown, a card's plan line)."""
    WRITE = "write"
    """Rows written and committed (a message stored, a fall's recording); not a message
    handled that changed no row (it would succeed with writes refused)."""


class Part(StrEnum):
    """A part of the database the alerts do not need, by what it keeps."""

    WALKERS = "walkers"
    """The walkers' names and who walked (``device_walkers``, ``walk_sessions``)."""
    RECORDINGS = "recordings"
    """The sensor recording around each trip (``recordings``)."""
    SESSIONS = "sessions"
    """The guided sessions' summaries (``walk_sessions``)."""
    PROGRESS = "progress"
    """Each walker's progression and weekly target (``walker_stages``, the prescribed weeks)."""
    PLANS = "plans"
    """The card's line on the walker's plan (sessions and stages, read)."""
    COMMANDS = "commands"
    """The treadmills' answers to commands (a plan sent, a self-test)."""
    TELEMETRY = "telemetry"
    """The treadmills' periodic figures."""
    CLOSES = "closes"
    """A treadmill's open incident, read to send it a close it missed again."""
    ALERTS = "alerts"
    """An alert the events' table refused for its own values (a data error: a trigger, a
    constraint a DBA added), let go so the alerts behind it store: not a part the alerts go
    on without, but the one fault of a single alert that would otherwise only be logged
    (:meth:`caregiver.ingest.Ingestor._alert_refused`)."""
    STATES = "states"
    """A treadmill's state or availability the devices' table refused for its own values,
    let go (:meth:`caregiver.ingest.Ingestor._state_refused`): its card shows them as they
    were, and an offline while walking opens no alert, until the next of that kind stores."""

    @property
    def tables(self) -> tuple[Table, ...]:
        """The tables it is kept in: a read or a write of it says which it used."""
        return _TABLES[self]

    @property
    def what(self) -> str:
        """What cannot be used, for a caregiver or a physio."""
        return _WORDS[self][0]

    @property
    def lost(self) -> str:
        """What they do not get meanwhile."""
        return _WORDS[self][1]


class Table(StrEnum):
    """A table of a part: what a read or a write said to :class:`SideFaults` used, and what
    a fault is kept by (a part covers several)."""

    DEVICE_WALKERS = "device_walkers"
    WALK_SESSIONS = "walk_sessions"
    RECORDINGS = "recordings"
    WALKER_STAGES = "walker_stages"
    PRESCRIBED_WEEKS = "prescribed_weeks"
    """The default walker's sessions a week (:func:`prescribed_table`)."""
    WALKER_PRESCRIBED_WEEKS = "walker_prescribed_weeks"
    """The other walkers' sessions a week."""
    DEVICE_COMMANDS = "device_commands"
    SELF_TESTS = "self_tests"
    DEVICES = "devices"
    INCIDENTS = "incidents"
    EVENTS = "events"


def prescribed_table(walker: str) -> Table:
    """The table the sessions a week ``walker``'s progression prescribes are kept in: the
    default walker's in their own, an older release's (``prescribed_weeks``)."""
    return Table.PRESCRIBED_WEEKS if walker == DEFAULT_WALKER.id else Table.WALKER_PRESCRIBED_WEEKS


_TABLES: dict[Part, tuple[Table, ...]] = {
    Part.WALKERS: (Table.DEVICE_WALKERS, Table.WALK_SESSIONS),
    Part.RECORDINGS: (Table.RECORDINGS,),
    Part.SESSIONS: (Table.WALK_SESSIONS,),
    Part.PROGRESS: (Table.WALKER_STAGES, Table.PRESCRIBED_WEEKS, Table.WALKER_PRESCRIBED_WEEKS),
    Part.PLANS: (Table.WALK_SESSIONS, Table.WALKER_STAGES, Table.DEVICE_WALKERS),
    Part.COMMANDS: (Table.DEVICE_COMMANDS, Table.SELF_TESTS),
    Part.TELEMETRY: (Table.DEVICES,),
    Part.CLOSES: (Table.INCIDENTS,),
    Part.ALERTS: (Table.EVENTS,),
    Part.STATES: (Table.DEVICES,),
}

_WORDS: dict[Part, tuple[str, str]] = {
    Part.WALKERS: (
        "the walkers' names cannot be read or stored",
        "alerts and pages name walkers by their id",
    ),
    Part.RECORDINGS: (
        "falls' sensor recordings cannot be stored or read",
        "a fall's page shows no recording and says so",
    ),
    Part.SESSIONS: (
        "guided sessions cannot be stored",
        "new sessions are missing from progress and reports (the treadmill sends them again)",
    ),
    Part.PROGRESS: (
        "the walkers' progression cannot be stored",
        "plan and progress pages may show an older stage",
    ),
    Part.PLANS: ("the walkers' plans cannot be read", "cards show no plan line"),
    Part.COMMANDS: (
        "the treadmills' answers to commands cannot be stored",
        "a plan or check sent may read as unanswered",
    ),
    Part.TELEMETRY: (
        "the treadmills' figures cannot be stored",
        "their latest figures are not updated",
    ),
    Part.CLOSES: (
        "the treadmills' open alerts cannot be read",
        "a treadmill that missed a close is not told again",
    ),
    Part.ALERTS: (
        "an alert from a treadmill cannot be stored",
        "it is not shown or notified; the treadmill keeps it and sends it again",
    ),
    Part.STATES: (
        "a treadmill's state or availability cannot be stored",
        "its card shows them as they were, and going offline while walking opens no alert, "
        "until the treadmill's next one of that kind is stored",
    ),
}


def still_stored(faults: Collection[SideFault]) -> str:
    """Which alerts are still stored and notified while ``faults`` are said
    (:func:`alerts_stored_beside` of their parts)."""
    return alerts_stored_beside(f.part for f in faults)


def alerts_stored_beside(parts: Iterable[Part]) -> str:
    """Which alerts are still stored and notified while ``parts`` fail: all of them, unless
    one is an alert refused (:attr:`Part.ALERTS`), then the others. The one rule the banner,
    ``/healthz``, the health message (:func:`still_stored`) and the log's line of a part
    starting to fail (:meth:`SideFaults.failed`) say it by: the log had a copy of its own."""
    return "other alerts" if Part.ALERTS in parts else "alerts"


@dataclass(frozen=True, slots=True)
class SideFault:
    """One part that cannot be used, as people read it: since ``since`` (wall clock), the
    store's words for the failure (``fault``, its first line), both of its oldest table still
    failing; ``failing``: each table and what of it failed and has not been seen to work
    since (a read, a write)."""

    part: Part
    fault: str
    since: float
    failing: frozenset[tuple[Table, Use]] = frozenset()

    @property
    def uses(self) -> frozenset[Use]:
        """What failed of any of its tables: a read, a write, or both."""
        return frozenset(use for _, use in self.failing)

    @property
    def tables(self) -> frozenset[Table]:
        """Its tables failing."""
        return frozenset(table for table, _ in self.failing)


@dataclass(frozen=True, slots=True)
class _TableFault:
    """One table of a part failing: the first failure's words and time, what failed."""

    fault: str
    since: float
    uses: frozenset[Use]


class SideFaults:
    """Which parts of the database cannot be used now (any thread), kept by table: a part
    covers several, and a write to one of them is no evidence about another's (a trigger, a
    broken index or a permission refuses one table's rows). :meth:`failed` when work went
    on without a part, saying which of its tables were used and whether a read or a write
    failed; :meth:`works` when one succeeded, which clears that use of those tables only:
    the part is said as long as any of its tables has a use that failed and has not worked
    since. Before, faults were kept by part: a session summary written cleared the walkers'
    roster refused, a plan's answer written a self-test's answer refused, a week's count
    written a stage refused, and the banner, ``/healthz`` and Home Assistant said all was
    well while that table's rows were still being lost.

    Each change of what people read (a part starting or ending, its oldest table failing
    another) calls :attr:`on_change` (outside the lock: it must not call the store, it may
    be called with the store's lock held; its error is logged, not raised); a part's start
    and end are logged once each (another table or use failing, or one of several working
    again, is neither)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        """The wall clock each failure's time is read on (what :meth:`said_instead` is given)."""
        self._lock = threading.Lock()
        self._faults: dict[tuple[Part, Table], _TableFault] = {}
        self.on_change: Callable[[], None] | None = None

    def failed(
        self, part: Part, fault: BaseException | str, use: Use, tables: Collection[Table]
    ) -> None:
        """``use`` (a read or a write) of ``tables`` of ``part`` failed and the work went on
        without it; each stays failed, since its first time, until :meth:`works` for each use
        that failed. No table named is all of the part's: a fault is never dropped unsaid."""
        said = _first_line(fault)
        with self._lock:
            before = self._shown(part)
            now = self.clock()
            for table in tables or part.tables:
                kept = self._faults.get((part, table))
                if kept is None:
                    self._faults[part, table] = _TableFault(said, now, frozenset({use}))
                elif use not in kept.uses:
                    self._faults[part, table] = replace(kept, uses=kept.uses | {use})
            after = self._shown(part)
        if before is None:
            log.error(
                "%s (%s): %s are still stored and notified, but %s until it works again",
                part.what,
                fault,
                alerts_stored_beside((part,)),
                part.lost,
            )
        if _said(before) != _said(after):
            self._changed()

    def said_instead(
        self, part: Part, fault: str, since: float, use: Use, tables: Collection[Table]
    ) -> None:
        """``use`` of ``tables`` of ``part`` still fails, and another failure is said of it
        now: ``fault``, since ``since`` (on :attr:`clock`). For a part whose one failure said
        was over while another of the same use goes on (an alert of one treadmill stored
        while another treadmill's is still refused): :meth:`works` then :meth:`failed` said
        it working in between, which the retained health message kept for its interval and
        the banner flashed, and failing since the first was over."""
        said = _first_line(fault)
        with self._lock:
            before = self._shown(part)
            for table in tables or part.tables:
                kept = self._faults.get((part, table))
                uses = frozenset({use}) if kept is None else kept.uses | {use}
                self._faults[part, table] = _TableFault(said, since, uses)
            after = self._shown(part)
        if before is None:
            log.error("%s (%s)", part.what, fault)
        if _said(before) != _said(after):
            self._changed()

    def works(self, part: Part, use: Use, tables: Collection[Table]) -> None:
        """``use`` of ``tables`` of ``part`` succeeded (a read returned, a write of their rows
        committed): a failure of that use of those tables is no longer said, and the part is
        not once none of its tables is left failing. A read does not clear a failed write: a
        table may read and refuse writes; nor does work that wrote none of its rows, which
        is why the caller says nothing then; nor does a write to one table another's (a
        no-op when nothing is failing, the usual case)."""
        if not self._faults:  # no lock: a fault set meanwhile is cleared next time
            return
        with self._lock:
            before = self._shown(part)
            if before is None:
                return
            for table in tables:
                kept = self._faults.get((part, table))
                if kept is None or use not in kept.uses:
                    continue
                left = kept.uses - {use}
                if left:
                    self._faults[part, table] = replace(kept, uses=left)
                else:
                    del self._faults[part, table]
            after = self._shown(part)
        if after is None:
            log.info("%s works again: %s", part.value, part.what.replace("cannot", "can"))
        if _said(before) != _said(after):
            self._changed()

    def unread(self) -> tuple[Part, ...]:
        """The parts a read of one of whose tables failed and has not worked since: what a
        page may say it cannot read now."""
        with self._lock:
            failed = (part for (part, _), f in self._faults.items() if Use.READ in f.uses)
            return tuple(dict.fromkeys(failed))

    def unread_tables(self) -> tuple[tuple[Part, Table], ...]:
        """Each part's tables a read of which failed and has not worked since: what a read
        of them can clear (:meth:`caregiver.storage.Store.probe_side_faults` reads them)."""
        with self._lock:
            return tuple(key for key, f in self._faults.items() if Use.READ in f.uses)

    @property
    def failing(self) -> bool:
        """Whether any part is failing (no lock: a glance, for work done per message)."""
        return bool(self._faults)

    def now(self) -> tuple[SideFault, ...]:
        """The parts failing now, one each, the oldest first."""
        with self._lock:
            parts = dict.fromkeys(part for part, _ in self._faults)
            shown = [self._shown(part) for part in parts]
        return tuple(sorted((f for f in shown if f is not None), key=lambda f: f.since))

    def _shown(self, part: Part) -> SideFault | None:
        """``part`` as people read it (the lock held): its oldest table's fault and time,
        with every table failing; None when none is."""
        kept = [(table, f) for (p, table), f in self._faults.items() if p == part]
        if not kept:
            return None
        _, oldest = min(kept, key=lambda tf: tf[1].since)
        failing = frozenset((table, use) for table, f in kept for use in f.uses)
        return SideFault(part, oldest.fault, oldest.since, failing)

    def _changed(self) -> None:
        """Tell :attr:`on_change`; its error is logged, never raised: the caller is often
        storing an alert (a fall's recording refused inside the fall's own transaction, its
        walker's name unread while it pages), and a banner that could not be said undid it."""
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception:
            log.exception("the parts of the database failing could not be said (they are kept)")


def _first_line(fault: BaseException | str) -> str:
    """A failure's words as said: its first line (PostgreSQL's adds the statement and a
    caret under the error)."""
    return next((line.strip() for line in str(fault).splitlines() if line.strip()), "")


def _said(fault: SideFault | None) -> tuple[str, float] | None:
    """What people read of a part (its words and since when), a change of which is told."""
    return None if fault is None else (fault.fault, fault.since)
