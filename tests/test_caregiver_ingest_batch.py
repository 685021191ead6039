"""Group commit: what arrives together is stored in one commit, all or nothing.

The ingest thread stores the messages that arrived while it worked as one batch
(:meth:`caregiver.ingest.Ingestor.handle_batch`). A bad message in a batch is
rejected alone; a database that refuses the batch keeps none of it, announces
none of it, and the same messages are stored whole when it works again. Real
SQLite file; no broker needed (the batch is what the MQTT thread hands over).
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from caregiver.changes import Change, EventStored
from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from caregiver.storage import NewEvent, Store
from tests.mqtt_helpers import WAIT, subscriber
from tools.broker import Mosquitto

DEVICE = "treadmill-1"


def _service(tmp_path: Path, changes: list[Change], database: str = "") -> CaregiverService:
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=database or str(tmp_path / "c.db")),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
    )
    service = CaregiverService(config)
    service.ingestor.on_change = changes.append
    return service


def _event(
    seq: int, kind: str = "stumble", reason: str = "benchmark", device: str = DEVICE
) -> tuple[str, bytes]:
    data = {
        "schema": 1,
        "id": uuid.uuid4().hex,
        "seq": seq,
        "type": kind,
        "device_id": device,
        "severity": "warning",
        "state": "TRIPPED",
        "reason": reason,
        "wall_time": "2026-12-01T21:00:00.000+00:00",
        "t_monotonic": float(seq),
        "figures": {},
    }
    return f"retroguard/{device}/event", json.dumps(data).encode()


def _id(message: tuple[str, bytes]) -> str:
    return str(json.loads(message[1])["id"])


def test_a_bad_message_in_a_batch_is_rejected_alone(tmp_path: Path) -> None:
    changes: list[Change] = []
    service = _service(tmp_path, changes)
    try:
        first, second = _event(1), _event(2)
        broken = (f"retroguard/{DEVICE}/event", b'{"schema": 1, "id": ')
        assert service.ingestor.handle_batch([first, broken, second])
        stored = {e.id for e in service.store.events_for(DEVICE)}
        assert stored == {_id(first), _id(second)}
        assert service.ingestor.rejected == 1 and service.ingestor.events_stored == 2
        assert service.ingestor.messages == 3
        announced = [c.event_id for c in changes if isinstance(c, EventStored)]
        assert announced == [_id(first), _id(second)]
    finally:
        service.store.close()


def test_a_batch_the_database_refuses_keeps_and_announces_nothing(tmp_path: Path) -> None:
    changes: list[Change] = []
    service = _service(tmp_path, changes)
    store = service.store
    try:
        (pages,) = store._db.execute("PRAGMA page_count").fetchone()
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # what a full disk does to it
        fits = _event(1)
        assert service.ingestor.handle_batch([fits])  # a small event still fits
        changes.clear()
        small, big = _event(2), _event(3, reason="x" * 200_000)  # the big one cannot fit
        assert not service.ingestor.handle_batch([small, big])
        assert service.ingestor.storage_fault is not None
        assert [e.id for e in store.events_for(DEVICE)] == [_id(fits)]  # small is not kept
        assert changes == [] and service.ingestor.events_stored == 1
        assert service.ingestor.messages == 1

        store._db.execute("PRAGMA max_page_count = 1073741823")  # space again
        assert service.ingestor.handle_batch([small, big])
        assert service.ingestor.storage_fault is None
        assert {e.id for e in store.events_for(DEVICE)} == {_id(fits), _id(small), _id(big)}
        assert service.ingestor.events_stored == 3
        assert [c.event_id for c in changes if isinstance(c, EventStored)] == [
            _id(small),
            _id(big),
        ]
    finally:
        store.close()


def test_a_batch_stores_each_event_once_however_often_it_comes(
    tmp_path: Path, caregiver_db: str
) -> None:
    """A batch inserts its events up front: one already stored (a redelivery) and one twice in
    the batch are each stored once, raise one incident each, and are receipted every time;
    the device's latest event is the batch's newest."""
    changes: list[Change] = []
    service = _service(tmp_path, changes, caregiver_db)
    try:
        earlier, new = _event(1, "fall"), _event(2, "fall")
        assert service.ingestor.handle_batch([earlier])
        changes.clear()
        assert service.ingestor.handle_batch([new, earlier, new])
        ingestor = service.ingestor
        assert (ingestor.events_stored, ingestor.duplicates, ingestor.messages) == (2, 2, 4)
        assert sorted(e.id for e in service.store.events_for(DEVICE)) == sorted(
            [_id(earlier), _id(new)]
        )
        assert [c.event_id for c in changes if isinstance(c, EventStored)] == [_id(new)]
        assert sorted(i.id for i in service.store.incidents_for(DEVICE)) == sorted(
            [_id(earlier), _id(new)]
        )
        # oldest first (by id), whether its id was reserved by the batch or given on insert
        assert [a.event_id for a in service.store.alerts(DEVICE)] == [_id(earlier), _id(new)]
        device = service.store.device(DEVICE)
        assert device is not None and device["last_event"] is not None
        assert device["last_event"]["id"] == _id(new)
    finally:
        service.store.close()


def test_an_incident_opened_and_closed_in_one_batch_ends_closed(
    tmp_path: Path, caregiver_db: str
) -> None:
    """A fall and the walker's "I'm OK" for it arrive in one batch: the incident the batch
    found missing is opened, its alert (its id reserved by the batch on PostgreSQL) pages,
    and the OK closes both, as when they come one by one."""
    changes: list[Change] = []
    service = _service(tmp_path, changes, caregiver_db)
    incident = uuid.uuid4().hex

    def message(kind: str, severity: str, **extra: object) -> tuple[str, bytes]:
        data = {
            "schema": 1, "id": uuid.uuid4().hex, "seq": 1, "type": kind, "device_id": DEVICE,
            "severity": severity, "state": "TRIPPED", "reason": kind,
            "wall_time": "2026-12-01T21:00:00.000+00:00", "t_monotonic": 1.0, "figures": {},
            "incident": incident, **extra,
        }  # fmt: skip
        return f"retroguard/{DEVICE}/event", json.dumps(data).encode()

    try:
        fall = message("fall", "critical")
        ok = message("ok", "info", by="walker")
        assert service.ingestor.handle_batch([fall, ok])
        closed = service.store.incident(incident)
        assert closed is not None and closed.closed_by_walker
        [alert] = service.store.alerts(DEVICE)
        assert (alert.event_id, alert.status) == (_id(fall), "resolved")
    finally:
        service.store.close()


def _of_incident(
    incident: str, seq: int, kind: str, severity: str, **extra: object
) -> tuple[str, bytes]:
    data = {
        "schema": 1, "id": uuid.uuid4().hex, "seq": seq, "type": kind, "device_id": DEVICE,
        "severity": severity, "state": "TRIPPED", "reason": kind,
        "wall_time": "2026-12-01T21:00:00.000+00:00", "t_monotonic": float(seq), "figures": {},
        "incident": incident, **extra,
    }  # fmt: skip
    return f"retroguard/{DEVICE}/event", json.dumps(data).encode()


@pytest.mark.parametrize("batched", [False, True], ids=["one by one", "in one batch"])
@pytest.mark.parametrize("closing", ["ok", "closed", "reset"])
def test_a_call_for_help_after_the_walker_s_ok_is_not_taken_as_answered(
    tmp_path: Path, caregiver_db: str, batched: bool, closing: str
) -> None:
    """A fall, the walker's I'm OK (or a close relayed by the device, or a re-arm), a fault
    that reopens the incident and a call for help, in the monitor's order: the close answered
    the fall, not the help the monitor sent after it, so the help is what a dashboard that
    missed it alarms for — also when all four come in one batch, which stores them all before
    it handles any (before: the close was taken to answer the newest critical event stored,
    the help, and /api/alarms named nothing)."""
    changes: list[Change] = []
    service = _service(tmp_path, changes, caregiver_db)
    incident = uuid.uuid4().hex
    try:
        messages = [
            _of_incident(incident, 1, "fall", "critical"),
            _of_incident(incident, 2, closing, "info", by="walker", via="home-assistant"),
            _of_incident(incident, 3, "fault", "warning"),
            _of_incident(incident, 4, "help", "critical"),
        ]
        if batched:
            assert service.ingestor.handle_batch(messages)
        else:
            for message in messages:
                assert service.ingestor.handle(*message)
        reopened = service.store.incident(incident)
        assert reopened is not None and reopened.open
        assert [(i.id, event) for i, event in service.store.open_critical(None, 50)] == [
            (incident, _id(messages[3]))
        ]
        # a caregiver's answer here is to all of it: nothing is left to alarm for
        with service.store.transaction() as tx:
            assert tx.close_incident(incident, "ann", "dashboard", 9.0)
            tx.reopen_incident(incident, "fall", 10.0)
        assert service.store.open_critical(None, 50) == []
    finally:
        service.store.close()


def test_a_message_no_database_can_store_is_rejected_alone(
    tmp_path: Path, caregiver_db: str
) -> None:
    """Text holding U+0000: PostgreSQL refuses it, and as a database failure it held its batch
    — another device's fall included — and every batch after it. Refused as bad input, on
    both engines alike; a backslash and "u0000" typed as text is fine."""
    changes: list[Change] = []
    service = _service(tmp_path, changes, caregiver_db)
    try:
        nul = _event(1, "fall", reason="impact\u0000")
        fall, typed = _event(2, "fall"), _event(3, "stumble", reason="a \\u0000 typed")
        assert b"\\u0000" in nul[1] and b"\\\\u0000" in typed[1]
        assert service.ingestor.handle_batch([nul, fall, typed])
        stored = {e.id for e in service.store.events_for(DEVICE)}
        assert stored == {_id(fall), _id(typed)}
        assert service.ingestor.rejected == 1 and service.ingestor.storage_fault is None
    finally:
        service.store.close()


def test_a_bug_in_a_batch_holds_it_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything a batch raises (not only a database fault) holds it for the broker and shows
    as a storage fault; before, it ended the ingest thread and the service looked up."""
    changes: list[Change] = []
    service = _service(tmp_path, changes)
    try:
        original = service.store.batch

        def broken(*args: object, **kwargs: object) -> object:
            raise KeyError("a bug")

        monkeypatch.setattr(service.store, "batch", broken)
        fall = _event(1, "fall")
        assert not service.ingestor.handle_batch([fall])
        assert service.ingestor.storage_fault == "ingest failed: KeyError: 'a bug'"
        assert service.store.events_for(DEVICE) == [] and changes == []
        monkeypatch.setattr(service.store, "batch", original)
        assert service.ingestor.handle_batch([fall])  # handed over again: stored
        assert [e.id for e in service.store.events_for(DEVICE)] == [_id(fall)]
    finally:
        service.store.close()


