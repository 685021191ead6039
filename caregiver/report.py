"""The physio's report on one walker of one device: what goes in the patient's file, as CSV
(:func:`report_csv`) and one PDF page (:mod:`caregiver.report_pdf`).

A shared treadmill has several walkers (their profiles on the device); a report is one
walker's sessions and incidents. An incident names its walker (the event's ``walker`` on the
wire); one stored before that (unknown walker) counts, on a device with several walkers, for
the walker during whose session it opened (:func:`incidents_during`); with one walker, for them.

Week by week: sessions, adherence (done of prescribed), sessions at goal and whether
the week was at goal, minutes backward, the longest backward stretch (``progression`` in the code),
trips, stumbles, falls (and of those, without recovery) and incidents, and the weekly
medians of balance and gait; then the weeks at goal toward the four-week milestone. Every
figure comes from the shared rules (:mod:`core.progress`, :mod:`core.gait_trends`), so the
report says what the dashboard, ``retroguard sessions`` and Home Assistant say.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from caregiver.localtime import day_words
from caregiver.progress import HISTORY_SESSIONS, session_walks
from caregiver.storage import Incident, Store, WalkSession
from caregiver.trends import SessionMeasures, Trend, measures_of, trends
from caregiver.walkers import weeks_zone
from core.progress import (
    GOAL_BACKWARD_MIN,
    GOAL_SESSIONS_PER_WEEK,
    Milestone,
    WeekProgress,
    every_week,
    milestone,
    utc_of,
    week_label,
    week_of,
    week_start,
    weekly_progress,
)
from core.protocol.plan import IntervalWalk, plan_words, weeks_stretch_s
from core.protocol.walker import DEFAULT_WALKER
from core.zones import zone_name

INCIDENT_LIMIT = 1000
"""The newest incidents a report reads (years of a walker's)."""
REPORT_PLANS = 3
"""The plans a report says in words, newest first (a page has room for a few lines)."""


@dataclass(frozen=True, slots=True)
class PlanWalked:
    """A plan the walker walked, as the report says it: its name, what it prescribes in words
    (:func:`core.protocol.plan.plan_words`, belt speed included) and its sessions."""

    name: str
    words: str
    sessions: int


def plans_walked(
    sessions: Sequence[WalkSession], walks: Mapping[str, tuple[IntervalWalk, ...]]
) -> tuple[PlanWalked, ...]:
    """The plans of ``sessions`` (``walks``: each one's intervals, by session id:
    :func:`caregiver.progress.session_walks`), newest first, at most :data:`REPORT_PLANS`:
    one per name and walk (a plan changed under its name is two), with its sessions. A
    session without its intervals (an older summary) is in none."""
    found: dict[tuple[str, str], int] = {}
    for s in sorted(sessions, key=lambda s: s.started_wall, reverse=True):
        words = plan_words(walks.get(s.id, ()))
        if words:
            found[(s.plan, words)] = found.get((s.plan, words), 0) + 1
    return tuple(PlanWalked(n, w, c) for (n, w), c in list(found.items())[:REPORT_PLANS])


@dataclass(frozen=True, slots=True)
class ReportWeek:
    progress: WeekProgress
    trips: int
    stumbles: int
    incidents: int
    """Incidents opened in the week (falls, stumbles, help requests, faults)."""
    falls: int = 0
    """Of the trips, falls (a stumble confirmed as a fall counts here, not as a stumble)."""
    no_recovery: int = 0
    """Of the falls, those after which the walker lay without recovering."""
    clock_not_set: int = 0
    """Sessions of the week recorded while the treadmill's clock was never synchronised
    (``wall_unsynced``): they may belong to another week."""
    closed_by_restart: int = 0
    """Sessions of the week the device closed at its next start (``interrupted``): the
    monitor stopped (power cut, crash, kill) before it recorded their end, so their figures
    are what was recorded until then (docs/sessions.md, "A monitor stopped mid-session")."""
    plan_stretch_s: float | None = None
    """The longest backward stretch the week's plans prescribe
    (:func:`core.protocol.plan.weeks_stretch_s`; None: not known, or no session)."""
    plans: tuple[tuple[str, str], ...] = ()
    """The plans the week's sessions walked, oldest first, once each: the plan's id (the name
    its sessions were recorded with) and what it prescribed in words
    (:func:`core.protocol.plan.plan_words`; "" for a session recorded without its
    intervals). A name alone ("Anna, week 3") says nothing in the patient's file."""

    @property
    def label(self) -> str:
        """ "30 Nov": the week by its Monday, as a chart's axis names it beside its year."""
        return week_label(self.progress.week)

    @property
    def monday(self) -> dt.date:
        """The week's first day, in the report's zone."""
        return week_start(self.progress.week)

    @property
    def day(self) -> str:
        """ "30 Nov 2026": the week by its Monday with its year (:func:`day_words`), as a
        report read next year, or spanning a year's end, must say it ("30 Nov" alone was
        which year's?)."""
        return day_words(self.monday)


@dataclass(frozen=True, slots=True)
class Report:
    device_id: str
    walker: str
    """Who the report is about: the device's name until walker profiles exist."""
    zone: str
    generated: dt.datetime
    weeks: list[ReportWeek]
    """Oldest first, every week from the first session's to the generation's; a walker
    without sessions: the generation's week alone (their sessions prescribed, none done)."""
    milestone: Milestone
    trends: list[Trend]
    incidents: list[Incident]
    """Newest first."""
    walker_id: str = DEFAULT_WALKER.id
    """The walker profile's id ("default" on a device with one walker)."""
    shared: bool = False
    """The device has other walkers: the report is one of theirs, and says whose even for the
    default walker (its file name and the PDF name the profile), as the dashboard names the
    default walker of a shared treadmill (:func:`caregiver.walkers.named`)."""
    plans: tuple[PlanWalked, ...] = ()
    """The plans walked, newest first, in words (:func:`plans_walked`): a name alone ("Anna,
    week 3") says nothing in the patient's file of what was prescribed."""

    @property
    def sessions(self) -> int:
        return sum(w.progress.sessions for w in self.weeks)

    @property
    def period(self) -> str:
        if not self.sessions:
            return "no sessions yet"
        first, last = self.weeks[0].progress.week, self.weeks[-1].progress.week
        end = week_start(last) + dt.timedelta(days=6)
        return f"{day_words(week_start(first))} to {day_words(end)}"


def make_report(
    device_id: str,
    walker: str,
    sessions: Sequence[WalkSession],
    measures: Sequence[SessionMeasures],
    incidents: Sequence[Incident],
    zone: dt.tzinfo,
    now: float,
    prescribed: Mapping[str, int] | None = None,
    walks: Mapping[str, tuple[IntervalWalk, ...]] | None = None,
) -> Report:
    """The report from the stored rows (weeks counted in ``zone``); weeks without a session
    between the first one and ``now`` are in it, with zero sessions done, and without any
    session the week of ``now`` is (adherence 0 of its prescribed, not nothing). Adherence
    counts against ``prescribed`` (the weeks' sessions the progression prescribed; none: 3).
    ``walks``: each session's intervals by id (:func:`caregiver.progress.session_walks`), for
    the plans each week walked (:attr:`ReportWeek.plans`)."""
    generated = dt.datetime.fromtimestamp(now, zone)
    by_week = {w.week: w for w in weekly_progress(sessions, zone, prescribed)}
    trips: dict[str, list[int]] = {}
    for s in sessions:
        counts = trips.setdefault(week_of(utc_of(s.started_wall), zone), [0, 0, 0, 0, 0, 0])
        counts[0] += s.trips
        counts[1] += s.stumbles
        counts[2] += s.falls
        counts[3] += s.no_recovery
        counts[4] += 1 if s.wall_unsynced else 0
        counts[5] += 1 if s.interrupted else 0
    walked: dict[str, dict[tuple[str, str], None]] = {}
    by_week_sessions: dict[str, list[WalkSession]] = {}
    for s in sorted(sessions, key=lambda s: s.started_wall):
        words = plan_words((walks or {}).get(s.id, ()))
        week = week_of(utc_of(s.started_wall), zone)
        walked.setdefault(week, {})[(s.plan, words)] = None
        by_week_sessions.setdefault(week, []).append(s)
    opened: dict[str, int] = {}
    for i in incidents:
        week = week_of(dt.datetime.fromtimestamp(i.opened_at, dt.UTC), zone)
        opened[week] = opened.get(week, 0) + 1
    weeks: list[ReportWeek] = []
    for progress in every_week(by_week.values(), week_of(generated, zone), prescribed):
        t, st, falls, no_recovery, unset, restart = trips.get(progress.week, [0] * 6)
        weeks.append(
            ReportWeek(
                progress,
                t,
                st,
                opened.get(progress.week, 0),
                falls,
                no_recovery,
                unset,
                restart,
                plan_stretch_s=(
                    weeks_stretch_s(walks.get(s.id, ()) for s in by_week_sessions[progress.week])
                    if walks is not None and progress.week in by_week_sessions
                    else None
                ),
                plans=tuple(walked.get(progress.week, {})),
            )
        )
    return Report(
        device_id=device_id,
        walker=walker,
        zone=zone_name(zone),
        generated=generated,
        weeks=weeks,
        milestone=milestone(by_week.values()),
        trends=trends(measures, zone),
        incidents=sorted(incidents, key=lambda i: i.opened_at, reverse=True),
    )


def report_for(
    store: Store,
    device_id: str,
    walker: str,
    zone: dt.tzinfo,
    now: float,
    walker_id: str | None = None,
    *,
    shared: bool = False,
) -> Report:
    """The report of one device (``walker_id``'s sessions, when given) from the store (its
    named reads only); ``walker`` is the name it is about; ``shared``: the device has other
    walkers (:attr:`Report.shared`). Weeks are the walker's: in the treadmill's zone when it
    named one, else in ``zone`` (``[server] timezone``: :func:`caregiver.walkers.weeks_zone`)."""
    zone = weeks_zone(store, device_id, zone)
    sessions = store.walk_sessions(device_id, HISTORY_SESSIONS, walker_id)
    incidents = store.incidents_for(device_id, INCIDENT_LIMIT)
    if walker_id is not None:
        incidents = walker_incidents(
            incidents, walker_id, sessions, several=len(store.walkers(device_id)) > 1
        )
    payloads = store.walk_session_payloads(device_id, HISTORY_SESSIONS, walker_id)
    walks = session_walks(payloads)
    report = make_report(
        device_id,
        walker,
        sessions,
        measures_of(payloads),
        incidents,
        zone,
        now,
        store.prescribed_weeks(device_id, walker_id or DEFAULT_WALKER.id),
        walks,
    )
    return replace(
        report,
        walker_id=walker_id or DEFAULT_WALKER.id,
        shared=shared,
        plans=plans_walked(sessions, walks),
    )


def walker_incidents(
    incidents: Sequence[Incident],
    walker_id: str,
    sessions: Sequence[WalkSession],
    *,
    several: bool,
) -> list[Incident]:
    """``walker_id``'s incidents: those naming them; of those from before incidents named
    their walker (caregiver schema 10), on a device with ``several`` walkers, the ones opened
    during ``sessions`` (theirs, :func:`incidents_during`), else all of them."""
    named = [i for i in incidents if i.walker == walker_id]
    unknown = [i for i in incidents if i.walker is None]
    return named + (incidents_during(unknown, sessions) if several else unknown)


SESSION_END_MARGIN_S = 300.0
"""An incident opened this long after a session's end still belongs to it (a fall at the end,
the help asked for while getting off the belt)."""


def incidents_during(
    incidents: Sequence[Incident], sessions: Sequence[WalkSession]
) -> list[Incident]:
    """The incidents opened during one of ``sessions`` (from its start to its end plus
    :data:`SESSION_END_MARGIN_S`; a session without an end: the day after its start)."""
    spans = []
    for s in sessions:
        start = utc_of(s.started_wall).timestamp()
        try:
            end = utc_of(s.ended_wall).timestamp() + SESSION_END_MARGIN_S
        except ValueError:
            end = start + 86400.0
        spans.append((start, end))
    return [i for i in incidents if any(a <= i.opened_at <= b for a, b in spans)]


def _cell(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def week_starts_column(zone: str) -> str:
    """The CSV's column of each week's Monday, naming the zone its weeks are counted in
    ("week_starts (weeks counted in America/New_York)"): the file carries dates, no
    times of day, and a session late on a Sunday is in one week or the next by that zone
    (the treadmill's, :func:`caregiver.walkers.weeks_zone`), which the file did not say.
    The IANA name, not "EST": the sheet spans summers and winters, and a program reads it."""
    return f"week_starts (weeks counted in {zone})"


RESTART_COLUMN = "sessions_closed_by_restart (monitor stopped before recording the end)"
"""The CSV's column of :attr:`ReportWeek.closed_by_restart`."""
PLAN_WORDS_COLUMN = "plan_walked (in words)"
"""The CSV's column of what the week's plans prescribed (:attr:`ReportWeek.plans`)."""
PLAN_ID_COLUMN = "plan_id"
"""The CSV's column of the week's plans' ids, for a program that reads the sheet."""
PLANS_BETWEEN = " | "
"""Between a week's plans in those columns, oldest first (a plan changed mid-week)."""


def _plan_cells(plans: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """A week's plans as its two cells: the words (each after its id when the week walked
    more than one) and the ids, as text (:func:`_text_cell`)."""
    if len(plans) == 1:
        words = plans[0][1]
    else:
        words = PLANS_BETWEEN.join(f"{n}: {w}" if w else n for n, w in plans)
    return _text_cell(words), _text_cell(PLANS_BETWEEN.join(dict.fromkeys(n for n, _ in plans)))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads a cell beginning with as a formula."""


def _text_cell(text: str) -> str:
    """A free-text cell (a plan's name, from the treadmill's plan file) a spreadsheet keeps as
    text: one beginning as a formula ("-2/+2 weeks", "=HYPERLINK(...)") behind an apostrophe,
    as spreadsheets mark text; the file's numbers (a negative median) are never passed here."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def report_csv(report: Report) -> str:
    """One row a week (oldest first): a table a spreadsheet opens as it is. The balance and
    gait columns are the week's median (empty: not measured that week); their noise (MDC95)
    is in the header, so no change is read without it. The sessions closed by a restart
    (:attr:`ReportWeek.closed_by_restart`) come after the trends, and the plans walked
    (:attr:`ReportWeek.plans`: in words, then their ids) after it: each came later, and a
    sheet that reads the columns before them by position still reads them. The zone the weeks
    are counted in is in the header of their Mondays' column (:func:`week_starts_column`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    trend_columns = [
        f"{t.metric.label} median ({t.unit or 'ratio'}; MDC95 {t.noise})" for t in report.trends
    ]
    writer.writerow(
        [
            "week",
            week_starts_column(report.zone),
            "sessions",
            "sessions_done",
            "sessions_prescribed",
            f"sessions_at_goal ({GOAL_BACKWARD_MIN:g} min straight backward)",
            f"week_at_goal ({GOAL_SESSIONS_PER_WEEK} sessions at goal)",
            "backward_min",
            "longest_backward_min",
            "trips",
            "stumbles",
            "falls",
            "falls_no_recovery",
            "incidents",
            "sessions_clock_not_set (their week may be wrong)",
            *trend_columns,
            RESTART_COLUMN,
            PLAN_WORDS_COLUMN,
            PLAN_ID_COLUMN,
        ]
    )
    medians = [{w.week: w.median for w in t.weeks} for t in report.trends]
    for w in report.weeks:
        p = w.progress
        writer.writerow(
            [
                p.week,
                week_start(p.week).isoformat(),
                p.sessions,
                p.done,
                p.prescribed,
                p.at_goal,
                "yes" if p.goal_met else "no",
                f"{p.backward_s / 60:.1f}",
                # no session, no stretch: empty, as the page and the PDF say "none", not 0.0
                f"{p.longest_backward_s / 60:.1f}" if p.sessions else "",
                w.trips,
                w.stumbles,
                w.falls,
                w.no_recovery,
                w.incidents,
                w.clock_not_set,
                *(_cell(m.get(p.week)) for m in medians),
                w.closed_by_restart,
                *_plan_cells(w.plans),
            ]
        )
    return out.getvalue()


def file_name(report: Report, extension: str) -> str:
    """ "retroguard-treadmill-1-2026-12-02.pdf": safe in a Content-Disposition header. The
    walker's id follows the device's for any walker of a shared treadmill, the default one
    too: "retroguard-tm-2-2026-12-02.csv" read as the whole treadmill's report when it held
    only the sessions walked with no profile chosen."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in report.device_id)
    if report.walker_id != DEFAULT_WALKER.id or report.shared:
        safe += f"-{report.walker_id}"  # a walker id is safe: [a-z0-9_-]
    return f"retroguard-{safe}-{report.generated:%Y-%m-%d}.{extension}"
