"""A card and an event page tell what happened in plain words (issue 14: "the card tells
the story"); the colour follows the incident, not the belt."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from caregiver import story
from caregiver.plot import AfterTheTrip
from caregiver.storage import CardIncident, Device, StoredEvent
from core.protocol.events import EventType
from core.protocol.words import event_said

NOW = 1_800_000_000.0


def _incident(kind: str, status: str = "open", **closed: Any) -> CardIncident:
    return {
        "id": "inc",
        "kind": kind,
        "status": status,
        "opened_at": NOW - 120,
        "first_event_id": "trip",
        "last_event_at": NOW - 100,
        "closed_at": closed.get("closed_at"),
        "closed_by": closed.get("closed_by"),
        "closed_via": closed.get("closed_via"),
        "answered": closed.get("answered", False),
        "newest_alert": "fall",
        "walker": None,
        "told": closed.get("told", True),
        "opened_wall": closed.get("opened_wall", ""),  # no stamp: counted from its receipt
        "opened_unsynced": False,
        "closed_wall": closed.get("closed_wall", ""),
        "closed_unsynced": closed.get("closed_unsynced", False),
    }


def _device(
    state: str = "ARMED",
    availability: str = "online",
    incident: CardIncident | None = None,
    open_alerts: int = 0,
    reason: str = "",
    worn: str = "",
) -> Device:
    return {
        "device_id": "t1",
        "availability": availability,
        "state": state,
        "state_reason": reason,
        "state_worn": worn,
        "state_fault": "",
        "state_time": "",
        "last_seen": NOW - 300,
        "telemetry": {},
        "last_event": None,
        "open_alerts": open_alerts,
        "incident": incident,
        "newest_other_alert": None,
    }


def test_an_open_fall_is_the_red_headline_and_the_belt_waits_for_a_reset() -> None:
    s = story.card(_device("TRIPPED", incident=_incident("fall"), open_alerts=1), NOW)
    assert s.level == "danger"
    assert s.headline is not None and s.headline.text == "FALL — not acknowledged"
    assert s.headline.since == NOW - 120 and s.headline.link == "/events/trip"
    assert s.belt == "Belt stopped, waiting for a reset at the machine"
    assert s.can_acknowledge and not s.offline


def test_a_stumble_the_walker_closed_says_so_and_is_not_an_alarm() -> None:
    closed = _incident("stumble", "closed", closed_at=NOW - 90, closed_via="walker")
    s = story.card(_device("ARMED", incident=closed), NOW)
    assert s.headline is not None and s.headline.text == "Stumble — walker pressed I'm OK"
    assert (s.level, s.can_acknowledge) == ("ok", False)


def test_a_close_the_walker_made_counts_from_the_treadmill_s_stamp_as_the_event_page() -> None:
    """The I'm OK the treadmill held twenty minutes: "(N min ago)" from the walker's press, by
    the treadmill's clock when it was set, else from its receipt (as story.page_moment)."""
    pressed = dt.datetime.fromtimestamp(NOW - 1200, dt.UTC).isoformat(timespec="milliseconds")
    held = _incident(
        "stumble", "closed", closed_at=NOW - 5, closed_via="walker", closed_wall=pressed
    )
    s = story.card(_device("ARMED", incident=held), NOW)
    assert s.headline is not None and s.headline.since == NOW - 1200
    unset = _incident(
        "stumble", "closed", closed_at=NOW - 5, closed_via="walker", closed_wall=pressed,
        closed_unsynced=True,
    )  # fmt: skip
    s = story.card(_device("ARMED", incident=unset), NOW)
    assert s.headline is not None and s.headline.since == NOW - 5


def test_an_acknowledged_fall_leaves_the_card_neutral_while_the_belt_stays_stopped() -> None:
    closed = _incident(
        "fall", "closed", closed_at=NOW - 60, closed_by="ann", closed_via="dashboard"
    )
    s = story.card(_device("TRIPPED", incident=closed), NOW)
    assert s.headline is not None
    assert s.headline.text == "Fall — acknowledged by ann on the dashboard"
    assert s.level == "idle" and not s.can_acknowledge
    assert s.belt == "Belt stopped, waiting for a reset at the machine"


