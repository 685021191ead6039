"""The caregiver service against a real Mosquitto: ingest, access control, notifications.

Notifications go through Apprise's json:// target to a local HTTP receiver. The
escalation tests run the service on a fake clock and drive it with
``alerting.tick()`` and ``notifier.deliver_due()`` — no sleeps, no timing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import json
import logging
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from caregiver import story
from caregiver.broker_link import Connected, Down, Lost, NeverConnected, Problem, banner_words
from caregiver.config import Contact, EscalationConfig, PolicyConfig, load_config, parse_config
from caregiver.ingest import ReconnectDelays
from caregiver.localtime import readable
from caregiver.outbox import url_key
from caregiver.priority import prioritised, urgency_of
from caregiver.service import CaregiverService
from caregiver.storage import Urgency
from core.errors import ConfigError
from tests.caregiver_support import (
    BY_HAND,
    PASSWORD,
    WAIT,
    FakeClock,
    Http,
    Receiver,
    SimDevice,
    make_config,
    running_service,
)
from tests.log_support import LogLines
from tools.broker import Mosquitto, mosquitto_available

# ------------------------------------------------------------------ ingest

QUICK_RECONNECT = ReconnectDelays(first_s=0.05, most_s=0.2)
"""Tries at a broker not yet started this often: the service's own 1, 2, 4 s were waited out
by each test that starts the broker late (about 3 s of each)."""


def test_events_stored_once_by_id_and_device_state_tracked(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=False, background=False) as service:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        event = device.fall()
        device.event(  # a QoS 1 redelivery of the same event
            "fall",
            severity="critical",
            state="TRIPPED",
            reason="impact 3.2 g then lying",
            event_id=event["id"],
        )
        assert service.ingestor.wait_for(lambda: service.ingestor.duplicates >= 1, WAIT)
        assert service.store.event_count() == 1
        stored = service.store.event(event["id"])
        assert stored is not None and stored.type == "fall" and stored.has_window
        dev = service.store.device("treadmill-1")
        assert dev is not None
        assert (dev["availability"], dev["state"]) == ("online", "TRIPPED")
        assert dev["last_event"]["id"] == event["id"]
        device.close()


def test_events_published_while_the_service_is_down_arrive_on_restart(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    config = make_config(
        mosquitto, tmp_path, database=caregiver_db, client_id="caregiver-persistent"
    )
    device = SimDevice(mosquitto, "treadmill-1")
    with running_service(config, web=False, background=False):
        pass  # first start: the broker now holds the session and its subscriptions
    event = device.fall()  # the service is down
    with running_service(config, web=False, background=False) as service:
        assert service.ingestor.wait_for(lambda: service.store.event(event["id"]) is not None)
    device.close()


def test_a_broker_it_cannot_reach_is_said_once_in_the_log_until_it_answers(
    tmp_path: Path, caregiver_db: str
) -> None:
    """A wrong [mqtt] port, or the broker down at start: the service logged nothing at all
    while paho retried, and its dashboard said "No monitor has reported yet": a caregiver
    could not tell it from a quiet fleet, while no fall could reach them. Now the log says so,
    once an outage (not each retry), and the service connects when the broker answers."""
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    broker = Mosquitto()  # its port chosen, not started: nothing listens there yet
    where = f"{broker.host}:{broker.port}"
    said = LogLines(words=f"cannot reach the broker at {where}")
    ingest_log = logging.getLogger("caregiver.ingest")
    ingest_log.addHandler(said)
    service = CaregiverService(
        make_config(broker, tmp_path, database=caregiver_db), reconnect=QUICK_RECONNECT
    )
    try:
        service.start(web=False, background=False, port=0)
        assert said.heard.wait(WAIT), f"nothing said about {where}: {said.lines}"
        record = said.lines[-1]
        assert "no monitor's event reaches the dashboard or pages anyone" in record
        broker.start()
        try:
            assert service.ingestor.connected.wait(WAIT), "did not connect once it could"
            assert sum("cannot reach the broker" in line for line in said.lines) == 1
        finally:
            service.stop()
    finally:
        ingest_log.removeHandler(said)
        broker.cleanup()


def test_the_service_says_whether_it_hears_the_broker_down_connected_and_lost(
    tmp_path: Path, caregiver_db: str
) -> None:
    """Ingest pointed at a port where nothing listens: the link is down (never connected,
    unreachable) and the status says so, since the service started; once a Mosquitto answers
    on that port it is connected; when that broker stops, lost since then. Before, the service
    knew only a log line, and the dashboard showed a quiet fleet."""
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    broker = Mosquitto()  # its port chosen, not started: nothing listens there yet
    where = f"{broker.host}:{broker.port}"
    service = CaregiverService(
        make_config(broker, tmp_path, database=caregiver_db), reconnect=QUICK_RECONNECT
    )
    link = service.ingestor.link
    try:
        service.start(web=False, background=False, port=0)
        assert link.wait_for(
            lambda s: isinstance(s, NeverConnected) and s.problem is Problem.UNREACHABLE, WAIT
        ), link.state
        started = link.state
        status = service.status()["broker"]
        assert status["state"] == "never_connected" and status["problem"] == "unreachable"
        assert status["broker"] == where and status["down_s"] >= 0
        broker.start()
        assert link.wait_for(lambda s: isinstance(s, Connected), WAIT), link.state
        assert service.status()["broker"] == {"state": "connected", "broker": where}
        broker.stop()
        assert link.wait_for(lambda s: isinstance(s, Lost), WAIT), link.state
        lost = link.state
        assert isinstance(lost, Lost) and isinstance(started, NeverConnected)
        assert lost.since_mono >= started.since_mono  # down since it was lost, not the start
        assert service.status()["broker"]["state"] == "lost"
    finally:
        service.stop()
        broker.cleanup()


def _broker_refusing(topic_filter: str, workdir: Path) -> Mosquitto:
    """A Mosquitto whose access control refuses subscriptions to ``topic_filter`` (SUBACK:
    Not authorized), anonymous logins accepted. Through its dynamic-security plugin: an
    ``acl_file`` never refuses a subscription in Mosquitto 2.0, it only withholds messages."""
    plugins = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    if not mosquitto_available() or not plugins:
        pytest.skip("mosquitto (with its dynamic-security plugin) not installed")
    rules = workdir / "dynamic-security.json"
    # A role that names subscriptions refuses those it does not allow: the rest, allowed.
    deny = {"acltype": "subscribePattern", "topic": topic_filter, "priority": 1, "allow": False}
    rest = {"acltype": "subscribePattern", "topic": "#", "priority": 0, "allow": True}
    kinds = ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe")
    rules.write_text(
        json.dumps(
            {
                "defaultACLAccess": dict.fromkeys(kinds, True),
                "clients": [],
                "groups": [{"groupname": "anonymous", "roles": [{"rolename": "no-events"}]}],
                "roles": [{"rolename": "no-events", "acls": [deny, rest]}],
                "anonymousGroup": "anonymous",
            }
        )
    )
    rules.chmod(0o644)
    return Mosquitto(extra_config=f"plugin {plugins[0]}\nplugin_opt_config_file {rules}\n").start()


def test_a_subscription_the_broker_refuses_is_not_receiving_and_the_banner_names_it(
    tmp_path: Path, caregiver_db: str
) -> None:
    """The broker takes the login and refuses the events' subscription (its ACL): no alert
    can arrive. The service called that "connected", and the dashboard showed no banner;
    now the link is down with the refusal as its reason, the banner and the status name the
    topic, and the log says it."""
    # Where the broker, run as the mosquitto user, may read (not pytest's private folders).
    rules = Path(tempfile.mkdtemp(prefix="retroguard-dynsec-"))
    rules.chmod(0o755)
    try:
        broker = _broker_refusing("retroguard/+/event", rules)
    except BaseException:
        shutil.rmtree(rules)
        raise
    where = f"{broker.host}:{broker.port}"
    said = LogLines(words="the broker refused the subscriptions retroguard/+/event")
    ingest_log = logging.getLogger("caregiver.ingest")
    ingest_log.addHandler(said)
    service = CaregiverService(make_config(broker, tmp_path, database=caregiver_db))
    link = service.ingestor.link
    try:
        service.start(web=False, background=False, port=0)
        assert link.wait_for(
            lambda s: isinstance(s, Down) and s.problem is Problem.SUBSCRIPTION_REFUSED, WAIT
        ), link.state
        status = service.status()["broker"]
        assert status["state"] == "never_connected"
        assert status["problem"] == "subscription_refused"
        assert status["refused"] == ["retroguard/+/event"] and status["broker"] == where
        words = banner_words(link.state, where)
        assert words is not None and words.lead == "Not receiving alerts from the treadmills"
        assert words.detail == (
            f"the message broker at {where} refuses the service's subscription to "
            "retroguard/+/event (check its ACL)"
        )
        assert said.heard.is_set(), said.lines  # logged before the link changed
        assert not service.ingestor.connected.is_set()
    finally:
        service.stop()
        ingest_log.removeHandler(said)
        broker.cleanup()
        shutil.rmtree(rules)


def test_config_refuses_a_fall_policy_that_does_not_page_and_unknown_keys() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "policy": {"fall": "log", "stumble": "page"},
                "server": {"prot": 80},
                "contacts": [{"name": "Ann", "urls": []}],
            },
            "c.toml",
        )
    text = "\n".join(err.value.problems)
    assert "c.toml: policy.fall: must be 'page'" in text
    assert "server.prot: unknown key (did you mean 'port'?)" in text
    config = parse_config(
        {"contacts": [{"name": "Ann", "urls": ["json://x"]}], "devices": {"t1": "Mum"}}
    )
    assert config.contacts[0].urls == ("json://x",) and config.devices == {"t1": "Mum"}


def test_config_refuses_two_contacts_of_one_name(tmp_path: Path) -> None:
    """Queued messages are addressed by the contact's name (caregiver.outbox.addressee), so
    two contacts of one name are refused, by every command that reads the file (each loads
    it through load_config); contacts without a name are known by their URLs."""
    text = (
        '[[contacts]]\nname = "Ann"\nurls = ["json://x/1"]\n'
        '[[contacts]]\nurls = ["json://x/2"]\n[[contacts]]\nurls = ["json://x/3"]\n'
        '[[contacts]]\nname = "Ann"\nurls = ["json://x/4"]\n'
    )
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(toml)
    assert err.value.problems == [
        f"{toml}: contacts[3].name: 'Ann' is also contacts[0]'s name: give each contact its "
        "own (queued messages are addressed by it, so that reordering the list does not page "
        "someone else)"
    ]
    toml.write_text(
        text.replace('name = "Ann"\nurls = ["json://x/4"]', 'name = "Bo"\nurls = ["x"]')
    )
    assert [c.name for c in load_config(toml).contacts] == ["Ann", "", "", "Bo"]


@pytest.mark.parametrize("database", ["caregiver.db", "postgresql://svc@localhost/care"])
def test_relative_mqtt_files_are_beside_the_config_file(tmp_path: Path, database: str) -> None:
    """As in the monitor's config: the unit runs in the state directory, so a password file
    named beside /etc/retroguard/caregiver.toml must not be looked for there (with either
    database engine: PostgreSQL's config returned before the files were resolved)."""
    toml = tmp_path / "etc" / "c.toml"
    toml.parent.mkdir()
    toml.write_text(
        f'[server]\ndatabase = "{database}"\n'
        '[mqtt]\nusername = "caregiver"\npassword_file = "caregiver-mqtt-password"\n'
        'tls = true\nca_file = "certs/ca.pem"\ncert_file = "/abs/client.pem"\n'
    )
    mqtt = load_config(toml).mqtt
    assert mqtt.password_file == str(tmp_path / "etc" / "caregiver-mqtt-password")
    assert mqtt.ca_file == str(tmp_path / "etc" / "certs" / "ca.pem")
    assert mqtt.cert_file == "/abs/client.pem"
    assert mqtt.key_file == ""


# ------------------------------------------------------------ access control


def test_nothing_but_the_login_page_without_a_session(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    with running_service(
        make_config(mosquitto, tmp_path, database=caregiver_db), background=False
    ) as service:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        event = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(event["id"]) is not None)
        client = Http(service.port)
        status, headers, _ = client.request("GET", "/")
        assert status == 303 and headers["location"].startswith("/login")
        for path in (
            f"/events/{event['id']}",
            "/devices/treadmill-1",
            f"/api/events/{event['id']}/plot",
            "/api/fleet",
            "/stream",
            "/static/app.js",
        ):
            status, _, body = client.request("GET", path, headers={"accept": "*/*"})
            assert status == 401, path
            assert "treadmill" not in body and "impact" not in body
        status, _, _ = client.request("POST", f"/events/{event['id']}/ack", {"csrf": "x"})
        assert status == 401
        status, headers, page = client.request("GET", "/login")
        assert status == 200 and "Caregiver log in" in page
        assert "httponly" in headers["set-cookie"].lower()
        assert "Dad" not in page and "treadmill" not in page
        device.close()


def test_the_login_pages_stylesheet_is_public_and_nothing_else_static_is(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Issue 14: under Starlette 1.x the stylesheet answered 401 before login (a path compared
    inside the /static mount). Every stylesheet and script the login page links must load."""
    with running_service(make_config(mosquitto, tmp_path), background=False) as service:
        client = Http(service.port)
        _, _, page = client.request("GET", "/login")
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
        # the login page needs no script; its icon is public too (no /favicon.ico 404)
        assert assets == ["/static/public/app.css", "/static/public/icon.svg"]
        status, headers, body = client.request("GET", assets[0], headers={"accept": "text/css"})
        assert status == 200
        assert headers["content-type"].startswith("text/css") and ".card" in body
        status, headers, body = client.request("GET", assets[1], headers={"accept": "image/*"})
        assert status == 200
        assert headers["content-type"].startswith("image/svg+xml") and "<svg" in body
        for path in ("/static/app.js", "/static/public/../app.js", "/static/public/%2e%2e/app.js"):
            status, _, body = client.request("GET", path, headers={"accept": "*/*"})
            assert status in (401, 404), path
            assert "EventSource" not in body
        assert client.login() == 303  # and with a session, the scripts load too
        status, headers, body = client.request("GET", "/static/app.js", headers={"accept": "*/*"})
        assert status == 200 and "EventSource" in body


def test_login_cookie_flags_csrf_and_rate_limit(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    with running_service(
        make_config(mosquitto, tmp_path, database=caregiver_db), background=False
    ) as service:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        event = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(event["id"]) is not None)

        # a login form posted without its token (login CSRF) is refused
        status, _, _ = Http(service.port).request(
            "POST", "/login", {"username": "ann", "password": PASSWORD}
        )
        assert status == 403

        client = Http(service.port)
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=WAIT)
        assert client.login() == 303
        assert "rg_session" in client.cookies
        status, _, page = client.request("GET", "/")
        assert status == 200 and "Dad&#39;s treadmill" in page

        # a forged POST (valid session cookie, no CSRF token) is refused and changes nothing
        for headers in ({}, {"x-csrf-token": "forged"}):
            status, _, _ = client.request(
                "POST", f"/events/{event['id']}/ack", form={}, headers=headers
            )
            assert status == 403
        stored = service.store.event(event["id"])
        assert stored is not None and stored.acked_by is None
        assert device.commands == []

        # wrong passwords: three allowed, then refused even with the right one
        attacker = Http(service.port)
        for _ in range(3):
            assert attacker.login("ann", "wrong password!") == 401
        assert attacker.login("ann", PASSWORD) == 429
        conn.close()
        device.close()


def test_session_cookie_is_httponly_and_samesite(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    with running_service(
        make_config(mosquitto, tmp_path, database=caregiver_db), background=False
    ) as service:
        client = Http(service.port)
        _, _, page = client.request("GET", "/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        _, headers, _ = client.request(
            "POST", "/login", {"csrf": token.group(1), "username": "ann", "password": PASSWORD}
        )
        (cookie,) = [c for c in headers["set-cookie"].lower().split("\n") if "rg_session" in c]
        assert "rg_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert "default-src 'self'" in headers["content-security-policy"]


def test_the_dashboard_reaches_the_database_only_from_worker_threads(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caregiver_db: str
) -> None:
    """One event loop serves every browser: the store (and the Argon2 check behind a login)
    must run in worker threads. Every store operation notes the thread that called it."""
    with running_service(
        make_config(mosquitto, tmp_path, database=caregiver_db), background=False
    ) as service:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        event = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(event["id"]) is not None)
        callers: list[str] = []
        store = service.store
        for name in [n for n in dir(type(store)) if not n.startswith("_")]:
            operation = getattr(store, name)
            if callable(operation):

                def noting(*args: Any, _operation: Any = operation, **kwargs: Any) -> Any:
                    callers.append(threading.current_thread().name)
                    return _operation(*args, **kwargs)

                monkeypatch.setattr(store, name, noting)

        client = Http(service.port)
        assert client.login() == 303
        for path in (
            "/",
            "/devices/treadmill-1",
            f"/events/{event['id']}",
            f"/api/events/{event['id']}/plot",
            "/api/fleet",
            "/devices/treadmill-1/progress",
            "/api/devices/treadmill-1/progress",
            "/static/app.js",
        ):
            assert client.request("GET", path, headers={"accept": "*/*"})[0] == 200, path
        _, _, page = client.request("GET", f"/events/{event['id']}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        assert client.acknowledge(f"/events/{event['id']}", f"/events/{event['id']}/ack")[0] == 303
        shown = {"csrf": csrf[1], "incident": "", "seen": "", "alerts": ""}  # a card: nothing
        assert client.request("POST", "/devices/treadmill-1/ack", shown)[0] == 303
        assert client.request("POST", "/logout", {"csrf": csrf[1]})[0] == 303
        device.close()
    web_callers = [c for c in callers if not c.startswith("paho")]
    assert len(web_callers) >= 15
    assert "caregiver-web" not in web_callers  # uvicorn's thread: the event loop


# ------------------------------------------------------------ notifications


@pytest.fixture
def receiver() -> object:
    r = Receiver()
    yield r
    r.close()


def _contacts(receiver: Receiver) -> tuple[Contact, ...]:
    return (
        Contact(name="Ann", urls=(receiver.url("ann"),)),
        Contact(name="Bob", urls=(receiver.url("bob"),)),
    )


def test_a_fall_is_delivered_through_apprise_with_device_what_when_and_link(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    config = make_config(mosquitto, tmp_path, database=caregiver_db, contacts=_contacts(receiver))
    with running_service(config, web=False, background=True):
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        event = device.fall()
        (message,) = receiver.wait(1)
        assert message["path"] == "/ann"
        assert message["title"] == "RetroGuard: FALL - Dad's treadmill"
        body = message["message"]
        assert "FALL on Dad's treadmill (treadmill-1)" in body
        moment = dt.datetime.fromisoformat(event["wall_time"])  # [server] timezone: UTC here
        # its zone on its time's line on a phone (the pages' one rule: caregiver.localtime.words)
        assert f"{moment.day} {moment:%b %Y}, {moment:%H:%M:%S}\u00a0UTC" in body
        assert "impact 3.2 g then lying" in body
        assert f"http://dash.example/events/{event['id']}" in body
        device.close()


def test_a_fall_notification_says_what_the_dashboard_says_not_the_detectors_figures(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """A caregiver reads a fall's page on a phone: the impact and posture in plain words and
    what the belt is doing, as the dashboard's timeline says them, not the monitor's figures
    and its state's name (before: "impact 5.1 g (0.30 g s), lying 83 deg. Treadmill state:
    TRIPPED.")."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db, contacts=_contacts(receiver))
    with running_service(config, web=False, background=True):
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        device.event(  # as the demo's monitor sends it
            "fall",
            severity="critical",
            state="TRIPPED",
            reason="impact 5.1 g (0.30 g s), lying 83 deg",
            figures={"impact_g": 5.07, "tilt_deg": 83.4, "descent_mps": 1.85},
        )
        (message,) = receiver.wait(1)
        body = message["message"]
        assert (
            "impact hard (5.1 g; standing still is 1 g), 83° from upright — lying down. "
            "Belt stopped, waiting for a reset at the machine. Open and acknowledge: "
        ) in body
        assert "0.30 g s" not in body and "TRIPPED" not in body
        device.close()


def test_a_notification_says_the_time_in_the_configured_zone(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """The caregivers read Berlin time, with its name, whatever the device's clock sends."""
    from zoneinfo import ZoneInfo

    config = make_config(mosquitto, tmp_path, contacts=_contacts(receiver))
    config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, timezone="Europe/Berlin")
    )
    with running_service(config, web=False, background=True):
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        event = device.fall()
        (message,) = receiver.wait(1)
        berlin = dt.datetime.fromisoformat(event["wall_time"]).astimezone(ZoneInfo("Europe/Berlin"))
        assert (
            f"at {berlin:%a} {berlin.day} {berlin:%b %Y}, {berlin:%H:%M:%S}\u00a0{berlin.tzname()}"
            in (message["message"])
        )
        assert " UTC" not in message["message"]
        device.close()


