"""Guided-session summaries: the stored row and its sanity checks, and the progress page.

Ingest decodes a summary with the protocol first (types, ranges, ids:
:class:`core.protocol.messages.SessionSummary`); :func:`parse_summary` then
makes the stored row (a :class:`caregiver.storage.WalkSession`) and refuses
what types cannot say (stumbles and falls beyond trips, an unreadable start time).

The week and goal rule (ISO week of ``started_wall`` in the service's time zone,
``[server] timezone``; adherence: sessions done, the plan walked through, against
those prescribed; progression: the week's longest backward stretch against 10
minutes; a week at goal: three sessions with 10 straight minutes; four weeks at goal
the milestone) lives in :mod:`core.progress`, shared with ``retroguard sessions``
and the device's progress message.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from caregiver import walkers
from caregiver.localtime import zone_said
from caregiver.storage import Part, StorageFault, Store, Table, Use, WalkSession
from core.plan_presets import stage_plan, stage_words
from core.progress import (
    GOAL_BACKWARD_MIN,
    GOAL_SESSIONS_PER_WEEK,
    MILESTONE_WEEKS,
    WeekProgress,
    WeekSpanTooLong,
    at_goal,
    done,
    every_week,
    milestone,
    prescribed_in,
    utc_of,
    week_label,
    week_of,
    week_start,
    weekly_progress,
)
from core.protocol.messages import StageMessage
from core.protocol.plan import (
    DIRECTIONS,
    IntervalWalk,
    backward_stretch_s,
    plan_words,
    weeks_stretch_s,
)
from core.protocol.walker import DEFAULT_WALKER, Walker

log = logging.getLogger(__name__)

_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_NUMBERS = (
    "planned_s", "done_s", "backward_s", "longest_backward_s", "walking_s", "cadence_spm",
)  # fmt: skip
_COUNTS = ("steps", "trips", "stumbles", "no_recovery", "amended")
_REQUIRED = ("backward_s", "longest_backward_s", "done_s", "trips", "stumbles")
CHART_WEEKS = 26
"""The chart shows at most this many weeks, ending with the current one."""
HISTORY_SESSIONS = 10_000
"""The sessions a walker's weeks, weeks at goal and reports are counted over (64 years at three
a week): every one in practice. Reading only the page table's newest 500 lost a long-standing
walker's first weeks at goal from the milestone and the patient's file."""
TABLE_SESSIONS = 500
"""The newest sessions the progress page lists one by one."""


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def parse_summary(data: Mapping[str, Any], device_id: str) -> tuple[WalkSession | None, str]:
    """The row to store for a ``.../session`` payload, or ``None`` and why not.

    Loose on purpose: the fields the dashboard shows must be there and sane
    (id, ``started_wall``, the backward minutes, trips and stumbles); the
    others default to 0 or "", unknown fields are kept in the stored payload.
    The device is the topic's (the broker's ACL vouches for it), not the body's.
    """
    session_id = data.get("id")
    if not (isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id)):
        return None, "no valid session id"
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        return None, "missing " + ", ".join(missing)
    try:
        started = utc_of(str(data["started_wall"]))
    except (KeyError, TypeError, ValueError):
        return None, "no valid started_wall"
    numbers: dict[str, float] = {}
    for key in _NUMBERS:
        value = data.get(key, 0)
        if not _number(value):
            return None, f"{key} is not a non-negative number"
        numbers[key] = float(value)
    counts: dict[str, int] = {}
    for key in _COUNTS:
        value = data.get(key, 0)
        if not (_number(value) and float(value).is_integer()):
            return None, f"{key} is not a non-negative integer"
        counts[key] = int(value)
    if counts["stumbles"] > counts["trips"]:
        return None, "more stumbles than trips"
    falls = data.get("falls", counts["trips"] - counts["stumbles"])  # absent: an older device
    if not (_number(falls) and float(falls).is_integer()):
        return None, "falls is not a non-negative integer"
    if counts["stumbles"] + int(falls) > counts["trips"]:
        return None, "more stumbles and falls than trips"
    if counts["no_recovery"] > int(falls):
        return None, "more falls with no recovery than falls"
    try:
        walker = msgspec.convert(data.get("walker", DEFAULT_WALKER), Walker)
    except msgspec.ValidationError as exc:
        return None, f"walker: {exc}"
    return WalkSession(
        id=session_id,
        device_id=device_id,
        plan=str(data.get("plan", ""))[:80],
        status=str(data.get("status", ""))[:20],
        started_wall=started.isoformat(timespec="seconds"),
        ended_wall=str(data.get("ended_wall") or "")[:40],
        planned_s=numbers["planned_s"],
        done_s=numbers["done_s"],
        backward_s=numbers["backward_s"],
        longest_backward_s=numbers["longest_backward_s"],
        steps=counts["steps"],
        walking_s=numbers["walking_s"],
        cadence_spm=numbers["cadence_spm"],
        trips=counts["trips"],
        stumbles=counts["stumbles"],
        walker=walker.id,
        walker_name=walker.name,
        falls=int(falls),
        no_recovery=counts["no_recovery"],
        amended=counts["amended"],
        wall_unsynced=int(data.get("wall_unsynced") is True),
        interrupted=int(data.get("interrupted") is True),
    ), ""


class _WalkedInterval(msgspec.Struct):
    direction: str
    planned_s: float
    speed: str


class _Walked(msgspec.Struct):
    """What :func:`walk_of` reads of a stored summary (every other field is skipped)."""

    id: str
    intervals: list[_WalkedInterval] = []


_read_walked = msgspec.json.Decoder(_Walked).decode


def walk_of(payload: str | bytes) -> tuple[str, tuple[IntervalWalk, ...]] | None:
    """A stored session summary's id and the plan it walked
    (:func:`core.protocol.plan.plan_walk`'s form: each interval's direction, planned seconds
    and speed note), from its ``intervals``: the caregiver keeps a session's plan by name
    only, and a name says nothing of what it prescribes (a custom "Anna, week 3"). Loose, as
    :func:`parse_summary` is: None for a summary without readable intervals (an older or
    foreign one). Decoded as a type that skips every other field: the progress page reads
    up to 500 of them, and a whole decode each doubled the work its trends already do."""
    try:
        walked = _read_walked(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    walk = tuple(
        (i.direction, i.planned_s, i.speed[:40])
        for i in walked.intervals
        if i.direction in DIRECTIONS and math.isfinite(i.planned_s) and i.planned_s > 0
    )
    if not walk or len(walk) != len(walked.intervals):
        return None
    return walked.id, walk


def session_walks(payloads: Iterable[str]) -> dict[str, tuple[IntervalWalk, ...]]:
    """Session id -> the plan it walked (:func:`walk_of`), from the stored summaries
    (``Store.walk_session_payloads``): the plan and progress pages' session rows say it in
    words (:func:`core.protocol.plan.plan_words`) under the plan's name. A summary without
    readable intervals is left out (its row says the name alone)."""
    return dict(found for found in map(walk_of, payloads) if found is not None)


def week_stretches(
    sessions: Iterable[WalkSession],
    walks: Mapping[str, tuple[IntervalWalk, ...]],
    zone: dt.tzinfo,
) -> dict[str, float | None]:
    """Each week's longest backward stretch its sessions' plans prescribe
    (:func:`core.protocol.plan.weeks_stretch_s`, from each session's intervals in ``walks``;
    None: not known), weeks counted in ``zone``, for the weeks' words
    (:func:`core.progress.week_goal_words`): a walker on the 2/2 plan is not measured against
    10 minutes they cannot yet walk. A week absent has no session (its stretch: None). The
    sessions are gone through once: the every-week view says each of a year's weeks."""
    weeks: dict[str, list[tuple[IntervalWalk, ...]]] = {}
    for s in sessions:
        weeks.setdefault(week_of(utc_of(s.started_wall), zone), []).append(walks.get(s.id, ()))
    return {week: weeks_stretch_s(walked) for week, walked in weeks.items()}


