"""``retroguard plan show|set|clear|presets|progression``: a walker's session plan (``--walker``;
default: the default walker) or progression on this treadmill, set locally.

The same store as a plan sent over MQTT (``cmd/plan``, the dashboard's plan
form): a row in the device database (:mod:`firmware.storage.plans`). A
running monitor's courier notices the new row within a second and hands the
plan to the loop, which uses it from the next session start — the monitor is
not restarted, the relay is not touched, a session under way keeps its plan.
Without a row, the config's ``session.plan`` is in force.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path
from typing import Any, TextIO

from core.cliargs import unreachable
from core.errors import ConfigError
from core.plan_presets import PRESETS, PROGRESSIONS
from core.progress import utc_of
from core.protocol.messages import restored_words
from core.protocol.payloads import wall_now
from core.protocol.plan import (
    Plan,
    PlanInvalid,
    Progression,
    Stage,
    duration_words,
    plan_words,
    progression_from_builtins,
)
from core.protocol.walker import DEFAULT_WALKER_ID
from core.tomlschema import read_json
from core.zones import system_zone, zone_said, zones_said
from tools.device_db import add_common_options, database_key, open_device_database


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="a walker's session plan or progression: show or set (from their next session)",
        description=(
            "Show or set a walker's session plan (a preset, or a plan file checked field by "
            "field) or progression, in the device database. A new plan takes effect at that "
            "walker's next session start: the running monitor is not restarted and the relay "
            "is not touched."
        ),
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the plan in force and the last assignments")
    s = actions.add_parser("set", help="assign a preset or a plan file (.toml or .json)")
    s.add_argument("plan", help="a preset name (see `retroguard plan presets`) or a file")
    s.add_argument("--by", default=None, help="who assigns it (default: the user name)")
    clear = actions.add_parser("clear", help="back to the config's session.plan")
    clear.add_argument(
        "--by", default=None, help="who (default: the user name; it may hold a progression)"
    )
    presets = actions.add_parser("presets", help="list the preset plans and progressions")
    g = actions.add_parser(
        "progression",
        help="a physio's schedule of plans: show, set, hold, release or step-back",
    )
    g.add_argument("what", choices=("show", "set", "hold", "release", "step-back"))
    g.add_argument("progression", nargs="?", help="set: a preset name or a .json file")
    g.add_argument("--stage", type=int, default=1, help="set: the stage to start at (1 = first)")
    g.add_argument("--by", default=None, help="who (default: the user name)")
    add_common_options(p, (show, s, clear, presets, g), _walker_option)
    p.set_defaults(func=run_plan)


def _walker_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--walker",
        default=DEFAULT_WALKER_ID if default is None else default,
        help="whose plan (a walker id: retroguard walker list; default: the default walker)",
    )


def _config(path: Path | None) -> Any:
    from tools.sessions import _config as config_of

    return config_of(path)


PLAN_ARGUMENT = (
    "a preset name (retroguard plan presets lists them) or a plan file ending in .toml or .json"
)
"""What a command-line plan may be (``plan set``, ``session demo --plan``), in its messages."""


def read_plan(reference: str) -> Plan:
    """A preset or a plan file, TOML (as ``session.plan`` takes) or JSON with the same keys
    (or the wire's form): one parser for both, so both take and refuse the same plans in the
    same words; anything else is a :class:`ConfigError` saying what the command takes (not the
    config key's wording: this is a command-line argument)."""
    if reference in PRESETS:
        return PRESETS[reference]
    if not reference.endswith((".toml", ".json")):
        what = "a directory" if Path(reference).is_dir() else "not a preset or a plan file"
        raise ConfigError([f"{reference}: {what}: give {PLAN_ARGUMENT}"])
    from firmware.session.plan import load_plan_file

    return load_plan_file(Path.cwd() / reference)


def _config_plan(config: Any) -> Plan | None:
    """The config's ``session.plan`` (what ``plan clear`` brings back), None when it cannot be
    read here (a clear then holds a running progression, as any other plan would)."""
    from firmware.session.plan import resolve_plan

    try:
        return resolve_plan(config.session.plan)
    except (ConfigError, OSError):
        return None


def print_plan(plan: Plan, out: TextIO) -> None:
    """The plan: its totals, what it prescribes in words (the dashboard's words, belt speed
    included: :func:`core.protocol.plan.plan_words`), then each interval."""
    out.write(f"{plan.describe()}\n  {plan_words(plan)}\n")
    for n, i in enumerate(plan.intervals, 1):
        # "1 min 40 s" as the words above say it (minutes as :g said "1.66667 min"), and no
        # belt speed beside a rest (the words give a rest none: the walker stops the belt)
        speed = "" if i.direction == "rest" else i.speed
        line = f"  {n:2d}. {i.direction:8} {duration_words(i.duration_s):>9}  {speed}"
        out.write(line.rstrip() + "\n")


def _stage_line(stage: Stage) -> str:
    """A progression's stage in a line: its plan's name and words with its sessions a week
    (completed ones count), and for how many such weeks."""
    weeks = f"{stage.weeks} week{'s' if stage.weeks != 1 else ''}"
    return f"{stage.plan.name}: {plan_words(stage.plan, stage.sessions_per_week)}, for {weeks}"


def run_plan(args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.action == "presets":
        for preset in PRESETS.values():
            out.write(f"{preset.describe()}\n  {plan_words(preset)}\n")
        for name, preset_progression in PROGRESSIONS.items():
            out.write(f"progression {name}: {len(preset_progression.stages)} stages\n")
            for n, stage in enumerate(preset_progression.stages, 1):
                out.write(f"  {n:2d}. {_stage_line(stage)}\n")
        return 0
    config = _config(args.config)
    plan: Plan | None = None
    if args.action == "set":  # before the database: a bad argument creates and changes nothing
        try:
            plan = read_plan(args.plan)
        except ConfigError as exc:
            for line in exc.problems:
                print(f"retroguard plan set: {line}", file=sys.stderr)
            return 2
    progression = None
    if args.action == "progression" and args.what == "set":  # as for set: before the database
        progression = progression_argument(args)
        if progression is None:
            return 2
    database = args.db if args.db is not None else Path(config.storage.database)
    # refusals a fresh database would give, without creating it (one this user cannot reach:
    # open_device_database says so, as for walker)
    if unreachable(database) is None and not database.exists():
        refusal = _fresh_refusal(args)
        if refusal is not None:
            print(refusal, file=sys.stderr)
            return 2
    refused = open_device_database(  # created on a fresh install
        database, "retroguard plan", database_key(args.db)
    )
    if refused is not None:
        return refused
    from firmware.storage.database import connect
    from firmware.storage.plans import plan_history
    from firmware.storage.progressions import held_message, set_plan_by_hand
    from firmware.storage.walkers import active_walkers

    walker = args.walker
    conn = connect(database)
    try:
        known = [w.id for w in active_walkers(conn)]
    finally:
        conn.close()
    if walker not in known:
        print(_no_walker(walker, known), file=sys.stderr)
        return 2
    if args.action == "progression":
        return run_progression(args, database, out, progression)
    if args.action in ("set", "clear"):
        by = getattr(args, "by", None) or getpass.getuser()
        conn = connect(database)
        try:
            with conn:  # a progression the walker is on is held by it, and said so below
                hand = set_plan_by_hand(
                    conn, plan, by=by, via="cli", wall=wall_now(), walker=walker,
                    config_plan=_config_plan(config) if plan is None else None,
                )  # fmt: skip
        finally:
            conn.close()
        what = (
            f"{plan.describe()}\n  {plan_words(plan)}"
            if plan is not None
            else f"the config's ({config.session.plan})"
        )
        whose = "" if walker == DEFAULT_WALKER_ID else f" for walker {walker}"
        out.write(
            f"Plan {hand.revision} stored{whose}: {what}.\nA running monitor uses it from the "
            "next session start; it is not restarted and a session under way keeps its plan.\n"
        )
        held = held_message(hand)
        if held is not None:
            out.write(
                f"{held.words(walker)}\n  retroguard plan progression release"
                f"{'' if walker == DEFAULT_WALKER_ID else f' --walker {walker}'}\n"
            )
        return 0
    from firmware.storage.progressions import HAND_PLAN_HOLD, current_progression

    conn = connect(database)
    try:
        history = plan_history(conn, 5, walker)
        standing = current_progression(conn, walker)
    finally:
        conn.close()
    assignment = history[0] if history else None
    zone = system_zone()
    if history:
        # named as the dashboard and the PDF name it ("CET", "CEST"), not its IANA key
        moments = (m for a in history if (m := stored_moment(a.assigned_wall)) is not None)
        out.write(f"Times in {zones_said(zone, moments)}.\n")
    if assignment is None or assignment.plan is None:
        from firmware.session.plan import resolve_plan

        out.write(f"In force: the config's session.plan ({config.session.plan})\n")
        print_plan(resolve_plan(config.session.plan), out)
    else:
        out.write(
            f"In force: plan {assignment.revision}, assigned by {assignment.by} via "
            f"{assignment.via} at {local_time(assignment.assigned_wall, zone)}\n"
        )
        print_plan(assignment.plan, out)
    if standing is not None and standing.held:
        # the plan in force may not be the progression's: say why it is not moving on
        stage = standing.progression.stages[standing.stage]
        # a physio's hold is said once ("is held ... (held)" read as a glitch); a hand-set
        # plan's hold says why
        why = " (a plan was set by hand)" if standing.changed == HAND_PLAN_HOLD else ""
        out.write(
            f"Progression {standing.progression.name} is held at stage "
            f"{standing.stage + 1} of {len(standing.progression.stages)}{why}: its "
            f"stage's plan ({stage.plan.name}) comes back with: retroguard plan progression "
            f"release{'' if walker == DEFAULT_WALKER_ID else f' --walker {walker}'}\n"
        )
    if history:
        out.write("Last assignments:\n")
        for a in history:
            name = a.plan.name if a.plan is not None else "(the config's)"
            when = local_time(a.assigned_wall, zone)
            out.write(f"  {a.revision:3d}  {when}  {name}, by {a.by} via {a.via}\n")
            if a.plan is not None:  # what it prescribed, under it
                out.write(f"{'':7}{plan_words(a.plan)}\n")
    return 0


def _no_walker(walker: str, known: list[str]) -> str:
    return (
        f"retroguard plan: --walker: no walker {walker!r} here ({', '.join(known)}; "
        "retroguard walker add)"
    )


def _fresh_refusal(args: argparse.Namespace) -> str | None:
    """What the command would be refused with on a database not there yet (a fresh install,
    or a mistyped ``--db``), where it would first create one: a walker other than the default
    (a new database has only that one), or a progression to hold, release or step back (a new
    database has none). None when the command may create the database."""
    if args.walker != DEFAULT_WALKER_ID:
        return _no_walker(args.walker, [DEFAULT_WALKER_ID])
    if args.action == "progression" and args.what not in ("show", "set"):
        return (
            f"retroguard plan progression {args.what}: no progression is assigned to this "
            "device (assign one first: retroguard plan progression set NAME)"
        )
    return None


def progression_argument(args: argparse.Namespace) -> Progression | None:
    """``progression set``'s progression and ``--stage``, checked before any database is
    opened or created; None, having said why, when either is refused."""
    if not args.progression:
        print("retroguard plan progression set: name a progression", file=sys.stderr)
        return None
    try:
        progression = read_progression(args.progression)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"retroguard plan: {problem}", file=sys.stderr)
        return None
    if not 1 <= args.stage <= len(progression.stages):
        print(f"retroguard plan: --stage must be 1 to {len(progression.stages)}", file=sys.stderr)
        return None
    return progression


def stored_moment(wall: str) -> dt.datetime | None:
    """A stored UTC wall time read (aware, UTC); None when it is not a time."""
    try:
        return utc_of(wall)
    except ValueError:
        return None


def local_time(wall: str, zone: dt.tzinfo) -> str:
    """A stored UTC wall time as ``retroguard sessions`` prints times: in ``zone`` (the
    system's, named once above), to the minute; the text as stored if it is not a time."""
    moment = stored_moment(wall)
    if moment is None:
        return wall
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


MAX_PROGRESSION_FILE_BYTES = 1_000_000
"""The largest progression file ``plan progression set`` reads: 20 times what a command can
carry (:data:`core.protocol.commands.MAX_PROGRESSION_PAYLOAD_BYTES`, 48 kB, the largest
progression written compactly), room for any indentation a person or an editor gives it. The
file is read whole and decoded into Python objects several times its size: a bound keeps a
wrong file (a log, a disk image, ``/dev/zero``) from exhausting a 512 MB Pi."""


def read_progression(reference: str) -> Progression:
    """A preset progression or a progression file (JSON, the wire's form); a name that is
    neither (a mistyped preset) is a :class:`ConfigError` saying what the command takes, as
    are a file over :data:`MAX_PROGRESSION_FILE_BYTES` and one with a key given twice."""
    if reference in PROGRESSIONS:
        return PROGRESSIONS[reference]
    path = Path(reference)
    reach = unreachable(path)
    if reach is not None:
        raise ConfigError([reach])
    if not path.exists():
        raise ConfigError(
            [
                f"{reference}: not a preset progression or a progression file: give a preset "
                f"({', '.join(PROGRESSIONS)}; retroguard plan presets lists them) or a .json file"
            ]
        )
    data = read_json(path, "progression file", MAX_PROGRESSION_FILE_BYTES)
    try:
        return progression_from_builtins(data, presets=PRESETS)
    except PlanInvalid as exc:
        raise ConfigError([f"{reference}: {p}" for p in exc.problems]) from None


def print_progression(state: Any, out: TextIO, zone: dt.tzinfo | None = None) -> None:
    """The progression and its stages; the stage's start in ``zone`` (default: the system's,
    as ``retroguard sessions`` prints times)."""
    progression = state.progression
    zone = zone if zone is not None else system_zone()
    since = local_time(state.stage_started_wall, zone)
    started = stored_moment(state.stage_started_wall)
    if started is not None:  # its zone then ("CEST" in summer), as the dashboard says it
        since = f"{since} {zone_said(zone, started)}"
    out.write(
        f"Progression {progression.name}: stage {state.stage + 1} of {len(progression.stages)}"
        f"{' (held)' if state.held else ''}, since {since} "
        f"({state.changed} by {state.by})\n"
    )
    for n, stage in enumerate(progression.stages):
        mark = "->" if n == state.stage else "  "
        out.write(f"  {mark} {n + 1:2d}. {_stage_line(stage)}\n")


def run_progression(
    args: argparse.Namespace, database: Path, out: TextIO, progression: Progression | None
) -> int:
    """``progression show|set|hold|release|step-back``; ``progression`` is ``set``'s, checked
    (:func:`progression_argument`) before the database was opened."""
    from firmware.storage.database import connect
    from firmware.storage.progressions import (
        RELEASED_ADVANCED,
        ProgressionUnchanged,
        change_progression,
        current_progression,
        start_progression,
    )

    by = getattr(args, "by", None) or getpass.getuser()
    conn = connect(database)
    try:
        if args.what == "show":
            state = current_progression(conn, args.walker)
            if state is None:
                out.write("No progression assigned.\n")
            else:
                print_progression(state, out)
            return 0
        if args.what == "set":
            assert progression is not None  # checked by run_plan before the database
            with conn:
                state = start_progression(
                    conn,
                    progression,
                    stage=args.stage - 1,
                    by=by,
                    wall=wall_now(),
                    walker=args.walker,
                )
        else:
            action = args.what.replace("-", "_")
            try:
                with conn:
                    state = change_progression(
                        conn, action, by=by, wall=wall_now(), walker=args.walker
                    )
            except LookupError as exc:  # nothing to change: a usage error, as the others
                print(
                    f"retroguard plan progression {args.what}: {exc} (assign one first: "
                    "retroguard plan progression set NAME)",
                    file=sys.stderr,
                )
                return 2
            except ProgressionUnchanged as exc:  # nothing it would change: refused, as above
                print(
                    f"retroguard plan progression {args.what}: {exc}; nothing changed",
                    file=sys.stderr,
                )
                return 2
        print_progression(state, out)
        if state.advanced_on_release:
            out.write(f"{RELEASED_ADVANCED.capitalize()}.\n")
        if state.plan_restored:
            out.write(f"{restored_words(state.progression.stages[state.stage].plan.name)}\n")
        out.write("A running monitor uses the stage's plan from the next session start.\n")
        return 0
    finally:
        conn.close()
