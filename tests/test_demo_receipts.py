"""The demo with its broker and caregiver service: it ends with every alert confirmed.

Against a real Mosquitto and the real caregiver service (the demo starts both, as
``scripts/demo.sh`` does); the walk runs on a simulated clock. The courier's wait for the
receipts is on them arriving (bounded as a safety net), never on time passing.
"""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path
from typing import Any, TextIO

import pytest

from caregiver.demo import DemoCaregiverProcess
from caregiver.storage import Store
from core.clock import SimClock
from core.protocol.events import EventType
from core.protocol.payloads import OFFLINE, receipt_payload
from firmware.config import MqttConfig
from firmware.mqtt import MqttReporter
from firmware.storage.outbox import OutboxDepth, outbox_depth
from launcher import demo
from tests.caregiver_db import execute
from tests.mqtt_helpers import WAIT, Subscriber, config_for, fall, info, login
from tests.storage_support import wait_for
from tools.broker import Mosquitto, mosquitto_available
from tools.watch import Watcher

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
ACL = Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl"
SAID_OFFLINE = "SELECT availability FROM devices WHERE device_id = ?"


def test_the_demo_on_a_pi_s_broker_ends_with_every_alert_confirmed_by_the_caregiver_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick start's happy path: the walk's last alerts (the fall's window, the
    no-recovery, the session's summary) are published as it ends; the demo's shutdown waits
    for the caregiver service's receipts instead of stopping the courier 2 s later, and
    says so. Once, it reported an alert the service had not confirmed yet.

    Its broker is set up as ``install-pi.sh --broker`` sets up a Pi's: no anonymous login, an
    account each (passwords in 0600 files), and the ACL the installer installs, read as it is.
    So a topic the product uses that the ACL forgets fails here too: the device's outbox keeps
    a publish the broker refuses, the receipts cross the ACL both ways, the caregiver
    service's card shows what it may read, and the watch the demo prints sees what it shows.
    Before, the demo's broker was anonymous and let every client publish and read anything."""
    monkeypatch.setattr(demo, "_port_free", lambda port: False)  # a free port, not 1883
    monkeypatch.setattr(demo, "RECEIPTS_WAIT_S", WAIT)  # a safety net on a loaded host
    seen: dict[str, Any] = {}
    watchers: list[Subscriber] = []
    start_broker = demo._start_broker

    def started(out: TextIO, accounts: demo.DemoAccounts) -> Mosquitto | None:
        broker = start_broker(out, accounts)
        assert broker is not None
        seen["anonymous"] = login(broker, None, None)
        seen["config"] = broker.config_file.read_text()
        seen["acl"] = (broker.workdir / "acl").read_text()
        seen["modes"] = {
            name: stat.S_IMODE(accounts.password_file(name).stat().st_mode)
            for name in accounts.passwords
        }
        # The watch the demo prints, logged in as it says: its account, its password file.
        secret = accounts.password_file(demo.WATCH_ACCOUNT).read_text().splitlines()[0]
        topics = Watcher(MqttConfig(), "+", 0, False).topics
        watchers.append(Subscriber(broker, topics, username=demo.WATCH_ACCOUNT, password=secret))
        return broker

    monkeypatch.setattr(demo, "_start_broker", started)
    start_dashboard = demo._start_dashboard

    def dashboard(
        broker: Mosquitto, workdir: Path, out: TextIO, accounts: demo.DemoAccounts
    ) -> DemoCaregiverProcess | None:
        service = start_dashboard(broker, workdir, out, accounts)
        assert service is not None
        stop = service.stop

        def stop_once_the_device_s_last_word_is_in(timeout: float = 10.0) -> None:
            """The device's last message (its ``offline``, sent as the courier closed) is
            read by the watch and stored by the service before the demo stops the service
            and the broker: one client's messages arrive in order, so everything the device
            sent is in both then. The demo waits for the alerts' receipts only; the card's
            last topics could still be on their way to the service as it stopped."""
            (watcher,) = watchers
            offline = f"retroguard/{DEVICE}/availability", OFFLINE.encode()
            seen["watched"] = watcher.wait(
                lambda: offline in {(m.topic, m.payload) for m in watcher.messages}
            )
            seen["stored"] = wait_for(
                lambda: execute(str(service_db), SAID_OFFLINE, (DEVICE,)) == [(OFFLINE,)], WAIT
            )
            stop(timeout)

        monkeypatch.setattr(service, "stop", stop_once_the_device_s_last_word_is_in)
        return service

    monkeypatch.setattr(demo, "_start_dashboard", dashboard)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))  # Enter, once the walk is over
    service_db = tmp_path / "caregiver" / "caregiver.db"
    out = io.StringIO()
    database = tmp_path / "d.db"
    try:
        code = demo.run_demo(
            database=database, live=False, out=out, clock=SimClock(), keep_open=True
        )
    finally:
        for watcher in watchers:
            watcher.close()
    printed = out.getvalue()
    assert code == 0, printed
    assert seen["watched"] and seen["stored"], "the device's offline never reached them"
    assert seen["anonymous"].is_failure  # refused while the demo ran
    config = seen["config"].splitlines()
    assert "allow_anonymous false" in config and "use_username_as_clientid true" in config
    assert any(line.startswith("acl_file ") for line in config)
    assert seen["acl"] == ACL.read_text()
    assert seen["modes"] == {DEVICE: 0o600, "caregiver": 0o600, demo.WATCH_ACCOUNT: 0o600}
    assert "Caregiver dashboard: http" in printed  # the service ran
    # The closing line, where a first-time user's eyes are, says how to log in: the
    # dashboard's line is hundreds of lines up by then.
    login_words = re.search(r"Caregiver dashboard: (\S+)  (\(log in as \S+ / \S+\))", printed)
    assert login_words is not None, printed
    url, login_as = login_words.groups()
    assert f"The dashboard stays up at {url} {login_as} — press Enter" in printed
    assert (
        "MQTT: all 4 alerts confirmed by the caregiver service, and every other message "
        "delivered.\n" in printed
    )
    assert outbox_depth(database) == OutboxDepth(0, 0)
    assert "\nEnded in TRIPPED with the relay released.\n" in printed
    # What the caregiver service read of the device: its card as the dashboard shows it.
    store = Store(service_db)
    try:
        card = store.device(DEVICE)
        walkers = store.device_walkers(DEVICE)  # the retained walkers message
        prescribed = store.prescribed_weeks(DEVICE)  # the retained progress message
        sessions = store.walkers(DEVICE)  # the session's summary
    finally:
        store.close()
    assert card is not None
    assert (card["state"], card["availability"]) == ("TRIPPED", "offline")
    assert card["incident"] is not None and walkers and prescribed and sessions
    (watcher,) = watchers
    kinds = {m.topic.removeprefix(f"retroguard/{DEVICE}/") for m in watcher.messages}
    assert {"availability", "state", "event", "incident"} <= kinds


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