def next_plan_stretch(
    stage: StageMessage | None,
    sessions: Sequence[WalkSession],
    walks: Mapping[str, tuple[IntervalWalk, ...]],
) -> float | None:
    """The longest backward stretch the walker's next session's plan prescribes, for a week
    with no session yet (:func:`core.progress.stretch_value`): their stage's plan while it
    moves on by itself (:func:`core.plan_presets.stage_plan`), else the plan their latest
    session walked (``sessions`` newest first, ``walks`` by :func:`session_walks`); None when
    neither is known (a held stage may be a plan set by hand, so it is not read as the
    stage's)."""
    if stage is not None and stage.status != "held":
        plan = stage_plan(stage)
        if plan is not None:
            return backward_stretch_s(plan)
    walk = walks.get(sessions[0].id) if sessions else None
    return backward_stretch_s(walk) if walk else None


def card_plan(store: Store, device_id: str) -> str:
    """The card's line on the plan of the walker who walked last (the one the plan and
    progress pages show without a choice), in words: the treadmill and its plan where the
    physio and the caregiver look first (:func:`plan_line`, naming the walker as the
    dashboard names them). "" before any session, and for one with neither a plan's name nor
    intervals (not "Plan: " and nothing).

    "" too when the store cannot read them (a damaged table, a lock or a statement timing
    out): the line is information, and the fleet page, the device page and the live feed's
    card (a fall's red card) come without it rather than not at all."""
    try:
        line = plan_line(store, device_id)
        said = line.said(walkers.offered(store, device_id).walkers) if line else ""
    except StorageFault as exc:
        log.warning("the card of %s goes without its plan line: %s", device_id, exc)
        store.side_faults.failed(
            Part.PLANS, exc, Use.READ, Part.PLANS.tables
        )  # the banner and /healthz say it
        return ""
    # with a line, its walker's name was read too (the walkers' roster): the part's every table
    read = Part.PLANS.tables if line is not None else plan_read(line)
    store.side_faults.works(Part.PLANS, Use.READ, read)
    return said