def test_a_batch_receipts_each_device_once_naming_all_its_events(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """After its commit (and the sync that puts it on disk), a batch publishes one receipt
    per device naming every event of that device it stored (one QoS 1 publish per event cost
    the service about what storing the event did); a device's event that came twice in the
    batch is named once. Batches committed before one sync share its receipts (the second
    batch here may come in the first's receipt, or after it, never before)."""
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=str(tmp_path / "c.db")),
        mqtt=CaregiverMqttConfig(
            host=mosquitto.host, port=mosquitto.port, client_id="receipts", session_expiry_s=0
        ),
    )
    service = CaregiverService(config)
    other = "treadmill-2"
    try:
        with subscriber(mosquitto, ["retroguard/+/receipt"]) as sub:
            service.ingestor.start()
            assert service.ingestor.connected.wait(WAIT)
            a1, b1, a2 = _event(1, "fall"), _event(1, "fall", device=other), _event(2)
            assert service.ingestor.handle_batch([a1, b1, a2, a1])
            last = _event(3)  # its receipt comes after the batch's (one connection, in order)
            assert service.ingestor.handle_batch([last])
            # Wait for both devices' last receipts: when the batches share one sync, the other
            # device's receipt is published after the one that names `last`.
            assert sub.wait(
                lambda: all(
                    any(event_id in m.payload.decode() for m in sub.messages)
                    for event_id in (_id(last), _id(b1))
                )
            )
            receipts = [(m.topic, json.loads(m.payload)["ids"]) for m in sub.on("/receipt")]
        # The batches committed without a sync (their receipts waited for one); the writing
        # connection is back to syncing each commit for the service's other changes.
        durable = service.ingestor._durable_receipts
        assert durable is not None and durable.syncs >= 1
        assert service.store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert receipts in (
            [
                (f"retroguard/{DEVICE}/receipt", [_id(a1), _id(a2)]),
                (f"retroguard/{other}/receipt", [_id(b1)]),
                (f"retroguard/{DEVICE}/receipt", [_id(last)]),
            ],
            [
                (f"retroguard/{DEVICE}/receipt", [_id(a1), _id(a2), _id(last)]),
                (f"retroguard/{other}/receipt", [_id(b1)]),
            ],
        )
    finally:
        service.ingestor.stop()
        service.store.close()


