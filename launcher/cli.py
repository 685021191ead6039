"""``retroguard`` command line.

Exit codes: 0 success, 1 runtime failure (e.g. a demo that did not end
safe), 2 bad usage or bad input (config, trace file, a database written by a
newer release or not a database at all), 141 standard output closed early
(``| head``: quietly, as a process killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.cliargs import finite_float, output_file
from core.demo_limits import SPEED_HELP
from core.errors import ConfigError
from firmware import __version__
from firmware.storage.errors import SchemaError
from launcher.extras import missing_extra

DEFAULT_CONFIG = Path("/etc/retroguard/config.toml")

log = logging.getLogger("retroguard")


def _add_config_option(parser: argparse.ArgumentParser, default: Path | None) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=default,
        help=f"TOML config file (default: {default or 'built-in defaults, simulated hardware'})",
    )


def cmd_config(args: argparse.Namespace) -> int:
    from firmware.config import load_config
    from tools.config_example import example_config_text

    if args.example:
        sys.stdout.write(example_config_text())
        return 0
    path = args.check or args.config
    if path is None:
        print("retroguard config: give --example or --check FILE", file=sys.stderr)
        return 2
    from firmware.preflight import check_or_raise

    checked = check_or_raise(load_config(path), str(path))
    for warning in checked.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from firmware.app import run_forever
    from firmware.config import load_config
    from firmware.preflight import check_or_raise

    config = load_config(args.config)
    if not args.verbose:  # -v asks for everything, whatever the file says
        logging.getLogger().setLevel(config.logging.level.upper())
    for warning in check_or_raise(config, str(args.config)).warnings:
        log.warning("%s", warning)
    return run_forever(config)


def cmd_demo(args: argparse.Namespace) -> int:
    from launcher.demo import run_demo

    return run_demo(
        speed=args.speed,
        database=args.db,
        live=not args.no_live,
        keep_open=not args.no_live and sys.stdin.isatty(),
        keep=args.keep,
    )


def cmd_replay(args: argparse.Namespace) -> int:
    from tools.replay import replay

    return replay(args.trace, config_path=args.config, verbose=args.verbose)


def cmd_record(args: argparse.Namespace) -> int:
    from tools.record import record

    return record(
        args.out,
        config_path=args.config,
        seconds=args.seconds,
        scenario=args.scenario,
        label=args.label,
        activity=args.activity,
        description=args.description,
    )


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A subcommand whose parser lives in another module, imported only when it is chosen."""

    help: str
    module: str
    registers: tuple[str, ...]
    """Every subcommand that module's ``add_parser`` registers (one call may add several)."""


LAZY: dict[str, Subcommand] = {}
for _module, _commands in (
    (
        "tools.safe_outputs",
        {"safe-outputs": "drive the relay lines and buzzer to their released levels"},
    ),
    ("tools.doctor", {"doctor": "check the wiring, sensor, pins, broker, store, clock and audio"}),
    ("tools.calibrate", {"calibrate": "measure the gyro bias and the IMU mounting"}),
    ("tools.prompts", {"prompts": "render the spoken prompts of the configured plan to WAV now"}),
    (
        "caregiver.cli",
        {"caregiver": "the caregivers' service: MQTT ingest, dashboard, notifications"},
    ),
    ("tools.watch", {"watch": "print events from the MQTT broker as a caregiver would see them"}),
    (
        "tools.ha",
        {"ha": "Home Assistant: print the discovery message, or remove the device from HA"},
    ),
    (
        "tools.sessions",
        {
            "session": "start, pause, resume or stop the running monitor's guided session",
            "sessions": "print the session log and weekly progress",
        },
    ),
    (
        "tools.plans",
        {"plan": "a walker's session plan or progression: show or set (from their next session)"},
    ),
    (
        "tools.walkers",
        {"walker": "list, add, remove or select the walker profiles of this treadmill"},
    ),
    (
        "tools.evaluate.cli",
        {"evaluate": "score the detector on SisFall, KFall or a directory of traces"},
    ),
    (
        "tools.gait_evaluate",
        {"evaluate-gait": "the gait and balance meters on SisFall and KFall: steps, repeatability"},
    ),
):
    for _name, _help in _commands.items():
        LAZY[_name] = Subcommand(_help, _module, tuple(_commands))


def terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` answers it (``$COLUMNS``, else the
    width of standard output's terminal, else 80), without importing ``shutil``."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, given the width argparse would otherwise ask ``shutil`` for: it
    builds one for every option added, and ``shutil`` (with ``bz2`` and ``lzma``) would cost
    ``retroguard run`` 0.6 MB of memory for help it never prints."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2  # as argparse does
        super().__init__(prog, indent_increment, max_help_position, width)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with :class:`HelpFormatter` by default, for its subcommands too (they
    are made with the parent parser's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first argument not an option)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``retroguard`` parser, with only the chosen subcommand's module imported.

    ``retroguard run`` must start fast on a Pi Zero, so the offline tools, the
    simulation and the caregiver service are loaded only when their own
    subcommand is asked for; the others get a one-line stub for ``--help``.
    """
    parser = ArgumentParser(
        prog="retroguard",
        description="Fall-safety monitor for backward walking on a treadmill.",
    )
    parser.add_argument("--version", action="version", version=f"retroguard {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run the monitor on the hardware named in the config",
        description=(
            "The monitor as its systemd unit runs it: reads the IMU, runs the fall detector "
            "and holds the treadmill's stop relay only while it is healthy and armed (arming is "
            "a press of the reset button at the machine, never a network message), reports "
            "over MQTT when a broker is configured, and runs guided sessions. The config is "
            "checked first, as 'retroguard config --check' checks it: a config that check "
            "refuses is refused here too (exit 2). Runs until SIGTERM or Ctrl-C."
        ),
    )
    _add_config_option(p, DEFAULT_CONFIG)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "demo",
        help="the whole monitor on simulated hardware, walking through a scripted session",
        description=(
            "The whole monitor, as 'retroguard run' builds it, on simulated hardware (the "
            "MPU-6050, the reset button, the fail-safe relay circuit): a simulated walker "
            "follows a guided session, is armed by a press of reset, stumbles (trip), resets, "
            "walks on, then falls. It prints the session's cues, what they say and the status "
            "LED's patterns as they come, then the events stored. With Mosquitto installed it "
            "reports over MQTT to a local broker and starts the caregiver dashboard. Exit 0 "
            "when the fall tripped and the relay ended released."
        ),
    )
    p.add_argument("--speed", type=finite_float, default=1.0, help=SPEED_HELP)
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="event store, in a folder that exists (default: a temporary file)",
    )
    p.add_argument(
        "--no-live",
        action="store_true",
        help="no live status line, and no wait for Enter at the end: the dashboard stops "
        "with the demo",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the demo's temporary folder (event store, dashboard database) after it ends",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "replay",
        help="run a trace file through the detector, print detections",
        description=(
            "Runs a recorded trace (from 'retroguard record') through the fall detector with "
            "the config's detector settings and prints each detection, offline: no hardware, "
            "no relay. A trace that cannot be read is refused with the reason (exit 2)."
        ),
    )
    p.add_argument("trace", type=Path)
    _add_config_option(p, None)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "record",
        help="record the configured IMU to a trace file",
        description=(
            "Records the IMU named in the config (or, with the simulated IMU, a scripted "
            "--scenario) to a trace file for 'retroguard replay' and 'retroguard evaluate', "
            "labelled with what happened in it. It never drives the relay."
        ),
    )
    p.add_argument("out", type=output_file)
    _add_config_option(p, None)
    p.add_argument("--seconds", type=finite_float, default=10.0)
    p.add_argument(
        "--scenario",
        default=None,
        help="with the simulated IMU: what the simulated walker does (see --scenario list)",
    )
    p.add_argument("--label", choices=("fall", "adl", "unknown"), default="unknown")
    p.add_argument("--activity", default=None, help="activity code, e.g. D01 or F02")
    p.add_argument("--description", default=None)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "config",
        help="print an example config or check one",
        description=(
            "--example prints a fully commented config. --check FILE refuses exactly what "
            "'retroguard run' would refuse, with the reason (exit 2), and prints 'OK' and any "
            "warnings otherwise."
        ),
    )
    p.add_argument("--example", action="store_true", help="print a fully commented example")
    p.add_argument("--check", type=Path, default=None, metavar="FILE", help="validate FILE")
    _add_config_option(p, None)
    p.set_defaults(func=cmd_config)

    chosen = LAZY.get(_chosen(argv) or "")
    for name, command in LAZY.items():
        if chosen is not None and name in chosen.registers:
            continue
        sub.add_parser(name, help=command.help)
    if chosen is not None:
        importlib.import_module(chosen.module).add_parser(sub)
    return parser


READER_GONE = 128 + 13
"""The exit status of a command whose standard output was closed early (``retroguard plan
show | head``): a shell's for a process killed by SIGPIPE (13), as other command-line tools
end; Python ignores SIGPIPE, so the write raises :class:`BrokenPipeError` instead."""


def _reader_gone() -> int:
    """Stop quietly: nobody reads standard output any more. Python flushes it once more at
    exit, which would fail on the same pipe with a traceback, so it is pointed at /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (stdout replaced): nothing to flush
        pass
    return READER_GONE


def main(argv: Sequence[str] | None = None) -> int:
    from core.logsetup import setup_logging

    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    setup_logging(verbose=args.verbose)
    try:
        result: int = args.func(args)
        sys.stdout.flush()  # a reader gone shows here, in the handler below, not at exit
    except BrokenPipeError:
        return _reader_gone()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except SchemaError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        advice = missing_extra(exc)
        if advice is None:
            raise
        print(f"retroguard: {advice}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
