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
