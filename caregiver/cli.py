"""``retroguard caregiver`` (serve the dashboard) and its account commands.

* ``add-user NAME [--role caregiver|physio] [--device ID ...]``: create an account (a
  caregiver unless ``--role physio``) or set its password; NAME is 1-64 of the letters a-z
  and A-Z, digits and ``. _ - @`` (:func:`caregiver.auth.check_username`); a ``--device``
  no device has reported from yet is kept with a warning (it may come online later);
* ``set-role NAME caregiver|physio``: only a physio sets plans and progressions;
* ``users``: list the accounts, their roles, the devices each may see and its open logins;
* ``config --check [FILE]``: the config checked as the service's start checks it
  (:mod:`caregiver.preflight`, which the start calls too), opening and writing nothing;
* ``remove-user NAME``: delete an account and end its logins at once;
* ``limit-user NAME (DEVICE ... | --all)``: which devices an account sees;
* ``report DEVICE [--csv FILE] [--pdf FILE] [--walker ID]``: the physio's report on one
  walker, as the dashboard gives it; ``--walker`` may be left out when the device has one
  walker (its roster and sessions: :func:`caregiver.walkers.offered`), and with several the
  command refuses (exit 2) naming the walkers to choose from — a report is never a mix of
  several walkers' sessions, and never silently the one who walked last; ``--pdf`` and
  ``--csv`` naming one file, or the service's database, are refused (exit 2) before anything
  is opened.

Only ``add-user`` (and the service) create the database; the others refuse one that is not
there (:func:`_no_database`). Run as root, ``add-user`` gives a database it creates to the
owner of its folder (:func:`core.writable.created_as_folder_owner`): the service's user.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cliargs import output_file, same_file, tcp_port

if TYPE_CHECKING:  # imported when a command runs: `retroguard --help` stays quick
    from caregiver.auth import Accounts
    from caregiver.preflight import Checked
    from caregiver.storage import Account

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/retroguard/caregiver.toml")
READS_EXISTING = ("users", "remove-user", "set-role", "limit-user", "report")
"""The commands that only read or change what the database holds: they refuse a database that
is not there instead of creating it (only the service and ``add-user`` create it)."""
ROLES = ("caregiver", "physio")
"""The values of :class:`caregiver.storage.Role` (not imported here: ``--help`` stays quick)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "caregiver",
        help="the caregivers' service: MQTT ingest, web dashboard, notifications",
        description="Subscribe to every RetroGuard device on the broker, store what they "
        "report, serve the caregiver dashboard and page caregivers through Apprise.",
    )
    parser.add_argument(
        "-c", "--config", type=Path, default=DEFAULT_CONFIG, help=f"TOML (default {DEFAULT_CONFIG})"
    )
    parser.add_argument("--port", type=tcp_port, default=None, help="override [server] port")
    parser.set_defaults(func=run, caregiver_command="serve")
    sub = parser.add_subparsers(dest="caregiver_command", metavar="SUBCOMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
        p.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS, help="TOML")
        p.set_defaults(func=run, caregiver_command=name)
        return p

    add = command("add-user", "create a caregiver account (or set its password)")
    add.add_argument("username")
    add.add_argument(
        "--password-file", type=Path, help="read the password from the first line of this file"
    )
    add.add_argument(
        "--device",
        action="append",
        metavar="ID",
        help="let the account see only this device (repeat for more; default: every device, "
        "or the limit it already has)",
    )
    add.add_argument(
        "--role",
        choices=ROLES,
        default=None,
        help="physio: may set plans and progressions; caregiver: sees them read-only "
        "(default for a new account: caregiver; an existing one keeps its role)",
    )
    role = command("set-role", "make an account a caregiver or a physio (who sets plans)")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    command("users", "list the caregiver accounts, their roles and the devices each may see")
    check = command(
        "config", "check the config as the service's start does (no database, no broker opened)"
    )
    check.description = (
        "--check [FILE] checks the service's config as its start checks it, before it opens "
        "the database or reaches the broker: what the start refuses is refused here, with the "
        "same lines and exit status 2; 'FILE: OK' and any warnings otherwise. Nothing is "
        "opened, connected to or written."
    )
    check.add_argument(
        "--check",
        nargs="?",
        type=Path,
        const=True,  # --check alone: -c's file (a str const would be made a Path, ".")
        default=None,
        metavar="FILE",
        help=f"validate FILE (default: -c's, else {DEFAULT_CONFIG})",
    )
    remove = command("remove-user", "delete a caregiver account and end its logins")
    remove.add_argument("username")
    limit = command("limit-user", "let an account see only some devices (or --all)")
    limit.add_argument("username")
    limit.add_argument("devices", nargs="*", metavar="DEVICE", help="device ids it may see")
    limit.add_argument("--all", action="store_true", help="every device (the default)")
    report = command(
        "report", "write a device's report (weekly table, adherence, incidents) as CSV or PDF"
    )
    report.add_argument("device", metavar="DEVICE", help="device id")
    report.add_argument(
        "--csv", type=output_file, default=None, metavar="FILE", help="write CSV here"
    )
    report.add_argument(
        "--pdf", type=output_file, default=None, metavar="FILE", help="write the one-page PDF here"
    )
    report.add_argument(
        "--walker",
        default=None,
        metavar="ID",
        help="whose report (a walker id); may be left out when the device has one walker; "
        "with several it is needed, and the command names them",
    )
    return parser


