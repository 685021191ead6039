"""A fall the treadmill held in its outbox through a network outage: the service receives it
twenty minutes after it happened. Every page and message says when it happened by the
treadmill's clock (set by NTP), as the event page's steps do, and when it was received beside
it: "Since 14:52" (its receipt) above "14:32 Fell backward" read as a fall twenty minutes later
than it was. (A clock not set: tests/test_event_wall_clock.py.)"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caregiver import story
from tests.caregiver_support import (
    WAIT,
    Http,
    Receiver,
    SimDevice,
    make_config,
    running_service,
)
from tests.test_caregiver_accounts import Stream
from tests.test_caregiver_service import _fake_clock_service
from tools.broker import Mosquitto, mosquitto_available

HELD = "held 20 min by the treadmill"

needs_broker = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


def test_the_device_s_stamp_is_when_it_happened_and_its_receipt_is_said_when_apart() -> None:
    at = dt.datetime(2026, 12, 6, 14, 32, 5, tzinfo=dt.UTC)
    iso = at.isoformat(timespec="milliseconds")
    held = story.stamped(iso, at.timestamp() + 20 * 60 + 35, unsynced=False)
    assert (held.at, held.since, held.late) == (iso, at.timestamp(), HELD)
    assert held.received_format == "time"
    prompt = story.stamped(iso, at.timestamp() + 59, unsynced=False)  # the network's own delay
    assert (prompt.since, prompt.late) == (at.timestamp(), "")
    ahead = story.stamped(iso, at.timestamp() - 180, unsynced=False)
    assert ahead.late == "the treadmill's clock was 3 min ahead"
    days = story.stamped(iso, at.timestamp() + 3 * 86400, unsynced=False)
    assert days.late == "held 3 days by the treadmill" and days.received_format == "datetime"
    assert story.late_words(2 * 3600 + 5 * 60) == "2 h 5 min"
    # the clock not set: when it was received, and nothing said of being held
    unset = story.stamped(iso, at.timestamp() + 3600, unsynced=True)
    assert (unset.at, unset.since, unset.late) == (at.timestamp() + 3600,) * 2 + ("",)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _held(device: SimDevice, minutes_ago: float, **extra: Any) -> tuple[dict[str, Any], float]:
    """A fall the treadmill stamped ``minutes_ago`` (its clock set) and sends only now."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    device.set_state("TRIPPED", "fall")
    fall = device.event(
        "fall",
        severity="critical",
        state="TRIPPED",
        reason="impact 3.2 g then lying 83 deg",
        wall_time=at.isoformat(timespec="milliseconds"),
        **extra,
    )
    return fall, at.timestamp()


def _element(page: str, start: str, end: str) -> str:
    begin = page.index(start)
    return page[begin : page.index(end, begin)]


def _since(fragment: str) -> float:
    """The moment a fragment's "(2 min ago)" counts from."""
    found = re.search(r'class="since" data-since="([0-9.]+)"', fragment)
    assert found is not None, fragment
    return float(found[1])


def _fed(messages: list[dict[str, Any]], event_id: str, happened: float) -> bool:
    """The feed has brought the held fall's row, its incident line and a card counting from
    when it happened (the card that turned red)."""
    kinds = {m["kind"] for m in messages}
    return (
        any(m["kind"] == "event" and m["event"]["id"] == event_id for m in messages)
        and "incident" in kinds
        and any(
            m["kind"] == "device"
            and m["card"].get("headline")
            and abs(m["card"]["headline"].get("since", 0) - happened) < 0.01
            for m in messages
        )
    )


