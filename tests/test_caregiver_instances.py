"""Several caregiver instances on one PostgreSQL database and one Mosquitto (issue 16, item 2):
MQTT 5 shared subscriptions hand each message to one instance, the database stores each
event once however often it is delivered, and every instance knows every device's status."""

from __future__ import annotations

import dataclasses
import http.client
import json
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from caregiver.config import CaregiverConfig, Contact, EscalationConfig, parse_config
from caregiver.ingest import subscriptions
from caregiver.service import CaregiverService
from caregiver.storage import LeaseSeen, Store
from core.errors import ConfigError
from core.protocol.topics import TopicKind, all_devices, shared
from tests.caregiver_support import (
    WAIT,
    FakeClock,
    Http,
    Receiver,
    SimDevice,
    make_config,
    running_service,
)
from tests.mqtt_helpers import subscriber
from tests.storage_support import wait_for
from tools.broker import Mosquitto
from tools.pgcluster import PostgresCluster

GROUP = "caregivers"


def _instance(
    mosquitto: Mosquitto,
    tmp_path: Path,
    database: str,
    name: str,
    *,
    client_id: str = "",
    username: str = "",
    password: str = "",
) -> CaregiverConfig:
    config = make_config(
        mosquitto, tmp_path / name, database=database, client_id=client_id or f"care-{name}"
    )
    mqtt = dataclasses.replace(
        config.mqtt, shared_group=GROUP, username=username, password=password
    )
    return dataclasses.replace(config, mqtt=mqtt)


def test_shared_subscriptions_leave_the_retained_status_to_every_instance() -> None:
    assert subscriptions("retroguard", "") == [
        f"retroguard/+/{kind}"
        for kind in ("availability", "state", "event", "telemetry", "reply", "session")
    ]
    assert subscriptions("retroguard", "care") == [
        "retroguard/+/availability",
        "retroguard/+/state",
        "$share/care/retroguard/+/event",
        "$share/care/retroguard/+/telemetry",
        "$share/care/retroguard/+/reply",
        "$share/care/retroguard/+/session",
    ]


def test_a_bad_share_group_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"mqtt": {"shared_group": "a/b"}}, "care.toml")
    assert "care.toml: mqtt.shared_group: must not contain '/', '+' or '#'" in str(err.value)


