"""The caregiver service says its database's health on the broker, and Home Assistant shows it.

Before, the parts of the database the service goes on without, and a database that stores no
alert at all, were said on the dashboard's banner, ``/healthz`` and the log only: a clinic
whose staff watch Home Assistant never learned that the service stopped storing recordings
or sessions, or could not store alerts (docs/safety.md: a storage fault is reported, never
silent). The service now publishes a retained health message and Home Assistant discovery of
a **Database** problem sensor; here a real Mosquitto carries them, real triggers and a real
refused COMMIT make the parts fail, and a model of Home Assistant (``tests/ha_discovery.py``,
which checks the discovery against its rules) reads what a Home Assistant that starts now
would: the retained messages alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from caregiver import health_topic as health_topic_module
from caregiver.config import CaregiverConfig
from caregiver.health_topic import HealthTopic, health_message
from caregiver.service import CaregiverService
from caregiver.storage import Part, SideFault
from core.protocol.messages import (
    CaregiverHealthMessage,
    CaregiverPresence,
    CaregiverStatusMessage,
)
from core.protocol.payloads import caregiver_status_payload, decode_as
from core.protocol.topics import caregiver_health_topic, caregiver_status_topic
from tests.caregiver_support import SimDevice, make_config, running_service, session_record
from tests.ha_discovery import HomeAssistant, parse_device_discovery
from tests.mqtt_helpers import Subscriber, subscriber, validate
from tests.test_caregiver_commit_failure import _commit_refused
from tests.test_caregiver_presence import _crash
from tests.test_ha_mqtt import retained_now
from tests.test_ingest_side_tables import _allow_writes, _refuse_writes
from tools.broker import Mosquitto, mosquitto_available

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

DEVICE = "treadmill-1"
DATABASE = "_database"
"""The Database sensor's component key ends so."""


@pytest.fixture(autouse=True)
def _said_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every change said as it happens (the limit has a test of its own, below)."""
    monkeypatch.setattr(health_topic_module, "HEALTH_EVERY_S", 0.0)


def _topic(config: CaregiverConfig) -> str:
    return caregiver_health_topic("retroguard", config.mqtt.identity)


def _health(sub: Subscriber) -> list[CaregiverHealthMessage]:
    """Every health message heard (``sub`` hears nothing else), each checked against the
    docs' schema."""
    said = list(sub.messages)
    for message in said:
        validate("caregiver_health", message.payload)
    return [decode_as(CaregiverHealthMessage, m.payload) for m in said]


def _status(sub: Subscriber) -> str | None:
    said = _health(sub)
    return said[-1].status if said else None


def _home_assistant(mosquitto: Mosquitto) -> HomeAssistant:
    """A Home Assistant that starts now: what it shows from the retained messages alone."""
    ha = HomeAssistant()
    kept = retained_now(mosquitto, ["homeassistant/#", "retroguard/caregiver/#"])
    ha.receive_all((t, p, True) for t, p in kept)
    return ha


