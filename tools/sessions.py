"""``retroguard session start|pause|resume|stop|status|demo`` and ``retroguard sessions``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from core.cliargs import finite_float
from core.demo_limits import SCALE_HELP, SPEED_HELP
from core.gait_trends import METRICS, change, noise_said, weekly
from core.progress import (
    GOAL_BACKWARD_MIN,
    GOAL_SESSIONS_PER_WEEK,
    PRESCRIBED_SESSIONS_PER_WEEK,
    WeekSpanTooLong,
    describe_week,
    every_week,
    milestone,
    started_utc,
    week_of,
    weekly_progress,
    weeks_at_goal_words,
)
from core.protocol.messages import BalanceFigures, GaitFigures, SessionRecord
from core.protocol.plan import plan_words, weeks_stretch_s
from core.zones import system_zone, zones_said
from firmware.session.summary import figures_line, week_line
from firmware.storage.sessions import INTERRUPTED_NOTE, StoredSession, load_sessions
from tools.device_db import INSTALLED_COMMAND, SERVICE_USER, database_key, database_problem

ACTIONS = ("start", "pause", "resume", "stop", "status", "demo")
UNSYNCED_MARK = "*"
UNSYNCED_NOTE = (
    f"{UNSYNCED_MARK} the device's clock was not synchronised (no NTP) during this session: "
    "its start time, and the week it counts in, may be wrong."
)
"""Marks a session recorded with ``wall_unsynced`` (docs/sessions.md, "Wall clock")."""
INTERRUPTED_MARK = "^"
INTERRUPTED_TABLE_NOTE = (
    f"{INTERRUPTED_MARK} {INTERRUPTED_NOTE}; the next start closed it with what its last "
    "record shows (completed: every interval walked)."
)
"""Marks a session a restart closed (``interrupted``: docs/sessions.md, "A monitor stopped
mid-session")."""


def add_parser(sub: Any) -> None:
    """Register ``session`` and ``sessions`` on the ``retroguard`` subparsers."""
    p = sub.add_parser(
        "session",
        help="start, pause, resume or stop the guided session of the running monitor (local)",
        description=(
            "Start, pause, resume or stop the guided session of the monitor running on this "
            "machine, through its local control socket (no network message can), or print its "
            "status; stop then prints the session's summary. demo runs a session on simulated "
            "hardware. Exit 0 when the monitor did it, 1 when it refused or is not running."
        ),
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument(
        "--socket",
        type=Path,
        default=None,
        help="control socket (default: session.control_socket, else the runtime directory's)",
    )
    p.add_argument("-c", "--config", type=Path, default=None, help="the monitor's config file")
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="stop: the database the session's summary is read from (default: the config's); "
        "demo: the database the session is stored in, in a folder that exists (default: a "
        "temporary file)",
    )
    p.add_argument("--speed", type=finite_float, default=None, help=f"demo: {SPEED_HELP}")
    p.add_argument("--scale", type=finite_float, default=None, help=SCALE_HELP)
    p.add_argument(
        "--plan",
        default=None,
        help="demo: a preset, or a plan file (.toml or .json); default: alternate-2-2, or "
        "with --db the chosen walker's assigned plan, which a session walks (then --plan "
        "is refused)",
    )
    p.add_argument(
        "--balance",
        action="store_true",
        help="demo: start in standby, so the session opens with the 30 s balance check "
        "(real time); with --scale 6 each interval is long enough for gait figures",
    )
    p.set_defaults(func=run_session_command)

    p = sub.add_parser(
        "sessions",
        help="print the session log and weekly progress",
        description=(
            "Print the guided sessions stored in the monitor's database (--db, else the "
            "config's storage.database), one log per walker and treadmill: each session's "
            "figures, balance checks and gait, then the weeks' progress toward 10 minutes "
            "backward and the sessions a week prescribed (3 without a progression). Only reads: "
            "a database that is not there is refused, not created. Exit 0, or 2 when the "
            "database cannot be read or --walker names no walker of it."
        ),
    )
    p.add_argument("-c", "--config", type=Path, default=None, help="the monitor's config file")
    p.add_argument("--db", type=Path, default=None, help="database (default: the config's)")
    p.add_argument("--device", default=None, help="only this device id")
    p.add_argument("--walker", default=None, help="only this walker id (retroguard walker list)")
    p.add_argument(
        "--intervals", action="store_true", help="also the gait measured in every interval"
    )
    p.set_defaults(func=run_sessions)


def _config(path: Path | None) -> Any:
    """The config at ``path``, else the installed one when it is there, else the defaults. One
    this user may not read (the installed one is root:retroguard 0640) is refused saying how
    to run the command instead, not with "permission denied" alone."""
    from core.errors import ConfigError
    from firmware.config import Config, load_config

    if path is None:
        path = Path("/etc/retroguard/config.toml")
        if not path.exists():
            return Config()
    try:
        return load_config(path)
    except ConfigError as exc:
        if os.path.exists(path) and not os.access(path, os.R_OK):
            raise ConfigError(
                [
                    *exc.problems,
                    f"(only root and the service's user, {SERVICE_USER}, may read the "
                    "monitor's config: run the command with sudo)",
                ]
            ) from None
        raise


_OPTION_ACTIONS = {
    "--socket": ("start", "pause", "resume", "stop", "status"),
    "--config": ("start", "pause", "resume", "stop", "status"),
    "--db": ("stop", "demo"),
    "--speed": ("demo",),
    "--scale": ("demo",),
    "--plan": ("demo",),
    "--balance": ("demo",),
}
"""Which actions read each option of ``retroguard session``: one given to another action was
taken and ignored (``session demo --db PATH`` stored nothing there; ``session start --plan
X`` started the monitor's plan, not X)."""


def _unused_options(args: argparse.Namespace) -> list[str]:
    """The options given that ``args.action`` does not read."""
    given = {
        "--socket": args.socket is not None,
        "--config": args.config is not None,
        "--db": args.db is not None,
        "--speed": args.speed is not None,
        "--scale": args.scale is not None,
        "--plan": args.plan is not None,
        "--balance": args.balance,
    }
    return [o for o, set_ in given.items() if set_ and args.action not in _OPTION_ACTIONS[o]]


def run_session_command(args: argparse.Namespace) -> int:
    unused = _unused_options(args)
    if unused:
        named = ", ".join(f"{o} (for {', '.join(_OPTION_ACTIONS[o])})" for o in unused)
        print(
            f"retroguard session {args.action}: not an option of {args.action}: {named}",
            file=sys.stderr,
        )
        return 2
    if args.action == "demo":
        from tools.session_demo import run_guided_demo

        return run_guided_demo(
            speed=1.0 if args.speed is None else args.speed,
            time_scale=60.0 if args.scale is None else args.scale,
            plan=args.plan,
            balance=args.balance,
            database=args.db,
        )
    from firmware.session.control import default_socket_path, send_command, stopped_session

    socket_path = args.socket
    if socket_path is None:
        config = _config(args.config)
        socket_path = Path(config.session.control_socket or default_socket_path())
    try:
        ok, message = send_command(socket_path, args.action)
    except (FileNotFoundError, ConnectionRefusedError):
        print(
            f"retroguard session: no monitor is listening on {socket_path} "
            "(is `retroguard run` running, with sessions enabled?)",
            file=sys.stderr,
        )
        return 1
    except PermissionError:
        print(
            f"retroguard session: permission denied on {socket_path}: only root and the "
            f"service's user, {SERVICE_USER}, may reach the monitor's control socket (its "
            f"runtime directory is mode 0750): sudo {INSTALLED_COMMAND} session {args.action}",
            file=sys.stderr,
        )
        return 1
    print(message)
    if ok and args.action == "stop":
        session_id = stopped_session(message)
        if session_id is not None:
            _print_stopped(session_id, args.db, args.config, sys.stdout)
    return 0 if ok else 1


SUMMARY_WAIT_S = 5.0
"""How long ``retroguard session stop`` waits for the stopped session's record in the database
(the courier stores it a moment after the loop's answer; it reads the file, it never asks the
monitor)."""
_SUMMARY_POLL_S = 0.1


def _print_stopped(
    session_id: str,
    database: Path | None,
    config_path: Path | None,
    out: TextIO,
) -> None:
    """The stopped session's end summary (:func:`print_session_end`), read from the monitor's
    database (``database``, else the config's) once its record there says it ended; one line
    saying why not otherwise. The session is stopped whatever this finds."""
    import sqlite3

    from core.errors import ConfigError

    try:
        config = _config(config_path)
    except (ConfigError, OSError) as exc:
        out.write(f"No session summary: the config could not be read ({exc}).\n")
        return
    key = database_key(database)
    if database is None:
        database = Path(config.storage.database)
    problem = database_problem(database, reads_only=True, key=key)
    if problem is not None:
        out.write(f"No session summary: {problem}.\n")
        return
    wait_s = SUMMARY_WAIT_S
    deadline = time.monotonic() + wait_s
    try:
        while True:
            sessions = load_sessions(database)
            record = next((s.record for s in sessions if s.record.id == session_id), None)
            if record is not None and record.status != "running":
                print_session_end(database, record, sessions, out, mqtt=bool(config.mqtt.host))
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(_SUMMARY_POLL_S)
    except sqlite3.Error as exc:
        out.write(f"No session summary: {database}: {exc}.\n")
        return
    out.write(
        f"No session summary: the stopped session's record was not in {database} within "
        f"{wait_s:g} s (retroguard sessions shows it once it is stored).\n"
    )


def print_session_end(
    database: str | Path,
    record: SessionRecord,
    sessions: Sequence[StoredSession],
    out: TextIO,
    *,
    mqtt: bool = False,
) -> None:
    """The device's session summary at a session's end (``retroguard session stop``, the session
    demo): the session's figures, then its week in the physio's terms for its walker on its
    treadmill (:func:`core.progress.describe_week`): sessions done of those the walker's
    progression prescribed, the longest backward stretch against 10 minutes, the weeks at goal
    toward the milestone. ``sessions`` are the stored ones (``record`` among them or not: it
    counts once, as given); ``mqtt``: the summary was queued for the broker too."""
    out.write(
        f"{figures_line(record)} Stored in the sessions table"
        f"{' and queued for MQTT' if mqtt else ''}.\n"
    )
    zone = system_zone()
    stored = (s.record for s in sessions)
    prescribed = _prescribed(database, zone, record.walker.id)
    out.write(week_line(record, stored, prescribed, zone) + "\n")


def run_sessions(args: argparse.Namespace) -> int:
    database = args.db
    if database is None:
        database = Path(_config(args.config).storage.database)
    problem = database_problem(database, reads_only=True, key=database_key(args.db))
    if problem is not None:
        print(f"retroguard sessions: {problem}", file=sys.stderr)
        return 2
    sessions = load_sessions(database, args.device, args.walker)
    zone = system_zone()
    groups = by_walker_and_treadmill(sessions)
    if not groups and args.walker is not None:
        unknown = _unknown_walker(database, args.walker)
        if unknown is not None:
            print(f"retroguard sessions: --walker: {unknown}", file=sys.stderr)
            return 2
    if not groups:
        only = "".join(
            f" for {what} {value}"
            for what, value in (("device", args.device), ("walker", args.walker))
            if value is not None
        )
        sys.stdout.write(f"No guided sessions recorded yet in {database}{only}.\n")
    for n, ((device, walker_id), group) in enumerate(groups.items()):
        walker = group[-1].record.walker
        sys.stdout.write(
            f"{'' if n == 0 else chr(10)}== {walker.name} ({walker.id}) on treadmill {device}: "
            f"{len(group)} session{'' if len(group) == 1 else 's'} ==\n"
        )
        print_sessions(
            group,
            sys.stdout,
            zone,
            intervals=args.intervals,
            prescribed=_prescribed(database, zone, walker_id),
        )
    return 0


def _unknown_walker(database: str | Path, walker: str) -> str | None:
    """Why ``walker`` is no walker of this database (None when it is one, removed ones
    included): a mistyped ``--walker`` is named, not answered "no sessions recorded yet" as
    if the walker had not walked (``plan`` and ``caregiver report`` refuse it alike)."""
    from firmware.storage.database import connect
    from firmware.storage.walkers import walker_names

    conn = connect(database)
    try:
        names = walker_names(conn)
    finally:
        conn.close()
    if walker in names:
        return None
    return f"no walker {walker!r} here ({', '.join(names)}; retroguard walker list)"


def by_walker_and_treadmill(
    sessions: Sequence[StoredSession],
) -> dict[tuple[str, str], list[StoredSession]]:
    """Sessions by (treadmill, walker), each group oldest first, walkers in order of their
    first session: a clinic treadmill shared by five walkers is five logs, five weeks' goals."""
    groups: dict[tuple[str, str], list[StoredSession]] = {}
    for s in sessions:
        groups.setdefault((s.record.device_id, s.record.walker.id), []).append(s)
    return groups


def _prescribed(database: str | Path, zone: dt.tzinfo, walker: str) -> dict[str, int]:
    """Week -> the sessions the walker's progression prescribed in it (none: no progression, or
    no database yet)."""
    from firmware.storage.database import connect
    from firmware.storage.progressions import prescribed_by_week

    if not Path(database).exists():
        return {}
    conn = connect(Path(database))
    try:
        return prescribed_by_week(conn, zone, walker)
    finally:
        conn.close()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:4.1f}"


