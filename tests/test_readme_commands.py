"""The README's command table names every ``retroguard`` command, and the caregiver service's
subcommands (its report too)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from launcher.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def table_rows() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `retroguard")]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (chooser,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(chooser.choices)


def test_the_readme_command_table_names_every_command() -> None:
    rows = table_rows()
    listed = {m.group(1) for row in rows for m in re.finditer(r"`retroguard ([a-z-]+)", row)}
    assert set(subcommands(build_parser())) - listed == set()


def test_the_readme_command_table_names_the_caregiver_services_subcommands() -> None:
    caregiver = subcommands(build_parser(["caregiver"]))["caregiver"]
    rows = [row for row in table_rows() if row.startswith("| `retroguard caregiver")]
    for name in subcommands(caregiver):
        named = (f"`{name}`", f"retroguard caregiver {name}")
        assert any(how in row for row in rows for how in named), name
    assert any(
        row.startswith("| `retroguard caregiver report DEVICE [--csv FILE] [--pdf FILE]")
        for row in rows
    )


def actions_of(parser: argparse.ArgumentParser) -> set[str]:
    """A command's actions: its subcommands, or the choices of its positional argument
    (``retroguard session start|pause|...``)."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found |= set(action.choices)
        elif not action.option_strings and action.choices is not None:
            found |= {str(choice) for choice in action.choices}
    return found


def test_the_readme_command_table_names_every_action_of_each_command() -> None:
    """``retroguard session start|pause|stop|status`` left ``resume`` out, which the command
    and docs/sessions.md have: every action a command takes is in one of its rows, as
    ``a|b|c`` or ``retroguard COMMAND action``."""
    rows = table_rows()
    for name in subcommands(build_parser()):
        if name == "caregiver":  # its subcommands: the test above
            continue
        parser = subcommands(build_parser([name]))[name]  # the command's own parser, not a stub
        listed: set[str] = set()
        for row in rows:
            for match in re.finditer(rf"`retroguard {re.escape(name)} ([^`]*)`", row):
                listed |= set(re.split(r"[\s|\\]+", match.group(1)))
        assert actions_of(parser) - listed == set(), name


def test_the_readme_layout_names_every_benchmark() -> None:
    """The layout's list of benchmarks had eight of seventeen: each file in benchmarks/ is
    named there, so a reader finds the figures a doc quotes."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("\n## Layout\n", 1)[1]
    files = {path.name for path in (ROOT / "benchmarks").glob("*.py")}
    assert {name for name in files if f"`{name}`" not in layout} == set()