def test_a_batch_wakes_the_notifier_once_after_its_commit(tmp_path: Path) -> None:
    """The notifier reads every due notification when woken: a batch of falls wakes it once,
    after the commit (with its rows there to read), not once per fall."""
    changes: list[Change] = []
    service = _service(tmp_path, changes)
    alerts_seen: list[int] = []

    def wake() -> None:
        alerts_seen.append(len(service.store.alerts(DEVICE)))

    service.alerting.wake_notifier = wake
    try:
        falls = [_event(n, "fall") for n in range(1, 4)]
        assert service.ingestor.handle_batch(falls)
        assert alerts_seen == [3]
    finally:
        service.store.close()


def _latest(store: Store) -> str:
    """The id of the device's latest event, as its card shows it."""
    device = store.device(DEVICE)
    assert device is not None and device["last_event"] is not None
    return str(device["last_event"]["id"])


def test_the_device_s_latest_event_is_the_monitor_s_newest_not_the_last_stored(
    tmp_path: Path, caregiver_db: str
) -> None:
    """A monitor resends an older event (its outbox, after a reconnect) behind a newer one: in
    the same batch, in a later batch or stored alone, the device's latest event stays the
    newest by the monitor's own order (its sequence number), not the one stored last, nor
    the one its clock calls the latest: wall time is for people to read (before: an older
    event stamped later — a clock stepped back between the two — became the latest)."""
    changes: list[Change] = []
    service = _service(tmp_path, changes, caregiver_db)
    store, ingestor = service.store, service.ingestor

    def stamped(seq: int, wall_time: str) -> tuple[str, bytes]:
        topic, payload = _event(seq)
        return topic, json.dumps({**json.loads(payload), "wall_time": wall_time}).encode()

    try:
        newer, older = _event(5), _event(3)
        assert ingestor.handle_batch([newer, older])
        assert _latest(store) == _id(newer)
        assert ingestor.handle_batch([_event(4), _event(2)])  # a later batch of older ones
        assert _latest(store) == _id(newer)
        assert ingestor.handle(*_event(2))  # one stored alone (the held messages' retry)
        assert _latest(store) == _id(newer)
        newest = _event(6)
        assert ingestor.handle_batch([_event(3), newest, _event(4)])
        assert _latest(store) == _id(newest)
        # the monitor's clock was ahead and NTP stepped it back between its 4th and 7th
        # events: the 7th is stamped earlier, and is the newest; the 4th, resent, is not
        seventh = stamped(7, "2026-12-01T20:00:00.000+00:00")
        assert ingestor.handle(*seventh)
        assert _latest(store) == _id(seventh)
        ahead = stamped(4, "2026-12-01T23:00:00.000+00:00")
        assert ingestor.handle(*ahead)
        assert _latest(store) == _id(seventh)
        assert ingestor.handle_batch([stamped(5, "2026-12-01T23:00:01.000+00:00")])
        assert _latest(store) == _id(seventh)

        # a monitor whose event database started afresh (a damaged one moved aside): its
        # sequence starts again at 1, and its events are the newest from there on (until the
        # first of them has come, the others look like older ones resent)
        first, second, third = _event(1), _event(2), _event(3)
        assert ingestor.handle_batch([second, first])  # the first one resent behind the second
        assert _latest(store) == _id(first)
        assert ingestor.handle_batch([third, _event(2)])
        assert _latest(store) == _id(third)
        # and again: one event numbered 1 is enough, whatever else is stored
        again = _event(1)
        assert ingestor.handle(*again)
        assert _latest(store) == _id(again)
        assert ingestor.events_stored == 16
    finally:
        service.store.close()