@needs_broker
def test_the_pages_say_when_a_held_fall_happened_and_when_it_was_received(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with running_service(make_config(mosquitto, tmp_path)) as service:
        device = SimDevice(mosquitto, "treadmill-1")
        client = Http(service.port)
        assert client.login() == 303
        feed = Stream(service.port, client.cookies)
        try:
            device.online()
            incident = "1" * 32
            fall, happened = _held(device, 20.5, incident=incident)
            # the event, its incident line and the red card come in batches of their own
            with feed.cond:
                assert feed.cond.wait_for(
                    lambda: _fed(feed.messages, fall["id"], happened), WAIT
                ), feed.messages
                messages = list(feed.messages)
            assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
            iso = fall["wall_time"].replace("+00:00", "Z")

            # the event page: since the treadmill's time, as its step, and the receipt after it
            _, _, page = client.request("GET", f"/events/{fall['id']}")
            when = html.unescape(_element(page, '<p class="when">', "</p>"))
            assert when.startswith(f'<p class="when">Since <time datetime="{iso}"'), when
            assert "— received <time" in when and f"({HELD})" in when, when
            assert abs(_since(when) - happened) < 0.01
            steps = _element(page, '<ol class="steps">', "</ol>")
            assert f'datetime="{iso}"' in steps  # the step said the same time already

            # the timeline's row, the fleet's incident and the card count from it too
            _, _, timeline = client.request("GET", "/devices/treadmill-1")
            row = html.unescape(_element(timeline, f'data-event="{fall["id"]}"', "</li>"))
            assert f'datetime="{iso}"' in row and f"({HELD})" in row, row
            assert abs(_since(row) - happened) < 0.01
            _, _, fleet = client.request("GET", "/")
            listed = html.unescape(_element(fleet, f'data-incident="{incident}"', "</li>"))
            assert f"({HELD})" in listed and abs(_since(listed) - happened) < 0.01, listed
            card = _element(fleet, 'id="card-treadmill-1"', "</article>")
            assert abs(_since(_element(card, 'class="headline', "</p>")) - happened) < 0.01

            # the live feed's row, incident line and card alike
            sent = next(m["event"] for m in messages
                        if m["kind"] == "event" and m["event"]["id"] == fall["id"])  # fmt: skip
            assert abs(sent["since"] - happened) < 0.01 and sent["late"] == HELD
            assert sent["received_when"]["format"] == "time"
            line = next(m["row"] for m in messages if m["kind"] == "incident")
            assert abs(line["since"] - happened) < 0.01 and line["late"] == HELD
            red = [m["card"] for m in messages if m["kind"] == "device"][-1]
            assert abs(red["headline"]["since"] - happened) < 0.01

            # the walker's I'm OK, held as well: closed when the treadmill says it was pressed
            ok_at = dt.datetime.fromtimestamp(happened + 40, dt.UTC)
            ok = device.event(
                "ok", severity="info", state="ARMED", reason="I'm OK", incident=incident,
                by="walker", wall_time=ok_at.isoformat(timespec="milliseconds"),
            )  # fmt: skip
            assert service.ingestor.wait_for(lambda: service.store.event(ok["id"]) is not None)
            _, _, page = client.request("GET", f"/events/{fall['id']}")
            when = html.unescape(_element(page, '<p class="when">', "</p>"))
            ok_iso = ok["wall_time"].replace("+00:00", "Z")
            assert when.startswith(f'<p class="when">Closed <time datetime="{ok_iso}"'), when
            assert "(held 19 min by the treadmill)" in when  # pressed 40 s after the fall

            # sent at once: nothing said beside its time
            prompt, _ = _held(device, 0.2)
            assert service.ingestor.wait_for(lambda: service.store.event(prompt["id"]) is not None)
            _, _, page = client.request("GET", f"/events/{prompt['id']}")
            when = _element(page, '<p class="when">', "</p>")
            assert when.startswith('<p class="when">At <time') and "received" not in when
        finally:
            feed.close()
            device.close()


@needs_broker
def test_the_notification_says_when_it_happened_and_when_it_was_received(
    tmp_path: Path, mosquitto: Mosquitto, receiver: Receiver
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        happened = dt.datetime.fromtimestamp(clock.now - 20 * 60 - 10, dt.UTC)
        device.set_state("TRIPPED", "fall")
        fall = device.event(
            "fall", severity="critical", state="TRIPPED", reason="impact 3.2 g",
            wall_time=happened.isoformat(timespec="milliseconds"),
        )  # fmt: skip
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        body = receiver.messages[0]["message"]
        received = dt.datetime.fromtimestamp(clock.now, dt.UTC)  # the service's zone: UTC
        said = f"{happened:%a} {happened.day} {happened:%b %Y}, {happened:%H:%M:%S}\u00a0UTC"
        assert f"at {said} (received {received:%H:%M:%S}\u00a0UTC: {HELD}):" in body, body
        device.close()
    finally:
        service.stop()
