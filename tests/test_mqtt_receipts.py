"""End-to-end delivery of alerts: receipts, a broker that loses its queue, client identity,
and a caregiver database that cannot commit — all against a real Mosquitto.

A PUBACK means the broker has a message, not that a caregiver does. These tests
show the device keeps every alert until the caregiver service has committed it
and said so (a receipt), and that neither a broker crash nor another account
nor a full caregiver disk can lose one.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from core.protocol.events import EventType
from core.protocol.messages import RECEIPT_MAX_IDS, ReceiptMessage
from core.protocol.payloads import decode_as, receipt_payload, receipt_payloads
from firmware.mqtt import MqttReporter
from tests.caregiver_support import make_config as caregiver_config
from tests.caregiver_support import running_service
from tests.mqtt_helpers import WAIT, Subscriber, config_for, fall, info, subscriber
from tests.storage_support import wait_for
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
ACL = (Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl").read_text()
RETRY_MAX_S = 1.2
"""The republication's backoff stops here in these tests: a consumer that comes back (or a
disk that takes writes again) gets what it misses within about a second, not after a round
that the backoff pushed out towards the tests' WAIT (tests/test_mqtt_republish.py tests it)."""


@pytest.fixture
def device(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[MqttReporter]:
    reporter = MqttReporter(
        config_for(mosquitto, receipt_retry_s=0.3, receipt_retry_max_s=RETRY_MAX_S),
        device_id=DEVICE,
        device_name="Dad's treadmill",
        database=tmp_path / "device.db",
    )
    reporter.start()
    assert reporter.wait_until(lambda s: s.ready, WAIT)
    yield reporter
    reporter.close()


def test_an_alert_is_kept_and_sent_again_until_a_receipt_names_it(
    mosquitto: Mosquitto, device: MqttReporter, caplog: pytest.LogCaptureFixture
) -> None:
    """And the log says so in words a person reads: the demo's terminal printed "caregiver
    confirmed 1 messages" for every alert."""
    caplog.set_level(logging.INFO, logger="firmware.mqtt.reporter")
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/event"])
    alert, start = fall(DEVICE), info(DEVICE, EventType.START)
    device.sink.handle(start)
    device.sink.handle(alert)
    # the broker acknowledged both; the alert waits for a consumer, the start does not
    assert device.wait_until(lambda s: s.depth == 1 and s.awaiting == 1, WAIT)
    # nobody confirmed it: it comes again on the retry timer, more than once
    assert sub.wait(lambda: sub.event_ids().count(alert.id) >= 3)
    assert sub.event_ids().count(start.id) == 1
    sub.client.publish(
        f"retroguard/{DEVICE}/receipt", receipt_payload([alert.id], "caregiver"), qos=1
    )
    assert device.wait_until(lambda s: s.depth == 0, WAIT)
    assert device.receipted == 1
    said = "caregiver confirmed 1 message (1 left the outbox)"
    assert wait_for(lambda: said in caplog.messages, WAIT), caplog.messages
    sub.close()


def test_a_receipt_that_is_not_one_is_ignored(mosquitto: Mosquitto, device: MqttReporter) -> None:
    device.sink.handle(fall(DEVICE))
    assert device.wait_until(lambda s: s.awaiting == 1, WAIT)
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/event", f"retroguard/{DEVICE}/reply"])
    for garbage in (b"", b"{", b'{"schema":1,"ids":["nope"],"by":"x"}', b'{"ids":[]}'):
        sub.client.publish(f"retroguard/{DEVICE}/receipt", garbage, qos=1)
    # A barrier: the device takes receipts and commands in the order they came (one
    # connection), so its answer to this ping says it has taken every receipt above; the
    # counts read before it could not have told a receipt ignored from one not yet read.
    sub.client.publish(f"retroguard/{DEVICE}/cmd/ping", b'{"id":"after-the-receipts"}', qos=1)
    assert sub.wait(lambda: bool(sub.on("/reply")))
    assert sub.wait(lambda: len(sub.event_ids()) >= 2)  # still republished: still kept
    assert device.status.awaiting == 1 and device.receipted == 0
    sub.close()


def test_without_receipts_the_puback_is_enough(mosquitto: Mosquitto, tmp_path: Path) -> None:
    reporter = MqttReporter(
        config_for(mosquitto, alert_receipts=False),
        device_id=DEVICE,
        device_name="T",
        database=tmp_path / "ha-only.db",
    )
    reporter.start()
    reporter.sink.handle(fall(DEVICE))
    assert reporter.wait_drained(WAIT)
    assert reporter.outbox.depth() == 0  # Home Assistant alone: nothing would ever send one
    reporter.close()


def test_a_broker_that_loses_its_queue_while_the_caregiver_is_offline_loses_no_alert(
    tmp_path: Path,
) -> None:
    """The crash the issue measured: 120-229 events lost per outage before receipts."""
    broker = Mosquitto(persistence=False).start()  # a crash that loses the broker's database
    try:
        config = caregiver_config(broker, tmp_path / "care")
        with running_service(config, web=False):
            pass  # the caregiver's persistent session exists; now it goes offline
        reporter = MqttReporter(
            config_for(broker, receipt_retry_s=0.3, receipt_retry_max_s=RETRY_MAX_S),
            device_id=DEVICE,
            device_name="T",
            database=tmp_path / "device.db",
        )
        reporter.start()
        alerts = [fall(DEVICE, float(i)) for i in range(25)]
        for alert in alerts:
            reporter.sink.handle(alert)
        assert reporter.wait_until(lambda s: s.awaiting == 25, WAIT)  # PUBACKed, queued for it
        broker.kill()  # kill -9: the queued alerts and the caregiver's session are gone
        broker.start()
        with running_service(config, web=False) as service:
            # the device republishes until the caregiver has committed each one and said so
            assert reporter.wait_until(lambda s: s.depth == 0, WAIT)
            stored = {e.id for e in service.store.events_for(DEVICE)}
        assert stored == {a.id for a in alerts}
        reporter.close()
    finally:
        broker.cleanup()


def test_a_caregiver_whose_disk_is_full_takes_nothing_until_it_can_commit(
    mosquitto: Mosquitto, tmp_path: Path, device: MqttReporter
) -> None:
    config = caregiver_config(mosquitto, tmp_path / "care")
    with running_service(config, web=False) as service:
        db = sqlite3.connect(config.server.database)
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.close()
        with service.store._lock:  # a database that cannot grow: what a full disk does to it
            service.store._db.execute(f"PRAGMA max_page_count = {pages}")
        alerts = [fall(DEVICE, float(i), with_window=True) for i in range(5)]
        for alert in alerts:
            device.sink.handle(alert)
        assert service.ingestor.wait_for(lambda: service.ingestor.held >= 1)
        assert service.ingestor.storage_fault is not None
        committed = {e.id for e in service.store.events_for(DEVICE)}
        assert len(committed) < 5
        # whatever the caregiver could not commit, it did not receipt: the device keeps it
        assert device.wait_until(lambda s: s.depth == 5 - len(committed), WAIT)
        with service.store._lock:  # space again
            service.store._db.execute("PRAGMA max_page_count = 1073741823")
        assert device.wait_until(lambda s: s.depth == 0, WAIT)
        assert {e.id for e in service.store.events_for(DEVICE)} == {a.id for a in alerts}
        assert service.ingestor.wait_for(lambda: service.ingestor.held == 0)  # all acknowledged
        assert service.ingestor.storage_fault is None


def test_every_page_says_while_the_caregiver_database_refuses_writes(
    mosquitto: Mosquitto, tmp_path: Path, device: MqttReporter
) -> None:
    """Before, only the journal said it: the dashboard looked like a quiet fleet while no fall
    could be stored, shown or paged. The banner every page shows (and the live feed pushes)
    says it from the first refusal until a commit works again."""
    config = caregiver_config(mosquitto, tmp_path / "care")
    with running_service(config, web=False) as service:
        assert service.ingestor.wait_for(lambda: service.ingestor.connected.is_set())
        assert not service.hub.broker.down
        db = sqlite3.connect(config.server.database)
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.close()
        with service.store._lock:  # a database that cannot grow: what a full disk does to it
            service.store._db.execute(f"PRAGMA max_page_count = {pages}")
        for i in range(5):
            device.sink.handle(fall(DEVICE, float(i), with_window=True))
        assert service.ingestor.wait_for(lambda: service.ingestor.storage_fault is not None)
        banner = service.hub.broker
        assert banner.down and banner.lead == "Not storing alerts from the treadmills"
        assert "database refuses writes" in banner.detail and "full" in banner.detail
        assert "will not be shown or notified" in banner.consequence
        health = service.health()  # /healthz/receiving: 503, an uptime monitor pages
        assert health.alive and health.receiving and not health.storing
        assert not health.reaching and health.status == "not storing"
        with service.store._lock:  # space again
            service.store._db.execute("PRAGMA max_page_count = 1073741823")
        # on figures read after this call (the status from before the five were handed over
        # said ``depth == 0`` too)
        assert device.wait_received(WAIT)
        assert service.ingestor.wait_for(lambda: service.ingestor.storage_fault is None)
        assert not service.hub.broker.down
        assert service.health().reaching


# ------------------------------------------------------------- client identity


def _client(broker: Mosquitto, client_id: str, user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(user, password)
    return client


def test_no_account_can_take_over_another_clients_session(tmp_path: Path) -> None:
    users = {DEVICE: "dev1-pw", "treadmill-2": "dev2-pw", "caregiver": "carer-pw"}
    users["homeassistant"] = "ha-pw"  # asks the victim for a self-test (not the caregiver's id)
    broker = Mosquitto(users=users, acl=ACL).start()
    try:
        victim = MqttReporter(
            dataclasses.replace(config_for(broker), username="treadmill-2", password="dev2-pw"),
            device_id="treadmill-2",
            device_name="T2",
            database=tmp_path / "t2.db",
        )
        victim.start()
        assert victim.wait_until(lambda s: s.ready, WAIT)
        config = caregiver_config(broker, tmp_path / "care")
        config = dataclasses.replace(
            config,
            mqtt=dataclasses.replace(config.mqtt, username="caregiver", password="carer-pw"),
        )
        with running_service(config, web=False):
            pass  # its persistent session now queues alerts while it is away
        alert = fall("treadmill-2")
        victim.sink.handle(alert)
        assert victim.wait_until(lambda s: s.awaiting == 1, WAIT)
        # device 1's account uses device 2's client id, then the caregiver's, with a clean start
        for stolen in ("retroguard-treadmill-2", "caregiver", config.mqtt.client_id):
            thief = _client(broker, stolen, DEVICE, "dev1-pw")
            accepted = threading.Event()  # the broker has taken its CONNECT: a take-over is done
            thief.on_connect = lambda *args, accepted=accepted: accepted.set()
            assert thief.connect(broker.host, broker.port, clean_start=True) == 0
            thief.loop_start()
            assert accepted.wait(WAIT)
            thief.disconnect()
            thief.loop_stop()
        # A round trip on the victim's connection after them: kicked off, it would answer only
        # from a new connection (or never); read at once, its count could not yet say so.
        with subscriber(
            broker, ["retroguard/treadmill-2/reply"], username="homeassistant", password="ha-pw"
        ) as ha:
            ha.client.publish(
                "retroguard/treadmill-2/cmd/self_test", b'{"id":"still-there"}', qos=1
            )
            assert ha.wait(lambda: bool(ha.messages))
        assert victim.status.connects == 1  # never kicked off
        with running_service(config, web=False) as service:
            # its queue survived: the alert is there without waiting for the device's retry
            assert service.ingestor.wait_for(lambda: service.ingestor.events_stored >= 1)
            assert [e.id for e in service.store.events_for("treadmill-2")] == [alert.id]
        victim.close()
    finally:
        broker.cleanup()


def test_the_documented_broker_config_binds_client_ids_and_persists() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "mqtt.md").read_text()
    block = doc.split("# mosquitto.conf", 1)[1].split("```", 1)[0]
    for line in (
        "use_username_as_clientid true",
        "persistence true",
        "autosave_interval 1",
        "allow_anonymous false",
    ):
        assert line in block, line
    assert "topic write retroguard/+/receipt" in ACL
    assert "pattern read retroguard/%u/receipt" in ACL


def test_more_ids_than_one_receipt_may_name_go_as_several_the_device_accepts() -> None:
    """A receipt names at most RECEIPT_MAX_IDS ids (the device refuses a longer list as
    malformed, so none of them would be forgotten from its outbox — or ever receipted)."""
    ids = [f"{i:032x}" for i in range(2 * RECEIPT_MAX_IDS + 1)]
    payloads = receipt_payloads(ids, "caregiver")
    named = [decode_as(ReceiptMessage, p.encode()).ids for p in payloads]
    assert [len(n) for n in named] == [RECEIPT_MAX_IDS, RECEIPT_MAX_IDS, 1]
    assert [i for n in named for i in n] == ids


def _device_account(broker: Mosquitto, tmp_path: Path, **overrides: object) -> MqttReporter:
    config = dataclasses.replace(
        config_for(broker, **overrides), username=DEVICE, password="dev1-pw"
    )
    return MqttReporter(config, device_id=DEVICE, device_name="T", database=tmp_path / "d.db")


WITHOUT_EVENTS = ACL.replace("pattern write retroguard/%u/event\n", "")
"""The documented ACL with the device's ``event`` line lost (a provider's copy gone wrong)."""


def test_an_alert_the_broker_refused_goes_out_once_the_acl_is_fixed(tmp_path: Path) -> None:
    """MQTT 5: a broker whose ACL denies a topic answers the PUBACK with "Not authorized". The
    alert stays in the outbox; before, it was sent again only at the monitor's next start, so
    after the ACL was fixed (and the broker restarted) it still never reached the caregiver."""
    assert WITHOUT_EVENTS != ACL
    users = {DEVICE: "dev1-pw", "caregiver": "carer-pw"}
    broker = Mosquitto(users=users, acl=WITHOUT_EVENTS).start()
    try:
        device = _device_account(broker, tmp_path, receipt_retry_s=0.3)
        device.start()
        assert device.wait_until(lambda s: s.ready, WAIT)
        alert = fall(DEVICE)
        device.sink.handle(alert)
        assert device.wait_until(lambda s: s.refused >= 1, WAIT)
        assert device.status.depth == 1  # kept

        broker.stop()
        (broker.workdir / "acl").write_text(ACL)
        broker.start()
        sub = Subscriber(
            broker, [f"retroguard/{DEVICE}/event"], username="caregiver", password="carer-pw"
        )
        assert sub.wait(lambda: alert.id in sub.event_ids())
        sub.client.publish(
            f"retroguard/{DEVICE}/receipt", receipt_payload([alert.id], "caregiver"), qos=1
        )
        assert device.wait_until(lambda s: s.depth == 0, WAIT)
        sub.close()
        device.close()
    finally:
        broker.cleanup()


def test_without_receipts_a_refused_alert_is_tried_again_while_connected(tmp_path: Path) -> None:
    """Home Assistant alone (no receipts): the ACL is fixed and reloaded (SIGHUP) with the
    device still connected; the refused alert goes out on the retry timer and leaves."""
    users = {DEVICE: "dev1-pw", "caregiver": "carer-pw"}
    broker = Mosquitto(users=users, acl=WITHOUT_EVENTS).start()
    try:
        device = _device_account(broker, tmp_path, alert_receipts=False, receipt_retry_s=0.3)
        device.start()
        assert device.wait_until(lambda s: s.ready, WAIT)
        sub = Subscriber(
            broker, [f"retroguard/{DEVICE}/event"], username="caregiver", password="carer-pw"
        )
        alert = fall(DEVICE)
        device.sink.handle(alert)
        assert device.wait_until(lambda s: s.refused >= 1, WAIT)
        broker.reload_acl(ACL)
        assert sub.wait(lambda: alert.id in sub.event_ids())
        assert device.wait_until(lambda s: s.depth == 0, WAIT)
        assert device.status.connects == 1  # no reconnect did it
        sub.close()
        device.close()
    finally:
        broker.cleanup()