def _routine(seq: int) -> tuple[str, bytes]:
    topic, payload = _event(seq)
    return topic, json.dumps({**json.loads(payload), "type": "start", "severity": "info"}).encode()


@pytest.mark.parametrize("batched", [False, True], ids=["one by one", "in one batch"])
def test_a_sequence_started_again_is_known_with_the_old_one_s_first_event_gone(
    tmp_path: Path, caregiver_db: str, batched: bool
) -> None:
    """The old sequence's event 1 is not stored — retention pruned its routine events, as
    here (or the caregiver's database is younger than the monitor's) — and the monitor's event
    database starts afresh: its new event 1 starts a sequence again all the same, and the
    device's latest event follows the new sequence (before: a sequence started again was
    known only by a second stored event numbered 1, and the latest stayed on the old
    sequence's until the new one outnumbered it). The price, an event 1 resent late whose
    first copy never came, is the latest until the device's next event."""
    changes: list[Change] = []
    service = _service(tmp_path, changes, caregiver_db)
    store, ingestor = service.store, service.ingestor

    try:
        old = [_routine(seq) for seq in range(1, 6)]
        for message in old:
            assert ingestor.handle(*message)
        pruned = store.prune(
            recordings_before=None, notifications_before=None, routine_before=1e12, now=1e12
        )
        assert pruned.routine_events == 4  # all but the device's latest
        assert [e.seq for e in store.events_for(DEVICE)] == [5]
        fresh = [_routine(seq) for seq in (1, 2, 3)]
        if batched:
            assert ingestor.handle_batch(fresh)
        else:
            for message in fresh:
                assert ingestor.handle(*message)
        assert _latest(store) == _id(fresh[-1])
        late = _routine(1)  # a first event resent late, its first copy never stored
        assert ingestor.handle(*late)
        assert _latest(store) == _id(late)
        following = _routine(4)
        assert ingestor.handle(*following)
        assert _latest(store) == _id(following)
    finally:
        service.store.close()


