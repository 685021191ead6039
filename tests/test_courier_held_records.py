"""The courier's word to the loop about alerts it kept in memory while the disk refused them.

Safety rule 4: the loop forgets an alert only when the courier says it is on disk
(:class:`~firmware.link.messages.Persisted`). Hand mutation testing of the courier found
three places no test noticed when changed; these tests drive a real
:class:`~firmware.courier.service.Courier` over a socket pair, its real SQLite file made
full and freed again by :class:`~tests.storage_support.FillableDisk`, and read what the
loop's end of the socket received.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

from core.protocol.topics import Topics
from firmware.config import Config, StorageConfig
from firmware.courier.channel import LoopChannel
from firmware.courier.service import PERSISTED_BATCH, Courier
from firmware.link import messages
from firmware.link.framing import FrameReader
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.outbox import Outbox
from tests.storage_support import FillableDisk, alert
from tests.test_session_record_format import RECORD

SYNCHRONOUS_FULL = 2
"""``PRAGMA synchronous`` as SQLite reads it back: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA."""


def _received(sock: socket.socket) -> list[messages.ToLoop]:
    """What the courier has sent the loop so far (its sends return once the bytes are in the
    socket, so nothing is waited for: the socket is read until it has nothing more)."""
    reader = FrameReader()
    out: list[messages.ToLoop] = []
    sock.setblocking(False)
    while True:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            break
        if not data:
            break
        out += [messages.decode_for_loop(payload) for payload in reader.feed(data)]
    return out


def _confirmed(received: list[messages.ToLoop]) -> list[str]:
    return [i for m in received if isinstance(m, messages.Persisted) for i in m.ids]


def _on_disk(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {str(row[0]) for row in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()


def _courier(tmp_path: Path) -> tuple[Courier, socket.socket]:
    loop_end, courier_end = socket.socketpair()
    config = Config(storage=StorageConfig(database=str(tmp_path / "events.db")))
    return Courier(config, LoopChannel(courier_end)), loop_end


def _session_refused_beside_an_alert(tmp_path: Path, raise_clause: str) -> None:
    """A fall and a final session record in one drain, the store refusing the session's row
    with ``raise_clause`` (a trigger's ``RAISE(...)``): the fall is stored and confirmed to the
    loop, the session is not confirmed."""
    courier, loop_end = _courier(tmp_path)
    refuse = sqlite3.connect(tmp_path / "events.db")
    try:
        refuse.execute(
            "CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions"
            f" BEGIN SELECT {raise_clause}; END"
        )
        refuse.commit()
        fall = alert(courier.config.device.id)
        courier.apply_drain(
            [messages.EventRecord(fall), messages.SessionReport(RECORD, final=True)]
        )
        confirmed = _confirmed(_received(loop_end))
        assert fall.id in confirmed and messages.session_key(RECORD) not in confirmed
        assert fall.id in _on_disk(tmp_path / "events.db")
        courier.apply(messages.Goodbye("test over"))
    finally:
        refuse.close()
        courier.finish()
        loop_end.close()


def _drain_held_in_memory_until_the_disk_takes_it(
    tmp_path: Path, disk: FillableDisk, fail: Callable[[], None]
) -> None:
    """A fall and a final session record in one drain, the disk failed by ``fail``: the
    courier is in memory with neither confirmed to the loop; once the disk is free again and
    the courier recovers, both are confirmed and the fall is in the file."""
    courier, loop_end = _courier(tmp_path)
    try:
        fail()
        fall = alert(courier.config.device.id)
        key = messages.session_key(RECORD)
        courier.apply_drain(
            [messages.EventRecord(fall), messages.SessionReport(RECORD, final=True)]
        )
        assert courier.db.in_memory
        assert {fall.id, key}.isdisjoint(_confirmed(_received(loop_end)))
        disk.free()
        assert courier.db.recover(now=True)
        assert {fall.id, key} <= set(_confirmed(_received(loop_end)))
        assert fall.id in _on_disk(tmp_path / "events.db")
        courier.apply(messages.Goodbye("test over"))
    finally:
        courier.finish()
        loop_end.close()


def test_every_alert_kept_in_memory_is_confirmed_to_the_loop_when_the_disk_takes_it(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """More alerts than one :class:`Persisted` carries wait in memory on a full disk; once it
    takes writes, the loop is told that every one is on disk, before it hears storage is back
    (it hands over again whatever it still holds then). Mutants that survived: the recovery's
    confirmation dropped (the loop then handed all of them over a second time), and the last
    id of every batch of :data:`PERSISTED_BATCH` left out (the loop kept those for ever,
    sending them again every half minute)."""
    courier, loop_end = _courier(tmp_path)
    try:
        disk.fill()
        alerts = [alert(courier.config.device.id, t=float(i)) for i in range(PERSISTED_BATCH + 44)]
        for event in alerts:
            courier.apply(messages.EventRecord(event))
        assert courier.db.in_memory
        held = {e.id for e in alerts} - set(_confirmed(_received(loop_end)))
        assert len(held) > PERSISTED_BATCH  # more than one batch to confirm

        disk.free()
        assert courier.db.recover(now=True)
        after = _received(loop_end)
        back = next(
            n for n, m in enumerate(after) if isinstance(m, messages.StorageHealth) and m.ok
        )
        assert held <= set(_confirmed(after[:back]))
        assert held <= _on_disk(tmp_path / "events.db")
        courier.apply(messages.Goodbye("test over"))
    finally:
        courier.finish()
        loop_end.close()


def test_a_courier_stopping_while_alerts_are_in_memory_writes_them_to_a_disk_that_is_back(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The disk takes writes again before the next retry is due, and the monitor stops: the
    courier's last try moves what memory holds into the file (and tells the loop). Mutant
    that survived: the last try dropped, so the alerts went with the process; the loop,
    stopping too, had only its memory to keep them in."""
    courier, loop_end = _courier(tmp_path)
    try:
        disk.fill()
        alerts = [alert(courier.config.device.id, t=float(i)) for i in range(5)]
        for event in alerts:
            courier.apply(messages.EventRecord(event))
        assert courier.db.in_memory
        held = {e.id for e in alerts} - set(_confirmed(_received(loop_end)))
        assert held
        disk.free()  # no retry is due: the heartbeat is not running, and none was asked for
        courier.apply(messages.Goodbye("monitor stopping"))
    finally:
        courier.finish()
    assert held <= _on_disk(tmp_path / "events.db")
    assert held <= set(_confirmed(_received(loop_end)))
    loop_end.close()


def test_the_device_database_syncs_every_commit(tmp_path: Path) -> None:
    """An alert's row may be forgotten by the loop once its commit returns: in WAL mode only
    ``synchronous=FULL`` syncs the log at each commit, so a power cut cannot undo it (under
    NORMAL it can). The setting is each connection's: read on the courier's connection to its
    file and on an outbox opened by path. Mutant that survived: NORMAL in
    :func:`firmware.storage.database.connect`."""
    path = tmp_path / "events.db"
    db = FallbackDatabase(path)
    assert db.open().fault is None
    try:
        assert db.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
        assert db.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == SYNCHRONOUS_FULL
    finally:
        db.close()
    outbox = Outbox(path, Topics("retroguard", "tm-1"))
    try:
        level = outbox.database.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert level == SYNCHRONOUS_FULL
    finally:
        outbox.close()


def test_a_final_session_record_the_store_refused_is_not_confirmed(tmp_path: Path) -> None:
    """A guided session's final record (its summary is an alert-like message, kept until a
    consumer confirms it) that could not be stored is not confirmed to the loop, which keeps it
    and hands it over again; once stored it is. Mutant that survived: the confirmation sent
    whether or not the record was saved, so the loop forgot a session nothing had stored."""
    courier, loop_end = _courier(tmp_path)
    refuse = sqlite3.connect(tmp_path / "events.db")
    try:
        refuse.execute(
            "CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions"
            " BEGIN SELECT RAISE(ABORT, 'refused, as a store that runs out of memory'); END"
        )
        refuse.commit()
        key = messages.session_key(RECORD)
        courier.apply(messages.SessionReport(RECORD, final=True))
        assert key not in _confirmed(_received(loop_end))
        refuse.execute("DROP TRIGGER refuse_sessions")
        refuse.commit()
        courier.apply(messages.SessionReport(RECORD, final=True))  # the loop's hand-over again
        assert key in _confirmed(_received(loop_end))
        courier.apply(messages.Goodbye("test over"))
    finally:
        refuse.close()
        courier.finish()
        loop_end.close()


def test_a_drain_stored_in_memory_is_confirmed_only_once_the_disk_takes_it(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """An event and a final session record read in one drain are committed in one transaction;
    on a disk that refuses writes that transaction goes to memory, and both are held there:
    neither is confirmed to the loop until the file has them. Mutant this catches: the
    drain's records not marked held (only a lone write's key was), so the loop forgot an
    alert and a session kept in memory only."""
    _drain_held_in_memory_until_the_disk_takes_it(tmp_path, disk, disk.go_read_only)


def test_a_session_record_refused_in_a_drain_does_not_cost_the_event_read_with_it(
    tmp_path: Path,
) -> None:
    """The drain's records share a transaction, each in a savepoint: a record the store
    refuses (not the disk's fault: a constraint, a store out of memory) is rolled back alone
    and not confirmed; the alert read with it is stored and confirmed."""
    _session_refused_beside_an_alert(
        tmp_path, "RAISE(ABORT, 'refused, as a store that runs out of memory')"
    )