def plan_read(line: PlanLine | None) -> tuple[Table, ...]:
    """The tables of :attr:`Part.PLANS` a :func:`plan_line` that returned ``line`` is known
    to have read, which a read that worked says work again (and no other): the sessions
    always; the stage of the walker who walked last once there is a session, which a line
    says (None comes before any session too). A treadmill with no session yet reads no
    stage: its card said the stages read again while another treadmill's card could not read
    its walker's stage and went without its plan line, and as the fleet page draws every
    card in turn, the banner and /healthz never said it. A table read but not said here is
    said again by the housekeeping's look (:meth:`caregiver.storage.Store.probe_side_faults`)."""
    if line is None:
        return (Table.WALK_SESSIONS,)
    return (Table.WALK_SESSIONS, Table.WALKER_STAGES)


@dataclass(frozen=True, slots=True)
class PlanLine:
    """The card's plan line (:func:`card_plan`) before it names its walker: the live feed
    keeps it per device until a session is stored or a stage changes, and names the walker
    with the names it reads for the card's incident (:meth:`said`), so a card rebuilt on
    every change of the belt reads neither the sessions nor the stages again."""

    walker: str
    """Whose plan: the walker who walked last."""
    words: str
    """The plan in words."""

    def said(self, known: Sequence[tuple[str, str]]) -> str:
        """The line, naming the walker on a shared treadmill ("Anna's plan: ...") with the
        device's walkers ``known`` (:attr:`caregiver.walkers.Offered.walkers`)."""
        who = walkers.named(self.walker, known)
        return f"{who}'s plan: {self.words}" if who else f"Plan: {self.words}"


def plan_line(store: Store, device_id: str) -> PlanLine | None:
    """The plan of the walker who walked last: their progression stage's plan when the
    treadmill says they are on one that moves on by itself (:func:`core.plan_presets.
    stage_words`: what their next session walks); else, or for a stage whose plan is not known
    here or is held (a hold may be a plan set by hand), the plan their latest session walked
    (:func:`core.protocol.plan.plan_words`), by its name when its summary had no intervals.
    None before any session, and for one with neither. Raises :class:`StorageFault`."""
    newest = store.walk_sessions(device_id, 1)
    if not newest:
        return None
    latest = newest[0]
    stage = store.walker_stage(device_id, latest.walker)
    words = stage_words(stage) if stage is not None and stage.status != "held" else ""
    if not words:
        found = next(iter(store.walk_session_payloads(device_id, 1, latest.walker)), None)
        walked = walk_of(found) if found is not None else None
        if walked is not None and walked[0] == latest.id:
            words = plan_words(walked[1])
    words = words or latest.plan
    if not words:  # a summary naming no plan ("" is allowed) and without intervals
        return None
    return PlanLine(latest.walker, words)


STATUS_WORDS = {
    "completed": "Completed",
    "stopped": "Stopped before the end",
    "abandoned": "Ended after a long pause",
    "running": "Still running",
}
"""How each session status reads on the dashboard: the physio reads words, not the protocol's
enum (:data:`core.protocol.messages.RecordStatus`)."""
RESTARTED = "the treadmill restarted before the end was recorded"
"""Said after the status of an ``interrupted`` session: the monitor stopped (power cut, crash,
kill) before recording the end, and the next start closed the session with what its records
prove (docs/sessions.md "A monitor stopped mid-session")."""