def _kind(message: tuple[str, bytes]) -> str:
    return str(json.loads(message[1])["type"])


def test_a_batch_s_incidents_and_alerts_are_each_stored_once_in_its_order(
    tmp_path: Path, caregiver_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch inserts its new incidents and alerts together (a statement for a run of them,
    not one per message): over several devices, falls paging and stumbles held mixed in one
    batch, each event has its one incident and its one alert, of its kind and status, the
    alerts of one kind in the batch's order. With a message whose handling fails (a bug) in
    the middle of the next batch, the others are stored so, each once; the failed one left
    nothing, and is stored whole when sent again."""
    service = _service(tmp_path, [], caregiver_db)
    store, ingestor = service.store, service.ingestor
    devices = ("tm-0", "tm-1", "tm-2")
    kinds = ["stumble", "stumble", "stumble", "fall", "fall", "fall", "stumble", "fall"]
    status = {"fall": "paging", "stumble": "held"}

    def check(batch: list[tuple[str, bytes]], in_order: bool = True) -> None:
        ids = {_id(m) for m in batch}
        alerts = [a for d in devices for a in store.alerts(d) if a.event_id in ids]
        assert sorted(a.event_id or "" for a in alerts) == sorted(ids)  # one each
        for message in batch:
            kind = _kind(message)
            [alert] = [a for a in alerts if a.event_id == _id(message)]
            assert (alert.kind, alert.status, alert.incident) == (kind, status[kind], _id(message))
            incident = store.incident(_id(message))
            assert incident is not None and incident.severity == kind and incident.open
        for kind in status if in_order else ():  # alerts of a kind: ids in the batch's order
            ordered = sorted((a for a in alerts if a.kind == kind), key=lambda a: a.id)
            assert [a.event_id for a in ordered] == [_id(m) for m in batch if _kind(m) == kind]

    try:
        first = [_event(n, kind, device=devices[n % 3]) for n, kind in enumerate(kinds, 1)]
        assert ingestor.handle_batch(first)
        assert (ingestor.events_stored, ingestor.rejected) == (len(first), 0)
        check(first)

        second = [_event(n, kind, device=devices[n % 3]) for n, kind in enumerate(kinds, 11)]
        failing = _id(second[4])
        real = service.alerting.on_event

        def buggy(tx: Any, device_id: str, event: Any) -> None:
            real(tx, device_id, event)  # its incident and alert written (deferred), then a bug
            if event.id == failing:
                raise KeyError("a bug in the alerting")

        monkeypatch.setattr(service.alerting, "on_event", buggy)
        assert ingestor.handle_batch(second)
        assert (ingestor.events_stored, ingestor.rejected) == (2 * len(kinds) - 1, 1)
        check([m for m in second if _id(m) != failing])
        assert store.incident(failing) is None and store.event(failing) is None
        assert not [a for d in devices for a in store.alerts(d) if a.event_id == failing]

        monkeypatch.setattr(service.alerting, "on_event", real)
        assert ingestor.handle_batch([second[4], first[0]])  # resent, beside a duplicate
        check(second, in_order=False)  # the resent one's alert is newer than the others'
        assert ingestor.duplicates == 1
    finally:
        store.close()


def test_rows_a_batch_defers_are_seen_inside_it_and_gone_with_its_rollback(
    tmp_path: Path, caregiver_db: str
) -> None:
    """An incident a batch's message opens waits to be inserted with the batch's others: a
    read later in the batch sees it; a batch rolled back keeps none of them, and the next
    transaction on the connection does not insert them either."""
    service = _service(tmp_path, [], caregiver_db)
    store = service.store
    _, payload = _event(1, "fall")
    event = json.loads(payload)
    new = NewEvent(
        id=event["id"], device_id=DEVICE, seq=1, type="fall", severity="critical",
        state="TRIPPED", reason="r", wall_time=event["wall_time"], figures={},
        has_window=False, payload=payload.decode(), incident=None,
    )  # fmt: skip

    class Undone(Exception):
        pass

    def open_incident(incident: str, read: bool) -> None:
        with store.message(new.id), store.transaction() as tx:
            tx.open_incident(incident, DEVICE, "fall", new.id, new.wall_time, 1.0)
            if read:  # the batch's own read: it is there
                found = tx.incident(incident)
                assert found is not None and found.open and found.first_event_id == new.id

    try:
        with pytest.raises(Undone), store.batch([DEVICE], 1.0, [(new, 1.0)], savepoints=False):
            open_incident("rolled-back", read=False)
            raise Undone
        with store.transaction() as tx:
            tx.touch_incident("nothing", 2.0)  # a statement on the same connection
        assert store.incident("rolled-back") is None

        with store.batch([DEVICE], 1.0, [(new, 1.0)], savepoints=False):
            open_incident("read", read=True)
            open_incident("kept", read=False)
        assert store.incident("read") is not None and store.incident("kept") is not None
    finally:
        store.close()


def test_a_batch_s_events_are_counted_for_other_threads_only_once_it_has_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that waits for the counts (a test, the benchmark, the status page) must find
    in the database what they count: the batch's commit is held open here, and meanwhile the
    counts are those of before the batch; they show it once it has committed."""
    from caregiver.storage.engines import SqliteDatabase

    changes: list[Change] = []
    service = _service(tmp_path, changes)
    committing, go_on = threading.Event(), threading.Event()
    commit = SqliteDatabase.commit

    def held_commit(db: SqliteDatabase) -> None:
        committing.set()
        assert go_on.wait(WAIT)
        commit(db)

    monkeypatch.setattr(SqliteDatabase, "commit", held_commit)
    batch = [_event(1), _event(2)]
    ingest = threading.Thread(target=service.ingestor.handle_batch, args=(batch,))
    try:
        ingest.start()
        assert committing.wait(WAIT)
        ingestor = service.ingestor
        assert (ingestor.events_stored, ingestor.messages) == (0, 0)
        assert service.store.events_for(DEVICE) == []  # what a reader would have looked for
        assert not ingestor.wait_for(lambda: ingestor.events_stored >= 1, timeout=0)
        go_on.set()
        ingest.join(WAIT)
        assert not ingest.is_alive()
        assert ingestor.wait_for(lambda: ingestor.events_stored == 2, timeout=0)
        assert {e.id for e in service.store.events_for(DEVICE)} == {_id(m) for m in batch}
    finally:
        go_on.set()
        ingest.join(WAIT)
        service.store.close()
