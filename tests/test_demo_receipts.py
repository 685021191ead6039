"""The demo with its broker and caregiver service: it ends with every alert confirmed.

Against a real Mosquitto and the real caregiver service (the demo starts both, as
``scripts/demo.sh`` does); the walk runs on a simulated clock. The courier's wait for the
receipts is on them arriving (bounded as a safety net), never on time passing.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from core.clock import SimClock
from core.protocol.events import EventType
from core.protocol.payloads import receipt_payload
from firmware.mqtt import MqttReporter
from firmware.storage.outbox import OutboxDepth, outbox_depth
from launcher import demo
from tests.mqtt_helpers import WAIT, Subscriber, config_for, fall, info
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"


def test_the_demo_ends_with_every_alert_confirmed_by_the_caregiver_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick start's happy path: the walk's last alerts (the fall's window, the
    no-recovery, the session's summary) are published as it ends; the demo's shutdown waits
    for the caregiver service's receipts instead of stopping the courier 2 s later, and
    says so. Once, it reported an alert the service had not confirmed yet."""
    monkeypatch.setattr(demo, "_port_free", lambda port: False)  # a free port, not 1883
    monkeypatch.setattr(demo, "RECEIPTS_WAIT_S", WAIT)  # a safety net on a loaded host
    out = io.StringIO()
    database = tmp_path / "d.db"
    code = demo.run_demo(database=database, live=False, out=out, clock=SimClock())
    printed = out.getvalue()
    assert code == 0, printed
    assert "Caregiver dashboard: http" in printed  # the service ran
    assert (
        "MQTT: all 4 alerts confirmed by the caregiver service, and every other message "
        "delivered.\n" in printed
    )
    assert outbox_depth(database) == OutboxDepth(0, 0)
    assert "\nEnded in TRIPPED with the relay released.\n" in printed


def test_the_demo_says_what_the_outbox_keeps_when_receipts_are_missing() -> None:
    """Nothing is dropped: what the service has not confirmed is kept and sent again."""
    said = demo.mqtt_outcome([], OutboxDepth(0, 2), caregiver=True)
    assert said == (
        "MQTT: 0 messages the broker does not have yet, 2 alerts it has that the caregiver "
        f"service has not confirmed (not confirmed by the caregiver service within "
        f"{demo.RECEIPTS_WAIT_S:g} s): kept in the outbox and sent again at the next start.\n"
    )
    said = demo.mqtt_outcome([], OutboxDepth(1, 0), caregiver=False)
    assert "(no caregiver service confirming them)" in said
    assert "kept in the outbox and sent again at the next start" in said


def test_waiting_for_receipts_ends_when_the_consumer_confirms_and_keeps_what_it_did_not(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    reporter = MqttReporter(
        config_for(mosquitto), device_id=DEVICE, device_name="T", database=tmp_path / "dev.db"
    )
    reporter.start()
    try:
        alert = fall(DEVICE)
        reporter.sink.handle(info(DEVICE, EventType.START))
        reporter.sink.handle(alert)
        assert reporter.wait_drained(WAIT)  # the broker has both; the alert awaits a receipt
        assert not reporter.wait_received(0.2)  # nobody confirms it: not received, and kept
        assert reporter.outbox.awaiting_count() == 1
        consumer = Subscriber(mosquitto, [f"retroguard/{DEVICE}/event"])
        try:
            consumer.client.publish(
                f"retroguard/{DEVICE}/receipt", receipt_payload([alert.id], "caregiver"), qos=1
            )
            assert reporter.wait_received(WAIT)
        finally:
            consumer.close()
        assert reporter.outbox.depth() == 0
    finally:
        reporter.close()