@pytest.fixture
def service(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> Iterator[tuple[CaregiverService, Subscriber]]:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    sub = Subscriber(mosquitto, [_topic(config)])
    try:
        with running_service(config, web=False) as running:
            assert sub.wait(lambda: _status(sub) == "ok"), "no health said once subscribed"
            yield running, sub
    finally:
        sub.close()


def test_a_part_that_fails_turns_the_sensor_on_with_its_words_until_it_works_again(
    mosquitto: Mosquitto,
    service: tuple[CaregiverService, Subscriber],
    caregiver_db: str,
) -> None:
    running, sub = service
    ha = _home_assistant(mosquitto)
    assert ha.device is not None
    assert ha.device.device["name"] == "RetroGuard caregiver service"
    assert ha.state(DATABASE) == "off" and ha.is_available(DATABASE)
    attributes = ha.attributes[ha.component(DATABASE).key]
    assert attributes["status"] == "ok" and attributes["parts"] == []
    assert attributes["problems"] is None and attributes["storing_alerts"] is True

    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        _refuse_writes(caregiver_db, "walk_sessions")
        started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        record = session_record(DEVICE, started, backward_min=12, longest_min=4)
        device.session(record)  # held, then let go once the fall behind it stores
        device.incident_fall()
        assert sub.wait(lambda: _status(sub) == "degraded")
        said = _health(sub)[-1]
        assert said.storing and [p.part for p in said.parts] == ["sessions"]
        assert said.parts[0].said.startswith("guided sessions cannot be stored since ")
        assert said.by == running.config.mqtt.identity
        ha = _home_assistant(mosquitto)  # retained: a Home Assistant started now shows it
        assert ha.state(DATABASE) == "on" and ha.is_available(DATABASE)
        attributes = ha.attributes[ha.component(DATABASE).key]
        assert attributes["status"] == "degraded" and attributes["parts"] == ["sessions"]
        assert "guided sessions cannot be stored" in attributes["problems"]
        assert "alerts are still stored and notified" in attributes["problems"]
        assert attributes["storing_alerts"] is True
        heard = len(_health(sub))
        for _ in range(3):  # the housekeeping looks read the table: nothing new to say
            running.store.probe_side_faults()
        _allow_writes(caregiver_db, "walk_sessions")
        device.session(record)  # the device sends it again: it stores
        assert sub.wait(lambda: _status(sub) == "ok")
        statuses = [h.status for h in _health(sub)]
        assert len(statuses) == heard + 1  # the probes said nothing, the session stored did
        # Each change once: while the session was held the service could not tell its table
        # from the database (not storing), until the fall behind it stored.
        assert all(a != b for a, b in itertools.pairwise(statuses)), statuses
        assert statuses.count("degraded") == 1
        ha = _home_assistant(mosquitto)
        assert ha.state(DATABASE) == "off"
        assert ha.attributes[ha.component(DATABASE).key]["parts"] == []
    finally:
        device.close()


def test_a_database_that_refuses_alerts_says_not_storing_until_it_stores(
    mosquitto: Mosquitto,
    service: tuple[CaregiverService, Subscriber],
    caregiver_db: str,
) -> None:
    running, sub = service
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        with _commit_refused(running, caregiver_db):
            device.fall()  # it reaches the service, which cannot store it
            assert sub.wait(lambda: _status(sub) == "not storing")
            said = _health(sub)[-1]
            assert not said.storing and said.parts == ()
            ha = _home_assistant(mosquitto)
            assert ha.state(DATABASE) == "on"
            attributes = ha.attributes[ha.component(DATABASE).key]
            assert attributes["status"] == "not storing"
            assert attributes["storing_alerts"] is False
            assert running.health().database == "not storing"  # what /healthz says
            assert running.health().status == "not storing"
            assert running.ingestor.storage_fault is not None
        assert sub.wait(lambda: _status(sub) == "ok")  # the held fall stored at a retry
        assert _health(sub)[-1].storing
        assert _home_assistant(mosquitto).state(DATABASE) == "off"
    finally:
        device.close()


def test_the_sensor_is_unavailable_once_its_instance_is_gone_whoever_else_is_online(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Its Last Will greys the sensor out: the last health it said must not stand for a
    service that is gone. Another instance's ``online`` on the shared presence topic says
    nothing of this one."""
    config = make_config(mosquitto, tmp_path)
    service = CaregiverService(config)
    try:
        with subscriber(mosquitto, [_topic(config)]) as health:
            service.start(web=False, background=False, port=0)
            # the discovery goes out before the health, on the one connection: here once
            # the health is
            assert health.wait(lambda: _status(health) == "ok")
        assert _home_assistant(mosquitto).is_available(DATABASE)
        _crash(service.ingestor)
        presence = caregiver_status_topic("retroguard")
        with subscriber(mosquitto, [presence]) as sub:  # the broker sent the Last Will
            assert sub.wait(
                lambda: any(
                    m.payload and b'"offline"' in m.payload for m in sub.on("/caregiver/status")
                )
            )
        ha = _home_assistant(mosquitto)
        assert not ha.is_available(DATABASE)
        other = caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver-b")
        ha.receive(presence, other.encode(), retain=True)
        assert not ha.is_available(DATABASE)
        mine = caregiver_status_payload(CaregiverPresence.ONLINE, config.mqtt.identity)
        ha.receive(presence, mine.encode(), retain=True)
        assert ha.is_available(DATABASE)
    finally:
        service.stop()


def test_each_instance_s_sensor_is_available_again_once_home_assistant_announces_itself(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Instances sharing the devices share the one retained presence: a Home Assistant that
    starts reads only the last instance's, and every other instance's Database sensor stayed
    unavailable until that instance next said its presence (a storing fault; not a part
    failing: ``degraded`` was never shown), for days. Each instance says it again when Home
    Assistant announces itself (``homeassistant/status`` ``online``), as a treadmill
    announces its discovery again then."""
    config = make_config(mosquitto, tmp_path)
    presence = caregiver_status_topic("retroguard")
    with running_service(config, web=False) as running:
        mine = running.config.mqtt.identity
        with subscriber(mosquitto, [_topic(config)]) as health:
            assert health.wait(lambda: _status(health) == "ok")
        # another instance said its presence after this one: the retained one is its
        other = caregiver_status_payload(CaregiverPresence.ONLINE, "caregiver-b")
        with subscriber(mosquitto, [presence]) as sub:
            sub.client.publish(presence, other, qos=1, retain=True)
            assert sub.wait(lambda: any(b"caregiver-b" in m.payload for m in sub.messages))
        assert not _home_assistant(mosquitto).is_available(DATABASE)  # Home Assistant starts
        with subscriber(mosquitto, [presence]) as sub:
            sub.client.publish("homeassistant/status", "online", qos=1)  # its birth message
            assert sub.wait(
                lambda: any(
                    decode_as(CaregiverStatusMessage, m.payload).by == mine
                    for m in sub.messages
                    if m.payload
                )
            )
        assert _home_assistant(mosquitto).is_available(DATABASE)


@dataclass
class _Now:
    """What the database's sources say now (ingest's refusal, the side faults)."""

    storing: bool = True
    side: tuple[SideFault, ...] = ()

    def health(self) -> CaregiverHealthMessage:
        return health_message("caregiver", storing=self.storing, damaged=False, side=self.side)


class _Client:
    """Records what is published (all the announcer asks of paho's client)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, topic: str, payload: str, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        assert qos == 1 and retain
        self.published.append((topic, payload))
        return mqtt.MQTTMessageInfo(len(self.published))

    def statuses(self) -> list[str]:
        return [
            decode_as(CaregiverHealthMessage, p.encode()).status
            for t, p in self.published
            if t.startswith("retroguard/")
        ]


def _limit_ends(topic: HealthTopic) -> None:
    """The end of the limit, now: its timer's work, run here rather than waited for."""
    timer = topic._timer
    assert timer is not None, "nothing was left for the limit's end"
    timer.cancel()
    timer.function()  # type: ignore[attr-defined]


def test_a_change_within_the_limit_is_said_at_its_end_as_things_then_stand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A storing fault that comes and goes with each retry of the held messages must not flap
    the sensor: a change within the limit is said when it ends, and only if it still stands."""
    monkeypatch.setattr(health_topic_module, "HEALTH_EVERY_S", 3600.0)
    now = _Now()
    client = _Client()
    connected = threading.Event()
    connected.set()
    topic = HealthTopic(CaregiverConfig().mqtt, lambda: client, connected, now.health)  # type: ignore[arg-type,return-value]
    topic.subscribed(client)  # type: ignore[arg-type]
    assert client.published[0][0] == "homeassistant/device/caregiver-retroguard-caregiver/config"
    assert client.statuses() == ["ok"]
    now.storing = False
    topic.changed()
    now.storing = True
    topic.changed()  # came and went within the limit
    assert client.statuses() == ["ok"]
    _limit_ends(topic)
    assert client.statuses() == ["ok"]  # nothing to say: as it was
    now.side = (SideFault(Part.RECORDINGS, "no such table", 1_765_000_000.0, frozenset()),)
    topic.changed()
    now.storing = False
    topic.changed()  # one timer for both
    _limit_ends(topic)
    assert client.statuses() == ["ok", "not storing"]  # the graver, as things then stand
    topic.changed()
    assert topic._timer is None  # nothing changed since
    topic.stop()


def test_the_message_says_the_database_as_healthz_does_the_gravest_first() -> None:
    """A damaged file stores nothing whatever ingest last committed, and outranks a refusal,
    which outranks the parts (each as ``/healthz``'s ``status`` says it)."""
    part = SideFault(Part.WALKERS, "no such table: device_walkers", 1_765_000_000.0, frozenset())
    said = {
        (storing, damaged, bool(side)): health_message(
            "caregiver", storing=storing, damaged=damaged, side=side
        )
        for storing in (True, False)
        for damaged in (True, False)
        for side in ((), (part,))
    }
    assert {k: (m.status, m.storing) for k, m in said.items()} == {
        (True, True, False): ("database damaged", False),
        (True, True, True): ("database damaged", False),
        (False, True, False): ("database damaged", False),
        (False, True, True): ("database damaged", False),
        (False, False, False): ("not storing", False),
        (False, False, True): ("not storing", False),
        (True, False, True): ("degraded", True),
        (True, False, False): ("ok", True),
    }
    (walkers,) = said[(True, True, True)].parts  # said even while graver news stands
    assert walkers.part == "walkers" and walkers.since == "2025-12-06T05:46:40Z"
    said_since = "the walkers' names cannot be read or stored since 05:46\u00a0UTC: "
    assert walkers.said.startswith(said_since)  # its zone on its time's line, as everywhere


@pytest.mark.parametrize(
    ("public_url", "link"),
    [
        ("http://carepc.home.lan:8080", "http://carepc.home.lan:8080"),
        ("https://care.example/dashboard", "https://care.example/dashboard"),
        ("carepc.home.lan:8080", None),
        ("carepc.home.lan", None),
        ("http://[carepc.home.lan]:8080", None),  # brackets are an IPv6 address's only
        ("http://[::1", None),
    ],
)
def test_a_dashboard_address_home_assistant_refuses_leaves_out_the_link_not_the_sensor(
    public_url: str, link: str | None
) -> None:
    """``[server] public_url`` is checked nowhere (notification links take it as written), and
    the service gives it Home Assistant as its device's link: one without its ``http://``
    made Home Assistant refuse the whole discovery message (a configuration URL is http(s)),
    and the Database sensor never appeared. Such an address is left out."""
    client = _Client()
    connected = threading.Event()
    connected.set()
    config = CaregiverConfig()
    server = dataclasses.replace(config.server, public_url=public_url)
    config = dataclasses.replace(config, server=server)
    topic = HealthTopic(
        config.mqtt,
        lambda: client,  # type: ignore[arg-type,return-value]
        connected,
        _Now().health,
        dashboard_url=config.server.public_url.rstrip("/"),  # as the service gives it
    )
    topic.subscribed(client)  # type: ignore[arg-type]
    where, payload = client.published[0]
    device = parse_device_discovery(where, payload)
    assert device.device.get("configuration_url") == link
    assert device.components  # the Database sensor


def test_a_dashboard_address_no_url_parser_reads_costs_no_fall(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """``[server] public_url`` is read as a URL only for Home Assistant's link, once the
    service is subscribed, on paho's network thread. One in brackets that are no IPv6
    address's ("http://[carepc.home.lan]:8080", a typo) made that read raise: the exception
    ended paho's thread, the service heard nothing more, and no fall was stored or paged
    while it still said it was there. It is left out of the discovery, as one without
    ``http://``, and the falls come in."""
    config = make_config(mosquitto, tmp_path)
    server = dataclasses.replace(config.server, public_url="http://[carepc.home.lan]:8080")
    config = dataclasses.replace(config, server=server)
    with running_service(config, web=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        try:
            device.online()
            sent = device.fall()
            assert service.ingestor.wait_for(
                lambda: any(e.id == sent["id"] for e in service.store.events_for(DEVICE))
            ), "the fall was not stored"
        finally:
            device.close()
