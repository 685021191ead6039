"""The caregiver's ingest path alone: CPU and wall time per fall event, SQLite vs PostgreSQL.

No broker and no browser: a ``CaregiverService`` (not started) is handed ``--events``
fall events of ``--devices`` devices in batches of ``--batch`` (what the ingest thread
hands :meth:`caregiver.ingest.Ingestor.handle_batch` in a burst: at most the broker's
receive maximum, 100), each a new incident paging its first contact (none configured).
The service's process CPU (``time.process_time``: this process only, PostgreSQL's
server not counted) and wall time per event are printed for each engine named, one after
the other in the same run, so their ratio is what to compare; the machine's load average
is printed with them. ``--profile`` prints the hottest functions (cProfile).

``sqlite-normal`` is the SQLite file with its writing connection set back to
``synchronous=NORMAL`` (as before 2026-12-03): no fsync of the WAL at each commit, which
a power cut can undo after the device was given its receipt; beside ``sqlite`` (FULL, as
the service runs it: caregiver.storage.engines.SYNCHRONOUS) it shows what the sync costs.

``--incidents``: each fall as this release's monitor sends it instead, a trip, the fall and
the 14 s recording around the trip (a few pages each) under one incident id (``--events``
counts the three), with the WAL checkpointed every second beside ingest as the service's
tick does.

    .venv/bin/python benchmarks/caregiver_ingest.py [--engine sqlite-normal sqlite postgresql]
        [--events 2000] [--devices 1000] [--batch 100] [--incidents] [--profile]

Prints figures; asserts nothing (speed is not a test).
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import functools
import json
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig  # noqa: E402
from caregiver.service import CaregiverService  # noqa: E402
from tools.pgcluster import PostgresCluster  # noqa: E402


def fall(n: int, devices: int) -> tuple[str, bytes]:
    device_id = f"tm-{n % devices:04d}"
    data = {
        "schema": 1, "id": uuid.uuid4().hex, "seq": n // devices + 1, "type": "fall",
        "device_id": device_id, "severity": "critical", "state": "TRIPPED",
        "reason": "impact 3.1 g then lying", "wall_time": "2026-12-02T00:00:00.000+00:00",
        "t_monotonic": float(n), "figures": {"peak_g": 3.1, "tilt_deg": 80.0},
    }  # fmt: skip
    return f"retroguard/{device_id}/event", json.dumps(data).encode()


@functools.cache
def _recording() -> object:
    """The recording of sim.recordings at the belt's 200 Hz, as the monitor's JSON has it."""
    import msgspec

    from sim.recordings import fall_recording

    return msgspec.to_builtins(fall_recording(rate_hz=200.0))


def incident(n: int, devices: int) -> list[tuple[str, bytes]]:
    """Fall ``n`` as this release's monitor sends it: the trip, the fall, the recording."""
    device_id = f"tm-{n % devices:04d}"
    group = uuid.uuid4().hex
    trip = uuid.uuid4().hex
    messages = []
    parts: tuple[tuple[str, dict[str, object]], ...] = (
        ("stumble", {"id": trip}),
        ("fall", {"figures": {"peak_g": 3.1, "tilt_deg": 80.0}}),
        ("window", {"of": trip, "recording": _recording()}),
    )
    for k, (kind, extra) in enumerate(parts):
        data = {
            "schema": 1, "id": uuid.uuid4().hex, "seq": 3 * (n // devices) + k + 1, "type": kind,
            "device_id": device_id, "severity": {"fall": "critical", "stumble": "warning"}.get(
                kind, "info"), "state": "TRIPPED", "reason": "benchmark", "incident": group,
            "wall_time": "2026-12-02T00:00:00.000+00:00", "t_monotonic": float(n), "figures": {},
        }  # fmt: skip
        data.update(extra)
        messages.append((f"retroguard/{device_id}/event", json.dumps(data).encode()))
    return messages


def measure(database: str, args: argparse.Namespace, *, normal: bool) -> tuple[float, float, int]:
    """CPU and wall seconds for the events' batches, and the events (``normal``: the SQLite
    writing connection at ``synchronous=NORMAL``)."""
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=database),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
    )
    service = CaregiverService(config)
    if normal:
        service.store._db.execute("PRAGMA synchronous = NORMAL")
    if args.incidents:
        messages = [m for n in range(args.events // 3) for m in incident(n, args.devices)]
    else:
        messages = [fall(n, args.devices) for n in range(args.events)]
    stop = threading.Event()
    if args.incidents:
        threading.Thread(target=lambda: _checkpoints(service, stop), daemon=True).start()
    profile = cProfile.Profile() if args.profile else None
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        for start in range(0, len(messages), args.batch):
            if not service.ingestor.handle_batch(messages[start : start + args.batch]):
                raise RuntimeError(
                    f"the database refused a batch: {service.ingestor.storage_fault}"
                )
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stored = service.store.event_count()
        if stored != len(messages):
            raise RuntimeError(f"{stored} of {len(messages)} events stored")
    finally:
        stop.set()
        service.store.close()
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    return cpu, wall, len(messages)


def _checkpoints(service: CaregiverService, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        service.store.checkpoint()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--engine",
        nargs="+",
        choices=("sqlite", "sqlite-normal", "postgresql"),
        default=["sqlite", "postgresql"],
    )
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--incidents", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="retroguard-bench-ingest-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # databases, logs: scratch
    cluster: PostgresCluster | None = None
    what = (
        f"{args.events // 3} falls (trip, fall, recording: {args.events // 3 * 3} events)"
        if args.incidents
        else f"{args.events} fall events"
    )
    print(
        f"caregiver ingest: {what} of {args.devices} devices in batches of "
        f"{args.batch}, each a new incident paging (no contact configured); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    try:
        for engine in args.engine:
            if engine == "postgresql":
                if cluster is None:
                    cluster = PostgresCluster()
                    cluster.start()
                database = cluster.new_database()
            else:
                database = str(work / f"{uuid.uuid4().hex}.db")
            cpu, wall, events = measure(database, args, normal=engine == "sqlite-normal")
            print(
                f"  {engine:>13}: {events / wall:5.0f} events/s; per event "
                f"{cpu / events * 1000:.2f} ms CPU, {wall / events * 1000:.2f} ms wall "
                f"(load average now {os.getloadavg()[0]:.1f})"
            )
    finally:
        if cluster is not None:
            cluster.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
