"""The progression file as docs/sessions.md ("Progression") documents it: the example there is
set as written, and a stage's ``plan`` may name a preset (before, "stages[0].plan: expected
object, got str"), which then is that preset; a name that is no preset is refused naming the
stage, and nothing is stored. The wire keeps every stage's plan whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.plan_presets import PRESETS
from core.protocol.plan import (
    PlanInvalid,
    progression_from_builtins,
    progression_to_builtins,
)
from firmware.storage.database import connect
from firmware.storage.progressions import current_progression
from launcher.cli import main

ROOT = Path(__file__).resolve().parent.parent


def documented_example() -> str:
    """The JSON block after "**A progression file**" in docs/sessions.md."""
    text = (ROOT / "docs" / "sessions.md").read_text(encoding="utf-8")
    section = text.split("**A progression file**", 1)[1]
    match = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/sessions.md lost its progression file example"
    return match.group(1)


def test_the_documented_progression_file_is_set_with_its_presets_resolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "anna.json"
    path.write_text(documented_example(), encoding="utf-8")
    db = tmp_path / "device.db"
    assert main(["plan", "--db", str(db), "progression", "set", str(path), "--stage", "1"]) == 0
    assert "anna-spring" in capsys.readouterr().out
    conn = connect(str(db))
    try:
        state = current_progression(conn)
    finally:
        conn.close()
    assert state is not None
    stages = state.progression.stages
    assert [s.plan for s in stages[:2]] == [PRESETS["alternate-2-2"], PRESETS["progression-week-3"]]
    assert [(s.weeks, s.sessions_per_week) for s in stages] == [(2, 3), (1, 4), (4, 3)]
    assert stages[2].plan.name == "Anna, 12 min"
    assert stages[2].plan.intervals[1].speed == "0.4 mph"


def test_a_stage_naming_no_preset_is_refused_naming_the_stage_and_nothing_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(documented_example())
    data["stages"][1]["plan"] = "progresion-week-3"
    path = tmp_path / "anna.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    db = tmp_path / "device.db"
    assert main(["plan", "--db", str(db), "progression", "set", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{path}: stages[1].plan: no preset plan is named 'progresion-week-3': name one of "
        "alternate-2-2, progression-week-1, "
    ) in err
    conn = connect(str(db))
    try:
        assert current_progression(conn) is None
    finally:
        conn.close()


def test_the_wire_form_still_carries_each_stage_s_plan_whole() -> None:
    """``cmd/progression`` (no presets given) refuses a name: what a device stores never
    depends on the presets its software knows; the file's form reads back as the wire's."""
    data = json.loads(documented_example())
    with pytest.raises(PlanInvalid, match=r"stages\[0\]\.plan: expected `object`, got `str`"):
        progression_from_builtins(data)
    resolved = progression_from_builtins(data, presets=PRESETS)
    assert progression_from_builtins(progression_to_builtins(resolved)) == resolved
