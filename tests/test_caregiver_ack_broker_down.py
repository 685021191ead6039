"""Acknowledging from the dashboard while the MQTT broker is down.

Closing the alert for the people is the service's own business (its database); telling the
monitor is delivery, and it waits for the broker. On a real Mosquitto, with the real
caregiver service (dashboard over HTTP, fake clock for the reminders) and the real MQTT
reporter of a monitor on a real SQLite database: the broker stops, the caregiver
acknowledges the fall through the web app and is told the truth (acknowledged, the treadmill
is told once the connection is back), the reminders stop at once; the broker comes back on
the same port and the monitor closes the incident once, as recorded (who, how), and its
confirmation reaches the caregiver's record. Nothing here touches a relay: an ack is
bookkeeping and can never start a belt (rule 2).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from caregiver.broker_link import Connected
from caregiver.config import EscalationConfig
from caregiver.service import CaregiverService
from caregiver.storage import StoredEvent
from tests.caregiver_support import (
    FakeClock,
    Http,
    Receiver,
    ack_fields,
    make_config,
    running_service,
)
from tests.mqtt_helpers import WAIT, ready_reporter
from tests.test_caregiver_service import _contacts
from tests.test_incident_ack_missed import (
    DEVICE,
    FIRST,
    a_fall,
    device_incident,
    stumble,
)
from tools.broker import Mosquitto, mosquitto_available
from tools.pgcluster import PostgresCluster

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")

TIMEOUT = 300.0
PAGE_JSON = {"accept": "application/json"}
WAITING_WORDS = "Acknowledged — the treadmill will be told when the connection is back."


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def confirmed(event: StoredEvent | None) -> bool:
    return event is not None and event.ack_confirmed


def closes(cg: CaregiverService) -> list[StoredEvent]:
    """The monitor's ``closed`` events of the incident, as the service stored them."""
    return [e for e in cg.store.incident_events(FIRST) if e.type == "closed"]


@pytest.mark.parametrize(
    ("how", "restart"),
    [("script", False), ("form", False), ("script", True)],
    ids=["page-script", "plain-form", "service-restarted-meanwhile"],
)
def test_an_ack_while_the_broker_is_down_closes_the_alert_now_and_the_monitor_once_it_is_back(
    tmp_path: Path,
    mosquitto: Mosquitto,
    caregiver_db: str,
    receiver: Receiver,
    how: str,
    restart: bool,
) -> None:
    """``restart``: the service stops and starts again on its database while the broker is
    still down (what paho held for the broker is gone with the process); the close still
    reaches the monitor, from what the database recorded."""
    (tmp_path / "cg").mkdir()
    clock = FakeClock()
    config = make_config(
        mosquitto,
        tmp_path / "cg",
        database=caregiver_db,
        contacts=_contacts(receiver),
        escalation=EscalationConfig(ack_timeout_s=TIMEOUT, resends=1, retry_s=10),
    )
    the_fall = a_fall(FIRST)
    page = f"/devices/{DEVICE}"
    with (
        ExitStack() as services,
        ready_reporter(mosquitto, tmp_path / "device.db", DEVICE, "Dad's treadmill") as reporter,
    ):
        cg = services.enter_context(running_service(config, background=False, clock=clock))
        reporter.sink.handle(stumble(FIRST))
        reporter.sink.handle(the_fall)
        assert cg.ingestor.wait_for(lambda: cg.store.event(the_fall.id) is not None, WAIT)
        cg.notifier.deliver_due()
        ann = Http(cg.port)
        assert ann.login() == 303
        _, _, body = ann.request("GET", page)
        shown = ack_fields(body, f"{page}/ack")
        assert shown["seen"] == the_fall.id

        mosquitto.stop()  # the broker goes away (both the service and the monitor lose it)
        assert cg.ingestor.link.wait_for(lambda s: not isinstance(s, Connected), WAIT)
        if how == "script":
            status, _, answer = ann.request("POST", f"{page}/ack", shown, headers=PAGE_JSON)
            assert status == 200, answer
            said = json.loads(answer)
            assert said["ok"] is True and said["acknowledged"] == [FIRST]
            assert said["device"] == "waiting"
            assert said["message"] == WAITING_WORDS
            assert said["location"] == f"{page}?ack=done&device=waiting&at={int(clock())}"
        else:
            status, headers, answer = ann.request("POST", f"{page}/ack", shown)
            assert status == 303, answer
            assert headers["location"] == f"{page}?ack=done&device=waiting&at={int(clock())}"
            _, _, noticed = ann.request("GET", headers["location"])
            assert re.search(
                'role="alert">At <time datetime="[^"]+" data-format="time">[0-9:]+\u00a0UTC'
                f"</time>: {re.escape(WAITING_WORDS)}</p>",
                noticed,
            )
        incident = cg.store.incident(FIRST)
        assert incident is not None and not incident.open
        assert (incident.closed_by, incident.closed_via) == ("ann", "dashboard")
        clock.advance(TIMEOUT)
        assert cg.alerting.tick() == 0  # no reminder, no escalation page
        _, _, card = ann.request("GET", page)
        assert "acknowledged by ann on the dashboard — not yet confirmed by the treadmill" in card
        if restart:
            services.close()  # the service stops; paho's copy of the ack goes with it
            cg = CaregiverService(config, clock=clock)  # ann's account is in the database
            services.callback(cg.stop)
            cg.start(background=False, port=0)  # no broker to connect to yet
            ann = Http(cg.port)
            assert ann.login() == 303

        mosquitto.start()  # the same port
        assert cg.ingestor.connected.wait(WAIT)
        assert cg.ingestor.wait_for(lambda: confirmed(cg.store.event(the_fall.id)), WAIT)
        assert cg.ingestor.wait_for(lambda: bool(closes(cg)), WAIT)
        on_device = device_incident(reporter, FIRST)
        assert not on_device.open
        assert (on_device.closed_by, on_device.closed_via) == ("ann", "dashboard")
        assert len(closes(cg)) == 1  # closed once on the monitor, however often it was told
        _, _, card = ann.request("GET", page)
        assert "acknowledged by ann" in card  # and no longer waiting for the treadmill
        assert "not yet confirmed by the treadmill" not in card


