"""The progression a physio assigned, and where the walker is on it.

Table ``progressions``: one row per change (assigned, advanced, held,
released, stepped back), newest last and in force, never rewritten; each names
its walker (migration 5), and a walker's newest row is their progression. A row
holds the whole :class:`core.protocol.plan.Progression` as JSON, the stage
(0-based), when that stage began (sessions before it do not count toward
it) and whether a physio holds it there. Whenever the stage changes the
stage's plan is assigned too (:func:`firmware.storage.plans.assign_plan`,
``via`` = ``progression``), so the device's one path for plans carries it to
the next session.

A plan set by hand (``cmd/plan``, ``retroguard plan set|clear``) for a walker
whose progression runs holds it (:func:`set_plan_by_hand`): the rule counts
only sessions of the stage's plan, so it would otherwise stall unseen. A
release puts the stage's plan back when another is in force.

A row keeps, with its stage start, the wall clock's offset from the monotonic clock and the
boot it was read in (migration 8): a Pi has no battery-backed clock, so a progression
assigned before NTP's first sync is stamped with whatever the clock read (a day, a year
ahead), and the step NTP makes moves the sessions' times (:mod:`firmware.session.recording`)
but not a stored start. Read in the same boot after a step, the start moves by it
(:func:`core.wallclock.after_step`, the sessions' one correction): before, a start left a
year ahead counted every session as "before the stage", and the walker never advanced. In
another boot the offset says nothing (the monotonic clock starts again) and the start is
kept as it was stored, as rows from before migration 8 are. A row that keeps the start (a
hold, a release, a plan set by hand holding it) keeps its offset and boot too
(:attr:`ProgressionState.started_frame`): stamped with the clock's offset now, a start from an
earlier boot was moved by the NTP step that followed the hold, though it was right. An
advance's start on the Monday after the sessions' week is a date of their calendar: no step
moves it when they were walked with the clock set (:func:`advance_if_done`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, replace
from typing import Literal

import msgspec

from core.progress import (
    PRESCRIBED_SESSIONS_PER_WEEK,
    prescribed_weeks,
    utc_of,
    week_of,
    week_start,
)
from core.progression import StageSession, completed_in
from core.protocol.messages import ProgressionHeld
from core.protocol.plan import Plan, Progression, same_walk
from core.protocol.walker import DEFAULT_WALKER_ID
from core.wallclock import SystemWallClock, WallClock, after_step, boot_id
from core.zones import system_zone
from firmware.storage.plans import assign_plan, current_plan

HAND_PLAN_HOLD = "held: a plan was set by hand"
"""The ``change`` of the row a plan set by hand writes when it holds a running progression."""


RELEASED_ADVANCED = "released, and advanced: the stage's sessions were done while it was held"
"""What a release that moved the walker on at once says it did (the CLI, the device's reply)."""


class ProgressionUnchanged(ValueError):
    """A physio's change that has nothing to change — a step back at the first stage, a hold of
    a held progression, a release of one not held: refused (the CLI exits 2, the device replies
    ``refused``) and nothing is recorded, not even the stage's plan assigned again, so the
    progression's history lists only changes."""


StartFrame = tuple[float | None, str | None]
"""A stage start's wall-clock offset and boot (``stage_started_offset``, ``stage_started_boot``):
(None, None) for a start no step corrects (a row from before migration 8)."""

NO_STEP: StartFrame = (None, None)
"""The frame of a start that is no clock's reading to correct: a time the sessions' calendar
gives (:func:`advance_if_done`), or a row from before migration 8."""


@dataclass(frozen=True, slots=True)
class ProgressionState:
    revision: int
    progression: Progression
    stage: int
    stage_started_wall: str
    held: bool
    by: str
    changed: str
    """What this row recorded: assigned, advanced, held, released, stepped back, or
    :data:`HAND_PLAN_HOLD`."""
    plan_restored: bool = False
    """A release that assigned the stage's plan again (another was in force); not stored."""
    advanced_on_release: bool = False
    """A release that found the stage's sessions done while it was held, so the rule moved the
    walker on at once (this row is that advance); not stored."""
    changed_wall: str = ""
    """When this row was recorded (the retained ``stage`` message's ``changed_wall``)."""
    started_frame: StartFrame = (None, None)
    """The wall clock's offset and the boot :attr:`stage_started_wall` is read in: a row
    that keeps the start (a hold, a release) stores it with them (:func:`_record`)."""

    @property
    def last(self) -> bool:
        return self.stage >= len(self.progression.stages) - 1


def _wall_clock(clock: WallClock | None) -> WallClock:
    return clock if clock is not None else SystemWallClock()


def current_progression(
    conn: sqlite3.Connection, walker: str = DEFAULT_WALKER_ID, *, clock: WallClock | None = None
) -> ProgressionState | None:
    """``walker``'s progression in force, its stage start as ``clock`` (default the host's)
    reads that moment now: moved by any step of the clock since it was stored in this boot."""
    row = conn.execute(
        "SELECT id, progression, stage, stage_started_wall, held, changed_by, change,"
        " stage_started_offset, stage_started_boot, changed_wall"
        " FROM progressions WHERE walker = ? ORDER BY id DESC LIMIT 1",
        (walker,),
    ).fetchone()
    if row is None or row[1] is None:
        return None
    revision, text, stage, started, held, by, change, offset, boot, changed_wall = row
    frame: StartFrame = (None if offset is None else float(offset), str(boot) if boot else None)
    if offset is not None and boot and boot == boot_id():
        now = _wall_clock(clock).offset()
        moved = after_step(str(started), float(offset), now, timespec="milliseconds")
        if moved != started:  # a step since: the time as the clock reads it now, its offset
            started, frame = moved, (now, str(boot))
    try:
        progression = msgspec.json.decode(str(text), type=Progression)
    except msgspec.MsgspecError:
        return None  # unreadable by this release: as if none were assigned
    return ProgressionState(
        int(revision),
        progression,
        min(int(stage), len(progression.stages) - 1),
        str(started),
        bool(held),
        str(by),
        str(change),
        changed_wall=str(changed_wall),
        started_frame=frame,
    )


def prescribed_by_week(
    conn: sqlite3.Connection, zone: dt.tzinfo, walker: str = DEFAULT_WALKER_ID
) -> dict[str, int]:
    """Week ("2026-W49", in ``zone``) -> the sessions prescribed to ``walker`` in it, around
    every week in which their progression changed (the rule:
    :func:`core.progress.prescribed_weeks`; :func:`core.progress.prescribed_in` carries a
    week's count on to the weeks after it). A cleared or unreadable progression prescribes the
    default again."""
    changes: list[tuple[str, int]] = []
    for text, stage, wall in conn.execute(
        "SELECT progression, stage, changed_wall FROM progressions WHERE walker = ? ORDER BY id",
        (walker,),
    ):
        try:
            week = week_of(utc_of(str(wall)), zone)
        except ValueError:
            continue
        count = PRESCRIBED_SESSIONS_PER_WEEK
        if text is not None:
            try:
                progression = msgspec.json.decode(str(text), type=Progression)
                in_force = progression.stages[min(int(stage), len(progression.stages) - 1)]
                count = in_force.sessions_per_week
            except msgspec.MsgspecError:
                pass
        changes.append((week, count))
    return prescribed_weeks(changes)


def _record(
    conn: sqlite3.Connection,
    progression: Progression,
    stage: int,
    *,
    stage_started_wall: str,
    held: bool,
    by: str,
    change: str,
    wall: str,
    plan_too: bool,
    walker: str,
    clock: WallClock | None,
    frame: StartFrame | None = None,
) -> ProgressionState:
    """``stage_started_wall`` is a time as ``clock`` reads it now (the caller's ``wall``, a
    stage's next start): its offset and this boot go with it, unless ``frame`` says the
    offset and boot it was read in: a row that keeps the start in force (a hold, a release)
    passes that start's (:attr:`ProgressionState.started_frame`). Stamped with this boot's
    offset, a start from an earlier boot (right, or a row from before migration 8) kept by a
    hold before NTP's step was then moved by the step: a day-behind clock stepped three days
    moved a right 2 March start to 5 March, and the stage's weeks counted from it."""
    if frame is None:
        frame = (_wall_clock(clock).offset(), boot_id() or None)
    cursor = conn.execute(
        "INSERT INTO progressions (progression, stage, stage_started_wall, held, changed_by,"
        " change, changed_wall, walker, stage_started_offset, stage_started_boot)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            msgspec.json.encode(progression).decode(),
            stage,
            stage_started_wall,
            int(held),
            by,
            change,
            wall,
            walker,
            *frame,
        ),
    )
    if plan_too:
        assign_plan(
            conn,
            progression.stages[stage].plan,
            by=by,
            via="progression",
            assigned_wall=wall,
            walker=walker,
        )
    return ProgressionState(
        int(cursor.lastrowid or 0),
        progression,
        stage,
        stage_started_wall,
        held,
        by,
        change,
        changed_wall=wall,
        started_frame=frame,
    )


