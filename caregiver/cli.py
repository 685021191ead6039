"""``retroguard caregiver`` (serve the dashboard) and ``retroguard caregiver add-user``."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/retroguard/caregiver.toml")


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
    parser.add_argument("--port", type=int, default=None, help="override [server] port")
    parser.set_defaults(func=run, caregiver_command="serve")
    sub = parser.add_subparsers(dest="caregiver_command", metavar="SUBCOMMAND")
    add = sub.add_parser("add-user", help="create a caregiver account (or set its password)")
    add.add_argument("username")
    add.add_argument(
        "--password-file", type=Path, help="read the password from the first line of this file"
    )
    add.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS, help="TOML")
    add.set_defaults(func=run, caregiver_command="add-user")
    return parser


def _config(path: Path) -> Any:
    from caregiver.config import CaregiverConfig, load_config

    if not path.exists() and path == DEFAULT_CONFIG:
        print(f"retroguard caregiver: {path} not found; using built-in defaults", file=sys.stderr)
        return CaregiverConfig()
    return load_config(path)


def run(args: argparse.Namespace) -> int:
    from caregiver.storage import SchemaError, StorageFault

    try:
        return _run(args)
    except SchemaError as exc:  # a database from a later release, or not the service's own
        print(f"retroguard caregiver: {exc}", file=sys.stderr)
        return 2
    except StorageFault as exc:  # e.g. the PostgreSQL server refused or is unreachable
        print(f"retroguard caregiver: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    config = _config(args.config)
    if args.caregiver_command == "add-user":
        from caregiver.auth import Accounts
        from caregiver.storage import Store, redacted

        if args.password_file:
            password = (
                args.password_file.read_text().splitlines()[0]
                if args.password_file.stat().st_size
                else ""
            )
        else:
            password = getpass.getpass(f"password for {args.username}: ")
            if password != getpass.getpass("again: "):
                print("the passwords differ", file=sys.stderr)
                return 2
        store = Store(config.server.database)
        try:
            Accounts(store).add_user(args.username, password)
        except ValueError as exc:
            print(f"retroguard caregiver add-user: {exc}", file=sys.stderr)
            return 2
        finally:
            store.close()
        print(f"user {args.username} saved in {redacted(config.server.database)}")
        return 0
    if args.port is not None:
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, port=args.port)
        )
    from caregiver.service import CaregiverService

    CaregiverService(config).serve_forever()
    return 0