def status_words(session: WalkSession) -> str:
    """ "Completed", "Stopped before the end — the treadmill restarted before the end was
    recorded": how the session ended, in plain words (a status this release does not know:
    "Ended"; the raw word stays in the row's ``data-status`` for support)."""
    said = STATUS_WORDS.get(session.status, "Ended")
    return f"{said} \u2014 {RESTARTED}" if session.interrupted else said


def _listed(
    weeks: Collection[WeekProgress], current: str, prescribed: Mapping[str, int] | None
) -> list[WeekProgress]:
    """The page's weeks, newest first: every week from the first session's to this one (a
    missed week listed, 0 done, not skipped); none without sessions (the page says "no
    sessions yet"). Sessions spanning more than :data:`core.progress.MAX_WEEKS` (one dated by a
    wrong clock) list their own weeks alone: the page still shows, and the report says why it
    cannot be made, where before every week since that date was made on each look."""
    if not weeks:
        return []
    try:
        return list(reversed(every_week(weeks, current, prescribed)))
    except WeekSpanTooLong:
        return sorted(weeks, key=lambda w: w.week, reverse=True)


def progress_view(
    sessions: Sequence[WalkSession],
    now: float,
    zone: dt.tzinfo,
    prescribed: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """What the progress page shows: this week against the goal, the weeks, the chart series,
    with weeks counted in ``zone``.

    ``sessions`` are the device's stored rows (any order); ``prescribed`` the weeks' sessions
    its progression prescribed, as its progress messages said (``Store.prescribed_weeks``:
    adherence counts against them, :func:`core.progress.prescribed_in`).
    """
    today = dt.datetime.fromtimestamp(now, zone)
    current = week_of(today, zone)
    weeks = {w.week: w for w in weekly_progress(sessions, zone, prescribed)}
    this_week = weeks.get(
        current,
        WeekProgress(current, 0, 0, 0.0, 0.0, prescribed=prescribed_in(current, prescribed or {})),
    )
    # the chart: every week (with or without sessions) from the first one to this one
    first = min([*weeks, current])
    start = max(week_start(first), week_start(current) - dt.timedelta(weeks=CHART_WEEKS - 1))
    labels: list[str] = []
    mondays: list[str] = []
    minutes: list[float] = []
    at_goal_counts: list[int] = []
    done_counts: list[int] = []
    longest: list[float] = []
    day = start
    while day <= week_start(current):
        key = week_of(dt.datetime.combine(day, dt.time(12), zone), zone)
        week = weeks.get(key)
        labels.append(week_label(key))
        mondays.append(week_start(key).isoformat())
        minutes.append(round(week.backward_s / 60, 1) if week else 0.0)
        at_goal_counts.append(week.at_goal if week else 0)
        done_counts.append(week.done if week else 0)
        longest.append(round(week.longest_backward_s / 60, 1) if week else 0.0)
        day += dt.timedelta(weeks=1)
    listed = _listed(list(weeks.values()), current, prescribed)
    return {
        "goal_minutes": GOAL_BACKWARD_MIN,
        "goal_sessions": GOAL_SESSIONS_PER_WEEK,
        "prescribed": this_week.prescribed,
        "milestone": milestone(weeks.values()),
        "milestone_weeks": MILESTONE_WEEKS,
        "this_week": this_week,
        "week_label": week_label(current),
        "zone": zone_said(zone, today),  # as the banner says it: "UTC", "CET"
        # newest first, every week from the first session's to this one: a missed week is
        # listed, 0 done, not skipped (none without sessions: the page says "no sessions yet")
        "weeks": listed,
        "at_goal": {s.id: at_goal(s) for s in sessions},
        "done": {s.id: done(s) for s in sessions},
        "status_words": {s.id: status_words(s) for s in sessions},
        "chart": {
            "labels": labels,
            # each week's Monday, for the browser to say as it says every date (time.js)
            "mondays": mondays,
            "backward_min": minutes,
            "at_goal": at_goal_counts,
            "done": done_counts,
            "prescribed": this_week.prescribed,
            "longest_min": longest,
            "goal_min": GOAL_BACKWARD_MIN * GOAL_SESSIONS_PER_WEEK,
            "goal_longest_min": GOAL_BACKWARD_MIN,
        },
    }