def start_progression(
    conn: sqlite3.Connection,
    progression: Progression,
    *,
    stage: int,
    by: str,
    wall: str,
    walker: str = DEFAULT_WALKER_ID,
    clock: WallClock | None = None,
) -> ProgressionState:
    """Assign ``walker`` a progression at ``stage``; its plan is assigned with it. ``wall``
    is ``clock``'s time now (default the host's clock: the offset stored with the start)."""
    return _record(
        conn,
        progression,
        stage,
        stage_started_wall=wall,
        held=False,
        by=by,
        change="assigned",
        wall=wall,
        plan_too=True,
        walker=walker,
        clock=clock,
    )


def change_progression(
    conn: sqlite3.Connection,
    action: str,
    *,
    by: str,
    wall: str,
    walker: str = DEFAULT_WALKER_ID,
    zone: dt.tzinfo | None = None,
    clock: WallClock | None = None,
) -> ProgressionState:
    """``hold``, ``release`` or ``step_back``; :class:`LookupError` without a progression,
    :class:`ProgressionUnchanged` when the action would change nothing (nothing recorded).
    A release of a stage whose sessions were done while it was held advances it at once
    (weeks in ``zone``, default the system's, as the courier's rule counts them after a
    session: :func:`advance_if_done`)."""
    state = current_progression(conn, walker, clock=clock)
    if state is None:
        if walker != DEFAULT_WALKER_ID:
            raise LookupError(f"no progression is assigned to walker {walker} on this device")
        raise LookupError("no progression is assigned to this device")
    who = "the walker's" if walker == DEFAULT_WALKER_ID else f"walker {walker}'s"
    if action in ("hold", "release") and state.held == (action == "hold"):
        raise ProgressionUnchanged(
            f"{who} progression {state.progression.name} is "
            f"{'already held' if state.held else 'not held'}: nothing to "
            f"{action}"
        )
    if action == "hold":
        return _record(
            conn, state.progression, state.stage, stage_started_wall=state.stage_started_wall,
            held=True, by=by, change="held", wall=wall, plan_too=False, walker=walker,
            clock=clock, frame=state.started_frame,
        )  # fmt: skip
    if action == "release":
        # The stage's sessions may have been done while it was held (the hold stops the
        # advance, not the count): the rule moves the walker on now, as it would have after
        # the last of them. Before, it waited for the next session to end, so the walker
        # walked the old stage's plan once more, a session late, and that session's week
        # could count toward neither stage.
        zone = zone if zone is not None else system_zone()
        done_already = not state.last and _done(conn, state, zone, walker) is not None
        # A plan set by hand may be in force (it held the progression): the stage's plan goes
        # back, or the walker would keep walking that plan and the progression stall again.
        now = current_plan(conn, walker)
        restore = not done_already and (
            now is None or not same_walk(now.plan, state.progression.stages[state.stage].plan)
        )
        released = _record(
            conn, state.progression, state.stage, stage_started_wall=state.stage_started_wall,
            held=False, by=by, change="released", wall=wall, plan_too=restore, walker=walker,
            clock=clock, frame=state.started_frame,
        )  # fmt: skip
        if done_already:
            advanced = advance_if_done(conn, zone, wall, walker=walker, clock=clock)
            if advanced is not None:
                return replace(advanced, advanced_on_release=True)
        return replace(released, plan_restored=restore)
    if action == "step_back":
        if state.stage == 0:
            whom = "the walker is" if walker == DEFAULT_WALKER_ID else f"walker {walker} is"
            raise ProgressionUnchanged(
                f"{whom} already at the first stage of {state.progression.name} "
                f"(stage 1 of {len(state.progression.stages)}): nothing to step back to"
            )
        return _record(
            conn, state.progression, state.stage - 1, stage_started_wall=wall,
            held=state.held, by=by, change="stepped back", wall=wall, plan_too=True, walker=walker,
            clock=clock,
        )  # fmt: skip
    raise ValueError(f"unknown progression action {action!r}")