def print_sessions(
    sessions: Sequence[StoredSession],
    out: TextIO,
    zone: dt.tzinfo | None = None,
    *,
    intervals: bool = False,
    prescribed: Mapping[str, int] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """The session log, the balance checks and gait (:func:`print_measures`), then weekly
    progress against the 10-minute, 3-a-week goal, in ``zone`` (default: the system's):
    start times, and the weeks sessions count in. Adherence counts against ``prescribed``
    (week -> the sessions the progression's stage prescribed: :func:`core.progress.prescribed_in`;
    none: 3 a week). The weekly table has every week from the first session's to ``now``'s
    (default: now), a week without a session as 0 done (:func:`core.progress.every_week`)."""
    if not sessions:
        out.write("No guided sessions recorded yet.\n")
        return
    zone = zone if zone is not None else system_zone()
    # named as the dashboard and the PDF name it ("CET", "CEST"), not its IANA key
    out.write(f"Times in {zones_said(zone, (started_utc(s.record) for s in sessions))}.\n")
    out.write(
        "started           plan                 status     min  back  longest  steps  "
        "cadence  trips  stumbles  falls  no recovery\n"
    )
    for s in sessions:
        r = s.record
        started = started_utc(r).astimezone(zone)
        out.write(
            f"{started:%Y-%m-%d %H:%M}{UNSYNCED_MARK if r.wall_unsynced else ' '} "
            f"{r.plan[:20]:20} {r.status:9}{INTERRUPTED_MARK if r.interrupted else ' '}"
            f"{_minutes(r.done_s)}  {_minutes(r.backward_s)}  "
            f"{_minutes(r.longest_backward_s):>7}  {r.steps:5d}  "
            f"{r.cadence_spm:7.1f}  {r.trips:5d}  {r.stumbles:8d}  {r.fall_count:5d}  "
            f"{r.no_recovery:11d}\n"
        )
    if any(s.record.wall_unsynced for s in sessions):
        out.write(UNSYNCED_NOTE + "\n")
    if any(s.record.interrupted for s in sessions):
        out.write(INTERRUPTED_TABLE_NOTE + "\n")
    print_plans_walked(sessions, out)
    print_measures(sessions, out, zone, intervals=intervals)
    out.write(
        f"\nWeekly progress (goal: {GOAL_BACKWARD_MIN:g} straight minutes backward, "
        f"{GOAL_SESSIONS_PER_WEEK} times a week)\n"
    )
    weeks = weekly_progress((s.record for s in sessions), zone, prescribed)
    reached = milestone(weeks)
    out.write(
        "Adherence: sessions done (plan walked through; a day counts once) of those "
        "prescribed (the progression "
        f"stage's count that week, else {PRESCRIBED_SESSIONS_PER_WEEK}). "
        f"Progression: the longest backward stretch against {GOAL_BACKWARD_MIN:g} "
        "min.\n"
    )
    current = week_of(now if now is not None else dt.datetime.now(dt.UTC), zone)
    try:
        listed = every_week(weeks, current, prescribed)
        span_note = ""
    except WeekSpanTooLong as exc:  # a wrong clock's date: its weeks alone, and why
        span_note = f"(Only the weeks with sessions: {exc}.)\n"
        listed = weeks
    # this week in the words of the progress page, the report and the session summary
    # (core.progress.describe_week): a 2/2 walker's stretch is not "2.0 of 10 min"
    this_week = next((w for w in listed if w.week == current), None)
    if this_week is None:  # only the weeks with sessions, none this week
        out.write(weeks_at_goal_words(reached) + "\n")
    else:
        walks = [
            [(i.direction, i.planned_s, i.speed) for i in s.record.intervals]
            for s in sessions
            if week_of(started_utc(s.record), zone) == current
        ]
        out.write(describe_week(this_week, reached, weeks_stretch_s(walks)) + "\n")
    out.write(span_note)
    out.write("week        sessions  at goal  min backward  longest  done  goal met\n")
    for w in listed:
        out.write(
            f"{w.week:10}  {w.sessions:8d}  {w.at_goal:7d}  {w.backward_s / 60:12.1f}  "
            f"{w.longest_backward_s / 60:7.1f}  {w.done:>2d}/{w.prescribed:<2d} "
            f"{'yes' if w.goal_met else 'no'}\n"
        )


def print_plans_walked(sessions: Sequence[StoredSession], out: TextIO) -> None:
    """What each plan in the table prescribed, in words (the dashboard's:
    :func:`core.protocol.plan.plan_words`), from the intervals the sessions kept: the table
    has room for a plan's name only, and a name ("Anna, week 3") says nothing of it. A name
    walked with other intervals (a plan changed under its name) is listed once for each."""
    said: dict[tuple[str, str], None] = {}
    for s in sessions:
        walk = [(i.direction, i.planned_s, i.speed) for i in s.record.intervals]
        words = plan_words(walk)
        if words:
            said.setdefault((s.record.plan, words), None)
    if said:
        out.write("Plans walked:\n")
        for plan, words in said:
            out.write(f"  {plan}: {words}\n")


def _n(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def describe_balance(b: BalanceFigures) -> str:
    """One balance check in a line, with units (and what was not measured, and why)."""
    if b.status != "measured":
        why = "the walker moved" if b.status == "moved" else "interrupted (armed or stopped)"
        return f"{b.condition}: not measured, {why}"
    if b.rms_ap_ms2 is None and b.rms_ml_ms2 is None:
        # docs/gait.md: AP and ML need the walking axes (imu.mounting, or learned from walking).
        why = (
            "imu.mounting is unknown and the walking axes are learned from walking, after the check"
            if b.axes == "unknown"
            else "not measured"
        )
        sway = f"sway RMS {_n(b.rms_ms2, '.3f')} m/s² (AP and ML apart: {why})"
    else:
        sway = f"sway RMS AP {_n(b.rms_ap_ms2, '.3f')} ML {_n(b.rms_ml_ms2, '.3f')} m/s²"
    return (
        f"{b.condition}: {sway}, "
        f"path {_n(b.path_ms2, '.2f')} m/s², ellipse {_n(b.ellipse_area_m2s4, '.4f')} m²/s⁴, "
        f"jerk {_n(b.jerk_m2s5, '.2f')} m²/s⁵ (noise floor {_n(b.noise_floor_ms2, '.3f')} m/s²)"
    )


def describe_gait(g: GaitFigures) -> str:
    """One interval's (or direction's) gait in a line, with units."""
    if g.cadence_spm is None:
        return (
            f"{g.analysed_s:.0f} s analysed, {g.steady_s:.0f} s steady: "
            "too little steady walking to measure"
        )
    return (
        f"{g.steps} steady steps ({100 * g.steady_share:.0f} % steady): "
        f"cadence {_n(g.cadence_spm, '.1f')}/min, step time {_n(g.step_time_s, '.3f')} s "
        f"CV {_n(g.step_time_cv_pct, '.1f')} %, asymmetry {_n(g.step_asymmetry_pct, '.1f')} %, "
        f"regularity step {_n(g.step_regularity, '.2f')} stride {_n(g.stride_regularity, '.2f')}, "
        f"harmonic ratio V {_n(g.harmonic_ratio_v, '.2f')}, "
        f"trunk RMS AP {_n(g.rms_ap_ms2, '.2f')} ML {_n(g.rms_ml_ms2, '.2f')} m/s²"
    )


def print_measures(
    sessions: Sequence[StoredSession],
    out: TextIO,
    zone: dt.tzinfo,
    *,
    intervals: bool = False,
) -> None:
    """Each session's balance check and gait, then weekly medians (weeks in ``zone``) with
    their noise band."""
    records = [s.record for s in sessions]
    if not any(r.balance or r.gait_backward or r.gait_forward for r in records):
        return
    out.write("\nBalance check and gait (docs/gait.md: what they are and are not)\n")
    for s in sessions:
        r = s.record
        if not (r.balance or r.gait_backward or r.gait_forward):
            continue
        out.write(f"{started_utc(r).astimezone(zone):%Y-%m-%d %H:%M}\n")
        for b in r.balance:
            out.write(f"  balance {describe_balance(b)}\n")
        for name, g in (("backward", r.gait_backward), ("forward", r.gait_forward)):
            if g is not None:
                out.write(f"  {name:8} {describe_gait(g)}\n")
        if intervals:
            for i in r.intervals:
                if i.gait is not None:
                    out.write(
                        f"    interval {i.index + 1} {i.direction:8} {describe_gait(i.gait)}\n"
                    )
    trends = [(metric, weeks) for metric in METRICS if (weeks := weekly(metric, records, zone))]
    if trends:
        out.write(
            "\nWeekly medians [95 % band]; a change counts only beyond the metric's "
            "minimal detectable change (MDC95)\n"
        )
    for metric, weeks in trends:
        unit = f" {metric.unit}" if metric.unit else ""
        cells = ", ".join(
            f"{w.week} {w.median:.3g} [{w.low:.3g}-{w.high:.3g}] n={w.sessions}" for w in weeks
        )
        out.write(f"  {metric.label}{unit}: {cells}\n")
        if len(weeks) >= 2:
            c = change(metric, weeks[0], weeks[-1])
            out.write(
                f"    {c.from_week} to {c.to_week}: {c.delta:+.3g}{unit} "
                f"(MDC95 {noise_said(c.mdc95)}{unit}): {c.verdict}\n"
            )
