"""The device's retained status topics: the open incident, and the guided-session progress.

Events are delivered, not retained, and session summaries come only when a
session ends. A consumer that starts late — Home Assistant after a restart,
a dashboard opened on Monday — needs the *current* picture: is a fall open,
is a session running, how far is this week. The reporter publishes that as
two small retained messages (``<prefix>/<device>/incident`` and
``.../progress``), derived here from the device's own database every time it
may have changed, so they are right after a restart of anything.

The incident rules follow the protocol as written (docs/incidents.md): an
incident opens with its first alert or fault and carries an id; its severity
is its worst event; ``ok``, ``closed`` and ``reset`` close it; an event more
severe than it was when it was closed reopens it. Events written before
incidents existed (no ``incident`` field) join the open incident or open one
named after themselves, so older logs read sensibly too.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import msgspec

from core.progress import (
    GOAL_BACKWARD_MIN,
    GOAL_SESSIONS_PER_WEEK,
    PRESCRIBED_SESSIONS_PER_WEEK,
    Milestone,
    days_at_goal,
    days_done,
    milestone,
    prescribed_in,
    started_utc,
    week_of,
    week_start,
    weekly_progress,
)
from core.progression import StageSession, completed_in, week_counts
from core.protocol import payloads
from core.protocol.events import INCIDENT_TYPES, EventType, reopens, worse
from core.protocol.messages import (
    SCHEMA_VERSION,
    IncidentMessage,
    IncidentSeverity,
    ProgressMessage,
    SessionRecord,
    StageMessage,
    StageStatus,
    WalkersMessage,
)
from core.protocol.topics import Topics
from core.protocol.walker import DEFAULT_WALKER_ID, Walker
from core.wallclock import SystemWallClock, WallClock
from core.zones import system_zone, zone_key
from firmware.storage.database import Database, as_database
from firmware.storage.incidents import Shown
from firmware.storage.progressions import (
    ProgressionState,
    current_progression,
    prescribed_by_week,
    progression_walkers,
    sessions_marks,
    stage_sessions,
)
from firmware.storage.runs import first_run_wall
from firmware.storage.status import (
    IncidentEventRow,
    incident_events,
    latest_session,
    newest_event_seq,
    newest_sessions,
    sessions_started_since,
)
from firmware.storage.walkers import (
    active_walkers,
    profiles_changed_wall,
    selected_walker,
    walker_names,
)

T = TypeVar("T")

SEVERITY_NAME: dict[EventType, IncidentSeverity] = {
    EventType.STUMBLE: "stumble",
    EventType.FAULT: "fault",
    EventType.HELP: "help",
    EventType.FALL: "fall",
    EventType.NO_RECOVERY: "no_recovery",
}
"""The wire's name for each severity (a test checks it covers INCIDENT_TYPES, ranked by
:data:`core.protocol.events.SEVERITY_ORDER`)."""

FIRST_READ = 200
MEASURES_LOOKBACK = 20
"""Sessions searched for the latest balance check and step-time variability (progress)."""
"""Events bearing on incidents read at start: an incident is decided by its last few."""

CLOSING_TYPES = frozenset({EventType.OK, EventType.CLOSED, EventType.RESET})
WALKER = "walker"
"""Who closed an incident the walker closed (``ok`` or ``reset`` without a ``by``)."""


@dataclass(frozen=True, slots=True)
class _Incident:
    id: str
    severity: EventType
    opened_wall: str
    last_event: str
    changed_wall: str
    open: bool = True
    closed_by: str | None = None
    closed_via: str | None = None
    closed_wall: str | None = None
    walker: str | None = None
    """Whose incident it is (the device's incident record); None: the default walker's, or
    not recorded (events from before incidents)."""
    opened_unsynced: bool = False
    """The device's clock was not set as it stamped the event that opened it: ``opened_wall``
    may be hours or days off."""


def _apply(current: _Incident | None, event: IncidentEventRow) -> _Incident | None:
    """The incident after ``event`` (one step of the rules in the module docstring)."""
    if event.type in INCIDENT_TYPES:
        same = current is not None and (
            event.incident == current.id or (event.incident is None and current.open)
        )
        if current is None or not same:
            return _Incident(
                id=event.incident or event.id,
                severity=event.type,
                opened_wall=event.wall_time,
                last_event=event.id,
                changed_wall=event.wall_time,
                walker=event.walker,
                opened_unsynced=event.wall_unsynced,
            )
        graver = worse(event.type.value, current.severity.value)
        if not current.open and not reopens(event.type.value, current.severity.value):
            return replace(current, last_event=event.id)  # stays closed: nothing new to page
        return replace(
            current,
            severity=event.type if graver else current.severity,
            last_event=event.id,
            changed_wall=event.wall_time if graver or not current.open else current.changed_wall,
            open=True,
            closed_by=None,
            closed_via=None,
            closed_wall=None,
        )
    if event.type in CLOSING_TYPES and current is not None and current.open:
        if event.incident is not None and event.incident != current.id:
            return current  # closes another incident: not the one open here
        return replace(
            current,
            open=False,
            last_event=event.id,
            changed_wall=event.wall_time,
            closed_by=event.by or (WALKER if event.type is not EventType.CLOSED else None),
            closed_via=event.via,
            closed_wall=event.wall_time,
        )
    return current


def incident_message(
    device_id: str, events: Iterable[IncidentEventRow], now_wall: str
) -> IncidentMessage:
    """The ``incident`` message after ``events`` (oldest first)."""
    current: _Incident | None = None
    for event in events:
        current = _apply(current, event)
    return _message(device_id, current, now_wall)


def _message(device_id: str, current: _Incident | None, now_wall: str) -> IncidentMessage:
    if current is None:
        return IncidentMessage(
            schema=SCHEMA_VERSION, device_id=device_id, open=False, wall_time=now_wall
        )
    return IncidentMessage(
        schema=SCHEMA_VERSION,
        device_id=device_id,
        open=current.open,
        wall_time=current.changed_wall,
        incident=current.id,
        severity=SEVERITY_NAME[current.severity],
        opened_wall=current.opened_wall,
        last_event=current.last_event,
        closed_by=None if current.open else current.closed_by,
        closed_via=None if current.open else current.closed_via,
        closed_wall=None if current.open else current.closed_wall,
        # absent for the default walker: a device with one walker sends what it sent before
        walker=None if current.walker == DEFAULT_WALKER_ID else current.walker,
        opened_unsynced=current.opened_unsynced,
    )


def progress_message(
    device_id: str,
    latest: SessionRecord | None,
    recent: Sequence[SessionRecord],
    now: dt.datetime,
    zone: dt.tzinfo,
    newest: Sequence[SessionRecord] = (),
    reached: Milestone | None = None,
    prescribed: int = PRESCRIBED_SESSIONS_PER_WEEK,
    walker: Walker | None = None,
) -> ProgressMessage:
    """The ``progress`` message: the newest session, and the sessions of ``now``'s week,
    weeks counted in ``zone`` (the device's: ``retroguard sessions`` counts the same).

    ``recent`` may hold sessions from before the week (the caller reads a
    little early); only those that :func:`core.progress.week_of` puts in the
    week count. ``newest`` (newest first) is where the latest balance check and
    step-time variability are looked for: a walker who skipped a check keeps
    the last one measured. ``reached`` is the weeks at goal over every session (default:
    counted from ``recent``). ``prescribed``: the week's sessions the physio prescribed (the
    progression's stage says, when one is assigned). ``walker``: whose sessions these are.
    """
    week = week_of(now, zone)
    this_week = [s for s in recent if week_of(started_utc(s), zone) == week]
    if reached is None:
        reached = milestone(weekly_progress(recent, zone))
    sway = next(
        (
            (s, b)
            for s in newest
            for b in s.balance
            if b.condition == "eyes open" and b.status == "measured" and b.rms_ap_ms2 is not None
        ),
        None,
    )
    gait = next(
        (
            (s, s.gait_backward.step_time_cv_pct)
            for s in newest
            if s.gait_backward is not None and s.gait_backward.step_time_cv_pct is not None
        ),
        None,
    )
    return ProgressMessage(
        schema=SCHEMA_VERSION,
        device_id=device_id,
        wall_time=now.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        session="none" if latest is None else latest.status,
        week=week,
        week_sessions=len(this_week),
        week_at_goal=days_at_goal(this_week, zone),  # a day once, as retroguard sessions
        week_backward_s=round(sum(s.backward_s for s in this_week), 1),
        week_longest_backward_s=round(max((s.longest_backward_s for s in this_week), default=0), 1),
        goal_sessions=GOAL_SESSIONS_PER_WEEK,
        goal_backward_s=GOAL_BACKWARD_MIN * 60,
        week_done=days_done(this_week, zone, prescribed),
        week_prescribed=prescribed,
        weeks_at_goal=reached.weeks_at_goal,
        milestone_weeks=reached.needed,
        session_id=None if latest is None else latest.id[:64],
        plan=None if latest is None else latest.plan,
        started_wall=None if latest is None else latest.started_wall,
        ended_wall=None if latest is None else latest.ended_wall,
        planned_s=None if latest is None else latest.planned_s,
        done_s=None if latest is None else latest.done_s,
        backward_s=None if latest is None else latest.backward_s,
        clock_not_set=None if latest is None else latest.wall_unsynced,
        session_interrupted=True if latest is not None and latest.interrupted else None,
        week_clock_not_set=sum(1 for s in this_week if s.wall_unsynced),
        sway_rms_ap_ms2=None if sway is None else sway[1].rms_ap_ms2,
        sway_rms_ml_ms2=None if sway is None else sway[1].rms_ml_ms2,
        sway_wall=None if sway is None else sway[0].started_wall,
        step_time_cv_pct=None if gait is None else gait[1],
        gait_wall=None if gait is None else gait[0].started_wall,
        walker=walker,
        zone=zone_key(zone),  # the dashboard counts this walker's weeks as the device does
    )


def stage_message(
    device_id: str,
    walker: Walker,
    state: ProgressionState,
    sessions: Sequence[StageSession],
    now: dt.datetime,
    zone: dt.tzinfo,
) -> StageMessage:
    """The ``stage`` message of ``walker``'s progression ``state``: ``sessions`` are theirs
    as the rule reads them (:func:`firmware.storage.progressions.stage_sessions`); this week
    and the weeks done are counted as the rule that advances it counts them."""
    stage = state.progression.stages[state.stage]
    counts = week_counts(stage, state.stage_started_wall, sessions, zone)
    week = week_of(now, zone)
    met = sum(1 for n in counts.values() if n >= stage.sessions_per_week)
    status: StageStatus = "running"
    if state.held:
        status = "held"
    elif state.last and completed_in(stage, state.stage_started_wall, sessions, zone):
        status = "complete"
    return StageMessage(
        schema=SCHEMA_VERSION,
        device_id=device_id,
        walker=walker,
        wall_time=now.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        progression=state.progression.name,
        stage=state.stage + 1,
        stages=len(state.progression.stages),
        stage_name=stage.plan.name,
        stage_started_wall=state.stage_started_wall,
        status=status,
        held=state.held,
        change=state.changed[:64],
        changed_wall=state.changed_wall or state.stage_started_wall,
        sessions_per_week=stage.sessions_per_week,
        stage_weeks=stage.weeks,
        weeks_done=met,
        week=week,
        week_done=counts.get(week, 0),
        zone=zone_key(zone),
    )


@dataclass(frozen=True, slots=True)
class Retained:
    """One retained message to publish; once the client has it, tell
    :meth:`RetainedStatus.published` (until then the topic is still owed)."""

    topic: str
    payload: str
    view: str
    """What it says (``payload`` without what moves on every computation): compared to tell
    whether it changed."""


class RetainedStatus:
    """Computes the retained status messages from the database and says which changed.

    Owned by the publisher thread (its own read connection, opened on first
    use). :meth:`incident`, :meth:`progress` and :meth:`walkers` return the
    message to publish, or None when it says the same as the last one
    :meth:`published` (the client took it): a message computed and then not
    handed over — the client refused it, or the caller failed before — is
    returned again by the next call. :meth:`forget` makes the next calls return
    them all again (after a reconnect: a broker that lost its retained copies
    gets them back).
    """

    def __init__(
        self,
        database: str | Path | Database,
        topics: Topics,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        zone: dt.tzinfo | None = None,
        wall_clock: WallClock | None = None,
    ) -> None:
        self._database = database
        self._wall_clock = wall_clock
        """Reads a stage's start as the rule does: moved by a step of this clock since it was
        stored in this boot (:func:`firmware.storage.progressions.current_progression`;
        default the host's)."""
        self._zone = zone if zone is not None else system_zone()
        """Weeks are counted in it (default: the system's zone)."""
        self._db: Database | None = None
        self._owned = False
        self._topics = topics
        self._now = now
        self._started_wall = payloads.wall_now()
        """The ``wall_time`` of "no incident yet": fixed, so that message is always the same."""
        self._said: dict[str, str] = {}
        self._shown_incident: str | None = None
        """The last ``incident`` payload the client took: what consumers were last shown (a
        reconnect's :meth:`forget` leaves it: the broker and Home Assistant still hold it)."""
        self._incident: _Incident | None = None
        self._read_up_to: int | None = None
        """The newest event ``seq`` folded into ``_incident`` (None: nothing read yet)."""
        self._generation: int | None = None
        self._milestone: tuple[object, Milestone] | None = None
        """The weeks at goal and the newest session (and database) they were counted for."""
        self._stages: dict[str, tuple[object, StageMessage]] = {}
        """Walker -> the stage message last computed for them and what it was computed from
        (:meth:`stages` reads their sessions again only when that changed)."""
        self.session_walker: str | None = None
        """The walker of the guided session under way (None: none), as the courier last heard
        from the loop: while one is, the progress is theirs — that session and their week —
        whoever is chosen for the next session meanwhile."""

    def _opened(self) -> Database:
        if self._db is None:
            self._db, self._owned = as_database(self._database)
        return self._db

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._opened().read(work)

    def incident(self) -> Retained | None:
        """Fold the events stored since the last call into the incident (a first call reads
        the newest :data:`FIRST_READ` that bear on incidents). The rows moved to another
        database (the disk failed, or came back): fold them again from the start."""
        device = self._topics.device_id
        generation = self._opened().generation
        if generation != self._generation:
            self._generation, self._incident, self._read_up_to = generation, None, None

        def fold(conn: sqlite3.Connection) -> None:
            newest = newest_event_seq(conn, device)
            first = self._read_up_to is None
            for event in incident_events(
                conn,
                device,
                up_to=newest,
                after=self._read_up_to,
                limit=FIRST_READ if first else None,
            ):
                self._incident = _apply(self._incident, event)
            self._read_up_to = newest

        self._read(fold)
        payload = payloads.encode(_message(device, self._incident, self._started_wall))
        return self._if_changed(self._topics.incident, payload, payload)

    def shown_incident(self) -> Shown:
        """What the retained ``incident`` message last told every consumer — Home Assistant's
        Fall sensor shows it, and its Acknowledge button, whose payload cannot name an
        incident, closes that one (docs/incidents.md): the last message the client took; before
        any this run (a command can arrive before it is handed over), what the database says
        now, which is what the last run published."""
        payload = self._shown_incident
        if payload is None:
            computed = self.incident()
            payload = (
                computed.payload if computed is not None else self._said.get(self._topics.incident)
            )
        if payload is None:
            return Shown(None, None)
        message = payloads.decode_as(IncidentMessage, payload.encode())
        return Shown(message.incident, message.last_event)

    def progress(self) -> Retained | None:
        device = self._topics.device_id
        now = self._now()
        monday = week_start(week_of(now, self._zone))
        earliest = dt.datetime.combine(monday, dt.time(), self._zone).astimezone(dt.UTC)
        since = (earliest - dt.timedelta(days=1)).isoformat()  # UTC, as sessions store theirs

        def read(
            conn: sqlite3.Connection,
        ) -> tuple[
            Walker, SessionRecord | None, list[SessionRecord], list[SessionRecord], dict[str, int]
        ]:
            walker = selected_walker(conn)  # the week of the walker chosen for the next session
            walking = self.session_walker
            if walking is not None and walking != walker.id:  # unless a session is under way
                walker = Walker(walking, walker_names(conn).get(walking, walking))
            return (
                walker,
                latest_session(conn, device, walker.id),
                sessions_started_since(conn, device, since, walker.id),
                newest_sessions(conn, device, MEASURES_LOOKBACK, walker.id),
                prescribed_by_week(conn, self._zone, walker.id),
            )

        walker, latest, week, newest, weeks = self._read(read)
        prescribed = prescribed_in(week_of(now, self._zone), weeks)  # as `retroguard sessions`
        message = progress_message(
            device,
            latest,
            week,
            now,
            self._zone,
            newest,
            self._weeks_at_goal(latest, walker.id),
            prescribed,
            walker,
        )
        # wall_time moves on every computation: compare what it says, not when it was said.
        view = payloads.encode(msgspec.structs.replace(message, wall_time=""))
        return self._if_changed(self._topics.progress, view, payloads.encode(message))

    def _weeks_at_goal(self, latest: SessionRecord | None, walker: str) -> Milestone:
        """The weeks at goal over every session, counted again only when the newest session
        changed (a new one, or the running one stored again) or the rows moved to another
        database: three years of sessions take ~36 ms to decode here, every minute."""
        key = (
            self._opened().generation,
            walker,
            None if latest is None else (latest.id, latest.status, latest.done_s),
        )
        if self._milestone is None or self._milestone[0] != key:
            device = self._topics.device_id
            history = self._read(lambda conn: sessions_started_since(conn, device, "", walker))
            self._milestone = key, milestone(weekly_progress(history, self._zone))
        return self._milestone[1]

    def walkers(self) -> Retained | None:
        """The treadmill's walker profiles (button order), when they changed.

        Its ``wall_time`` is the last add or remove, or on a device where none was ever made
        the monitor's first run on this database: a repeat — after a reconnect, or a restart
        of the courier — is byte for byte the same. Only a database with no run recorded (a
        courier serving no monitor, tests) falls back to this courier's start."""

        def read(conn: sqlite3.Connection) -> tuple[tuple[Walker, ...], str | None]:
            return active_walkers(conn), profiles_changed_wall(conn) or first_run_wall(conn)

        walkers, changed_wall = self._read(read)
        message = WalkersMessage(
            schema=SCHEMA_VERSION,
            device_id=self._topics.device_id,
            wall_time=changed_wall or self._started_wall,
            walkers=list(walkers),
        )
        payload = payloads.encode(message)
        return self._if_changed(self._topics.walkers, payload, payload)

    def stages(self) -> list[Retained]:
        """The ``stage`` message of every walker with a progression (a walker removed since:
        an empty retained payload, which clears their topic on the broker), those that changed
        since the client last took them. Computed from the rows, as ``progress`` is, so what a
        command, a session's end or ``retroguard progression`` stored is what goes out."""
        device = self._topics.device_id
        now = self._now()

        week = week_of(now, self._zone)
        generation = self._opened().generation

        def read(conn: sqlite3.Connection) -> tuple[list[StageMessage], list[str]]:
            names = walker_names(conn)
            active = {w.id for w in active_walkers(conn)}
            found, gone = [], []
            marks = sessions_marks(conn)
            for walker in progression_walkers(conn):
                state = current_progression(conn, walker, clock=self._wall_clock)
                if walker not in active or state is None:
                    gone.append(walker)
                    continue
                who = Walker(walker, names.get(walker, walker))
                key = (generation, who, state, week, marks.get(walker))
                cached = self._stages.get(walker)
                if cached is None or cached[0] != key:  # else: it would say the same
                    sessions = stage_sessions(conn, state, walker)
                    message = stage_message(device, who, state, sessions, now, self._zone)
                    self._stages[walker] = cached = key, message
                found.append(cached[1])
            return found, gone

        found, gone = self._read(read)
        stamped = now.astimezone(dt.UTC).isoformat(timespec="milliseconds")
        unsynced = not self._synchronized()
        due: list[Retained] = []
        for message in found:
            # the flag is part of what it says: the first computation once the clock is
            # synchronised differs, and goes out stamped with the true time
            message = msgspec.structs.replace(message, wall_time=stamped, wall_unsynced=unsynced)
            walker = message.walker
            view = payloads.encode(msgspec.structs.replace(message, wall_time=""))
            topic = self._topics.stage(walker.id)
            said = self._if_changed(topic, view, payloads.encode(message))
            if said is not None:
                due.append(said)
        for removed in gone:
            said = self._if_changed(self._topics.stage(removed), "", "")
            if said is not None:
                due.append(said)
        return due

    def _synchronized(self) -> bool:
        """Whether the wall clock the stages are stamped with is synchronised (the host's: an
        ``adjtimex``, or under the monitor's unit a ``stat`` in ``/run``; on the publisher
        thread, never the loop's). A read that fails is "not synchronised", the safe side: the
        stage goes out flagged and again once a read says synchronised."""
        if self._wall_clock is None:
            self._wall_clock = SystemWallClock()
        try:
            return self._wall_clock.synchronized()
        except Exception:
            return False

    def _if_changed(self, topic: str, view: str, payload: str) -> Retained | None:
        if self._said.get(topic) == view:
            return None
        return Retained(topic, payload, view)

    def published(self, message: Retained) -> None:
        """The client took ``message``: the topic says it until something changes."""
        self._said[message.topic] = message.view
        if message.topic == self._topics.incident:
            self._shown_incident = message.payload

    def forget(self) -> None:
        self._said.clear()

    def close(self) -> None:
        if self._db is not None and self._owned:
            self._db.close()
        self._db = None
