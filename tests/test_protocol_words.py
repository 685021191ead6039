"""The words a person reads of each protocol event and alert (core.protocol.words): one copy,
every type worded."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from core.protocol.events import INCIDENT_TYPES, SEVERITY_ORDER, EventType
from core.protocol.messages import IncidentSeverity
from core.protocol.words import (
    ALERT_KINDS,
    ALERT_SAID,
    CLOSED_VIA_SAID,
    EVENT_SAID,
    OFFLINE,
    alert_said,
    closed_via_said,
    event_said,
)


def _sentence(text: str) -> bool:
    """Begins with a capital and is not all capitals (the type itself shouted: "NO_RECOVERY")."""
    return text[:1].isupper() and text != text.upper() and "_" not in text


def test_every_event_type_the_protocol_defines_has_words() -> None:
    """A type added to :class:`EventType` without words fails here (and everywhere that says
    it would fall back to the type itself)."""
    assert set(EVENT_SAID) == {t.value for t in EventType}
    for kind in EventType:
        words = EVENT_SAID[kind.value]
        assert _sentence(words.row), (kind, words.row)
        assert _sentence(words.step), (kind, words.step)
        assert event_said(kind.value) is words


def test_every_alert_kind_has_words_an_incident_s_severities_and_offline() -> None:
    """Each kind an alert may have: every incident type and severity the protocol defines, and
    the service's own offline-while-armed alert."""
    kinds = {t.value for t in INCIDENT_TYPES}
    assert kinds == set(get_args(IncidentSeverity))
    assert set(ALERT_SAID) == ALERT_KINDS == kinds | {OFFLINE}
    # every severity but a test alarm's (which pages as a test, never as an alert) is worded
    assert set(SEVERITY_ORDER) - {"test"} == kinds
    for kind, words in ALERT_SAID.items():
        assert _sentence(words.name), (kind, words.name)
        assert words.open and words.alarm, kind
        assert alert_said(kind) is words
    assert ALERT_SAID["no_recovery"].alarm == "NOT GETTING UP after a fall"
    assert ALERT_SAID[OFFLINE].alarm == "Monitor went offline while armed"


def test_a_type_a_later_monitor_adds_is_said_as_itself_never_raw() -> None:
    assert event_said("new_kind").row == "New kind"
    assert event_said("new_kind").step == "New kind"
    later = alert_said("new_kind")
    assert (later.name, later.open, later.alarm) == ("New kind", "New kind", "NEW KIND")


def test_how_an_incident_was_closed_is_said_alike_on_the_dashboard_and_in_watch() -> None:
    """The dashboard said "acknowledged by ann via mqtt" where ``retroguard watch`` said "by
    ann by an MQTT command": two tables of the same words."""
    from caregiver.story import closed_how
    from core.protocol.messages import IncidentMessage
    from tools.watch import incident_line

    for via, said in [*CLOSED_VIA_SAID.items(), ("pager", "via pager")]:
        assert closed_via_said(via) == said
        if via != "walker":  # the walker's "I'm OK" is said as such by both
            assert closed_how("ann", via) == f"acknowledged by ann {said}"
        closed = IncidentMessage(
            schema=1,
            device_id="tm-1",
            open=False,
            wall_time="2026-12-06T10:00:00Z",
            incident="inc-1",
            severity="fall",
            closed_by="ann",
            closed_via=via,
        )
        assert f" closed by ann {said}: Fall" in incident_line("tm-1", closed)
    assert closed_via_said(None) == closed_via_said("") == ""
    assert closed_how("ann", None) == "acknowledged by ann"


ENTITY_NAMES = {
    ("firmware/mqtt/discovery.py", "Fall"),  # the Fall binary sensor's name, not an event's
    ("firmware/mqtt/discovery.py", "Test alarm"),  # the Test alarm button's name
}
"""Strings equal to an event's or an alert's words that name something else."""


def test_no_module_keeps_its_own_copy_of_the_words() -> None:
    """Each place kept its own table (the notifier's "Monitor went OFFLINE while armed", Home
    Assistant's "Armed again at the machine", ``retroguard watch``'s "a trip (stumble)", the
    dashboard's and ``watch``'s ways an incident was closed): a
    string in the code (not a docstring) that is one of the words is a copy; read them from
    :mod:`core.protocol.words`."""
    words = {w for said in ALERT_SAID.values() for w in (said.name, said.open, said.alarm)}
    words |= {w for said in EVENT_SAID.values() for w in (said.row, said.step)}
    words |= set(CLOSED_VIA_SAID.values())  # the dashboard's and watch's tables of how
    root = Path(__file__).resolve().parent.parent
    copies = []
    for package in ("core", "hal", "sim", "firmware", "tools", "caregiver", "launcher"):
        for path in sorted((root / package).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            if name == "core/protocol/words.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {
                id(node.value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            }
            copies += [
                (name, node.lineno, node.value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in words
                and id(node) not in docstrings
                and (name, node.value) not in ENTITY_NAMES
            ]
    assert copies == []