@dataclass(frozen=True, slots=True)
class HandPlan:
    """What :func:`set_plan_by_hand` stored."""

    revision: int
    """The plan assignment's."""
    held: ProgressionState | None
    """The walker's progression, held (now or before); None when none is assigned or the plan
    is the stage's own."""
    newly_held: bool
    """This plan held it (a row written); False: it was held already."""


def set_plan_by_hand(
    conn: sqlite3.Connection,
    plan: Plan | None,
    *,
    by: str,
    via: Literal["mqtt", "cli"],
    wall: str,
    request_id: str | None = None,
    walker: str = DEFAULT_WALKER_ID,
    config_plan: Plan | None = None,
    clock: WallClock | None = None,
) -> HandPlan:
    """Assign ``walker`` a plan by hand (None: the config's ``session.plan``), holding their
    progression if one runs, in the caller's transaction.

    The progression counts only completed sessions of its stage's plan
    (:func:`core.progression.stage_done`): with another plan in force it would never move on,
    silently, while adherence still counted against its ``sessions_per_week``. So the
    progression is held, by the same person, and the caller says so; a release puts the
    stage's plan back (:func:`change_progression`). A plan equal to the stage's holds nothing,
    but a progression held already is reported (it stays held: the physio is told).
    ``config_plan``: the plan ``None`` stands for (the config's ``session.plan``, when the
    caller could read it): a clear to a config plan that is the stage's own holds nothing
    either, where before it held the progression for a plan it walks anyway.
    Nothing is started: the plan applies from the walker's next session start."""
    state = current_progression(conn, walker, clock=clock)
    held: ProgressionState | None = None
    newly = False
    walked = plan if plan is not None else config_plan
    if state is not None and (
        state.held or not same_walk(walked, state.progression.stages[state.stage].plan)
    ):
        held, newly = state, not state.held
        if newly:
            held = _record(
                conn, state.progression, state.stage,
                stage_started_wall=state.stage_started_wall, held=True, by=by,
                change=HAND_PLAN_HOLD, wall=wall, plan_too=False, walker=walker,
                clock=clock, frame=state.started_frame,
            )  # fmt: skip
    revision = assign_plan(
        conn, plan, by=by, via=via, assigned_wall=wall, request_id=request_id, walker=walker
    )
    return HandPlan(revision, held, newly)


