"""Properties: what reaches a device or the caregiver service over MQTT gets a clear refusal,
never a crash (safety rule 6). Hypothesis draws the messages (``tests/fuzz_support.py``):
any bytes, any JSON, and valid messages mutated field by field, with wall times anywhere in
the calendar.

What it found: a wall time within a day of the calendar's ends ("0001-01-01T00:00:00" from a
device, "0001-01-01T00:00:00+14:00" from the network) raised ``OverflowError`` wherever it was
put in a time zone: the caregiver service refused such a fall (no row, no page) in any zone
west of UTC, logged a traceback for such a session summary, and ``retroguard watch`` and the
device's self-test (the caregiver presence's time) crashed on it. Such a time is now no wall
time (:func:`core.progress.utc_of`), shown as received; the examples below keep it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, Contact, ServerConfig
from caregiver.localtime import moment_of, readable
from caregiver.progress import parse_summary
from caregiver.service import CaregiverService
from core.progress import utc_of
from core.protocol import payloads
from core.protocol.commands import COMMANDS, CommandRefused, parse_command
from core.zones import named_zone
from firmware.config import MqttConfig
from firmware.mqtt import MqttReporter
from firmware.mqtt.caregiver import CaregiverView, CaregiverWatch, clock_time, self_test_check
from tests.fuzz_support import as_json, fuzz, json_values, logged_errors, mutated, wall_times
from tests.mqtt_helpers import fall, validate
from tests.test_input_fuzz import DEVICE, _device_messages, _valid_commands
from tools.watch import format_message

EDGES = ("0001-01-01T00:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00")
"""Wall times a day or less from the calendar's ends: no clock's, and each was a crash."""


# ------------------------------------------------------------------ commands to the device


@fuzz(150)
@given(st.sampled_from((*COMMANDS, "arm", "")), st.binary(max_size=200) | json_values.map(as_json))
def test_any_payload_on_a_command_topic_is_parsed_or_refused(name: str, payload: bytes) -> None:
    try:
        parse_command(name, payload)
    except CommandRefused as refused:
        assert str(refused)


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttReporter]:
    """A reporter on a real database holding a fall, its command handler driven directly."""
    rep = MqttReporter(
        MqttConfig(host="127.0.0.1", port=1),
        device_id="tm1",
        device_name="T1",
        database=tmp_path_factory.mktemp("device") / "courier.db",
        on_test_alarm=lambda by: None,
    )
    rep.sink.handle(fall("tm1"))
    yield rep
    rep.close()


@st.composite
def commands(draw: st.DrawFn) -> tuple[str, bytes]:
    valid = _valid_commands("0" * 32)
    name = draw(st.sampled_from(sorted(valid)))
    return name, as_json(draw(mutated(draw(st.sampled_from(valid[name])))))


@fuzz(120)
@given(commands())
def test_mutated_commands_get_a_reply_never_an_internal_error(
    device: MqttReporter, command: tuple[str, bytes]
) -> None:
    name, payload = command
    with logged_errors() as errors:
        reply = device.commands.handle(name, payload)
    assert reply.ok or not (reply.error or "").startswith("internal error"), reply.error
    assert errors == []
    validate(
        "reply",
        payloads.reply_payload(
            "tm1", reply.command, reply.request_id, reply.ok, reply.result, reply.error
        ),
    )


@fuzz(60)
@given(
    st.builds(
        lambda presence, wall_time: {**presence, "wall_time": wall_time},
        st.fixed_dictionaries(
            {
                "schema": st.just(1),
                "state": st.sampled_from(("online", "offline")),
                "by": st.just("svc"),
            }
        ),
        wall_times,
    )
    | mutated({"schema": 1, "state": "online", "by": "svc", "wall_time": EDGES[0]})
)
def test_any_caregiver_presence_is_heard_or_ignored_and_the_self_test_says_it(
    presence: Any,
) -> None:
    watch = CaregiverWatch(expected=True, clock=lambda: 0.0)
    watch.heard(as_json(presence), retained=True)
    view = watch.view(1, "2026-03-02T09:00:00.000+00:00")  # an alert of its own awaits
    assert isinstance(view.since, str | None)
    for connected in (True, False):
        assert self_test_check(view, connected).detail


# ------------------------------------------------------------ device messages, caregiver side

TIME_FIELDS = ("wall_time", "started_wall", "ended_wall", "opened_wall", "closed_wall")


@st.composite
def device_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A device's message of any kind: mutated, or valid with its times anywhere."""
    valid = {kind: json.loads(texts[0]) for kind, texts in _device_messages().items()}
    kind = draw(st.sampled_from(sorted(valid)))
    message = valid[kind]
    if draw(st.booleans()):
        times = {k: wall_times for k in TIME_FIELDS if k in message}
        message = {**message, **draw(st.fixed_dictionaries({}, optional=times))}
        message.pop("wall_unsynced", None)  # the event's own time is shown, not the receipt's
        if "id" in message and kind == "event":
            message["id"] = f"{draw(st.integers(0, 2**128 - 1)):032x}"
    else:
        message = draw(mutated(message))
    return f"retroguard/{DEVICE}/{kind}", as_json(message)