def _config(path: Path) -> Any:
    from caregiver.config import CaregiverConfig, load_config

    try:
        missing = path == DEFAULT_CONFIG and not path.exists()
    except OSError:  # a folder above it this user may not enter (EACCES): the loader says so
        missing = False
    if missing:
        print(f"retroguard caregiver: {path} not found; using built-in defaults", file=sys.stderr)
        return CaregiverConfig()
    return load_config(path)


def _checked(path: Path) -> Checked:
    """The config the service's start takes, checked as :func:`caregiver.preflight.preflight`
    checks it: ``config --check`` and the start both call this, so they cannot drift."""
    from caregiver.preflight import preflight

    return preflight(_config(path), str(path))


def _check_config(args: argparse.Namespace) -> int:
    """``config --check [FILE]``: the monitor's ``retroguard config --check`` for this
    service (:func:`launcher.cli.cmd_config`: its words, its exit status)."""
    if args.check is None:
        print("retroguard caregiver config: give --check [FILE]", file=sys.stderr)
        return 2
    path = args.config if args.check is True else args.check
    for warning in _checked(path).warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK")
    return 0


def run(args: argparse.Namespace) -> int:
    from caregiver.storage import SchemaError, StorageFault

    try:
        return _run(args)
    except SchemaError as exc:  # a database from a later release, or not the service's own
        print(f"retroguard caregiver: {exc}", file=sys.stderr)
        return 2
    except StorageFault as exc:  # e.g. the PostgreSQL server refused or is unreachable
        print(f"retroguard caregiver: {exc}", file=sys.stderr)
        return 2 if exc.lasting else 1  # 2: a damaged file; the unit does not restart for it


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from caregiver.preflight import database_refusal
    from caregiver.storage import engine_of

    if args.caregiver_command == "config":
        return _check_config(args)
    serve = args.caregiver_command in (None, "serve")  # None: no subcommand, i.e. serve
    if serve:  # the check's checks, the check's lines
        checked = _checked(args.config)
        for warning in checked.warnings:
            log.warning("%s", warning)
        config = checked.config
    else:
        config = _config(args.config)
        refusal = database_refusal(config)
        if refusal is not None:  # before SQLite: it would answer a traceback
            print(refusal, file=sys.stderr)
            return 2
    database = config.server.database
    if args.caregiver_command == "report":  # before the database is opened or created
        clash = _report_clash(args, database if engine_of(database) == "sqlite" else None)
        if clash is not None:
            print(f"retroguard caregiver report: {clash}", file=sys.stderr)
            return 2
    if args.caregiver_command in READS_EXISTING:
        missing = _no_database(database)
        if missing is not None:
            print(f"retroguard caregiver {args.caregiver_command}: {missing}", file=sys.stderr)
            return 2
    if not serve:
        from caregiver.auth import Accounts
        from caregiver.storage import Store, redacted
        from core.writable import created_as_folder_owner

        password = None
        if args.caregiver_command == "add-user":  # a bad name or file: no database touched
            password = _new_account(args)
            if password is None:
                return 2
        # add-user run as root on a fresh install: the service's database, not root's
        with (
            created_as_folder_owner(database)
            if engine_of(database) == "sqlite"
            else contextlib.nullcontext()
        ):
            store = Store(config.server.database)
            try:
                if args.caregiver_command == "report":
                    return _report(args, store, config)
                database = redacted(config.server.database)
                return _account_command(args, Accounts(store), database, password)
            finally:
                store.close()
    if args.port is not None:
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, port=args.port)
        )
    from caregiver.service import CaregiverService

    CaregiverService(config).serve_forever()
    return 0