def test_with_two_instances_the_close_reaches_the_monitor_once_when_the_one_clicked_is_gone(
    tmp_path: Path, mosquitto: Mosquitto, postgres_cluster: PostgresCluster
) -> None:
    """Two instances on one PostgreSQL database (a shared MQTT group): the caregiver's click
    reaches instance a while the broker is down, and a stops before the broker is back (its
    held copy of the ack goes with it). b, which never saw the click, reads the monitor's
    retained ``incident`` (still open) and sends the close as a recorded it; the monitor
    closes the incident once, and b records its confirmation."""
    url = postgres_cluster.new_database()
    configs = []
    for name in ("a", "b"):
        config = make_config(mosquitto, tmp_path / name, database=url, client_id=f"care-{name}")
        (tmp_path / name).mkdir()
        configs.append(
            dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, shared_group="cg"))
        )
    the_fall = a_fall(FIRST)
    page = f"/devices/{DEVICE}"
    with (
        ExitStack() as a_stack,
        running_service(configs[1], web=False, background=False) as b,
        ready_reporter(mosquitto, tmp_path / "device.db", DEVICE, "Dad's treadmill") as reporter,
    ):
        a = a_stack.enter_context(running_service(configs[0], background=False))
        reporter.sink.handle(stumble(FIRST))
        reporter.sink.handle(the_fall)
        assert a.ingestor.wait_for(lambda: a.store.event(the_fall.id) is not None, WAIT)
        ann = Http(a.port)
        assert ann.login() == 303
        _, _, body = ann.request("GET", page)
        shown = ack_fields(body, f"{page}/ack")

        mosquitto.stop()
        assert a.ingestor.link.wait_for(lambda s: not isinstance(s, Connected), WAIT)
        status, _, answer = ann.request("POST", f"{page}/ack", shown, headers=PAGE_JSON)
        assert status == 200, answer
        assert json.loads(answer)["device"] == "waiting"
        a_stack.close()  # the instance that took the click is gone before the broker is back

        mosquitto.start()
        assert b.ingestor.connected.wait(WAIT)
        assert b.ingestor.wait_for(lambda: confirmed(b.store.event(the_fall.id)), WAIT)
        assert b.ingestor.wait_for(lambda: bool(closes(b)), WAIT)
        on_device = device_incident(reporter, FIRST)
        assert not on_device.open
        assert (on_device.closed_by, on_device.closed_via) == ("ann", "dashboard")
        assert len(closes(b)) == 1