def _service(folder: Path, zone: str) -> CaregiverService:
    """A service not connected (its ingest driven directly), paging one contact, in ``zone``:
    a device's time is put in the zone for the page's text."""
    return CaregiverService(
        CaregiverConfig(
            server=ServerConfig(
                host="127.0.0.1", port=0, database=str(folder / "c.db"), timezone=zone
            ),
            mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
            contacts=(Contact(name="Ann", urls=("json://127.0.0.1:9/page",)),),
        )
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CaregiverService]]:
    """West and east of UTC: each end of the calendar overflows in one of them."""
    made = [
        _service(tmp_path_factory.mktemp(zone.replace("/", "-")), zone)
        for zone in ("America/New_York", "Asia/Tokyo")
    ]
    yield made
    for service in made:
        service.store.close()


@fuzz(80)
@given(st.lists(device_messages(), min_size=1, max_size=4), st.integers(0, 1))
def test_device_messages_are_stored_or_refused_never_a_traceback(
    services: list[CaregiverService], batch: list[tuple[str, bytes]], which: int
) -> None:
    ingestor = services[which].ingestor
    with logged_errors() as errors:
        assert ingestor.handle_batch(batch)
        for topic, payload in batch:  # as `retroguard watch` shows them
            assert isinstance(format_message(topic, payload), str | None)
    assert ingestor.storage_fault is None and ingestor.held == 0
    assert errors == []


# ------------------------------------------------------------------------- the examples


def _fall_at(wall_time: str) -> bytes:
    message = json.loads(payloads.event_payload(fall(DEVICE), 1))
    message.pop("wall_unsynced", None)  # a synchronised clock: its time is the one shown
    return json.dumps({**message, "wall_time": wall_time}).encode()


@pytest.mark.parametrize(
    ("zone", "wall_time"), [("America/New_York", EDGES[0]), ("Asia/Tokyo", "9999-12-31T23:59:59")]
)
def test_a_fall_stamped_at_the_calendar_s_end_is_stored_and_paged(
    tmp_path: Path, zone: str, wall_time: str
) -> None:
    """Before: OverflowError putting the time in the zone for the page; the fall was refused,
    stored nowhere, paged to no one."""
    service = _service(tmp_path, zone)
    try:
        assert service.ingestor.handle_batch([(f"retroguard/{DEVICE}/event", _fall_at(wall_time))])
        assert [e.wall_time for e in service.store.events_for(DEVICE)] == [wall_time]
        (alert,) = service.alerting.alerts()
        assert (alert.kind, alert.status, alert.paged) == ("fall", "paging", ["Ann"])
    finally:
        service.store.close()
    assert readable(wall_time, named_zone(zone)) == wall_time  # shown as received


@pytest.mark.parametrize("started", EDGES[1:])
def test_a_session_summary_started_at_the_calendar_s_end_is_refused_by_name(
    started: str,
) -> None:
    """Before: an OverflowError traceback in the log for each."""
    summary = json.loads(_device_messages()["session"][0])
    assert parse_summary({**summary, "started_wall": started}, DEVICE) == (
        None,
        "no valid started_wall",
    )


@pytest.mark.parametrize("wall_time", EDGES)
def test_such_a_time_is_no_wall_time_and_is_shown_as_sent(wall_time: str) -> None:
    with pytest.raises(ValueError, match="outside"):
        utc_of(wall_time)
    assert moment_of(wall_time) is None
    assert clock_time(wall_time) == wall_time  # the device's self-test: was OverflowError
    view = CaregiverView("online", wall_time, expected=True)
    assert wall_time in self_test_check(view, connected=True).detail
    line = format_message(f"retroguard/{DEVICE}/event", _fall_at(wall_time))  # watch: a crash
    assert line is not None and line.startswith(wall_time[:23])


def test_the_calendar_s_last_days_either_side_are_still_wall_times() -> None:
    assert utc_of("0002-01-01T00:00:00+00:00") == dt.datetime(2, 1, 1, tzinfo=dt.UTC)
    assert utc_of("9998-12-31T23:59:59").year == 9998
    assert moment_of(0.0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
