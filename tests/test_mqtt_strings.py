"""The names the configs check (:func:`core.protocol.topics.text_problem`: a client id, a user
name, a topic prefix) are the ones a real Mosquitto takes: a name the check passes and the
broker refuses would leave the service or the monitor refused at every connect, for ever,
with nothing but "unreachable" or a dropped connection in its log.

Mosquitto reads each MQTT string as UTF-8 without control characters and without Unicode
noncharacters (U+FDD0-U+FDEF, and each plane's last two code points, U+FFFE and U+FFFF
first), as MQTT 5 (1.5.4) says a string should not hold them; it drops the client whose
CONNECT has one. The check took the noncharacters: a ``username = "care\\uFFFF"`` passed
``retroguard caregiver config --check``, then the service never connected.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from core.protocol.topics import text_problem
from tools.broker import Mosquitto

WAIT = 10.0
"""A bound against a hang, not a timing: the broker answers a CONNECT at once."""


def _broker_takes(broker: Mosquitto, name: str) -> bool:
    """Whether ``broker`` accepts a client whose id and user name are ``name`` (its CONNACK
    says success); False when it drops the connection or refuses it."""
    answered = threading.Event()
    accepted: list[bool] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(name, "pw")

    def connected(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
        accepted.append(not getattr(reason, "is_failure", True))
        answered.set()

    def dropped(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
        accepted.append(False)
        answered.set()

    client.on_connect = connected
    client.on_disconnect = dropped
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert answered.wait(WAIT), f"the broker neither took nor dropped {name!r}"
    finally:
        client.disconnect()
        client.loop_stop()
    return accepted[0]


@pytest.mark.parametrize(
    "name",
    [
        "caregiver-b",
        "pflege-\u00e4",  # a letter beyond ASCII: taken
        "care\u00a0giver",  # a no-break space: taken
        "care\u0007",  # a control character
        "care\u0085",  # a C1 control character
        "care\ufdd0",  # the first of the 32 noncharacters in the middle of the BMP
        "care\ufdef",
        "care\ufffe",
        "care\uffff",
        "care\U0001fffe",  # a supplementary plane's last two
        "care\U0010ffff",
    ],
)
def test_the_check_refuses_what_the_broker_refuses_and_takes_what_it_takes(
    mosquitto: Mosquitto, name: str
) -> None:
    assert (text_problem(name) is None) == _broker_takes(mosquitto, name), text_problem(name)
