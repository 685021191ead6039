"""The caregiver's fault paths: decisions that hand mutation (mut34) found no test noticing.

Three pieces written in session 33 that say what goes wrong rather than page for falls, so
that a fault is never silent (docs/safety.md): :class:`caregiver.storage.SideFaults` (the
side tables the service goes on without, kept per part and table: docs/caregiver.md, "Parts
of the database the service goes on without"), :class:`caregiver.refused_publishes.
RefusedPublishes` (a broker's PUBACK refusal of the health or its discovery, said once a
connection and topic) and the name rules of :mod:`core.protocol.ids` and
:func:`core.protocol.topics.topic_level_problem` (the latter's tests are in
tests/test_protocol.py, beside the other id tests). ``SideFaults`` is pure bookkeeping, so it
is driven with a fixed clock; ``RefusedPublishes`` with a real paho client on a real
Mosquitto whose ACL refuses one topic, the test's thread reading the socket so that when a
verdict arrives is the test's choice, not a race.

Survivors left alone, each equivalent (no input tells it from the original) unless said:

* side_faults: the unlocked ``not self._faults`` early return of ``works`` dropped (the locked
  look finds nothing to clear); ``use not in kept.uses`` dropped from its skip (removing a use
  not there leaves the same set, kept as it was); the part said by its first table kept
  (``kept[0]``) instead of the oldest by time (``min``): a table is kept at its first failure
  and dropped when it works, so the dict's order is the order of the times taken, the same
  table, unless the wall clock steps back between two failures (then the first to fail is
  said, with its own time: no less true); the progression's part without
  ``walker_prescribed_weeks``, the commands' without ``self_tests`` (a part's tables are read
  only for a failure or a look naming none, and every progress, stage and reply message names
  its own: ``caregiver.ingest._side_tables``; a test comparing the tables kept with
  ``Part.tables`` reads the mutated constant too).
* refused_publishes: ``_match`` dropped from ``connected`` (a verdict that comes while it
  holds the lock is for a message whose id it has just forgotten, or not one of these:
  dropped whenever it is matched); the inner ``while`` for an ``if`` (the outer loop takes
  the lock again); ``awaiting`` without the verdicts in its count, or without its ``_match``
  (only the tests call it, in a loop: a queued verdict's message is still counted in
  ``_sent``, and one left queued is matched at the next call).
* refused_publishes, *survives, not equivalent*: the ``_sent.clear()`` in ``connected``
  dropped. paho keeps the session and sends a message whose PUBACK was lost again with its
  id, so its verdict still comes (the mutant says the refusal at that resend, the original at
  the fresh health message sent on subscribing: one line either way); one whose verdict never
  comes stays in ``_sent``, seen only by ``awaiting``. The outer ``while`` of ``_match`` for
  an ``if``: a verdict heard between the inner loop's last look and the release would wait for
  the next message instead of being said at once; no test can put paho's thread in that gap
  of a few bytecodes without a hook in the code.
* ids: ``check_device_id``'s second test on ``is_topic_name`` instead of ``is_device_id``
  (the account names were refused just above it).

The device id's pattern (its length, its class, its final newline) was guarded only by the
tests that compare it with the documented schemas' (a change made to both would have gone
unnoticed); tests/test_protocol.py now says what it takes.

Killed only by a hang: ``_match`` taking the lock waiting (``acquire()``): paho's thread
answering inside ``publish`` waits for the lock its own caller holds, for ever (the suite's
pytest-timeout ends it). In production it is the deadlock the module's docstring names: paho's
thread holds its messages' lock while it calls ``on_publish``, and the publisher holding this
lock waits for that one in paho's ``publish``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from caregiver import feed
from caregiver.refused_publishes import RefusedPublishes
from caregiver.storage import Part, SideFaults, Store, Table, Use
from tests.caregiver_db import execute
from tests.mqtt_helpers import WAIT
from tools.broker import Mosquitto, mosquitto_available

REFUSED = "rg/health/refused"
"""A topic the broker's ACL lets the account read but not write: its PUBACK says 0x87."""
ACCEPTED = "rg/health/accepted"
BROKER_ACL = f"user carer\ntopic write {ACCEPTED}\ntopic read {REFUSED}\n"