def held_message(hand: HandPlan) -> ProgressionHeld | None:
    """The progression a plan set by hand held, as the ``plan`` reply and the CLI say it."""
    state = hand.held
    if state is None:
        return None
    return ProgressionHeld(
        progression=state.progression.name,
        stage=state.stage + 1,
        stages=len(state.progression.stages),
        plan=state.progression.stages[state.stage].plan.name,
        already=not hand.newly_held,
    )


def _next_stage_start(wall: str, completed: str, zone: dt.tzinfo) -> str:
    """When the stage after one ``completed`` in that week ("2026-W10") begins counting: the
    Monday (00:00 in ``zone``) after it, or ``wall``, the time now, if that is later (a
    release of a held stage weeks after its sessions were done).

    The week that completed a stage is that stage's week: a walker who did the week's three
    sessions by Wednesday and three more by Saturday walked one week of the prescription,
    not two stages of "a week each", and two one-week stages passed within one ISO week
    before (the next stage counted from the clock's time). The stage's plan is in force from
    the next session all the same (the walker walks it the rest of the week, and adherence
    counts those sessions as always); only its count starts with the next week, so a week
    counts toward one stage only.

    The week is the one whose sessions completed the stage (:func:`core.progression.
    completed_in`), not the newest session's since the stage began: a stopped walk or another
    plan's in a later week, or a session dated ahead by a clock set wrong, put the next
    stage's start a week (or more) after that session's week, and the walker's sessions until
    then counted toward nothing (a release on Tuesday after a Monday walk: the next stage
    counted only from the Monday after).

    Never the clock's time when it reads earlier than the sessions: a Pi without a
    battery-backed clock reads the time of its last shutdown until NTP sets it
    (docs/sessions.md, "Wall clock"), and a stage that started days early would count the
    old stage's sessions again and could advance at the next session, a stage skipped."""
    monday = week_start(completed) + dt.timedelta(weeks=1)
    next_week = dt.datetime.combine(monday, dt.time(), zone).astimezone(dt.UTC)
    try:
        if utc_of(wall) > next_week:
            return wall
    except ValueError:  # not a time (no caller gives one): the rule's own start
        pass
    return next_week.isoformat(timespec="milliseconds")