def test_a_fall_acknowledged_here_and_not_yet_confirmed_by_the_treadmill_says_so() -> None:
    """Closed by a caregiver while the treadmill could not be told (the broker down, the
    monitor off): the card says it is not yet closed there, until the monitor confirms."""
    untold = _incident(
        "fall", "closed", closed_at=NOW - 60, closed_by="ann", closed_via="dashboard", told=False
    )
    s = story.card(_device("TRIPPED", incident=untold), NOW)
    assert s.headline is not None
    assert s.headline.text == (
        "Fall — acknowledged by ann on the dashboard — not yet confirmed by the treadmill"
    )
    assert s.level == "idle" and not s.can_acknowledge
    walker = _incident(
        "stumble", "closed", closed_at=NOW - 60, closed_by="walker", closed_via="walker", told=False
    )
    s = story.card(_device("ARMED", incident=walker), NOW)
    assert s.headline is not None and s.headline.text == "Stumble — walker pressed I'm OK"


@pytest.mark.parametrize(
    ("via", "words"),
    [
        ("home-assistant", "acknowledged by bob from Home Assistant"),
        ("notification", "acknowledged by bob from a notification"),
        ("pager", "acknowledged by bob via pager"),
    ],
)
def test_who_closed_it_and_how(via: str, words: str) -> None:
    assert story.closed_how("bob", via) == words


def test_a_closed_incident_stops_being_the_headline_after_a_while() -> None:
    old = _incident("stumble", "closed", closed_at=NOW - story.RECENT_S - 1, closed_via="walker")
    assert story.card(_device("ARMED", incident=old), NOW).headline is None


def test_offline_is_grey_with_the_last_known_state_and_when_it_was_seen() -> None:
    s = story.card(_device("ARMED", availability="offline"), NOW)
    assert (s.level, s.offline, s.last_seen) == ("offline", True, NOW - 300)
    assert s.belt == "Last known — monitor armed: the belt can run"
    assert s.headline is None


@pytest.mark.parametrize(
    ("state", "reason"),
    [("ARMED", ""), ("STANDBY", ""), ("STARTING", ""), ("FAULT", "I2C bus error"),
     ("TRIPPED", "sensor not worn")],
)  # fmt: skip
def test_an_offline_card_s_last_known_state_is_one_line_with_one_colon(
    state: str, reason: str
) -> None:
    """An offline card read "Last known: monitor armed: the belt can run", two lines run
    together: the state's words keep their colon, "Last known" leads with a dash."""
    s = story.card(_device(state, availability="offline", reason=reason), NOW)
    assert s.belt.startswith("Last known — ") and s.belt.count(":") <= 1, s.belt


def test_offline_with_an_open_fall_says_both_and_stays_red() -> None:
    s = story.card(
        _device("TRIPPED", availability="offline", incident=_incident("fall"), open_alerts=1),
        NOW,
    )
    assert s.level == "danger" and s.offline
    assert s.headline is not None and s.headline.text == "FALL — not acknowledged"
    assert s.belt.startswith("Last known — belt stopped")


def test_gone_offline_while_armed_is_an_alert_to_acknowledge() -> None:
    s = story.card(_device("ARMED", availability="offline", open_alerts=1), NOW)
    assert s.headline is not None
    assert s.headline.text == "Monitor went offline while armed — not acknowledged"
    # amber, as any open alert that is not a fall or a call for help: it pages, and was grey
    # as a quiet offline treadmill (the words say offline)
    assert s.level == "warn" and s.can_acknowledge and s.offline
    stumble = _device("TRIPPED", availability="offline", incident=_incident("stumble"))
    assert story.card(stumble, NOW).level == "warn"  # an open stumble, offline: still amber


def test_gone_offline_while_armed_outranks_a_fall_acknowledged_an_hour_ago() -> None:
    """Dad fell, Ann acknowledged, he re-armed and walked on; then the treadmill stopped
    reporting while armed. The card said "Fall — acknowledged by ann" above an Acknowledge
    button that closes something it did not name: the offline alert is its headline."""
    acked = _incident(
        "fall", "closed", closed_at=NOW - 3600, closed_by="ann", closed_via="dashboard"
    )
    s = story.card(_device("ARMED", availability="offline", incident=acked, open_alerts=1), NOW)
    assert s.headline is not None
    assert s.headline.text == "Monitor went offline while armed — not acknowledged"
    assert s.headline.open and s.can_acknowledge
    assert s.belt == "Last known — monitor armed: the belt can run"


def test_an_acknowledgement_too_late_names_who_closed_it_first() -> None:
    assert story.closed_earlier("ann", "dashboard", "bob") == (
        "Already acknowledged by ann on the dashboard"
    )
    assert story.closed_earlier("bob", "notification", "bob") == (
        "Already acknowledged by you from a notification"
    )
    assert story.closed_earlier(None, "walker", "bob") == "The walker had already pressed I'm OK"


