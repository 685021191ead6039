"""``retroguard walker list|add|remove|select``: the walker profiles of this treadmill, locally.

Local only: it writes the device database (:mod:`firmware.storage.walkers`)
as the user at the machine; no MQTT command adds, removes or selects a
walker, so nobody on the network can change whose session the next one is.
None of it arms or starts anything: a running monitor's courier notices the
change within a second and hands the roster to the loop, which uses the
chosen walker from the next session start (a session under way keeps its
walker). At the machine, a double press in STANDBY cycles the profiles and
says each name (docs/safety.md, "Button press patterns").

``add`` renders the name's spoken prompt ahead of time, as ``retroguard
prompts`` does for a plan, when the speech engine is there and
``session.voice`` is not "off" (else the button beeps the profile's number).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from core.protocol.payloads import wall_now
from core.protocol.walker import WalkerInvalid
from tools.device_db import add_common_options, database_key, open_device_database


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "walker",
        help="list, add, remove or select the walker profiles of this treadmill",
        description=(
            "List, add, remove or select the walker profiles of this treadmill, in its device "
            "database. Each walker's sessions, progress, plan and incidents are theirs; select "
            "chooses whose the next session is (a session under way stays its walker's). "
            "Nothing here arms or starts the belt."
        ),
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the walkers in button order; * marks the chosen one")
    a = actions.add_parser("add", help="add a walker (the button cycles to them; name spoken)")
    a.add_argument("name", help='the name the device says and the dashboard shows ("Anna B")')
    a.add_argument("--id", default=None, help="the walker's id (default: made from the name)")
    r = actions.add_parser("remove", help="take a walker off the button (their records stay)")
    r.add_argument("walker", help="the walker's id")
    s = actions.add_parser("select", help="choose the walker of the next session")
    s.add_argument("walker", help="the walker's id")
    s.add_argument(
        "--socket",
        type=Path,
        default=None,
        help="the running monitor's control socket, told at once (default: the config's, "
        "else the runtime directory's, when the database is the config's)",
    )
    for action in (a, r, s):
        action.add_argument("--by", default=None, help="who (default: the user name)")
    add_common_options(p, (listing, a, r, s))
    p.set_defaults(func=run_walker)


def run_walker(args: argparse.Namespace) -> int:
    from firmware.storage.database import connect, transaction
    from firmware.storage.walkers import (
        add_walker,
        remove_walker,
        roster,
        select_walker,
    )
    from tools.sessions import _config

    config = _config(args.config)
    monitor_config = config  # the running monitor's: its database, its control socket
    database = args.db if args.db is not None else Path(config.storage.database)
    if args.db is not None:  # the name prompt goes beside the database named, not the config's
        config = dataclasses.replace(
            config, storage=dataclasses.replace(config.storage, database=str(args.db))
        )
    if args.action == "add":  # before the database: a refused cache creates nothing
        problem = prompt_cache_problem(config)
        if problem is not None:
            print(f"retroguard walker: {problem}", file=sys.stderr)
            return 2
    refused = open_device_database(  # created on a fresh install
        database, "retroguard walker", database_key(args.db)
    )
    if refused is not None:
        return refused
    out = sys.stdout
    by = getattr(args, "by", None) or getpass.getuser()
    conn = connect(database)
    try:
        if args.action == "list":
            print_roster(roster(conn), out)
            return 0
        wall = wall_now()
        try:
            with transaction(conn):
                if args.action == "add":
                    walker = add_walker(conn, args.name, walker_id=args.id, by=by, wall=wall)
                    out.write(f"Walker {walker.id} added: {walker.name}.\n")
                elif args.action == "remove":
                    walker = remove_walker(conn, args.walker, by=by, wall=wall)
                    out.write(f"Walker {walker.id} ({walker.name}) removed; their records stay.\n")
                else:
                    walker = select_walker(conn, args.walker, by=by, via="cli", wall=wall)
                    out.write(
                        f"Walker {walker.id} ({walker.name}) chosen for the next session: a "
                        "running monitor uses it from the next session start; a session under "
                        "way stays its walker's, and so do its incidents. "
                        "Nothing was armed or started.\n"
                    )
                    out.write(under_way_note(conn, walker))
        except WalkerInvalid as exc:
            print(f"retroguard walker: {exc}", file=sys.stderr)
            return 2
        if args.action == "select":  # committed: the running monitor may take it now
            out.write(tell_running_monitor(args, monitor_config, database, walker.id))
        if args.action == "add":
            out.write(render_name_prompt(config, walker.name))
        print_roster(roster(conn), out)
        return 0
    finally:
        conn.close()


def tell_running_monitor(args: argparse.Namespace, config: Any, database: Path, walker: str) -> str:
    """Tell a running monitor's loop the walker just stored, over its local control socket
    (``--socket``, else the config's when ``database`` is the config's): its courier reads
    the selection only once a second, and a session started in that second was the previous
    walker's. A line saying what happened ("" when no monitor is asked).

    ``config`` is the monitor's as read, not the one ``--db`` rewrote: compared with that one,
    every ``--db`` was "the config's", and a choice stored in another database moved the
    running monitor's next session to that walker, for good (its own database unchanged, its
    courier never sent a roster to say otherwise)."""
    from firmware.session.control import default_socket_path, send_command

    path = args.socket
    if path is None:
        if database.resolve() != Path(config.storage.database).resolve():
            return ""  # another database than the monitor's: nothing to tell it
        path = Path(config.session.control_socket or default_socket_path())
    try:
        ok, message = send_command(path, f"walker {walker}")
    except (FileNotFoundError, ConnectionRefusedError):
        return ""  # no monitor running: it reads the selection when it starts
    except OSError as exc:
        return f"The running monitor was not told ({exc}): it takes it within a second.\n"
    if ok:
        return f"The running monitor has it: {message}.\n"
    return f"The running monitor: {message}.\n"


def under_way_note(conn: Any, chosen: Any) -> str:
    """A line naming the session the device database records as under way (the newest, not
    ended: a monitor that crashed mid-session leaves one so until the next), whose walker it
    stays; "" when none is, or it is ``chosen``'s."""
    from firmware.storage.sessions import under_way
    from firmware.storage.walkers import walker_names

    session = under_way(conn)
    if session is None or session.walker == chosen.id:
        return ""
    name = walker_names(conn).get(session.walker, session.walker)
    return (
        f"The session recorded as under way (started {session.started_wall}) stays {name}'s; "
        f"{chosen.name} walks from the next one.\n"
    )


