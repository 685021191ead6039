"""The words a person reads of each protocol event and alert (core.protocol.words): one copy,
every type worded."""

from __future__ import annotations

from typing import get_args

from core.protocol.events import INCIDENT_TYPES, SEVERITY_ORDER, EventType
from core.protocol.messages import IncidentSeverity
from core.protocol.words import (
    ALERT_KINDS,
    ALERT_SAID,
    EVENT_SAID,
    OFFLINE,
    alert_said,
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