def test_an_open_stumble_or_fault_is_amber_and_a_fault_says_why() -> None:
    assert story.card(_device("TRIPPED", incident=_incident("stumble")), NOW).level == "warn"
    s = story.card(_device("FAULT", reason="IMU stale 0.6 s"), NOW)
    assert s.level == "warn" and s.belt == "Belt stopped by a monitor fault: IMU stale 0.6 s"


def _event(kind: str, figures: dict[str, float] | None = None, **kw: Any) -> StoredEvent:
    return StoredEvent(
        id=kw.get("id", kind),
        device_id="t1",
        seq=1,
        type=kind,
        severity=kw.get("severity", "critical"),
        state="TRIPPED",
        reason=kw.get("reason", ""),
        wall_time=kw.get("wall_time", "2026-12-01T10:00:00.000+00:00"),
        received_at=NOW,
        figures=figures or {},
        has_window=False,
        acked_by=None,
        acked_at=None,
        ack_confirmed=False,
        incident="inc",
    )


def test_the_event_page_speaks_of_impact_tilt_lying_still_and_getting_up() -> None:
    trip = _event("stumble", {"tilt_deg": 40.0}, severity="warning")
    fall = _event("fall", {"impact_g": 4.1, "tilt_deg": 83.0, "descent_mps": 1.2})
    lying = _event("no_recovery", {"still_s": 20.0})
    ok = _event("ok", wall_time="2026-12-01T10:01:30.000+00:00", severity="info")
    facts = {f.label: f for f in story.facts(trip, [trip, fall, lying, ok], None)}
    assert facts["Impact"].value == "hard (4.1 g; standing still is 1 g)"
    assert facts["Body tilt"].value == "83° from upright — lying down"
    assert facts["Dropping speed"].value == "1.2 m/s"
    assert facts["Lying still"].value == "yes, 20 s or more"
    assert facts["Got up"].value == "yes — pressed I'm OK at the machine"
    assert facts["Got up"].at == "2026-12-01T10:01:30.000+00:00"


def test_without_the_walkers_answer_the_recording_says_what_it_saw() -> None:
    fall = _event("fall", {"impact_g": 1.5})
    after = AfterTheTrip(False, "still down and not moving 10 s after the trip")
    facts = {f.label: f.value for f in story.facts(fall, [fall], after)}
    assert facts["Impact"].startswith("light")
    assert facts["Got up"] == (
        "not yet: the recording shows them still down and not moving 10 s after the trip"
    )


def test_the_timeline_and_the_details_carry_units_and_skip_the_recording() -> None:
    events = [_event("stumble", {"tilt_rate_dps": 130.0, "impulse_gs": 0.3}), _event("window")]
    assert [s.text for s in story.steps(events, None)] == ["Stumble: the monitor stopped the belt"]
    (group,) = story.details(events)
    assert group.belt == "Belt stopped, waiting for a reset at the machine"  # not "TRIPPED"
    assert [(d.key, d.value, d.unit) for d in group.figures] == [
        ("Impact over its duration (impulse)", 0.3, "g·s"),
        ("How fast the trunk was tilting", 130.0, "°/s"),
    ]
    # a figure a later monitor adds: said from its key, in sentence case, with its unit
    later = story.figures({"sway_rate_dps": 3.0, "impact_g": 2.0})  # the impact first
    assert [(d.key, d.unit) for d in later] == [("Impact at its peak", "g"), ("Sway rate", "°/s")]


def test_an_alarm_is_worded_once_for_each_critical_event_type() -> None:
    """The live alarm and the caught-up one both take these words (the browser test checks
    the two banners agree)."""
    assert story.alarm("fall", "Dad's treadmill") == "FALL on Dad's treadmill"
    assert story.alarm("no_recovery", "T1") == "NOT GETTING UP after a fall on T1"
    assert story.alarm("help", "T1") == "HELP requested on T1"
    assert story.alarm("new_kind", "T1") == "NEW KIND on T1"  # a later monitor's type