def _fake_clock_service(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    database: str | None = None,
    **policy: object,
) -> tuple[CaregiverService, FakeClock]:
    clock = FakeClock()
    config = make_config(
        mosquitto,
        tmp_path,
        database=database,
        contacts=_contacts(receiver),
        policy=PolicyConfig(**policy),  # type: ignore[arg-type]
        escalation=EscalationConfig(ack_timeout_s=300, resends=1, retry_s=10, max_attempts=3),
    )
    service = CaregiverService(config, clock=clock)
    service.start(web=False, background=False)
    assert service.ingestor.connected.wait(WAIT)
    return service, clock


def _paths(receiver: Receiver) -> list[str]:
    return [m["path"] for m in receiver.messages]


def test_escalation_resends_then_moves_to_the_next_contact_until_acknowledged(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        event = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(event["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        assert _paths(receiver) == ["/ann"]

        clock.advance(299)
        assert service.alerting.tick() == 0  # not yet
        clock.advance(1)
        assert service.alerting.tick() == 1  # re-sent to Ann
        service.notifier.deliver_due()
        assert _paths(receiver) == ["/ann", "/ann"]
        assert receiver.messages[1]["message"].startswith("REMINDER")

        clock.advance(300)
        service.alerting.tick()  # then to Bob
        service.notifier.deliver_due()
        assert _paths(receiver) == ["/ann", "/ann", "/bob"]
        assert receiver.messages[2]["message"].startswith("ESCALATED")

        service.acknowledge("treadmill-1", event["id"], "bob")
        assert device.wait_command("ack") == {
            "id": device.commands[0][1]["id"],
            "event_id": event["id"],
            "by": "bob",
            "incident": event["id"],  # an event without an incident is its own (older devices)
            "via": "dashboard",
        }
        service.notifier.deliver_due()  # both paged contacts hear who answered
        follow = receiver.messages[3:]
        assert sorted(m["path"] for m in follow) == ["/ann", "/bob"]
        assert all("Acknowledged by bob on the dashboard: " in m["message"] for m in follow)

        clock.advance(3600)
        assert service.alerting.tick() == 0  # escalation stopped
        stored = service.store.event(event["id"])
        assert (
            stored is not None and stored.acked_by == "bob" and stored.acked_at == clock.now - 3600
        )
        device.close()
    finally:
        service.stop()


def test_im_ok_reset_after_a_fall_sends_a_follow_up_and_stops_escalation(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1  # a page not yet sent at the reset is not
        reset = device.reset()  # sent after it (tests/test_caregiver_escalation.py)
        assert service.ingestor.wait_for(lambda: service.store.event(reset["id"]) is not None)
        service.notifier.deliver_due()
        assert _paths(receiver) == ["/ann", "/ann"]
        assert receiver.messages[0]["title"].startswith("RetroGuard: FALL")
        assert receiver.messages[1]["title"] == "RetroGuard: I'm OK - Dad's treadmill"
        # it names the alert it closes: "pressed reset ... after the fall, not getting up"
        # read, in a message that the walker is OK, as if she still was not getting up
        fine = receiver.messages[1]["message"]
        assert fine.startswith("The walker pressed I'm OK on Dad's treadmill at "), fine
        assert ": the alert 'Fall' is closed. No further reminders. " in fine, fine
        clock.advance(3600)
        assert service.alerting.tick() == 0
        assert service.store.event(fall["id"]) is not None  # still recorded
        (alert,) = service.alerting.alerts("treadmill-1")
        assert (alert.status, alert.closed_by) == ("resolved", "walker reset (I'm OK)")
        device.close()
    finally:
        service.stop()


def test_a_stumble_reset_in_time_is_logged_not_paged_and_one_not_reset_pages(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, clock = _fake_clock_service(
        mosquitto, tmp_path, receiver, database=caregiver_db, reset_grace_s=30.0
    )
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        device.stumble()
        reset = device.reset()
        assert service.ingestor.wait_for(lambda: service.store.event(reset["id"]) is not None)
        clock.advance(60)
        service.alerting.tick()
        assert service.notifier.deliver_due() == 0
        assert receiver.messages == []
        (logged,) = service.alerting.alerts("treadmill-1")
        assert logged.status == "logged"

        second = device.stumble()
        assert service.ingestor.wait_for(lambda: service.store.event(second["id"]) is not None)
        clock.advance(29)
        assert service.alerting.tick() == 0
        clock.advance(1)
        assert service.alerting.tick() == 1
        service.notifier.deliver_due()
        assert _paths(receiver) == ["/ann"]
        # the dashboard's words for a stumble that pages (its "Still open" notice, story.alarm)
        assert receiver.messages[0]["title"] == "RetroGuard: Stumble not reset - Dad's treadmill"
        # Paging from the grace's end: its reminder a whole ack_timeout later, not at once.
        clock.advance(1)
        assert service.alerting.tick() == 0
        clock.advance(298)
        assert service.alerting.tick() == 0
        clock.advance(1)
        assert service.alerting.tick() == 1
        service.notifier.deliver_due()
        assert _paths(receiver) == ["/ann", "/ann"]
        assert receiver.messages[1]["message"].startswith("REMINDER")
        device.close()
    finally:
        service.stop()


def test_a_stumble_paging_at_once_is_not_called_not_reset(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    """Under ``policy.stumble = "page"`` a stumble pages at once: nobody waited for the
    walker's reset, yet the page said "Stumble not reset" (true only under the default
    ``page_unless_reset``). It says what happened, as the timeline does."""
    service, _ = _fake_clock_service(
        mosquitto, tmp_path, receiver, database=caregiver_db, stumble="page"
    )
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        stumble = device.stumble()
        assert service.ingestor.wait_for(lambda: service.store.event(stumble["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        (page,) = receiver.messages
        assert page["title"] == "RetroGuard: Stumble — belt stopped - Dad's treadmill"
        assert page["message"].startswith("Stumble — belt stopped on Dad's treadmill ")
        device.close()
    finally:
        service.stop()


def test_offline_while_armed_pages_and_back_online_follows_up(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        idle = SimDevice(mosquitto, "treadmill-2")
        idle.online(state="STANDBY")
        idle.offline()  # not armed: no page
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        device.offline()
        assert service.ingestor.wait_for(
            lambda: (service.store.device("treadmill-1") or {}).get("availability") == "offline"
        )
        service.notifier.deliver_due()
        assert _paths(receiver) == ["/ann"]
        # the card's words (it said "Monitor went OFFLINE while armed", the card "offline")
        title = "RetroGuard: Monitor went offline while armed - Dad's treadmill"
        assert receiver.messages[0]["title"] == title
        shown = service.store.device("treadmill-1")
        assert shown is not None
        card = story.card(shown, clock.now)
        assert card.headline is not None
        assert card.headline.text == "Monitor went offline while armed — not acknowledged"
        device.publish("availability", "online", retain=True)
        assert service.ingestor.wait_for(
            lambda: (service.store.device("treadmill-1") or {}).get("availability") == "online"
        )
        service.notifier.deliver_due()
        assert receiver.messages[1]["title"] == "RetroGuard: Dad's treadmill back online"
        # when it went (the offline page, which a quick return drops undelivered, said so;
        # the alert's time is the service's clock, here a fake one)
        went = readable(clock.now, service.config.zone)
        assert f"it stopped reporting at {went} while armed." in receiver.messages[1]["message"]
        # back online, the alert is over: no reminder that it went offline, ever
        clock.advance(3 * 300)
        assert service.alerting.tick() == 0
        assert service.notifier.deliver_due() == 0
        assert len(receiver.messages) == 2
        device.close()
        idle.close()
    finally:
        service.stop()


def test_a_failing_notifier_is_retried_and_never_blocks_ingestion(
    mosquitto: Mosquitto,
    tmp_path: Path,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    caregiver_db: str,
) -> None:
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    try:
        receiver.fail_next = 1
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 0  # the service answered 500
        assert "notifying Ann (url #1) failed (attempt 1)" in caplog.text
        assert receiver.url("ann") not in caplog.text  # URLs may hold secrets: never logged
        later = device.event("start", severity="info", state="STARTING", reason="monitor started")
        assert service.ingestor.wait_for(lambda: service.store.event(later["id"]) is not None)
        clock.advance(9)
        assert service.notifier.deliver_due() == 0  # not due yet
        clock.advance(1)
        assert service.notifier.deliver_due() == 1
        assert _paths(receiver) == ["/ann"]
        device.close()
    finally:
        service.stop()


def test_the_demo_runs_the_caregiver_in_its_own_process_and_stops_it(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    from caregiver.demo import spawn_demo_caregiver

    demo = spawn_demo_caregiver(mosquitto.host, mosquitto.port, tmp_path / "care")
    try:
        assert demo.exitcode is None  # running, elsewhere
        client = Http(int(demo.url.rsplit(":", 1)[1]))
        assert client.login(demo.username, demo.password) == 303
        status, _, page = client.request("GET", "/")
        assert status == 200 and "Treadmills" in page
    finally:
        demo.stop()
    assert demo.exitcode == 0
    assert (tmp_path / "care" / "caregiver.db").exists()


def test_demo_caregiver_serves_the_dashboard_with_the_printed_login(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    from caregiver.demo import start_demo_caregiver

    demo = start_demo_caregiver(mosquitto.host, mosquitto.port, tmp_path / "care")
    try:
        assert demo.url.startswith("http://127.0.0.1:")
        client = Http(demo.service.port)
        assert client.login(demo.username, demo.password) == 303
        status, _, page = client.request("GET", "/")
        assert status == 200 and "Treadmills" in page
    finally:
        demo.stop()


def test_each_message_goes_with_its_apprise_type_and_the_services_priority(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """Real Apprise to a local receiver standing in for json://, ntfy and Gotify: a fall at
    each service's highest priority, a follow-up at its normal one, a test alarm as a fall."""
    ann = Contact(
        name="Ann",
        urls=(
            receiver.url("ann"),
            receiver.url("ann-phone", "ntfy") + "?priority=low&tags=retroguard",
            receiver.url("gotifytoken0123", "gotify"),
        ),
    )
    config = make_config(mosquitto, tmp_path, contacts=(ann,))
    with running_service(config, web=False, background=False) as service:
        store = service.store
        for urgency in (Urgency.CRITICAL, Urgency.NORMAL, Urgency.TEST):
            with store.transaction() as tx:
                alert = tx.page_alert("fall", "treadmill-1", None, 1.0, 301.0, frame=BY_HAND)
                for url_index in range(3):
                    tx.queue_notification(
                        alert,
                        "Ann",
                        0,
                        url_index,
                        f"{urgency}",
                        "body",
                        1.0,
                        urgency=urgency,
                        contact_key="Ann",
                        url_key=url_key(ann.urls[url_index]),
                    )
            assert service.notifier.deliver_due() == 3
        sent = receiver.wait(9)
    by = {(m["title"], m["path"]): m for m in sent}
    assert [by[(u, "/ann")]["type"] for u in ("critical", "normal", "test")] == [
        "failure",
        "info",
        "info",
    ]
    ntfy = [by[(u, "/")] for u in ("critical", "normal", "test")]  # ntfy posts to its root
    assert [m["topic"] for m in ntfy] == ["ann-phone"] * 3
    assert [m["headers"].get("X-Priority") for m in ntfy] == ["max", None, "max"]  # None: default
    assert all(m["headers"].get("X-Tags") == "retroguard" for m in ntfy)  # the rest is kept
    gotify = [by[(u, "/message")] for u in ("critical", "normal", "test")]
    assert [m["priority"] for m in gotify] == [10, 5, 10]


def test_priorities_per_service_replace_only_the_priority() -> None:
    assert prioritised("ntfy://ntfy.sh/ann-7f3c", Urgency.CRITICAL) == (
        "ntfy://ntfy.sh/ann-7f3c?priority=max"
    )
    assert prioritised("ntfys://me:p%40ss@ntfy.home/ann?Priority=min&click=x", Urgency.HIGH) == (
        "ntfys://me:p%40ss@ntfy.home/ann?click=x&priority=high"
    )
    assert prioritised("pover://user@token/phone?interval=60", Urgency.CRITICAL) == (
        "pover://user@token/phone?interval=60&priority=emergency"
    )
    assert prioritised("pover://user@token", Urgency.TEST).endswith("?priority=emergency")
    assert prioritised("pover://user@token", Urgency.NORMAL).endswith("?priority=normal")
    assert prioritised("psafer://key", Urgency.CRITICAL).endswith("?priority=2")
    for url in ("tgram://bot/chat", "mailto://a:b@example.com?to=c@example.com", "json://h/x"):
        assert prioritised(url, Urgency.CRITICAL) == url
    assert [urgency_of(k) for k in ("fall", "no_recovery", "stumble", "offline", "test")] == [
        Urgency.CRITICAL,
        Urgency.CRITICAL,
        Urgency.HIGH,
        Urgency.HIGH,
        Urgency.TEST,
    ]


def test_a_fall_and_its_reminders_page_as_critical_and_the_follow_up_as_normal(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver
) -> None:
    """The alert path, not a hand-queued row: a fall's page and its reminder go at the
    highest urgency (Apprise's "failure": ntfy's max, Pushover's emergency), the walker's
    "I'm OK" that follows at the normal one. Before, every page was queued as normal."""
    service, clock = _fake_clock_service(mosquitto, tmp_path, receiver)
    try:
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.fall()
        assert service.ingestor.wait_for(lambda: service.store.event(fall["id"]) is not None)
        assert service.notifier.deliver_due() == 1
        clock.advance(300)
        assert service.alerting.tick() == 1  # the reminder
        service.notifier.deliver_due()
        reset = device.reset()
        assert service.ingestor.wait_for(lambda: service.store.event(reset["id"]) is not None)
        service.notifier.deliver_due()
        sent = receiver.wait(3)
        assert [m["title"].split(" - ")[0] for m in sent] == [
            "RetroGuard: FALL",
            "RetroGuard: FALL",
            "RetroGuard: I'm OK",
        ]
        assert [m["type"] for m in sent] == ["failure", "failure", "info"]
        device.close()
    finally:
        service.stop()
