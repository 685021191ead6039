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
fault says it there, whether a read or a write of the part failed (:class:`Use`), and only
evidence that what failed works again clears it: a read of the part that succeeds clears a
failed read, a write that commits a failed write (rows of the part written: a message handled
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

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

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables it is kept in (what :meth:`caregiver.storage.Store.probe_side_faults`
        reads to see whether a part whose read failed can be read again)."""
        return _TABLES[self]

    @property
    def what(self) -> str:
        """What cannot be used, for a caregiver or a physio."""
        return _WORDS[self][0]

    @property
    def lost(self) -> str:
        """What they do not get meanwhile."""
        return _WORDS[self][1]


_TABLES: dict[Part, tuple[str, ...]] = {
    Part.WALKERS: ("device_walkers", "walk_sessions"),
    Part.RECORDINGS: ("recordings",),
    Part.SESSIONS: ("walk_sessions",),
    Part.PROGRESS: ("walker_stages", "prescribed_weeks", "walker_prescribed_weeks"),
    Part.PLANS: ("walk_sessions", "walker_stages", "device_walkers"),
    Part.COMMANDS: ("device_commands", "self_tests"),
    Part.TELEMETRY: ("devices",),
    Part.CLOSES: ("incidents",),
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
}


@dataclass(frozen=True, slots=True)
class SideFault:
    """One part that cannot be used: since ``since`` (wall clock, for people), the store's
    words for the first failure (``fault``, its first line); ``uses``: what failed and has
    not been seen to work since (a read, a write, or both)."""

    part: Part
    fault: str
    since: float
    uses: frozenset[Use]


class SideFaults:
    """Which parts of the database cannot be used now (any thread). :meth:`failed` when work
    went on without a part, saying whether a read or a write of it failed; :meth:`works` when
    one succeeded, which clears that use only: the part is said until every use that failed
    has worked again. Each change of the parts failing calls :attr:`on_change` (outside the
    lock: it must not call the store, it may be called with the store's lock held; its error
    is logged, not raised) and is logged once, at its start and at its end (a second use
    failing, or one of two working again, is neither)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: dict[Part, SideFault] = {}
        self.on_change: Callable[[], None] | None = None

    def failed(self, part: Part, fault: BaseException | str, use: Use) -> None:
        """``use`` of ``part`` (a read or a write) failed and the work went on without it;
        the part stays failed, since the first time, until :meth:`works` for each use that
        failed."""
        with self._lock:
            before = self._faults.get(part)
            if before is not None:
                if use not in before.uses:
                    self._faults[part] = replace(before, uses=before.uses | {use})
                return
            # its first line: PostgreSQL's adds the statement and a caret under the error
            said = next((line.strip() for line in str(fault).splitlines() if line.strip()), "")
            self._faults[part] = SideFault(part, said, self._clock(), frozenset({use}))
        log.error(
            "%s (%s): alerts are still stored and notified, but %s until it works again",
            part.what,
            fault,
            part.lost,
        )
        self._changed()

    def works(self, part: Part, use: Use) -> None:
        """``use`` of ``part`` succeeded (a read returned, a write of its rows committed): a
        failure of that use is no longer said, and the part is not once none is left. A read
        does not clear a failed write: a table may read and refuse writes; nor does work that
        wrote none of its rows, which is why the caller says nothing then (a no-op when the
        part was not failing, the usual case: a dictionary lookup)."""
        if part not in self._faults:  # no lock: a fault set meanwhile is cleared next time
            return
        with self._lock:
            before = self._faults.get(part)
            if before is None or use not in before.uses:
                return
            left = before.uses - {use}
            if left:
                self._faults[part] = replace(before, uses=left)
                return
            del self._faults[part]
        log.info("%s works again: %s", part.value, part.what.replace("cannot", "can"))
        self._changed()

    def unread(self) -> tuple[Part, ...]:
        """The parts a read of which failed and has not worked since: what a read can clear
        (:meth:`caregiver.storage.Store.probe_side_faults` reads their tables), and what a
        page may say it cannot read now."""
        with self._lock:
            return tuple(f.part for f in self._faults.values() if Use.READ in f.uses)

    @property
    def failing(self) -> bool:
        """Whether any part is failing (no lock: a glance, for work done per message)."""
        return bool(self._faults)

    def now(self) -> tuple[SideFault, ...]:
        """The parts failing now, the oldest first."""
        with self._lock:
            return tuple(sorted(self._faults.values(), key=lambda f: f.since))

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