def test_two_instances_share_the_stream_and_store_each_event_once(
    mosquitto: Mosquitto, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    url = postgres_cluster.new_database()
    device = SimDevice(mosquitto, "treadmill-1")
    device.online()  # retained: each instance must learn it on subscribing
    a_config = _instance(mosquitto, tmp_path, url, "a")
    b_config = _instance(mosquitto, tmp_path, url, "b")
    with (
        running_service(a_config, web=False, background=False) as a,
        running_service(b_config, web=False, background=False) as b,
    ):
        instances: list[CaregiverService] = [a, b]
        for s in instances:  # the retained availability and state reached both
            assert s.ingestor.wait_for(lambda s=s: s.ingestor.messages >= 2)
        sent = [
            device.event("start", severity="info", state="STARTING", reason="monitor started")
            for _ in range(20)
        ]
        for event in sent[:6]:  # the device republishes these (no receipt reached it, say)
            device.event(
                "start",
                severity="info",
                state="STARTING",
                reason="monitor started",
                event_id=event["id"],
            )

        def stored() -> int:
            return sum(s.ingestor.events_stored for s in instances)

        def duplicates() -> int:
            return sum(s.ingestor.duplicates for s in instances)

        assert wait_for(lambda: stored() + duplicates() == 26), (stored(), duplicates())
        assert (stored(), duplicates()) == (20, 6)
        # The counters move as each batch is handled; its commit follows.
        assert wait_for(lambda: a.store.event_count() == 20), a.store.event_count()
        assert {e.id for e in a.store.events_for("treadmill-1", 100)} == {e["id"] for e in sent}
        # the broker shared the stream: each instance stored some of it
        assert a.ingestor.events_stored > 0 and b.ingestor.events_stored > 0

        # going offline while armed: both instances take the retained message, one alert
        seen = [s.ingestor.messages for s in instances]
        device.set_state("ARMED")
        device.offline()
        for s, before in zip(instances, seen, strict=True):
            assert s.ingestor.wait_for(lambda s=s, n=before: s.ingestor.messages >= n + 2)
        offline = [alert for alert in a.store.alerts("treadmill-1") if alert.kind == "offline"]
        assert len(offline) == 1
        device.close()


class EventStream:
    """A logged-in browser's ``/stream`` (server-sent events) on one instance."""

    def __init__(self, port: int, cookies: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.conn.request(
            "GET", "/stream", headers={"accept": "text/event-stream", "cookie": cookie}
        )
        self.response = self.conn.getresponse()
        assert self.response.status == 200

    def next_message(self, kind: str) -> dict[str, Any]:
        """The next ``data:`` message of this kind (the read times out after WAIT: a hang)."""
        while True:
            line = self.response.fp.readline().decode()
            assert line, "the stream ended"
            if line.startswith("data: "):
                message: dict[str, Any] = json.loads(line[6:])
                if message.get("kind") == kind:
                    return message

    def close(self) -> None:
        self.conn.close()


def test_a_caregiver_on_instance_b_sees_live_what_instance_a_ingested_and_stays_logged_in(
    mosquitto: Mosquitto, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """B takes no device messages at all (another topic prefix): everything its browser shows
    live came from A through the database. The login made on A is valid on B (sessions and
    CSRF tokens are rows in the shared database)."""
    url = postgres_cluster.new_database()
    a_config = make_config(mosquitto, tmp_path / "a", database=url, client_id="care-a")
    b_config = make_config(mosquitto, tmp_path / "b", database=url, client_id="care-b")
    b_config = dataclasses.replace(
        b_config, mqtt=dataclasses.replace(b_config.mqtt, topic_prefix="elsewhere")
    )
    with (
        running_service(a_config, background=False) as a,
        running_service(b_config, background=False) as b,
    ):
        assert b.listener is not None and b.listener.listening.wait(WAIT)
        browser = Http(a.port)
        assert browser.login() == 303  # on A
        browser.port = b.port  # the reverse proxy sends the next requests to B
        status, _, page = browser.request("GET", "/")
        assert status == 200 and "Treadmills" in page
        stream = EventStream(b.port, browser.cookies)
        read_by_b: list[str] = []
        reads = b.store.events_by_id

        def spied(ids: Any) -> Any:
            read_by_b.extend(ids)
            return reads(ids)

        b.store.events_by_id = spied  # type: ignore[method-assign]
        try:
            assert wait_for(lambda: b.hub.clients == 1)
            device = SimDevice(mosquitto, "treadmill-1")
            device.online()
            fall = device.fall()
            message = stream.next_message("event")
            assert message["event"]["id"] == fall["id"]
            assert message["device_name"] == "Dad's treadmill"
            assert b.ingestor.events_stored == 0 and a.ingestor.events_stored == 1
            # the row came with A's announcement, as A stored it: B did not read it back
            assert fall["id"] not in read_by_b
            stored_row = a.store.event(fall["id"])
            assert stored_row is not None
            assert message["event"]["received_at"] == stored_row.received_at
            assert message["event"]["reason"] == stored_row.reason
            # acknowledging on B (CSRF token from B's page, session from A's login) works
            status, _, _ = browser.acknowledge(f"/events/{fall['id']}", f"/events/{fall['id']}/ack")
            assert status == 303
            stored = a.store.event(fall["id"])
            assert stored is not None and stored.acked_by == "ann"
            device.close()
        finally:
            stream.close()


def test_a_lease_is_taken_over_only_from_the_holder_and_count_seen_standing_still(
    caregiver_db: str,
) -> None:
    """The database decides in one conditional statement (schema 27): a renewal counts, and
    another instance takes the lease over only naming the holder and count it saw stand still;
    a renewal since, or another quicker to take over, leaves it where it is. The wall time
    written (``until``) decides nothing."""
    store = Store(caregiver_db)
    try:
        assert store.hold_lease("escalation", "a", None, 110.0) == LeaseSeen("a", 1, 110.0)
        a1 = LeaseSeen("a", 1, 110.0)
        assert store.hold_lease("escalation", "b", None, 1e12) == a1  # a's
        a2 = LeaseSeen("a", 2, 120.0)
        assert store.hold_lease("escalation", "a", None, 120.0) == a2  # a renews
        assert store.lease_holder("escalation") == "a"
        # b saw a1 stand still; a has renewed since: nothing taken
        assert store.hold_lease("escalation", "b", a1, 0.0) == a2
        # nor with an expires_at a has not written (a renewal of an earlier release's)
        assert store.hold_lease("escalation", "b", LeaseSeen("a", 2, 110.0), 0.0) == a2
        b3 = LeaseSeen("b", 3, 5.0)
        assert store.hold_lease("escalation", "b", a2, 5.0) == b3
        assert store.lease_holder("escalation") == "b"
        # c saw a's count stand still too, but b took it over first
        assert store.hold_lease("escalation", "c", a2, 0.0) == b3
        assert store.hold_lease("escalation", "a", None, 1e12) == b3  # a is back
        store.release_lease("escalation", "a")  # not a's: nothing
        assert store.lease_holder("escalation") == "b"
        store.release_lease("escalation", "b")  # a clean stop
        assert store.lease_holder("escalation") is None
        assert store.hold_lease("escalation", "c", None, 0.0) == LeaseSeen("c", 1, 0.0)
    finally:
        store.close()


def test_two_instances_page_once_and_escalation_goes_on_when_its_holder_is_lost(
    mosquitto: Mosquitto, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """Both instances try to escalate and to send, as their threads would every second; the
    lease lets one of them. When that one is gone, the other takes over once the lease has
    run out and carries on from the rows: the reminder, then the next contact."""
    url = postgres_cluster.new_database()
    receiver = Receiver()
    clock = FakeClock()
    contacts = (
        Contact(name="Ann", urls=(receiver.url("ann"),)),
        Contact(name="Bob", urls=(receiver.url("bob"),)),
    )
    escalation = EscalationConfig(ack_timeout_s=300, resends=1, retry_s=10, max_attempts=3)
    services = []
    for name in ("a", "b"):
        config = _instance(mosquitto, tmp_path, url, name)
        config = dataclasses.replace(config, contacts=contacts, escalation=escalation)
        service = CaregiverService(config, clock=clock)
        service.start(web=False, background=False)
        assert service.ingestor.connected.wait(WAIT)
        services.append(service)
    a, b = services
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert wait_for(lambda: a.store.event(fall["id"]) is not None)

        def rounds() -> tuple[int, int]:
            """One escalation tick and one delivery round on each instance, A first."""
            ticks = a.alerting.tick() + b.alerting.tick()
            sent = a.notifier.deliver_due() + b.notifier.deliver_due()
            return ticks, sent

        assert rounds() == (0, 1)  # the fall paged Ann once
        assert a.store.lease_holder("escalation") == a.instance
        clock.advance(300)
        assert rounds() == (1, 1)  # one reminder to Ann, from A
        assert [m["path"] for m in receiver.messages] == ["/ann", "/ann"]

        a.stop()  # A is lost
        clock.advance(5)
        assert b.alerting.tick() == 0 and b.notifier.deliver_due() == 0  # A's lease runs
        clock.advance(300)
        assert b.alerting.tick() == 1  # B took the lease: on to Bob
        assert b.notifier.deliver_due() == 1
        assert [m["path"] for m in receiver.messages] == ["/ann", "/ann", "/bob"]
        assert receiver.messages[2]["message"].startswith("ESCALATED")
        device.close()
    finally:
        for service in services:
            service.stop()
        receiver.close()


def test_the_documented_acl_lets_a_caregiver_account_share_the_event_stream() -> None:
    """docs/provider.md: the ACL of docs/mqtt/mosquitto.acl needs no change for $share."""
    acl = (Path(__file__).resolve().parent.parent / "docs/mqtt/mosquitto.acl").read_text()
    broker = Mosquitto(users={"caregiver": "pw-c", "treadmill-1": "pw-d"}, acl=acl)
    broker.start()
    try:
        with subscriber(
            broker,
            [shared(GROUP, all_devices("retroguard", TopicKind.EVENT))],
            username="caregiver",
            password="pw-c",
        ) as caregiver:
            device = SimDevice(broker, "treadmill-1", username="treadmill-1", password="pw-d")
            event = device.fall()
            assert caregiver.wait_events(1)
            assert caregiver.event_ids() == [event["id"]]
            device.close()
    finally:
        broker.cleanup()


ACL = (Path(__file__).resolve().parent.parent / "docs/mqtt/mosquitto.acl").read_text()
TAKEN_OVER = "already connected, closing old connection"
"""Mosquitto's log line when a client connects with the id of one that is connected."""


def _user_blocks(text: str) -> dict[str, list[str]]:
    """Each ``user`` block of ACL text: its rule lines, by account."""
    blocks: dict[str, list[str]] = {}
    rules: list[str] = []
    for line in (line.strip() for line in text.splitlines()):
        if line.startswith("user "):
            rules = blocks.setdefault(line.removeprefix("user "), [])
        elif line.startswith("topic "):
            rules.append(line)
    return blocks


def _acl_with_instance_accounts() -> str:
    """The documented ACL with the instances' ``user`` blocks docs/provider.md says to append,
    as it writes them; each with the rules of the ACL's ``caregiver`` block, as it says."""
    doc = (Path(__file__).resolve().parent.parent / "docs/provider.md").read_text()
    start = doc.index("  ```\n  user caregiver-a\n") + len("  ```\n")
    appended = textwrap.dedent(doc[start : doc.index("  ```\n", start)])
    instances = _user_blocks(appended)
    assert set(instances) == {"caregiver-a", "caregiver-b"}
    for rules in instances.values():
        assert rules == _user_blocks(ACL)["caregiver"]
    return ACL + "\n" + appended


@contextmanager
def _run_two_instances(
    tmp_path: Path,
    postgres_cluster: PostgresCluster,
    accounts: tuple[str, str],
    acl: str,
    client_ids: tuple[str, str] | None = None,
) -> Iterator[tuple[Mosquitto, CaregiverService, CaregiverService, SimDevice]]:
    """Two instances in one shared group on a broker configured as docs/mqtt.md documents
    (``use_username_as_clientid``, a password file, the ACL), each logging in as its account
    with its client id set as docs/provider.md says (its account name) unless ``client_ids``."""
    users = {name: f"pw-{name}" for name in accounts} | {"treadmill-1": "pw-d"}
    broker = Mosquitto(users=users, acl=acl)
    broker.start()
    url = postgres_cluster.new_database()
    configs = [
        _instance(broker, tmp_path, url, part, client_id=cid, username=name, password=users[name])
        for part, name, cid in zip("ab", accounts, client_ids or accounts, strict=True)
    ]
    device = SimDevice(broker, "treadmill-1", username="treadmill-1", password="pw-d")
    try:
        with (
            running_service(configs[0], web=False, background=False) as a,
            running_service(configs[1], web=False, background=False) as b,
        ):
            yield broker, a, b, device
    finally:
        device.close()
        broker.cleanup()


def test_instances_with_accounts_of_their_own_stay_connected_on_the_documented_broker(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """docs/provider.md: each instance its own account (``caregiver-a``, ``caregiver-b``),
    its client id its account name, a ``user`` block each in the ACL. On the documented
    broker a client's id is its user name, so this is what keeps them apart."""
    accounts = ("caregiver-a", "caregiver-b")
    with _run_two_instances(
        tmp_path, postgres_cluster, accounts, _acl_with_instance_accounts()
    ) as (broker, a, b, device):
        sent = [device.fall() for _ in range(20)]

        def stored() -> int:
            return a.ingestor.events_stored + b.ingestor.events_stored

        assert wait_for(lambda: stored() >= 20), stored()
        assert wait_for(lambda: a.store.event_count() == 20), a.store.event_count()
        assert {e.id for e in a.store.events_for("treadmill-1", 100)} == {e["id"] for e in sent}
        assert a.ingestor.duplicates + b.ingestor.duplicates == 0
        # the group shared the stream, and neither instance's session was taken over
        assert a.ingestor.events_stored > 0 and b.ingestor.events_stored > 0
        assert a.ingestor.connected.is_set() and b.ingestor.connected.is_set()
        assert TAKEN_OVER not in broker.log()


def test_instances_sharing_the_caregiver_account_take_each_others_session_over(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """Why: the guidance before (distinct client ids, all on the one ``caregiver`` account)
    on the documented broker gives both the client id ``caregiver``. Each connection closes
    the other's, and each then reconnects and closes the other's again, for ever."""
    accounts, client_ids = ("caregiver", "caregiver"), ("caregiver-1", "caregiver-2")
    with _run_two_instances(tmp_path, postgres_cluster, accounts, ACL, client_ids) as run:
        broker = run[0]
        assert wait_for(lambda: broker.log().count(TAKEN_OVER) >= 3), broker.log()
