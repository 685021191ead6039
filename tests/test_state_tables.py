"""The declared state machines: their tables are what the docs and docstrings draw, and they
keep the safety rules (only a local reset arms; every state can fault)."""

from __future__ import annotations

import enum
import re
import textwrap
from pathlib import Path

import pytest

import firmware.safety
import firmware.session.runner
from firmware.fsm import TransitionTable
from firmware.safety import SAFETY_TRANSITIONS, SafetyState, Trigger
from firmware.session.runner import SESSION_TRANSITIONS, SessionState, SessionTrigger

DOCS = Path(__file__).resolve().parent.parent / "docs"


def mermaid_in_markdown(path: Path) -> list[str]:
    """Every ```mermaid block of a Markdown file, without its fences."""
    return [
        block.strip()
        for block in re.findall(r"^```mermaid\n(.*?)^```", path.read_text(), re.M | re.S)
    ]


def state_diagram_in_docstring(doc: str | None) -> str:
    """The indented ``stateDiagram-v2`` block of a module docstring, dedented."""
    assert doc is not None
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "stateDiagram-v2")
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return textwrap.dedent("\n".join(lines[start:end])).strip()


@pytest.mark.parametrize(
    ("table", "doc", "module_doc"),
    [
        (SAFETY_TRANSITIONS, DOCS / "safety.md", firmware.safety.__doc__),
        (SESSION_TRANSITIONS, DOCS / "sessions.md", firmware.session.runner.__doc__),
    ],
    ids=["safety", "session"],
)
def test_the_docs_draw_the_table_in_the_code(
    table: TransitionTable[enum.StrEnum, enum.StrEnum], doc: Path, module_doc: str | None
) -> None:
    drawn = table.mermaid()
    assert mermaid_in_markdown(doc) == [drawn], f"{doc.name}: paste this block:\n{drawn}"
    assert state_diagram_in_docstring(module_doc) == drawn


def test_safety_table_keeps_the_safety_rules() -> None:
    edges = SAFETY_TRANSITIONS.edges
    into_armed = {
        (source, trigger) for source, target, trigger in edges if target is SafetyState.ARMED
    }
    assert into_armed == {
        (SafetyState.STANDBY, Trigger.LOCAL_RESET),
        (SafetyState.TRIPPED, Trigger.LOCAL_RESET),
    }, "only a local reset arms, and never straight from STARTING or FAULT"
    for state in SafetyState:
        if state is not SafetyState.FAULT:
            assert SAFETY_TRANSITIONS.allows(state, SafetyState.FAULT, Trigger.FAULT), state
    assert [(t, g) for s, t, g in edges if s is SafetyState.FAULT] == [
        (SafetyState.STANDBY, Trigger.IMU_HEALTHY)
    ], "FAULT leads only to STANDBY: arming after a fault needs a press, as ever"
    assert [(t, g) for s, t, g in edges if s is None] == [(SafetyState.STARTING, Trigger.START)]
    assert {g for _, _, g in edges} == set(Trigger), "every trigger is used"


def test_session_table_uses_every_trigger_and_state() -> None:
    edges = SESSION_TRANSITIONS.edges
    assert {g for _, _, g in edges} == set(SessionTrigger)
    assert {s for s, _, _ in edges} == set(SessionState)
    assert {t for _, t, _ in edges} == set(SessionState) - {SessionState.IDLE}


def test_a_table_answers_only_for_its_declared_edges() -> None:
    assert SAFETY_TRANSITIONS.allows(SafetyState.ARMED, SafetyState.TRIPPED, Trigger.DETECTION)
    # The right pair of states on the wrong trigger is not allowed either.
    assert not SAFETY_TRANSITIONS.allows(SafetyState.ARMED, SafetyState.TRIPPED, Trigger.FAULT)
    assert not SAFETY_TRANSITIONS.allows(SafetyState.FAULT, SafetyState.FAULT, Trigger.FAULT)
    assert not SAFETY_TRANSITIONS.allows(None, SafetyState.FAULT, Trigger.FAULT)


def test_a_transition_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        TransitionTable({SafetyState.ARMED: {SafetyState.FAULT: (Trigger.FAULT, Trigger.FAULT)}})
