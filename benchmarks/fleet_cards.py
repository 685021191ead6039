"""The fleet page's cards with a long history: ``Store.devices()`` at thousands of incidents.

Each card shows its treadmill's incident: the open one if there is one, else the one that
ended last (:data:`caregiver.storage.sql._DEVICE_SELECT`). The fleet page, the live feed and
the Home Assistant relay read every card, so that pick runs per device on every read, and a
clinic's history only grows (retention keeps closed incidents for months). ``--devices``
treadmills with ``--incidents`` closed incidents each (and one open on every other device)
are written straight into a fresh database of each engine named, migrated by the store as
the service does; then ``Store.devices()`` is read ``--reads`` times and the milliseconds
per read printed (p50, max), with the engine's plan for one card's pick.

    .venv/bin/python benchmarks/fleet_cards.py [--devices 8] [--incidents 20000]
        [--reads 30] [--engine sqlite postgresql]

Prints figures; asserts nothing (speed is not a test). Run it on two trees one after the
other (the same machine, minutes apart) to compare them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from caregiver.storage import Store  # noqa: E402
from caregiver.storage.sql import _DEVICE_SELECT  # noqa: E402
from tools.pgcluster import PostgresCluster  # noqa: E402


def _rows(devices: int, incidents: int) -> list[tuple[Any, ...]]:
    """The incidents: closed ones an hour apart per device, and an open one on even devices."""
    rows: list[tuple[Any, ...]] = []
    for d in range(devices):
        device_id = f"tm-{d:02d}"
        for n in range(incidents):
            at = 1_000_000.0 + n * 3600.0
            rows.append(
                (uuid.uuid4().hex, device_id, "stumble", "closed", at, "2026-01-01T00:00:00Z",
                 uuid.uuid4().hex, at + 30.0, at + 60.0, "ann", "dashboard")
            )  # fmt: skip
        if d % 2 == 0:
            at = 1_000_000.0 + incidents * 3600.0
            rows.append(
                (uuid.uuid4().hex, device_id, "fall", "open", at, "2026-01-01T00:00:00Z",
                 uuid.uuid4().hex, at + 30.0, None, None, None)
            )  # fmt: skip
    return rows


_INSERT = (
    "INSERT INTO incidents (id, device_id, severity, status, opened_at, opened_wall, "
    "first_event_id, last_event_at, closed_at, closed_by, closed_via) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_PICK = _DEVICE_SELECT
"""The cards' read, as the store runs it (its plan is what ``--plan`` prints)."""


def _fill_sqlite(path: str, devices: int, rows: list[tuple[Any, ...]]) -> str:
    import sqlite3

    db = sqlite3.connect(path)
    with db:
        db.executemany(_INSERT.replace("%s", "?"), rows)
        db.executemany(
            "INSERT INTO devices (device_id, last_seen) VALUES (?, 0)",
            [(f"tm-{d:02d}",) for d in range(devices)],
        )
    db.execute("ANALYZE")
    plan = "\n".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + _PICK))
    db.close()
    return plan


def _fill_postgresql(url: str, devices: int, rows: list[tuple[Any, ...]]) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        with db.cursor() as cur:
            cur.executemany(_INSERT, rows)
            cur.executemany(
                "INSERT INTO devices (device_id, last_seen) VALUES (%s, 0)",
                [(f"tm-{d:02d}",) for d in range(devices)],
            )
        db.execute("ANALYZE")
        return "\n".join(str(r[0]) for r in db.execute("EXPLAIN " + _PICK).fetchall())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--incidents", type=int, default=20_000, help="closed ones per device")
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument(
        "--engine", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    parser.add_argument("--plan", action="store_true", help="print the engine's plan of the read")
    args = parser.parse_args()
    rows = _rows(args.devices, args.incidents)
    print(
        f"fleet cards: {args.devices} devices, {args.incidents} closed incidents "
        f"(+ an open one on every other device), {args.reads} reads of Store.devices(); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    cluster: PostgresCluster | None = None
    with tempfile.TemporaryDirectory(prefix="retroguard-fleet-") as work:
        try:
            for engine in args.engine:
                if engine == "postgresql":
                    cluster = PostgresCluster()
                    cluster.start()
                    database = cluster.new_database()
                else:
                    database = str(Path(work) / "caregiver.db")
                Store(database).close()  # migrated as the service migrates it
                fill = _fill_postgresql if engine == "postgresql" else _fill_sqlite
                plan = fill(database, args.devices, rows)
                store = Store(database)
                try:
                    cards = store.devices()
                    incidents = [c["incident"] for c in cards]
                    open_cards = sum(i is not None and i["status"] == "open" for i in incidents)
                    times = []
                    for _ in range(args.reads):
                        start = time.perf_counter()
                        store.devices()
                        times.append((time.perf_counter() - start) * 1000)
                finally:
                    store.close()
                print(
                    f"  {engine:>10}: {len(cards)} cards ({open_cards} with an open incident); "
                    f"per read p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms "
                    f"(load average now {os.getloadavg()[0]:.1f})"
                )
                if args.plan:
                    print("    " + plan.replace("\n", "\n    "))
        finally:
            if cluster is not None:
                cluster.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