def test_a_timeline_row_says_what_happened_in_plain_words() -> None:
    fall = _event("fall", {"impact_g": 5.1, "tilt_deg": 83.0, "impulse_gs": 0.3})
    assert story.row_title("fall") == "Fall"
    assert story.row_title("no_recovery") == "Not getting up"
    assert story.row_title("ok") == "Walker pressed I'm OK"
    assert story.row_text(fall) == (
        "impact hard (5.1 g; standing still is 1 g), 83° from upright — lying down"
    )
    light = _event("fall", {"impact_g": 1.5, "tilt_deg": 40.0})
    assert story.row_text(light) == "impact light (1.5 g; standing still is 1 g), 40° from upright"
    trip = _event("stumble", {}, severity="warning", reason="trunk rotated 12 deg in 0.3 s")
    assert story.row_text(trip) == "trunk rotated 12° in 0.3 s"
    spun = _event("stumble", {}, reason="turned at 130 deg/s; IMU degraded")
    assert story.row_text(spun) == "turned at 130°/s; IMU degraded"  # not "IMU°raded"
    bare = _event("fall", {}, reason="impact then lying")  # an older monitor: no figures
    assert story.row_text(bare) == "impact then lying"
    # an arming press in the caregiver's words, not the state machine's
    rearmed = _event("reset", {}, severity="info", reason="armed by local reset from TRIPPED")
    assert story.row_text(rearmed) == "re-armed at the machine after the belt was stopped"
    armed = _event("reset", {}, severity="info", reason="armed by local reset from STANDBY")
    assert story.row_text(armed) == "armed at the machine"
    fixed = _event("reset", {}, severity="info", reason="armed by local reset from FAULT")
    assert story.row_text(fixed) == "re-armed at the machine after a fault"
    assert not story.in_timeline("window") and story.in_timeline("fall")


def test_a_timeline_row_is_labelled_as_a_person_says_it_never_by_the_type_in_capitals() -> None:
    """The rows read "STOP", "CLOSED", "RESET": the protocol's type in capitals. Every type
    the protocol has is worded, and one a later monitor adds is said in sentence case."""
    labels = {t.value: story.row_title(t.value) for t in EventType}
    assert labels["stop"] == "Monitor stopped"
    assert labels["closed"] == "Acknowledged"
    assert labels["reset"] == "Reset at the machine"
    assert labels["stumble"] == "Stumble — belt stopped"
    for kind, label in labels.items():
        assert label != label.upper(), (kind, label)
        assert label[0].isupper() and label[1:] != label[1:].upper(), (kind, label)
    assert story.row_title("new_kind") == "New kind"  # a later monitor's type
    assert event_said("new_kind").step == "New kind"


def test_a_caregiver_s_close_and_the_monitor_s_start_read_without_repeating_the_label() -> None:
    closed = _event(
        "closed", {}, severity="info",
        reason="closed by ann via dashboard: the belt stays stopped until a reset at the machine",
    )  # fmt: skip
    assert story.row_text(closed) == (
        "by ann on the dashboard: the belt stays stopped until a reset at the machine"
    )
    ha = _event("closed", {}, severity="info", reason="closed by bob via home-assistant")
    assert story.row_text(ha) == "by bob from Home Assistant"
    odd = _event("closed", {}, severity="info", reason="closed at the console")
    assert story.row_text(odd) == "closed at the console"  # not the monitor's words: as said
    started = _event("start", {}, severity="info", reason="monitor started")
    assert story.row_text(started) == ""  # the label says it
    bench = _event("start", {}, severity="info", reason="monitor started; relay on a bench")
    assert story.row_text(bench) == "relay on a bench"
    stopped = _event("stop", {}, severity="info", reason="monitor stopped")
    assert story.row_text(stopped) == ""


def test_a_fall_answered_then_reopened_by_a_fault_is_not_an_emergency_again() -> None:
    """The walker's I'm OK answered the fall; a fault then reopened the incident. The card
    says a new alert waits, amber, not 'FALL — not acknowledged' in red."""
    reopened = _incident("fall", answered=True)
    told = story.card(_device("FAULT", incident=reopened, reason="IMU lost"), NOW)
    assert told.headline is not None
    assert told.headline.text == "New alert after the fall was answered — not acknowledged"
    assert told.level == "warn" and told.can_acknowledge
    assert story.card(_device("TRIPPED", incident=_incident("fall")), NOW).level == "danger"


def test_a_card_link_escapes_the_device_id_as_one_path_segment() -> None:
    """The card's headline link was ``/devices/<id>`` as stored; every other link to a device
    is escaped. ``core.protocol.ids`` keeps an id to ``[A-Za-z0-9_.-]``, which needs no
    escaping and stays as it is; an id past that rule (a row written past the checks, a wider
    rule some day) must not become another address, a query or a fragment."""
    widest = "aZ09_.-z"
    s = story.card(
        {**_device("ARMED", availability="offline", open_alerts=1), "device_id": widest}, NOW
    )
    assert s.headline is not None and s.headline.link == f"/devices/{widest}"
    odd = {**_device("ARMED", availability="offline", open_alerts=1), "device_id": 'a/b?c#d "e'}
    s = story.card(odd, NOW)
    assert s.headline is not None and s.headline.link == "/devices/a%2Fb%3Fc%23d%20%22e"
    assert story.device_link("a/b", "/progress") == "/devices/a%2Fb/progress"