@pytest.fixture(scope="module")
def acl_broker() -> Iterator[Mosquitto]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    started = Mosquitto(users={"carer": "carer-pw"}, acl=BROKER_ACL).start()
    try:
        yield started
    finally:
        started.cleanup()


class _Verdicts(mqtt.Client):
    """A real MQTT 5 paho client with no network thread: the test's thread reads the socket
    (:meth:`answer`), so when the broker's verdict on a message reaches
    :meth:`RefusedPublishes.published` is the test's choice, not a race. With
    ``answer_in_publish`` its ``publish`` returns only once the verdict on its message has
    been handed over: what paho's thread may do in production, answering before
    :meth:`RefusedPublishes.publish` has the message's id in hand."""

    def __init__(self, refusals: RefusedPublishes, *, answer_in_publish: bool) -> None:
        super().__init__(
            CallbackAPIVersion.VERSION2, client_id="carer", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.answered: set[int] = set()
        self.last_mid = 0
        self._answer_in_publish = answer_in_publish
        self._refusals = refusals
        self.on_publish = self._heard

    def _heard(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties,
    ) -> None:
        self._refusals.published(mid, reason_code)
        self.answered.add(mid)

    def answer(self, mid: int) -> None:
        """Read the socket until the broker's verdict on ``mid`` has been handed over."""
        while mid not in self.answered:
            assert self.loop(timeout=WAIT) == MQTTErrorCode.MQTT_ERR_SUCCESS

    def publish(
        self,
        topic: str,
        payload: mqtt.PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        info = super().publish(topic, payload, qos, retain, properties)
        self.last_mid = info.mid
        if self._answer_in_publish:
            self.answer(info.mid)
        return info


def _connected(broker: Mosquitto, client: _Verdicts) -> _Verdicts:
    client.username_pw_set("carer", "carer-pw")
    client.connect(broker.host, broker.port)
    while not client.is_connected():
        assert client.loop(timeout=WAIT) == MQTTErrorCode.MQTT_ERR_SUCCESS
    return client


def _refusals_said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "caregiver.refused_publishes" and r.levelno == logging.WARNING
    ]


def test_a_refusal_heard_before_publish_returns_is_said_as_it_returns(
    acl_broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """paho's thread may hand over the broker's verdict before ``publish`` has the message's
    id: the verdict waits in the queue and is matched once the id is noted, as ``publish``
    returns (mutants: the id noted after paho's ``publish`` outside the lock, the verdict
    matched before it and lost; no match as ``publish`` lets go, the refusal unsaid until
    some later message; the lock taken waiting in :meth:`RefusedPublishes._match`, paho's
    thread stuck behind the publisher that waits for it). Once a topic a connection: the
    accepted one is not said, the refused one not twice, and again after a new connection."""
    caplog.set_level(logging.WARNING, logger="caregiver.refused_publishes")
    refusals = RefusedPublishes()
    client = _connected(acl_broker, _Verdicts(refusals, answer_in_publish=True))
    try:
        refusals.connected()
        refusals.publish(client, REFUSED, "degraded", unsaid="staff see no health")
        assert _refusals_said(caplog) == [
            f"the broker refused the message on {REFUSED} (check the broker's ACL): "
            "staff see no health"
        ]
        refusals.publish(client, ACCEPTED, "ok", unsaid="staff see no health")
        refusals.publish(client, REFUSED, "ok", unsaid="staff see no health")
        assert len(_refusals_said(caplog)) == 1
        refusals.connected()
        refusals.publish(client, REFUSED, "ok", unsaid="staff see no health")
        assert len(_refusals_said(caplog)) == 2
        assert refusals.awaiting() == 0
    finally:
        client.disconnect()


def test_a_refusal_heard_after_publish_returned_is_said_as_it_is_heard(
    acl_broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The usual order: the verdict comes on paho's thread once ``publish`` has returned, and
    is said there and then, not at the next message (mutant: no match in ``published``).
    A verdict on another message of the client (the ingestor's, not one of these) is let go
    without a word and without an error on paho's thread (mutant: ``sent is not None``
    dropped)."""
    caplog.set_level(logging.WARNING, logger="caregiver.refused_publishes")
    refusals = RefusedPublishes()
    client = _connected(acl_broker, _Verdicts(refusals, answer_in_publish=False))
    try:
        refusals.connected()
        stray = client.publish(REFUSED, "not one of these", qos=1).mid
        client.answer(stray)
        assert _refusals_said(caplog) == []
        refusals.publish(client, REFUSED, "degraded", unsaid="staff see no health")
        assert _refusals_said(caplog) == []  # no verdict yet
        client.answer(client.last_mid)
        assert len(_refusals_said(caplog)) == 1
    finally:
        client.disconnect()


def test_a_fault_with_no_words_leaves_no_line_break_in_the_banner() -> None:
    """A database error whose text is only blank lines is said with no words, not as its
    text: the banner and ``/healthz`` say one line (mutant: the whole text kept when no line
    has words)."""
    faults = SideFaults(clock=lambda: 1_700_000_040.0)
    faults.failed(Part.TELEMETRY, sqlite3.OperationalError("\n  \n"), Use.WRITE, ())
    (fault,) = faults.now()
    assert fault.fault == ""
    banner = feed.side_message(faults.now(), lambda at, _f: feed.Moment(str(at), str(at)))
    assert banner.detail == "the treadmills' figures cannot be stored ()"


def test_the_banner_is_told_when_its_words_change_though_its_time_does_not() -> None:
    """Two tables of the progression refused at the same moment (one clock reading): the part
    is said in the first's words; a stage written clears it, and the banner is told the
    weeks' count's words, still since that moment (mutant: told only when the time said
    changes, the banner left naming the cleared table's fault)."""
    faults = SideFaults(clock=lambda: 1_700_000_040.0)
    told: list[str] = []
    faults.on_change = lambda: told.extend(f.fault for f in faults.now())
    faults.failed(Part.PROGRESS, "stages refused", Use.WRITE, (Table.WALKER_STAGES,))
    faults.failed(Part.PROGRESS, "counts refused", Use.WRITE, (Table.PRESCRIBED_WEEKS,))
    assert told == ["stages refused"]
    faults.works(Part.PROGRESS, Use.WRITE, (Table.WALKER_STAGES,))
    assert told == ["stages refused", "counts refused"]
    assert [(f.fault, f.since) for f in faults.now()] == [("counts refused", 1_700_000_040.0)]


def test_a_plan_line_unread_stays_said_while_the_walkers_table_is_gone(tmp_path: Path) -> None:
    """A card's plan line names the walker from the roster (``device_walkers``): a read of
    it that failed is kept by each table the line reads, so the housekeeping look reads that
    one too and keeps the part said while it is gone, and clears it once it is back (mutant:
    the plans part without ``device_walkers``, its sessions and stages read fine and the card
    without its line said to work)."""
    database = str(tmp_path / "caregiver.db")
    store = Store(database)
    try:
        execute(database, "ALTER TABLE device_walkers RENAME TO device_walkers_gone")
        store.side_faults.failed(
            Part.PLANS, "no such table: device_walkers", Use.READ, Part.PLANS.tables
        )
        store.probe_side_faults()
        assert [f.part for f in store.side_faults.now()] == [Part.PLANS]
        execute(database, "ALTER TABLE device_walkers_gone RENAME TO device_walkers")
        store.probe_side_faults()
        assert store.side_faults.now() == ()
    finally:
        store.close()
