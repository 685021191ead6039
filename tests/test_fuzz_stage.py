"""Properties: a device's retained ``<prefix>/<device>/stage/<walker>`` (the walker's
progression, :class:`core.protocol.messages.StageMessage`) that is malformed, forged or absurd
is refused or stored as valid, never a crash (safety rule 6), and the walker's plan and progress
pages still render. Hypothesis draws the messages (``tests/fuzz_support.py``): any bytes, any
JSON, the valid message mutated field by field, its numbers and times at and past their ends
(stage 0, a stage past the last, negative counts, NaN and infinities, the calendar's ends),
oversized, empty (the device's clear), and topics whose walker is no walker id or not the
payload's. They go through the service's real ingest (:meth:`Ingestor.handle`, as a message
from the broker is handled) and the pages are fetched over HTTP from the running service;
``retroguard watch``'s message handler is fed each too.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from caregiver.service import CaregiverService
from caregiver.storage import Store
from core.progress import utc_of
from core.protocol import payloads
from core.protocol.messages import SCHEMA_VERSION, WalkersMessage
from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.config import MqttConfig
from tests.caregiver_support import Http, make_config, running_service
from tests.fuzz_support import as_json, fuzz, json_values, logged_errors, mutated, wall_times
from tests.stage_support import BOB, DEVICE, STAGE_EXAMPLE
from tools.broker import Mosquitto, mosquitto_available
from tools.watch import Watcher, format_message

ANNA = Walker("anna", "Anna")
VALID = STAGE_EXAMPLE
VALID_FIELDS: dict[str, Any] = json.loads(payloads.encode(VALID))

WATCH = Watcher(MqttConfig(host="127.0.0.1", port=1), "+", 0, False, out=io.StringIO())
"""``retroguard watch``, never connected: its message handler is fed what the service is."""

TOPIC_WALKERS = ("bob", "anna", "default", "", "Bob", "b b", "../bob", "x" * 33, "+", "\u00e9")
"""Topic levels for the walker: his, another walker's, and no walker id at all."""

NUMBERS = ("stage", "stages", "sessions_per_week", "stage_weeks", "weeks_done", "week_done")
ODD_NUMBERS = st.sampled_from(
    (0, -1, 65, 2**63, -(2**63) - 1, 10**400, math.nan, math.inf, -math.inf, 1.5, True, "1")
)
TIMES = ("wall_time", "stage_started_wall", "changed_wall")
ODD_TEXT = st.sampled_from(("", "x" * 100_000, "\u0000", "<script>alert(1)</script>", "2026-W54"))


@st.composite
def stage_payloads(draw: st.DrawFn) -> bytes:
    """A stage payload of any kind (see the module's docstring)."""
    how = draw(st.sampled_from(("edges", "mutated", "json", "bytes", "empty", "oversized")))
    if how == "empty":
        return b""
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "json":
        return as_json(draw(json_values))
    if how == "oversized":
        return as_json({**VALID_FIELDS, "stage_name": "n" * draw(st.sampled_from((81, 10**6)))})
    if how == "mutated":
        return as_json(draw(mutated(VALID_FIELDS)))
    message = dict(VALID_FIELDS)
    message |= draw(st.fixed_dictionaries({}, optional=dict.fromkeys(NUMBERS, ODD_NUMBERS)))
    message |= draw(st.fixed_dictionaries({}, optional=dict.fromkeys(TIMES, wall_times)))
    message |= draw(
        st.fixed_dictionaries(
            {},
            optional={
                "week": ODD_TEXT | st.sampled_from(("2026-W53", "0000-W01", "9999-W52")),
                "stage_name": ODD_TEXT,
                "change": ODD_TEXT,
                "zone": ODD_TEXT | st.sampled_from(("Mars/Olympus", "UTC", "../etc/passwd")),
                "unknown": json_values,
                "walker": st.sampled_from(({"id": "anna", "name": "Anna"}, {"id": "bob"}, "bob")),
                "device_id": st.sampled_from(("treadmill-2", "..", "")),
            },
        )
    )
    return as_json(message)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CaregiverService, Http]]:
    """The running service (its own real Mosquitto: the conftest's is per test, a property's
    examples share one) knowing the device's walkers, Bob's stage stored, Ann logged in."""
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto mosquitto-clients)")
    broker = Mosquitto()
    broker.start()
    try:
        config = make_config(broker, tmp_path_factory.mktemp("stage-fuzz"))
        with running_service(config, background=False) as service:
            walkers = WalkersMessage(
                schema=SCHEMA_VERSION, device_id=DEVICE, wall_time=VALID.wall_time,
                walkers=[DEFAULT_WALKER, ANNA, BOB],
            )  # fmt: skip
            for kind, payload in (
                ("state", payloads.state_payload(DEVICE, "ARMED", "button pressed")),
                ("walkers", payloads.encode(walkers)),
            ):
                assert service.ingestor.handle(f"retroguard/{DEVICE}/{kind}", payload.encode())
            assert service.ingestor.handle(_topic("bob"), payloads.encode(VALID).encode())
            assert service.store.walker_stage(DEVICE, "bob") == VALID
            web = Http(service.port)
            assert web.login() == 303
            yield service, web
    finally:
        broker.cleanup()


