"""``retroguard session start|pause|resume|stop|status|demo`` and ``retroguard sessions``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from core.progress import GOAL_BACKWARD_MIN, GOAL_SESSIONS_PER_WEEK, started_utc, weekly_progress
from core.zones import system_zone, zone_name
from firmware.storage.sessions import StoredSession, load_sessions

ACTIONS = ("start", "pause", "resume", "stop", "status", "demo")


def add_parser(sub: Any) -> None:
    """Register ``session`` and ``sessions`` on the ``retroguard`` subparsers."""
    p = sub.add_parser(
        "session",
        help="start, pause, resume or stop the guided session of the running monitor (local)",
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument(
        "--socket",
        type=Path,
        default=None,
        help="control socket (default: session.control_socket, else the runtime directory's)",
    )
    p.add_argument("-c", "--config", type=Path, default=None, help="the monitor's config file")
    p.add_argument("--speed", type=float, default=1.0, help="demo: times faster than real time")
    p.add_argument("--scale", type=float, default=60.0, help="demo: plan minutes per real second")
    p.add_argument("--plan", default=None, help="demo: preset or plan file (default: config's)")
    p.set_defaults(func=run_session_command)

    p = sub.add_parser("sessions", help="print the session log and weekly progress")
    p.add_argument("-c", "--config", type=Path, default=None, help="the monitor's config file")
    p.add_argument("--db", type=Path, default=None, help="database (default: the config's)")
    p.add_argument("--device", default=None, help="only this device id")
    p.set_defaults(func=run_sessions)


def _config(path: Path | None) -> Any:
    from firmware.config import Config, load_config

    if path is not None:
        return load_config(path)
    default = Path("/etc/retroguard/config.toml")
    return load_config(default) if default.exists() else Config()


def run_session_command(args: argparse.Namespace) -> int:
    if args.action == "demo":
        from tools.session_demo import run_guided_demo

        return run_guided_demo(speed=args.speed, time_scale=args.scale, plan=args.plan)
    from firmware.session.control import default_socket_path, send_command

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
        print(f"retroguard session: permission denied on {socket_path}", file=sys.stderr)
        return 1
    print(message)
    return 0 if ok else 1


def run_sessions(args: argparse.Namespace) -> int:
    database = args.db
    if database is None:
        database = Path(_config(args.config).storage.database)
    sessions = load_sessions(database, args.device)
    print_sessions(sessions, sys.stdout)
    return 0


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:4.1f}"


def print_sessions(
    sessions: Sequence[StoredSession], out: TextIO, zone: dt.tzinfo | None = None
) -> None:
    """The session log, then weekly progress against the 10-minute, 3-a-week goal, in
    ``zone`` (default: the system's): start times, and the weeks sessions count in."""
    if not sessions:
        out.write("No guided sessions recorded yet.\n")
        return
    zone = zone if zone is not None else system_zone()
    out.write(f"Times in {zone_name(zone)}.\n")
    out.write(
        "started           plan                 status     min  back  longest  steps  "
        "cadence  trips  stumbles\n"
    )
    for s in sessions:
        r = s.record
        started = started_utc(r).astimezone(zone)
        out.write(
            f"{started:%Y-%m-%d %H:%M}  {r.plan[:20]:20} {r.status:9} "
            f"{_minutes(r.done_s)}  {_minutes(r.backward_s)}  "
            f"{_minutes(r.longest_backward_s):>7}  {r.steps:5d}  "
            f"{r.cadence_spm:7.1f}  {r.trips:5d}  {r.stumbles:8d}\n"
        )
    out.write(
        f"\nWeekly progress (goal: {GOAL_BACKWARD_MIN:g} straight minutes backward, "
        f"{GOAL_SESSIONS_PER_WEEK} times a week)\n"
    )
    out.write("week        sessions  at goal  min backward  longest  goal met\n")
    for w in weekly_progress((s.record for s in sessions), zone):
        out.write(
            f"{w.week:10}  {w.sessions:8d}  {w.at_goal:7d}  {w.backward_s / 60:12.1f}  "
            f"{w.longest_backward_s / 60:7.1f}  {'yes' if w.goal_met else 'no'}\n"
        )
