"""Security against a real Mosquitto: credentials, TLS, the documented ACL, secrets not logged."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from caregiver.config import identity_problem
from core.protocol.commands import COMMANDS, CommandName
from core.protocol.topics import Topics
from firmware.config import MqttConfig
from firmware.mqtt import MqttReporter
from firmware.mqtt.discovery import discovery_payload
from tests.caregiver_support import SimDevice, running_service
from tests.caregiver_support import make_config as caregiver_config
from tests.mqtt_helpers import WAIT, config_for, fall, login, subscriber
from tests.storage_support import wait_for
from tools.broker import BrokerError, Mosquitto, TlsFiles, free_port, mosquitto_available
from tools.watch import Watcher

ACL = (Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl").read_text()
SECRET = "s3cret-Pa55-do-not-log"

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


@pytest.fixture
def secured() -> Any:
    broker = Mosquitto(
        users={
            "tm1": SECRET,
            "tm2": "other-device",
            "caregiver": "carer-pw",
            "homeassistant": "ha-pw",
            "caregiver-watch": "watch-pw",
        },
        acl=ACL,
    ).start()
    yield broker
    broker.cleanup()


def test_bad_credentials_clear_error_events_kept_secret_never_logged(
    secured: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "creds.db"
    wrong = "wrong-" + SECRET
    bad = MqttReporter(
        config_for(secured, username="tm1", password=wrong),
        device_id="tm1",
        device_name="T1",
        database=db,
    )
    bad.start()
    for i in range(3):
        bad.sink.handle(fall("tm1", float(i)))
    assert bad.wait_until(lambda s: s.last_error is not None and "refused" in s.last_error, WAIT)
    error = bad.status.last_error or ""
    assert "Not authorized" in error or "Bad user name or password" in error
    assert "mqtt.username" in error
    assert bad.outbox.depth() == 3
    bad.close()
    assert any(
        r.levelno == logging.ERROR and "refused the connection" in r.message for r in caplog.records
    )

    password_file = tmp_path / "mqtt-password"
    password_file.write_text(SECRET + "\n")
    good = MqttReporter(
        config_for(secured, username="tm1", password_file=str(password_file)),
        device_id="tm1",
        device_name="T1",
        database=db,
    )
    assert SECRET not in repr(good.config)
    with subscriber(
        secured, ["retroguard/tm1/event"], username="caregiver", password="carer-pw"
    ) as sub:
        good.start()
        assert sub.wait_events(3)  # the queued events went out once the password was right
        assert good.wait_drained(WAIT)
    good.close()
    assert SECRET not in caplog.text
    assert wrong not in caplog.text


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.pem"),
        "-subj",
        "/CN=Test CA",
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(d / "server.key"),
        "-out",
        str(d / "server.csr"),
        "-subj",
        "/CN=127.0.0.1",
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(d / "server.csr"),
        "-CA",
        str(d / "ca.pem"),
        "-CAkey",
        str(d / "ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        str(d / "server.pem"),
        "-extfile",
        str(d / "san.ext"),
    )
    return TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key")


def test_tls_round_trip_and_wrong_ca_refused(tmp_path: Path) -> None:
    tls = make_certs(tmp_path)
    broker = Mosquitto(tls=tls).start()
    try:
        with subscriber(broker, ["retroguard/tm1/event"], ca_file=tls.ca_file) as sub:
            reporter = MqttReporter(
                config_for(broker, tls=True, ca_file=str(tls.ca_file)),
                device_id="tm1",
                device_name="T1",
                database=tmp_path / "tls.db",
            )
            reporter.start()
            event = fall("tm1")
            reporter.sink.handle(event)
            assert sub.wait_events(1)
            assert sub.event_ids() == [event.id]
            reporter.close()

        other = tmp_path / "other"
        other.mkdir()
        stranger = make_certs(other)  # a CA that did not sign the broker's certificate
        wrong = MqttReporter(
            config_for(broker, tls=True, ca_file=str(stranger.ca_file)),
            device_id="tm1",
            device_name="T1",
            database=tmp_path / "wrong.db",
        )
        wrong.start()
        wrong.sink.handle(fall("tm1"))
        assert wrong.wait_until(lambda s: s.last_error is not None, WAIT)
        assert not wrong.status.connected and wrong.outbox.depth() == 1
        wrong.close()
    finally:
        broker.cleanup()


class RawClient:
    """A bare MQTT 5 client that records PUBACK reason codes (the broker's verdict)."""

    def __init__(self, broker: Mosquitto, user: str, password: str) -> None:
        self.acks: dict[int, Any] = {}
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"raw-{user}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(user, password)
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self.cond:
            self.acks[mid] = rc
            self.cond.notify_all()

    def publish(self, topic: str, payload: str) -> Any:
        mid = self.client.publish(topic, payload, qos=1).mid
        with self.cond:
            assert self.cond.wait_for(lambda: mid in self.acks, WAIT)
            return self.acks[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_acl_confines_devices_and_caregivers(secured: Mosquitto) -> None:
    topics = ["retroguard/tm1/event", "retroguard/tm2/event", "retroguard/tm2/state"]
    # One connection per account (use_username_as_clientid): the watcher is Home Assistant's.
    with subscriber(secured, topics, username="homeassistant", password="ha-pw") as sub:
        device = RawClient(secured, "tm1", SECRET)
        carer = RawClient(secured, "caregiver", "carer-pw")
        try:
            assert device.publish("retroguard/tm2/event", "forged by tm1").is_failure
            assert device.publish("retroguard/tm2/state", "forged by tm1").is_failure
            assert carer.publish("retroguard/tm2/event", "forged by carer").is_failure
            assert not carer.publish("retroguard/tm2/cmd/ping", "{}").is_failure
            assert not device.publish("retroguard/tm1/event", "genuine").is_failure
            # Messages from one client arrive in order: once "genuine" is here, the
            # forged ones would have been too.
            assert sub.wait(lambda: any(m.payload == b"genuine" for m in sub.messages))
            assert [m.payload for m in sub.messages] == [b"genuine"]
        finally:
            device.close()
            carer.close()


def test_acl_lets_a_device_publish_its_retained_status_and_discovery_and_no_one_forge_them(
    secured: Mosquitto,
) -> None:
    mine = ["incident", "progress"]
    topics = [f"retroguard/{d}/{k}" for d in ("tm1", "tm2") for k in mine]
    topics.append("homeassistant/device/+/config")
    with subscriber(secured, topics, username="homeassistant", password="ha-pw") as ha:
        device = RawClient(secured, "tm1", SECRET)
        carer = RawClient(secured, "caregiver", "carer-pw")
        try:
            for kind in mine:
                assert device.publish(f"retroguard/tm2/{kind}", "forged by tm1").is_failure
                assert carer.publish(f"retroguard/tm1/{kind}", "forged by carer").is_failure
            assert device.publish("homeassistant/device/tm2/config", "{}").is_failure
            assert carer.publish("homeassistant/device/tm1/config", "").is_failure
            for kind in mine:
                assert not device.publish(f"retroguard/tm1/{kind}", f"genuine {kind}").is_failure
            assert not device.publish("homeassistant/device/tm1/config", "genuine").is_failure
            # One client's messages arrive in order: the last genuine one here means no forged
            # one got through before it.
            assert ha.wait(lambda: any(m.payload == b"genuine" for m in ha.messages))
            assert [m.payload for m in ha.messages] == [
                b"genuine incident",
                b"genuine progress",
                b"genuine",
            ]
        finally:
            device.close()
            carer.close()


def test_acl_lets_the_caregiver_say_its_own_database_health_to_home_assistant_only(
    secured: Mosquitto,
) -> None:
    """The service's health and its discovery (caregiver.health_topic), under its account's
    name: Home Assistant reads them; no device, and no other instance, can say them."""
    health = "retroguard/caregiver/health/caregiver"
    discovery = "homeassistant/device/caregiver-caregiver/config"
    with subscriber(
        secured, ["retroguard/caregiver/health/+", discovery], username="homeassistant",
        password="ha-pw",
    ) as ha:  # fmt: skip
        device = RawClient(secured, "tm1", SECRET)
        carer = RawClient(secured, "caregiver", "carer-pw")
        try:
            assert device.publish(health, "forged by tm1").is_failure
            assert device.publish(discovery, "forged by tm1").is_failure
            assert carer.publish("retroguard/caregiver/health/caregiver-b", "forged").is_failure
            assert not carer.publish(discovery, "genuine discovery").is_failure
            assert not carer.publish(health, "genuine").is_failure
            assert ha.wait(lambda: any(m.payload == b"genuine" for m in ha.messages))
            assert [m.payload for m in ha.messages] == [b"genuine discovery", b"genuine"]
        finally:
            device.close()
            carer.close()


@pytest.mark.parametrize("account", ["caregiver.b", "care@clinic.example"])
def test_an_instance_whose_account_has_a_dot_says_its_health_through_the_acl(
    tmp_path: Path, account: str
) -> None:
    """A caregiver service instance's account may have a ``.``, as a device id may, or be a
    hosted broker's e-mail-like name: its health topic carries the name as it is, which the
    ACL's ``pattern write retroguard/caregiver/health/%u`` matches, and Home Assistant reads
    it. Before, the ``.`` went into the topic as ``_`` (``caregiver_b``): the broker refused
    every health message of the instance, and only its log said so; and a name the device id
    rule refuses (an ``@``) must not stop the service that pages, when the broker takes it."""
    caregiver_lines = ACL.split("\nuser caregiver\n", 1)[1].split("\n\n", 1)[0]
    acl = f"{ACL}\nuser {account}\n{caregiver_lines}\n"  # docs/provider.md's instance block
    broker = Mosquitto(users={account: "b-pw", "homeassistant": "ha-pw"}, acl=acl).start()
    try:
        config = caregiver_config(broker, tmp_path)
        config = dataclasses.replace(
            config,
            mqtt=dataclasses.replace(config.mqtt, username=account, password="b-pw"),
        )
        assert identity_problem(config.mqtt) is None
        with subscriber(
            broker, ["retroguard/caregiver/health/+"], username="homeassistant", password="ha-pw"
        ) as ha:
            with running_service(config, web=False):
                assert ha.wait(lambda: len(ha.messages) >= 1)
            said = json.loads(ha.messages[0].payload)
            topic = f"retroguard/caregiver/health/{account}"
            assert (ha.messages[0].topic, said["by"]) == (topic, account)
    finally:
        broker.cleanup()


def test_acl_lets_neither_home_assistant_nor_the_watch_announce_a_device_of_its_own(
    secured: Mosquitto,
) -> None:
    """The health and discovery patterns (``%u``) apply to every account: the watch's, which
    writes nothing, and Home Assistant's, which writes its status and buttons only, could each
    announce to Home Assistant a "RetroGuard caregiver service" of its own name with a Database
    sensor whose state it writes (and, the older pattern, any device at all). Their blocks
    deny them; what Home Assistant reads of them is the other test's."""
    for user, password in (("caregiver-watch", "watch-pw"), ("homeassistant", "ha-pw")):
        client = RawClient(secured, user, password)
        try:
            for topic in (
                f"retroguard/caregiver/health/{user}",
                f"homeassistant/device/caregiver-{user}/config",
                f"homeassistant/device/{user}/config",
            ):
                assert client.publish(topic, "forged").is_failure, (user, topic)
        finally:
            client.close()


def test_acl_lets_a_device_publish_each_walker_s_stage_for_the_caregiver_only(
    secured: Mosquitto,
) -> None:
    """``stage/<walker>``: its device publishes it, no other device does; the caregiver
    service reads it, Home Assistant does not (a physio's matter, as the walkers list)."""
    stage = "retroguard/+/stage/+"
    with (
        subscriber(secured, [stage], username="caregiver", password="carer-pw") as carer_sub,
        subscriber(secured, [stage, "retroguard/+/progress"], username="homeassistant",
                   password="ha-pw") as ha,
    ):  # fmt: skip
        device = RawClient(secured, "tm1", SECRET)
        other = RawClient(secured, "tm2", "other-device")
        try:
            assert other.publish("retroguard/tm1/stage/bob", "forged by tm2").is_failure
            assert not device.publish("retroguard/tm1/stage/bob", "genuine stage").is_failure
            assert not device.publish("retroguard/tm1/progress", "genuine progress").is_failure
            assert carer_sub.wait(lambda: bool(carer_sub.messages))
            assert [m.payload for m in carer_sub.messages] == [b"genuine stage"]
            # One client's messages arrive in order: the progress here means the stage before
            # it would have been too.
            assert ha.wait(lambda: any(m.payload == b"genuine progress" for m in ha.messages))
            assert [m.payload for m in ha.messages] == [b"genuine progress"]
        finally:
            device.close()
            other.close()


def test_the_watch_account_reads_what_retroguard_watch_shows_and_writes_nothing(
    secured: Mosquitto,
) -> None:
    """``caregiver-watch`` (the terminal's ``retroguard watch``, and the one the demo prints):
    its ACL block reads exactly the topics the watch subscribes to — a topic the watch shows
    that the ACL forgets is silently never delivered (as the stage topic once was) — and it
    may publish nothing: no command, receipt or presence, no device's topic."""
    watched = Watcher(MqttConfig(host="127.0.0.1", port=1), "+", 0, False).topics
    reads = {
        line.removeprefix("topic read ")
        for line in ACL.split("user caregiver-watch\n", 1)[1].split("\n\n", 1)[0].splitlines()
        if line.startswith("topic read ")
    }
    assert reads == set(watched)
    kinds = ["availability", "state", "event", "incident", "reply", "stage/bob", "telemetry",
             "session", "progress", "walkers", "caregiver"]  # fmt: skip
    # One connection per account (use_username_as_clientid): its publishing first, then its
    # reading.
    watcher = RawClient(secured, "caregiver-watch", "watch-pw")
    try:
        for topic in ("retroguard/tm1/cmd/ping", "retroguard/tm1/receipt",
                      "retroguard/caregiver/status", "retroguard/tm1/event"):  # fmt: skip
            assert watcher.publish(topic, "{}").is_failure, topic
    finally:
        watcher.close()
    everything = ["retroguard/#"]
    with subscriber(secured, everything, username="caregiver-watch", password="watch-pw") as w:
        device = RawClient(secured, "tm1", SECRET)
        try:
            for kind in kinds:
                assert not device.publish(f"retroguard/tm1/{kind}", kind).is_failure, kind
            assert not device.publish("retroguard/tm1/event", "last").is_failure
            # One client's messages arrive in order: once "last" is here, every one the watch
            # may read before it is too.
            assert w.wait(lambda: any(m.payload == b"last" for m in w.messages))
        finally:
            device.close()
    got = [m.payload.decode() for m in w.messages]
    assert got == ["availability", "state", "event", "incident", "reply", "stage/bob", "last"]


# ------------------------------------------------------- the broker install-pi.sh sets up

INSTALLER = Path(__file__).resolve().parent.parent / "scripts" / "install-pi.sh"


def _install_broker(etc: Path, mosquitto_dir: Path, port: int) -> str:
    """install-pi.sh's broker step (``--broker``) into these folders: systemctl left out, the
    device's password file owned by root (no service user here)."""
    env = dict(
        os.environ,
        RETROGUARD_ETC=str(etc),
        RETROGUARD_MOSQUITTO_DIR=str(mosquitto_dir),
        RETROGUARD_BROKER_PORT=str(port),
    )
    script = f"source {INSTALLER}; SVC_USER=root; systemctl() {{ :; }}; broker=1; install_broker"
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mosquitto_passwd") is None,
    reason="needs root (the files are the mosquitto user's) and mosquitto_passwd",
)
def test_the_installed_broker_applies_the_documented_acl_to_every_account(tmp_path: Path) -> None:
    """``install-pi.sh --broker`` installs the ACL the tests load, with an account for the
    device, the caregiver service and Home Assistant: a client of the wrong identity is refused
    — no login without a password, no presence said by anyone but the caregiver service, no
    event by anyone but its device. A second run changes nothing."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text('[device]\nid = "tm1"\n')
    mosquitto_dir = Path(tempfile.mkdtemp(prefix="retroguard-etc-mosquitto-"))
    mosquitto_dir.chmod(0o755)  # the broker drops to its own user, which must reach the files
    port = free_port()
    broker = Mosquitto(
        port=port,
        # Debian's /etc/mosquitto/mosquitto.conf, in short: what install-pi.sh adds is conf.d's
        config=f"persistence false\nlog_dest stderr\ninclude_dir {mosquitto_dir}/conf.d\n",
    )
    try:
        out = _install_broker(etc, mosquitto_dir, port)
        assert "Mosquitto on 127.0.0.1" in out
        assert (mosquitto_dir / "retroguard.acl").read_text() == ACL
        passwords = {
            user: (etc / name).read_text().splitlines()[0]
            for user, name in (
                ("tm1", "mqtt-password"),
                ("caregiver", "caregiver-mqtt-password"),
                ("homeassistant", "homeassistant-mqtt-password"),
            )
        }
        assert len(set(passwords.values())) == 3 and all(len(p) == 32 for p in passwords.values())
        hashed = (mosquitto_dir / "retroguard.passwd").read_text()
        assert not any(p in hashed for p in passwords.values())
        broker.start()

        def tm1_in_and_out(client_id: str = "") -> bool:
            """tm1 logs in (under ``client_id``) and out; True once the broker has seen it go
            (no other client leaves meanwhile): the broker names every client after its
            account (``use_username_as_clientid``), so a later connection as tm1 would
            otherwise take over this one's session."""

            def left() -> int:
                return len(re.findall(r"Client \S+ disconnected\.", broker.log()))

            gone = left()
            refused = login(broker, "tm1", passwords["tm1"], client_id=client_id).is_failure
            return not refused and wait_for(lambda: left() > gone)

        assert login(broker, None, None).is_failure  # anonymous
        assert login(broker, "tm1", passwords["caregiver"]).is_failure  # another's password
        assert tm1_in_and_out()

        # one client an account at a time (a second connection of one account takes the first
        # one's session over; paho reconnects it, and the verdicts below were a reconnect's)
        carer = RawClient(broker, "caregiver", passwords["caregiver"])
        ha = RawClient(broker, "homeassistant", passwords["homeassistant"])
        clients = [carer, ha]
        kicked = threading.Event()
        for client in clients:
            client.client.on_disconnect = lambda *args: kicked.set()
        try:
            # the device's account connecting under the caregiver's client id takes nothing
            # from the caregiver's session (its id is tm1); the device's own client connects
            # only after it has gone, so it takes nothing from the device's either
            assert tm1_in_and_out(client_id="raw-caregiver")
            device = RawClient(broker, "tm1", passwords["tm1"])
            device.client.on_disconnect = lambda *args: kicked.set()
            clients.append(device)
            presence = "retroguard/caregiver/status"
            assert device.publish(presence, '{"state":"online"}').is_failure
            assert ha.publish(presence, '{"state":"online"}').is_failure
            assert not carer.publish(presence, '{"state":"online"}').is_failure
            assert device.publish("retroguard/tm2/event", "forged by tm1").is_failure
            assert carer.publish("retroguard/tm1/event", "forged by carer").is_failure
            assert ha.publish("retroguard/tm1/state", "forged by ha").is_failure
            assert not device.publish("retroguard/tm1/event", "genuine").is_failure
            assert not carer.publish("retroguard/tm1/cmd/ping", "{}").is_failure
            # a receipt makes the device forget an alert: only the caregiver service's counts
            receipt = '{"schema":1,"ids":["' + "a" * 32 + '"],"by":"x"}'
            assert device.publish("retroguard/tm1/receipt", receipt).is_failure
            assert ha.publish("retroguard/tm1/receipt", receipt).is_failure
            assert not carer.publish("retroguard/tm1/receipt", receipt).is_failure
            assert not kicked.is_set()  # no session was taken over
            assert "already connected, closing old connection" not in broker.log()
        finally:
            for client in clients:
                client.close()
        # one listener, the one installed: no other address or port is open
        opened = re.findall(r"Opening \S+ listen socket on port (\d+)", broker.log())
        assert opened == [str(port)], opened

        again = _install_broker(etc, mosquitto_dir, port)
        assert "account 'tm1' exists" in again
        assert (mosquitto_dir / "retroguard.passwd").read_text() == hashed
        assert (etc / "mqtt-password").read_text().splitlines()[0] == passwords["tm1"]
    finally:
        broker.cleanup()
        shutil.rmtree(mosquitto_dir, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mosquitto_passwd") is None,
    reason="needs root (the files are the mosquitto user's) and mosquitto_passwd",
)
def test_a_caregiver_instance_listed_for_the_installer_keeps_its_access_after_an_upgrade(
    tmp_path: Path,
) -> None:
    """docs/provider.md's instances on the broker ``install-pi.sh --broker`` set up: an
    instance listed in /etc/retroguard/caregiver-instances, its password set by the operator,
    still reads the device's events and sends commands and its presence after the next run of
    the installer (an upgrade, which writes the ACL again), and forges no device. Before, that
    run wrote the documented ACL alone: the broker took the instance's login and gave it
    nothing."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text('[device]\nid = "tm1"\n')
    (etc / "caregiver-instances").write_text("caregiver-a\n")
    mosquitto_dir = Path(tempfile.mkdtemp(prefix="retroguard-etc-mosquitto-"))
    mosquitto_dir.chmod(0o755)  # the broker drops to its own user, which must reach the files
    port = free_port()
    broker = Mosquitto(
        port=port,
        config=f"persistence false\nlog_dest stderr\ninclude_dir {mosquitto_dir}/conf.d\n",
    )
    try:
        _install_broker(etc, mosquitto_dir, port)
        passwd = mosquitto_dir / "retroguard.passwd"
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), "caregiver-a", "a-pw"], check=True)
        out = _install_broker(etc, mosquitto_dir, port)  # the upgrade
        assert "caregiver instances (" in out and "): caregiver-a;" in out
        assert "caregiver-a:" in passwd.read_text()  # the operator's login is kept
        broker.start()
        device_pw = (etc / "mqtt-password").read_text().splitlines()[0]
        device = RawClient(broker, "tm1", device_pw)
        try:
            with subscriber(
                broker, ["retroguard/+/event"], username="caregiver-a", password="a-pw"
            ) as sub:
                assert not device.publish("retroguard/tm1/event", "genuine").is_failure
                assert sub.wait(lambda: any(m.payload == b"genuine" for m in sub.messages))
        finally:
            device.close()
        instance = RawClient(broker, "caregiver-a", "a-pw")
        try:
            assert not instance.publish("retroguard/tm1/cmd/ping", "{}").is_failure
            assert not instance.publish("retroguard/caregiver/status", "{}").is_failure
            assert instance.publish("retroguard/tm1/event", "forged").is_failure
        finally:
            instance.close()
    finally:
        broker.cleanup()
        shutil.rmtree(mosquitto_dir, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mosquitto_passwd") is None,
    reason="needs root (the files are the mosquitto user's) and mosquitto_passwd",
)
def test_the_installed_broker_lets_the_watch_in_to_read_what_it_shows_and_write_nothing(
    tmp_path: Path,
) -> None:
    """``install-pi.sh --broker`` makes the ``caregiver-watch`` account its ACL has a block for
    (before, it had no password until an operator gave it one by hand): the watch command the
    step prints, run as printed, logs in with the password file it names and shows a fall; the
    account reads nothing the watch does not show and publishes nothing."""
    etc = tmp_path / "etc"
    etc.mkdir()
    mosquitto_dir = Path(tempfile.mkdtemp(prefix="retroguard-etc-mosquitto-"))
    mosquitto_dir.chmod(0o755)  # the broker drops to its own user, which must reach the files
    port = free_port()
    config = etc / "config.toml"  # the monitor's, as install-pi.sh --broker writes its [mqtt]
    config.write_text(
        f'[device]\nid = "tm1"\n\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
        f'username = "tm1"\npassword_file = "{etc}/mqtt-password"\n'
    )
    broker = Mosquitto(
        port=port,
        config=f"persistence false\nlog_dest stderr\ninclude_dir {mosquitto_dir}/conf.d\n",
    )
    reporter: MqttReporter | None = None
    try:
        out = _install_broker(etc, mosquitto_dir, port)
        secret = etc / "caregiver-watch-mqtt-password"
        (printed,) = [line for line in out.splitlines() if "retroguard watch " in line]
        args = printed.split("retroguard watch ", 1)[1].split()
        login_args = ["--username", "caregiver-watch", "--password-file", str(secret)]
        assert args == ["--config", str(config), *login_args]
        password = secret.read_text().splitlines()[0]
        device_pw = (etc / "mqtt-password").read_text().splitlines()[0]
        broker.start()
        assert login(broker, "caregiver-watch", device_pw).is_failure  # its own password only
        watcher = RawClient(broker, "caregiver-watch", password)
        try:
            for topic in ("retroguard/tm1/cmd/ping", "retroguard/tm1/receipt",
                          "retroguard/caregiver/status", "retroguard/tm1/event"):  # fmt: skip
                assert watcher.publish(topic, "{}").is_failure, topic
        finally:
            watcher.close()
        with subscriber(
            broker, ["retroguard/#"], username="caregiver-watch", password=password
        ) as w:
            device = RawClient(broker, "tm1", device_pw)
            try:
                for kind in ("telemetry", "session", "progress", "walkers", "caregiver", "state"):
                    assert not device.publish(f"retroguard/tm1/{kind}", kind).is_failure, kind
                # one client's messages arrive in order: the state here means the others before
                # it would have been too
                assert w.wait(lambda: any(m.payload == b"state" for m in w.messages))
            finally:
                device.close()
        assert [m.payload for m in w.messages] == [b"state"]
        # the command as printed (the venv's retroguard: python -m tools.watch here)
        watch = subprocess.Popen(
            [sys.executable, "-m", "tools.watch", *args, "--count", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=INSTALLER.parent.parent,
            env=dict(os.environ, PYTHONPATH=str(INSTALLER.parent.parent)),
        )
        try:
            assert watch.stdout is not None
            assert watch.stdout.readline().startswith("watching ")  # logged in and subscribed
            link = config_for(broker, username="tm1", password=device_pw, discovery=False)
            reporter = MqttReporter(
                link, device_id="tm1", device_name="T1", database=tmp_path / "d.db"
            )
            reporter.start()
            reporter.sink.handle(fall("tm1"))
            shown, err = watch.communicate(timeout=WAIT)
        finally:
            watch.kill()
        assert watch.returncode == 0, err
        assert " Fall " in shown
    finally:
        if reporter is not None:
            reporter.close()
        broker.cleanup()
        shutil.rmtree(mosquitto_dir, ignore_errors=True)


def test_home_assistant_may_press_its_buttons_and_send_no_other_command(
    secured: Mosquitto,
) -> None:
    """The ``homeassistant`` account writes the commands of the buttons its discovery message
    announces and no other: a plan or a progression is a physio's, through the caregiver
    service. A button added to the discovery without its ACL line fails here."""
    topics = Topics("retroguard", "tm1")
    components = json.loads(discovery_payload(topics, "T1"))["cmps"].values()
    pressed = {c["cmd_t"] for c in components if "cmd_t" in c}
    allowed = {
        line.split()[-1].replace("+", "tm1")
        for line in ACL.split("user homeassistant", 1)[1].splitlines()
        if line.startswith("topic write retroguard/")
    }
    assert pressed == allowed
    ha = RawClient(secured, "homeassistant", "ha-pw")
    carer = RawClient(secured, "caregiver", "carer-pw")
    try:
        for name in COMMANDS:
            refused = ha.publish(topics.command(name), "{}").is_failure
            assert refused == (topics.command(name) not in pressed), name
            assert not carer.publish(topics.command(name), "{}").is_failure
        assert {CommandName.PLAN, CommandName.PROGRESSION} <= {
            CommandName(n) for n in COMMANDS if topics.command(n) not in pressed
        }
    finally:
        ha.close()
        carer.close()


def test_no_account_forges_a_device_under_its_own_name(secured: Mosquitto, tmp_path: Path) -> None:
    """The ACL's per-device patterns apply to every account, so the broker lets Home Assistant
    publish a fall on ``retroguard/homeassistant/event``; the caregiver service refuses that
    topic (no device may be named after an account) and pages for nothing."""
    config = caregiver_config(secured, tmp_path)
    config = dataclasses.replace(
        config, mqtt=dataclasses.replace(config.mqtt, username="caregiver", password="carer-pw")
    )
    with running_service(config, web=False) as service:
        forger = SimDevice(secured, "homeassistant", username="homeassistant", password="ha-pw")
        try:
            forger.fall()  # taken by the broker: its pattern gives the account this topic
            ingestor, store = service.ingestor, service.store
            assert ingestor.wait_for(
                lambda: ingestor.rejected >= 1 or store.device("homeassistant") is not None
            )
            assert store.device("homeassistant") is None
            assert store.events_for("homeassistant") == []
        finally:
            forger.close()


def test_a_broker_s_passwords_are_never_on_a_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """``retroguard demo`` runs its broker with an account each (tools.broker.Mosquitto): the
    passwords are hashed from a private file, never passed on a command line, which every
    local user can read (/proc/<pid>/cmdline), as scripts/install-pi.sh hashes them; and the
    accounts log in with them. Before, each was handed to ``mosquitto_passwd -b`` as an
    argument."""
    lines: list[list[str]] = []
    real_run, real_popen = subprocess.run, subprocess.Popen

    def run(args: Any, *rest: Any, **kwargs: Any) -> Any:
        lines.append([str(a) for a in args])
        return real_run(args, *rest, **kwargs)

    class Popen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            lines.append([str(a) for a in args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(subprocess, "Popen", Popen)
    users = {"tm1": SECRET, "caregiver": "carer-pw"}
    broker = Mosquitto(users=users, acl=ACL).start()
    try:
        assert any("mosquitto" in Path(line[0]).name for line in lines)  # the spy saw them
        for line in lines:
            for password in users.values():
                assert not any(password in arg for arg in line), line
        passwd = broker.workdir / "passwd"
        assert not any(p in passwd.read_text() for p in users.values())  # hashed
        for user, password in users.items():
            assert login(broker, user, password, client_id=user) == 0
        assert login(broker, "tm1", "carer-pw", client_id="tm1") != 0
    finally:
        broker.cleanup()
    # one the hashing would cut short at its ':' is refused, saying why
    refused = Mosquitto(users={"tm1": "a:b"})
    try:
        with pytest.raises(BrokerError, match="':'"):
            refused.start()
    finally:
        refused.cleanup()
