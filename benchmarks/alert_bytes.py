"""Bytes per alert on the device, its IMU window included, and how long an SD card lasts.

1. The demo's walk runs on simulated hardware into a fresh device database
   (as ``retroguard demo`` does); its fall is one incident: the stumble that
   tripped, the fall, its ``window`` event (the IMU from -4 to +10 s around
   the trip), no-recovery and the stop. For that incident it prints what goes
   on the wire (each event's MQTT payload as published) and what is stored
   (event bodies, the recording blob), and the old format for comparison: the
   same samples as JSON floats in the event body, stored twice (event body
   and outbox payload).
2. That incident's events are stored ``--alerts`` times more (new ids, new
   incidents) into a fresh file, as a monitor would over years of use, and the
   file size divided by their number is the bytes per alert on the card,
   tables, indexes and page slack included. Target: <= 20 kB.
3. A year and a day later, retention deletes their recordings: the steps it
   takes, the longest (how long it holds the write lock), and the file after.

    .venv/bin/python benchmarks/alert_bytes.py [--alerts 2000]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sqlite3
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.clock import SimClock  # noqa: E402
from core.protocol import payloads  # noqa: E402
from core.protocol.events import Event, EventType  # noqa: E402
from core.protocol.recording import decode_recording  # noqa: E402
from firmware.storage.database import FileDatabase, connect  # noqa: E402
from firmware.storage.events import encode_recording, insert_event  # noqa: E402
from firmware.storage.retention import Retention, RetentionPolicy  # noqa: E402
from launcher.demo import demo_config, run_session  # noqa: E402

TARGET_BYTES = 20_000
SD_CARD_BYTES = 16e9


def fall_incident(workdir: Path) -> list[Event]:
    """The events of the demo's fall incident, as the monitor made them."""
    result = run_session(demo_config(workdir / "demo.db"), SimClock())
    events = [s.event for s in result.events]
    fall = next(e for e in events if e.type is EventType.FALL)
    return [e for e in events if e.incident == fall.incident]


def renamed(events: list[Event]) -> list[Event]:
    """The same incident again, as a new one (new event ids, a new incident id)."""
    incident = uuid.uuid4().hex
    ids = {e.id: uuid.uuid4().hex for e in events}
    return [
        dataclasses.replace(e, id=ids[e.id], incident=incident, of=ids.get(e.of or ""))
        for e in events
    ]


def store_all(incidents: list[list[Event]], conn: sqlite3.Connection) -> None:
    for events in incidents:
        for event in events:
            insert_event(conn, event)


def old_format_bytes(events: list[Event]) -> int:
    """The incident as it was stored before: the window's samples as JSON floats in the trip
    event's body, that body once in ``events`` and once more as the outbox payload."""
    window = next(e for e in events if e.recording is not None)
    assert window.recording is not None
    samples = tuple(decode_recording(window.recording))
    total = 0
    for event in events:
        if event.type is EventType.WINDOW:
            continue
        if event.id == window.of:
            event = dataclasses.replace(event, imu_window=samples)
        total += 2 * len(event.to_json())
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        incident = fall_incident(workdir)
        window = next(e for e in incident if e.recording is not None)
        assert window.recording is not None
        rec = window.recording
        print(f"the demo's fall incident: {', '.join(e.type.value for e in incident)}")
        print(
            f"recording: {rec.count} rows x 6 int16 from {rec.start_s:+.2f} s every "
            f"{rec.period_s * 1000:.0f} ms; zlib {len(rec.samples):,} B "
            f"(raw {rec.count * 12:,} B); upright {rec.upright is not None}"
        )
        wire = {e.type.value: len(payloads.event_payload(e, i + 1)) for i, e in enumerate(incident)}
        print(
            "on the wire, bytes per MQTT payload: "
            + ", ".join(f"{k} {v:,}" for k, v in wire.items())
        )
        print(f"on the wire, the whole incident: {sum(wire.values()):,} B")
        stored_rows = sum(
            len(dataclasses.replace(e, recording=None).to_json()) for e in incident
        ) + len(encode_recording(rec))
        print(f"stored, event bodies + recording blob: {stored_rows:,} B (the recording once)")
        before = old_format_bytes(incident)
        print(f"the same 14 s as JSON floats, stored twice (the old way): {before:,} B")

        path = workdir / "device.db"
        connect(path).close()  # a new device file: schema, WAL, incremental auto-vacuum
        db = FileDatabase(path)
        batch = 200
        for start in range(0, args.alerts, batch):
            copies = [renamed(incident) for _ in range(min(batch, args.alerts - start))]
            db.write(partial(store_all, copies))
        db.close()
        raw = sqlite3.connect(path)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
        raw.close()
        size = path.stat().st_size
        per_alert = size / args.alerts
        print(
            f"{args.alerts:,} fall incidents stored: {size / 1e6:.1f} MB "
            f"({pages:,} pages of {page_size} B)"
        )
        verdict = "OK" if per_alert <= TARGET_BYTES else "OVER"
        print(
            f"bytes per alert on the card, its window included: {per_alert:,.0f} B "
            f"(target <= {TARGET_BYTES:,}: {verdict})"
        )
        print(
            f"a 16 GB card holds {SD_CARD_BYTES / per_alert:,.0f} such incidents; "
            f"10,000 take {10_000 * per_alert / 1e6:.0f} MB (was 605 MB)"
        )
        sweep(path)
    return 0


def sweep(path: Path) -> None:
    """A year and a day later: retention deletes every recording in its small steps and gives
    the pages back; the longest step is how long it holds the write lock."""
    db = FileDatabase(path)
    retention = Retention(
        db, RetentionPolicy(), wall=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=366)
    )
    steps: list[float] = []
    while True:
        started = time.perf_counter()
        pruned = retention.step()
        steps.append(time.perf_counter() - started)
        if not pruned.anything:
            break
    db.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    total = retention.total
    print(
        f"retention a year later: {total.windows:,} recordings deleted and {total.pages:,} pages "
        f"given back in {len(steps)} steps (longest {max(steps) * 1000:.0f} ms, "
        f"all {sum(steps):.1f} s); the file is now {path.stat().st_size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    raise SystemExit(main())