def _no_database(database: str) -> str | None:
    """Why a command of :data:`READS_EXISTING` has nothing to work on: its SQLite database is
    not there (None: it is, or it is a PostgreSQL server's). Said, not made: opening it would
    create an empty database (and its folder: /var/lib/retroguard on a machine where the
    service never ran, or under a mistyped -c) and answer "no accounts" from it as if that
    were the service's (``retroguard sessions`` refuses alike)."""
    from caregiver.storage import engine_of

    if engine_of(database) != "sqlite" or Path(database).exists():
        return None
    return (
        f"{database}: no such database (the caregiver service creates it on its first start, "
        "add-user with the first account; give the service's config with -c)"
    )


def _report(args: argparse.Namespace, store: Any, config: Any) -> int:
    """``report DEVICE [--csv FILE] [--pdf FILE] [--walker ID]``: the dashboard's report
    downloads, from the service's database (the CSV to standard output when no file is named):
    one walker's, ``--walker``'s or the device's only walker's."""
    import time

    from caregiver.report import report_csv, report_for
    from caregiver.storage import redacted
    from caregiver.walkers import offered
    from core.progress import WeekSpanTooLong
    from core.protocol.walker import DEFAULT_WALKER_ID

    name = "retroguard caregiver report"
    if store.device(args.device) is None:
        print(
            f"{name}: no device {args.device!r} in {redacted(config.server.database)}",
            file=sys.stderr,
        )
        return 2
    walkers = offered(store, args.device).walkers  # the roster's, sessions or not
    names = dict(walkers)
    chosen = args.walker
    if chosen is None:  # a report is one walker's: never a mix of a shared treadmill's walkers
        if len(walkers) > 1:
            choices = ", ".join(f"{w} ({n})" for w, n in walkers)
            print(
                f"{name}: {args.device} has {len(walkers)} walkers and a report is one "
                f"walker's: give --walker with one of {choices}",
                file=sys.stderr,
            )
            return 2
        ((chosen, _),) = walkers
    elif chosen not in names:
        known = ", ".join(names)
        print(f"{name}: no walker {chosen!r} on {args.device} ({known})", file=sys.stderr)
        return 2
    # The default walker of a treadmill with one walker is named after the device, as on the
    # dashboard and before walker profiles; of a shared one, as the walker they are.
    alone = chosen == DEFAULT_WALKER_ID and len(walkers) == 1
    walker = config.devices.get(args.device, args.device) if alone else names[chosen]
    try:
        report = report_for(
            store, args.device, walker, config.zone, time.time(), chosen, shared=len(walkers) > 1
        )
    except WeekSpanTooLong as exc:  # a session dated by a wrong clock: no file of 100k rows
        print(f"{name}: no report of {args.device} ({walker}): {exc}", file=sys.stderr)
        return 2
    if args.pdf is not None:
        try:
            from caregiver.report_pdf import report_pdf
        except ImportError as exc:
            print(f"{name}: {exc}; install retroguard[caregiver]", file=sys.stderr)
            return 2
        if not _write(name, args.pdf, report_pdf(report)):
            return 2
        print(f"PDF report of {args.device} written to {args.pdf}", file=sys.stderr)
    if args.csv is not None:
        if not _write(name, args.csv, report_csv(report).encode("utf-8")):
            return 2
        print(f"CSV report of {args.device} written to {args.csv}", file=sys.stderr)
    elif args.pdf is None:
        sys.stdout.write(report_csv(report))
    return 0


def _report_clash(args: argparse.Namespace, database: str | None) -> str | None:
    """Why the report's files cannot be written as named, or None: ``--pdf`` and ``--csv``
    naming one file (however spelled: relative or absolute, through a symlink) would leave
    only the CSV, the command saying it wrote both; a report over the service's SQLite
    database would destroy it."""
    outputs = [(f"--{o}", p) for o in ("pdf", "csv") if (p := getattr(args, o)) is not None]
    if len(outputs) == 2 and same_file(outputs[0][1], outputs[1][1]):
        return (
            f"--pdf {outputs[0][1]} and --csv {outputs[1][1]} are the same file: "
            "give each report its own file"
        )
    for option, path in outputs:
        if database is not None and same_file(path, Path(database)):
            return (
                f"{option} {path} is the service's database ([server] database): give another file"
            )
    return None


