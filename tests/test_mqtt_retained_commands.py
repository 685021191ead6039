"""A retained command is stale: refused, never run again at every (re)connect.

A command published with the retain flag (``mosquitto_pub -r``, a Home Assistant button or
an automation set to retain) stays on the broker, and the broker hands it to the device
each time it subscribes: at every start and after every network drop. Before, the device
ran it each time. A retained ``ack`` of ``latest`` closed whichever incident was open when
the device next reconnected — a fall during a Wi-Fi drop was closed, "by home-assistant",
before anyone had seen it, and the caregiver service stopped escalating it; a retained
``plan`` was assigned again after every reconnect, over the physio's newer one. Commands
are one-off (docs/mqtt.md): a retained one is now answered with an error saying how to
clear it, and changes nothing. Real Mosquitto, real SQLite.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.plan_presets import PRESETS
from core.protocol.commands import AssignPlan, encode_command
from firmware.mqtt import MqttReporter
from firmware.storage.plans import current_plan
from tests.mqtt_helpers import WAIT, config_for, fall, subscriber, validate
from tools.broker import Mosquitto

STALE_ACK = {"id": "stale-ack", "event_id": "latest", "by": "home-assistant"}


def test_a_retained_ack_does_not_close_the_incident_open_at_a_reconnect(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with subscriber(mosquitto, ["retroguard/tm1/reply"]) as sub:
        # yesterday's button press, retained by mistake
        info = sub.client.publish(
            "retroguard/tm1/cmd/ack", json.dumps(STALE_ACK), qos=1, retain=True
        )
        info.wait_for_publish(WAIT)
        rep = MqttReporter(
            config_for(mosquitto), device_id="tm1", device_name="T1", database=tmp_path / "c.db"
        )
        try:
            trip = fall("tm1")
            rep.sink.handle(trip)  # today's fall, while the device was off the network
            rep.start()
            assert rep.wait_until(lambda s: s.ready, WAIT)
            # in order on the one connection: the retained command came before this one
            sub.client.publish("retroguard/tm1/cmd/ping", b'{"id":"after"}', qos=1)
            assert sub.wait(lambda: any(b'"after"' in m.payload for m in sub.messages))
            replies = [validate("reply", m.payload) for m in sub.messages]
            assert rep.outbox.acknowledged_by(trip.id) is None  # still open: still alerting
        finally:
            rep.close()
    stale = [r for r in replies if r["command"] == "ack"]
    assert len(stale) == 1 and not stale[0]["ok"]
    assert "retained" in stale[0]["error"] and "-r -n" in stale[0]["error"]
    assert replies[-1]["ok"] and replies[-1]["request_id"] == "after"


def test_a_retained_plan_is_not_assigned_at_a_connect(mosquitto: Mosquitto, tmp_path: Path) -> None:
    plan = encode_command(AssignPlan(PRESETS["alternate-2-2"]), "stale-plan")
    with subscriber(mosquitto, ["retroguard/tm1/reply"]) as sub:
        sub.client.publish("retroguard/tm1/cmd/plan", plan, qos=1, retain=True).wait_for_publish(
            WAIT
        )
        rep = MqttReporter(
            config_for(mosquitto), device_id="tm1", device_name="T1", database=tmp_path / "c.db"
        )
        try:
            rep.start()
            assert rep.wait_until(lambda s: s.ready, WAIT)
            sub.client.publish("retroguard/tm1/cmd/ping", b'{"id":"after"}', qos=1)
            assert sub.wait(lambda: any(b'"after"' in m.payload for m in sub.messages))
            assert rep.outbox.database.read(current_plan) is None
        finally:
            rep.close()