def print_roster(current: Any, out: TextIO) -> None:
    out.write("Walkers (a double press in standby cycles them in this order):\n")
    for n, walker in enumerate(current.walkers, 1):
        mark = "*" if walker.id == current.selected.id else " "
        out.write(f"  {mark} {n}. {walker.id:20} {walker.name}\n")
    for refused in current.refused:
        out.write(f"  ! {refused}\n")


def prompt_cache_problem(config: Any) -> str | None:
    """Why ``add`` may not render the name prompt into the prompt cache (None: it may): the
    cache is in a folder the service can never write, refused as ``config --check`` refuses
    ``session.prompt_cache`` there (a cache beside a database there is refused with it)."""
    from core.writable import written_path_problem
    from firmware.session.runner import prompt_cache_dir

    if not config.session.prompt_cache:
        return None
    return written_path_problem(
        "session.prompt_cache",
        prompt_cache_dir(config),
        'leave it "" (prompts/ beside the event store) or name a folder in /var/lib/retroguard',
    )


def render_name_prompt(config: Any, name: str) -> str:
    """Render "Walker: <name>." into the prompt cache now; a line saying what happened."""
    import subprocess

    from core.writable import created_as_folder_owner
    from firmware.session.cues import ESPEAK
    from firmware.session.runner import prompt_cache_dir
    from firmware.session.voice import VOICE_AUTO, VOICE_OFF, PromptCache, Prompts

    session = config.session
    if session.voice in VOICE_OFF:
        return 'session.voice = "off": the button beeps the walker\'s number instead.\n'
    if shutil.which(ESPEAK) is None:
        return f"{ESPEAK} is not installed: the button beeps the walker's number instead.\n"
    prompts = Prompts.for_language(session.language)
    voice = prompts.file.voice if session.voice == VOICE_AUTO else session.voice
    cache = PromptCache(prompt_cache_dir(config), voice, session.speech_rate_wpm)
    text = prompts.walker(name)
    try:
        with created_as_folder_owner(cache.directory, companions=(), contents=True):
            path = cache.render(text)  # as root: the service's, which adds and prunes there
    except (OSError, subprocess.SubprocessError) as exc:
        return f"The name prompt could not be rendered ({exc}): it is tried again when spoken.\n"
    return f"Name prompt rendered: {text!r} ({path}).\n"