def advance_if_done(
    conn: sqlite3.Connection,
    zone: dt.tzinfo,
    wall: str,
    *,
    walker: str = DEFAULT_WALKER_ID,
    clock: WallClock | None = None,
) -> ProgressionState | None:
    """After ``walker``'s session: move to the next stage if this one's prescribed sessions
    (theirs) are done; the next stage counts from the week after
    (:func:`_next_stage_start`).

    Returns the new state when it advanced (its plan is assigned), else None:
    no progression, held, at the last stage, or not done yet.
    """
    state = current_progression(conn, walker, clock=clock)
    if state is None or state.held or state.last:
        return None
    week = _done(conn, state, zone, walker)
    if week is None:
        return None
    start = _next_stage_start(wall, week, zone)
    return _record(
        conn,
        state.progression,
        state.stage + 1,
        stage_started_wall=start,
        held=False,
        by="progression",
        change="advanced",
        wall=wall,
        plan_too=True,
        walker=walker,
        clock=clock,
        # The Monday after the sessions' week is their calendar's, not the clock's now: true
        # when the clock was synchronised as each was walked (a release after a reboot, before
        # NTP, of a stage done in an earlier boot), and no step may move it (stamped with the
        # clock's offset now, a step of three days made the Monday a Thursday, and the walker's
        # sessions until then counted toward nothing). Walked with the clock not set, they are
        # as wrong as it: the offset now goes with it, and the step corrects it (a year
        # ahead would strand the stage).
        frame=(NO_STEP if start != wall and not _week_unsynced(conn, walker, week, zone) else None),
    )


def _week_unsynced(conn: sqlite3.Connection, walker: str, week: str, zone: dt.tzinfo) -> bool:
    """Whether any of ``walker``'s sessions in ``week`` (in ``zone``) was walked with the clock
    not synchronised (its record's ``wall_unsynced``): its time, and so the week, may be off."""
    monday = dt.datetime.combine(week_start(week), dt.time(), zone).astimezone(dt.UTC)
    after = monday + dt.timedelta(weeks=1)
    row = conn.execute(
        "SELECT 1 FROM sessions WHERE walker = ? AND started_wall >= ? AND started_wall < ?"
        " AND json_valid(body) AND json_extract(body, '$.wall_unsynced') LIMIT 1",
        (walker, monday.isoformat()[:19], after.isoformat()[:19]),
    ).fetchone()
    return row is not None


