"""Rule 4 (nothing is lost) where hand mutation (mut40) of the device's outbox, its publisher
and the caregiver service's escalation found no test noticing.

Each test names the mutant it kills. Real SQLite files; where the publisher is concerned, a
real Mosquitto with the reporter's clock in the test's hands (as :mod:`tests.test_mqtt_republish`);
where the caregiver service is concerned, the service on a real database file and a real
Mosquitto on a fake clock, its notifications sent to a local HTTP receiver
(as :mod:`tests.test_caregiver_escalation`).
"""

from __future__ import annotations

from pathlib import Path

from core.protocol.events import EventType
from core.protocol.topics import Topics
from firmware.storage.outbox import Outbox
from tests.mqtt_helpers import info

DEVICE = "tm-1"
TOPICS = Topics("retroguard", DEVICE)


def test_a_start_event_outlives_newer_telemetry_when_the_outbox_is_full(tmp_path: Path) -> None:
    """Over its bound the outbox drops the oldest telemetry first, and a start or stop event
    only when no telemetry is left: the dashboard's session history (walked from when to
    when) outlives the health figures of a long outage. Mutant that survived: an
    informational event queued at the telemetry's priority, so the bound dropped the session's
    start, being older, before the figures queued after it."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=2)
    start = info(DEVICE, EventType.START, 1.0)
    outbox.enqueue_event(start)
    outbox.enqueue_telemetry('{"t":1}')
    outbox.enqueue_telemetry('{"t":2}')  # 3 rows > 2: one must go
    kept = [r.payload for r in outbox.fetch_after(0, 10)]
    assert len(kept) == 2
    assert start.id in kept[0], "the start event was dropped before the telemetry"
    assert kept[1] == '{"t":2}'
    assert outbox.dropped == 1