def _topic(walker: str) -> str:
    return f"retroguard/{DEVICE}/stage/{walker}"


def _pages_render(web: Http, walker: str) -> None:
    for page in ("plan", "progress"):
        status, _, body = web.request("GET", f"/devices/{DEVICE}/{page}?walker={walker}")
        assert status == 200, (page, status, body[:500])
        assert "Traceback" not in body


@fuzz(200)
@given(st.lists(st.tuples(st.sampled_from(TOPIC_WALKERS), stage_payloads()), min_size=1,
                max_size=3))  # fmt: skip
def test_any_stage_message_is_stored_valid_or_refused_and_the_pages_still_render(
    dashboard: tuple[CaregiverService, Http], batch: list[tuple[str, bytes]]
) -> None:
    service, web = dashboard
    ingestor = service.ingestor
    with logged_errors() as errors:
        for walker, payload in batch:
            assert ingestor.handle(_topic(walker), payload)
            assert isinstance(format_message(_topic(walker), payload), str | None)
            received = mqtt.MQTTMessage(topic=_topic(walker).encode())
            received.payload = payload
            WATCH._on_message(None, None, received)  # type: ignore[arg-type]  # as paho calls it
    assert errors == []
    assert ingestor.storage_fault is None and ingestor.held == 0
    for walker in ("bob", "anna"):
        kept = service.store.walker_stage(DEVICE, walker)
        if kept is not None:  # only a valid message, about the topic's walker, is kept
            assert kept.walker.id == walker and kept.device_id == DEVICE
            assert 1 <= kept.stage <= kept.stages
            utc_of(kept.wall_time)  # a time: what orders the walker's stages (see below)
        _pages_render(web, walker)


def test_a_stage_cleared_then_sent_again_is_shown_again(
    dashboard: tuple[CaregiverService, Http],
) -> None:
    """The device's clear (an empty retained payload) forgets the stage; the next valid one is
    kept again: nothing the fuzz sent before leaves the walker's row stuck."""
    service, web = dashboard
    assert service.ingestor.handle(_topic("bob"), b"")
    assert service.store.walker_stage(DEVICE, "bob") is None
    again = msgspec.structs.replace(VALID, stage=2, stage_name="progression-week-2")
    assert service.ingestor.handle(_topic("bob"), payloads.encode(again).encode())
    assert service.store.walker_stage(DEVICE, "bob") == again
    _pages_render(web, "bob")


@pytest.mark.parametrize("wall_time", ["x", "not a time", "\uffff", "9" * 30])
def test_a_stage_stamped_with_no_time_is_refused_and_blocks_no_later_one(
    dashboard: tuple[CaregiverService, Http], wall_time: str
) -> None:
    """Before: kept, and as its ``wall_time`` was compared as text ("x" sorts after every
    year), every later stage the device sent for the walker was refused as older than it: the
    pages showed the forged or broken one for good (a device's restart republishes with a real
    time, refused too), until the walker was removed at the treadmill."""
    service, web = dashboard
    ingestor = service.ingestor
    assert ingestor.handle(_topic("bob"), b"")  # whatever the fuzz left
    rejected = ingestor.rejected
    odd = msgspec.structs.replace(VALID, wall_time=wall_time, stage=2)
    assert ingestor.handle(_topic("bob"), payloads.encode(odd).encode())
    assert ingestor.rejected == rejected + 1
    assert service.store.walker_stage(DEVICE, "bob") is None
    assert ingestor.handle(_topic("bob"), payloads.encode(VALID).encode())
    assert service.store.walker_stage(DEVICE, "bob") == VALID
    _pages_render(web, "bob")


def test_a_kept_stage_with_no_time_gives_way_to_the_next(tmp_path: Path) -> None:
    """A row kept before such a stage was refused (its time is no time) is replaced by the
    device's next stage, not held against it; times are compared as moments, not as text."""
    store = Store(tmp_path / "caregiver.db")
    arrived = utc_of(VALID.wall_time).timestamp()  # received as the device stamped it
    try:
        odd = msgspec.structs.replace(VALID, wall_time="x", stage=2)
        assert store.set_walker_stage(DEVICE, odd, payloads.encode(odd).encode(), arrived + 1)
        assert store.set_walker_stage(DEVICE, VALID, payloads.encode(VALID).encode(), arrived + 2)
        assert store.walker_stage(DEVICE, "bob") == VALID
        # 10:00 UTC written an hour east, then 10:30 UTC: later, though its text sorts before
        east = msgspec.structs.replace(VALID, wall_time="2026-03-03T11:00:00.000+01:00", stage=2)
        assert store.set_walker_stage(DEVICE, east, payloads.encode(east).encode(), arrived + 3)
        later = msgspec.structs.replace(VALID, wall_time="2026-03-03T10:30:00.000+00:00", stage=2)
        assert store.set_walker_stage(
            DEVICE, later, payloads.encode(later).encode(), arrived + 1800
        )
        assert not store.set_walker_stage(
            DEVICE, VALID, payloads.encode(VALID).encode(), arrived + 1805
        )
        assert store.walker_stage(DEVICE, "bob") == later
    finally:
        store.close()
