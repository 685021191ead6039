"""The fleet page's cards with a long history: ``Store.devices()`` at thousands of incidents.

Each card shows its treadmill's incident: the open one if there is one, else the one that
ended last (:data:`caregiver.storage.sql._DEVICE_SELECT`). The fleet page, the live feed and
the Home Assistant relay read every card, so that pick runs per device on every read, and a
clinic's history only grows (retention keeps closed incidents for months). ``--devices``
treadmills with ``--incidents`` closed incidents each (and one open on every other device)
are written through the store's own writes into a fresh database of each engine named,
migrated by the store as the service does, and ``ANALYZE``d; then ``Store.devices()`` is
read ``--reads`` times and the milliseconds per read printed (p50, max); ``--plan`` adds the
engine's plan of the read.

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

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from caregiver.storage import Store  # noqa: E402
from caregiver.storage.sql import _DEVICE_SELECT  # noqa: E402
from tools.pgcluster import PostgresCluster  # noqa: E402


def _fill(store: Store, devices: int, incidents: int) -> None:
    """Through the store's own writes (its schema's one owner): the treadmills, closed
    incidents an hour apart each, and an open one on every other treadmill."""
    for d in range(devices):
        device_id = f"tm-{d:02d}"
        with store.transaction() as tx:
            tx.set_telemetry(device_id, {}, 0.0)
        for start in range(0, incidents, 2000):
            with store.transaction() as tx:
                for n in range(start, min(incidents, start + 2000)):
                    at = 1_000_000.0 + n * 3600.0
                    incident = uuid.uuid4().hex
                    tx.open_incident(incident, device_id, "stumble", incident, _WALL, at)
                    tx.close_incident(incident, "ann", "dashboard", at + 60.0)
        if d % 2 == 0:
            with store.transaction() as tx:
                incident = uuid.uuid4().hex
                at = 1_000_000.0 + incidents * 3600.0
                tx.open_incident(incident, device_id, "fall", incident, _WALL, at)


_WALL = "2026-01-01T00:00:00+00:00"
_PICK = f"{_DEVICE_SELECT} ORDER BY d.device_id"
"""The cards' read, as :meth:`Store.devices` runs it."""


def _plan(database: str, engine: str) -> str:
    """The engine's plan of the cards' read, after ``ANALYZE`` (as a DBA's routine would)."""
    if engine == "postgresql":
        import psycopg

        with psycopg.connect(database, autocommit=True) as pg:
            pg.execute("ANALYZE")
            return "\n".join(str(r[0]) for r in pg.execute(f"EXPLAIN {_PICK}").fetchall())
    import sqlite3

    db = sqlite3.connect(database)
    try:
        db.execute("ANALYZE")
        return "\n".join(str(r[-1]) for r in db.execute(f"EXPLAIN QUERY PLAN {_PICK}"))
    finally:
        db.close()


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
                store = Store(database)  # migrated as the service migrates it
                try:
                    _fill(store, args.devices, args.incidents)
                    plan = _plan(database, engine)  # statistics first, as the figures had them
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