def _write(name: str, path: Path, body: bytes) -> bool:
    """Write a report file; False, having said why, when it cannot be written (the option's
    check has seen the directory, but the disk may be full or the file read-only)."""
    try:
        path.write_bytes(body)
    except OSError as exc:
        print(f"{name}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def _new_account(args: argparse.Namespace) -> str | None:
    """``add-user``'s name checked and its password read; None, having said why, when the name
    cannot be one (before the password is asked for) or the password file cannot be read."""
    from caregiver.auth import check_password, check_username

    name = "retroguard caregiver add-user"
    problem = check_username(args.username)
    if problem is not None:
        print(f"{name}: {args.username!r}: {problem}", file=sys.stderr)
        return None
    password = _password(args, name)
    problem = None if password is None else check_password(password)
    if problem is not None:
        print(f"{name}: {problem}", file=sys.stderr)
        return None
    return password


def _account_command(
    args: argparse.Namespace, accounts: Accounts, database: str, password: str | None = None
) -> int:
    """``users``, ``remove-user``, ``set-role``, ``limit-user``, and ``add-user`` with the
    ``password`` :func:`_new_account` read."""
    name = f"retroguard caregiver {args.caregiver_command}"
    if args.caregiver_command == "users":
        return _list_users(accounts.users())
    if args.caregiver_command == "remove-user":
        if not accounts.remove_user(args.username):
            print(f"{name}: no account {args.username!r} in {database}", file=sys.stderr)
            return 2
        print(f"user {args.username} removed; its logins are ended")
        return 0
    if args.caregiver_command == "set-role":
        from caregiver.storage import Role

        if not accounts.set_role(args.username, Role(args.role)):
            print(f"{name}: no account {args.username!r} in {database}", file=sys.stderr)
            return 2
        print(f"user {args.username} is a {args.role}")
        return 0
    if args.caregiver_command == "limit-user":
        if args.all == bool(args.devices):
            print(f"{name}: name the devices, or give --all", file=sys.stderr)
            return 2
        if not accounts.limit(args.username, None if args.all else args.devices):
            print(f"{name}: no account {args.username!r} in {database}", file=sys.stderr)
            return 2
        _warn_unknown(name, accounts, None if args.all else args.devices)
        print(f"user {args.username} sees {_devices(None if args.all else args.devices)}")
        return 0
    if password is None:  # add-user's is read before the database is opened (_new_account)
        return 2
    from caregiver.storage import Role

    try:
        accounts.add_user(args.username, password, None if args.role is None else Role(args.role))
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if args.device:
        accounts.limit(args.username, args.device)
        _warn_unknown(name, accounts, args.device)
    print(f"user {args.username} saved in {database}")
    return 0


def _warn_unknown(name: str, accounts: Accounts, devices: Sequence[str] | None) -> None:
    """A warning for each device the service has never heard from: kept all the same, since a
    device may be set up for a caregiver before it first comes online (a mistyped id shows here
    and in ``users``; ``limit-user`` corrects it)."""
    for device in sorted(set(devices or ())):
        if accounts.store.device(device) is None:
            print(
                f"{name}: warning: no device {device!r} has reported to this service yet; "
                "the account will see it once it comes online (check the id if it should be "
                "here already)",
                file=sys.stderr,
            )


def _password(args: argparse.Namespace, name: str) -> str | None:
    if args.password_file:
        try:
            lines = args.password_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            problem = "no such file"
        except IsADirectoryError:
            problem = "a directory, not a file"
        except OSError as exc:
            problem = f"cannot read: {exc.strerror or exc}"
        except UnicodeDecodeError:
            problem = "not a text file in UTF-8"
        else:
            return lines[0] if lines else ""
        print(f"{name}: --password-file {args.password_file}: {problem}", file=sys.stderr)
        return None
    password = getpass.getpass(f"password for {args.username}: ")
    if password != getpass.getpass("again: "):
        print("the passwords differ", file=sys.stderr)
        return None
    return password


def _devices(devices: Sequence[str] | None) -> str:
    return "every device" if devices is None else "only " + ", ".join(sorted(devices))


def _list_users(users: list[Account]) -> int:
    if not users:
        print("no caregiver accounts yet (add one: retroguard caregiver add-user NAME)")
        return 0
    width = max(len(u.username) for u in users)
    for user in users:
        created = dt.datetime.fromtimestamp(user.created_at).astimezone()
        logins = f"{user.sessions} login{'' if user.sessions == 1 else 's'} open"
        print(
            f"{user.username:<{width}}  {user.role.value:<9}  since {created:%Y-%m-%d}  "
            f"{logins:<15} {_devices(user.devices)}"
        )
    return 0