def _done(
    conn: sqlite3.Connection, state: ProgressionState, zone: dt.tzinfo, walker: str
) -> str | None:
    """The week in which ``walker``'s sessions completed ``state``'s stage
    (:func:`core.progression.completed_in`), else None."""
    stage = state.progression.stages[state.stage]
    return completed_in(stage, state.stage_started_wall, stage_sessions(conn, state, walker), zone)


def progression_revision(conn: sqlite3.Connection) -> int:
    """The newest progression row's id (0: none yet): what the courier polls, cheaply, to hear
    of a change ``retroguard plan progression`` wrote from another process."""
    (revision,) = conn.execute("SELECT coalesce(max(id), 0) FROM progressions").fetchone()
    return int(revision)


def progression_walkers(conn: sqlite3.Connection) -> list[str]:
    """Every walker who was ever assigned a progression on this device, by id: the retained
    ``stage`` topics are theirs (:mod:`firmware.mqtt.status`)."""
    return [str(w) for (w,) in conn.execute("SELECT DISTINCT walker FROM progressions ORDER BY 1")]


def sessions_marks(conn: sqlite3.Connection) -> dict[str, tuple[object, ...]]:
    """Walker -> what changes whenever any of their sessions is stored (a new one, or one
    stored again: its status and figures; its intervals are stored with it), all walkers from
    one pass over the table: the retained ``stage`` reads a walker's sessions again
    (:func:`stage_sessions`, ~20 ms with a year of them on one stage) only when their mark
    moved, not every minute."""
    return {
        str(walker): tuple(mark)
        for walker, *mark in conn.execute(
            "SELECT walker, COUNT(*), MAX(rowid), SUM(status = 'completed'), SUM(done_s),"
            " SUM(planned_s) FROM sessions GROUP BY walker"
        )
    }


def stage_sessions(
    conn: sqlite3.Connection, state: ProgressionState, walker: str
) -> list[StageSession]:
    """``walker``'s sessions the rule reads for ``state``'s stage (:func:`_done`, and the
    retained ``stage`` message's week count).

    Their sessions are read from two days before the stage's start on (the text of a UTC
    time, as every stored time is: a margin wider than any zone's offset, so the SQL never
    decides; the rule alone says which count, as moments, in ``zone``'s weeks), each with the
    intervals it walked (``session_intervals``): the rule matches a session to the stage by
    them, not by the plan's name."""
    try:
        earliest = (utc_of(state.stage_started_wall) - dt.timedelta(days=2)).isoformat()[:19]
    except ValueError:  # a damaged row: every session, the rule reads each
        earliest = ""
    rows = conn.execute(
        "SELECT id, started_wall, plan, status, planned_s, done_s, backward_s,"
        " longest_backward_s FROM sessions WHERE walker = ? AND started_wall >= ?",
        (walker, earliest),
    ).fetchall()
    walks: dict[str, list[tuple[str, float, str]]] = {}
    for session_id, direction, planned, speed in conn.execute(
        "SELECT session_id, direction, planned_s, speed FROM session_intervals"
        " WHERE session_id IN (SELECT id FROM sessions WHERE walker = ? AND started_wall >= ?)"
        " ORDER BY session_id, idx",
        (walker, earliest),
    ):
        walks.setdefault(str(session_id), []).append((str(direction), float(planned), str(speed)))
    sessions = [
        StageSession(
            started_wall=str(started),
            plan=str(plan),
            status=str(status),
            planned_s=float(planned),
            done_s=float(done_s),
            backward_s=float(backward),
            longest_backward_s=float(longest),
            walk=tuple(walks.get(str(session_id), ())),
        )
        for session_id, started, plan, status, planned, done_s, backward, longest in rows
    ]
    return sessions
