"""The outbox's bound tells (counts and logs) only the drops that were committed.

Before, :meth:`Outbox._enforce_bound` added to ``Outbox.dropped`` and logged "dropped the
oldest ..." inside the write's transaction: a commit the disk refused claimed a drop that
never happened (the rows were all still queued), and the courier's database, which runs a
write the file refused again in memory, counted and logged the drop twice.

The disk refuses the commit for real: a child process caps the size of its files at the
write-ahead log's (:func:`tests.storage_support.files_capped_at`), so the statements run,
the rows are deleted inside the transaction, and the ``COMMIT`` that appends them to the
log fails. The cap is the whole process's, hence the child.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.protocol.events import EventType
from core.protocol.topics import Topics
from firmware.sinks import OutboxSink
from firmware.storage.database import connect
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.faults import describe
from firmware.storage.outbox import Outbox
from tests.log_support import LogLines
from tests.mqtt_helpers import fall, info
from tests.storage_support import files_capped_at

ROOT = Path(__file__).resolve().parent.parent
TOPICS = Topics("retroguard", "tm1")


def child(kind: str, directory: str) -> None:
    """In the child: two telemetry rows fill an outbox of two; a third is queued while the
    disk refuses the commit, then (``file``) again once it takes it. Prints what the outbox
    told and held after each, as JSON."""
    lines = LogLines(logging.WARNING)
    logging.getLogger("firmware.storage.outbox").addHandler(lines)
    path = Path(directory) / "o.db"
    fallback: FallbackDatabase | None = None
    if kind == "file":
        outbox = Outbox(path, TOPICS, max_rows=2)
    else:
        fallback = FallbackDatabase(path)
        assert fallback.open().fault is None
        outbox = Outbox(fallback, TOPICS, max_rows=2)
    outbox.enqueue_telemetry('{"t":1}')
    outbox.enqueue_telemetry('{"t":2}')
    steps: list[dict[str, object]] = []
    refused: str | None = None
    with files_capped_at(Path(f"{path}-wal").stat().st_size):
        try:
            outbox.enqueue_telemetry('{"t":3}')
        except sqlite3.Error as exc:
            refused = describe(exc)
    steps.append(_told(outbox, lines, refused, fallback))
    if kind == "file":
        outbox.enqueue_telemetry('{"t":3}')
        steps.append(_told(outbox, lines, None, fallback))
    outbox.close()
    if fallback is not None:
        fallback.close()
    print(json.dumps(steps))


def _told(
    outbox: Outbox, lines: LogLines, refused: str | None, fallback: FallbackDatabase | None
) -> dict[str, object]:
    told = {
        "refused": refused,
        "dropped": outbox.dropped,
        "logged": [line for line in lines.lines if "dropped" in line],
        "queued": [row.payload for row in outbox.fetch_after(0, 10)],
        "in_memory": fallback is not None and fallback.in_memory,
    }
    lines.lines.clear()
    return told


def _run_child(kind: str, directory: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tests.test_outbox_bound_committed import child; child(*sys.argv[1:])",
            kind,
            str(directory),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    steps: list[dict[str, object]] = json.loads(result.stdout.splitlines()[-1])
    return steps


def test_a_drop_whose_commit_the_disk_refused_is_neither_counted_nor_logged(
    tmp_path: Path,
) -> None:
    refused, committed = _run_child("file", tmp_path)
    assert refused["refused"] is not None and "disk I/O error" in str(refused["refused"])
    assert refused["queued"] == ['{"t":1}', '{"t":2}']  # nothing was dropped...
    assert refused["dropped"] == 0 and refused["logged"] == []  # ...and nothing says so
    # the same write once the disk takes it: the drop happens, counted and logged once
    assert committed["refused"] is None
    assert committed["queued"] == ['{"t":2}', '{"t":3}']
    assert committed["dropped"] == 1
    assert committed["logged"] == [
        "MQTT outbox over its bound of 2 rows: dropped the oldest 1 telemetry (1 dropped so far)"
    ]


def test_a_drop_the_file_refused_and_memory_took_is_told_once(tmp_path: Path) -> None:
    """The courier's database runs the write again in memory after the file refused its
    commit: the drop memory committed is the one drop there was."""
    (moved,) = _run_child("fallback", tmp_path)
    assert moved["refused"] is None and moved["in_memory"] is True
    assert moved["queued"] == ['{"t":2}', '{"t":3}']
    assert moved["dropped"] == 1
    assert moved["logged"] == [
        "MQTT outbox over its bound of 2 rows: dropped the oldest 1 telemetry (1 dropped so far)"
    ]


def test_a_drop_in_a_caller_s_transaction_is_told_when_that_transaction_commits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """:meth:`Outbox.enqueue_event_in` runs in the courier's drain transaction: a drain that
    rolls back dropped nothing; the event handed over again is told once its transaction
    commits, by the commit itself: not inside the transaction, and with no word from the
    caller (before, the caller's ``committed(event_id)`` told it, whenever it was called)."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=2)
    sink = OutboxSink(outbox)
    outbox.enqueue_telemetry('{"t":1}')
    outbox.enqueue_event(info("tm1", EventType.START))
    alert = fall("tm1")

    def rolled_back(conn: sqlite3.Connection) -> None:
        sink.store_in(conn, alert)
        raise RuntimeError("the drain failed after the event")

    inside: list[int] = []

    def committing(conn: sqlite3.Connection) -> None:
        sink.store_in(conn, alert)
        inside.append(outbox.dropped)  # dropped in the transaction, not committed yet

    with caplog.at_level(logging.WARNING, logger="firmware.storage.outbox"):
        with pytest.raises(RuntimeError):
            outbox.database.write(rolled_back)
        assert outbox.dropped == 0 and "dropped" not in caplog.text
        assert outbox.depth() == 2
        outbox.database.write(committing)
        assert inside == [0]
        assert outbox.dropped == 1  # told by the commit
        sink.stored(alert)
        sink.stored(alert)  # the sink's word after the commit tells nothing more
    assert outbox.dropped == 1
    assert caplog.text.count("dropped the oldest 1 telemetry (1 dropped so far)") == 1
    assert [r.topic.rsplit("/", 1)[1] for r in outbox.fetch_after(0, 10)] == ["event", "event"]
    outbox.close()


def test_an_event_queued_outside_a_transaction_is_refused_before_any_write(
    tmp_path: Path,
) -> None:
    """Misuse is loud: on a connection with no :func:`transaction` open (autocommit, or a
    ``BEGIN`` of the caller's own, which nothing would tell the outbox had committed),
    :meth:`Outbox.enqueue_event_in` raises before it writes anything."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=1)
    outbox.enqueue_telemetry('{"t":1}')
    conn = connect(tmp_path / "o.db")
    try:
        with pytest.raises(RuntimeError, match="outside a transaction"):
            outbox.enqueue_event_in(conn, fall("tm1"))
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(RuntimeError, match="outside a transaction"):
            outbox.enqueue_event_in(conn, fall("tm1"))
        conn.execute("COMMIT")
    finally:
        conn.close()
    assert outbox.depth() == 1 and outbox.dropped == 0  # nothing written, nothing dropped
    outbox.close()


def test_an_event_committed_on_its_own_after_a_rolled_back_drain_is_told_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A drain that failed is applied record by record (each event committed on its own):
    what the failed drain's try would have dropped is forgotten, not told later as well."""
    outbox = Outbox(tmp_path / "o.db", TOPICS, max_rows=1)
    sink = OutboxSink(outbox)
    outbox.enqueue_telemetry('{"t":1}')
    alert = fall("tm1")

    def rolled_back(conn: sqlite3.Connection) -> None:
        sink.store_in(conn, alert)
        raise RuntimeError("the drain failed")

    with caplog.at_level(logging.WARNING, logger="firmware.storage.outbox"):
        with pytest.raises(RuntimeError):
            outbox.database.write(rolled_back)
        sink.handle(alert)  # enqueue_event, then stored
        assert outbox.dropped == 1
        sink.stored(alert)
    assert outbox.dropped == 1
    assert caplog.text.count("dropped the oldest") == 1
