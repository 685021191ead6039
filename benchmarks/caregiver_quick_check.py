"""What the caregiver store's check at open costs: ``PRAGMA quick_check`` of a realistic file.

Writes a caregiver database through the service's own ingest (no broker: the messages go to
``Ingestor.handle_batch`` as the ingest thread hands them over): ``--days`` days of
``--devices`` treadmills, each day one guided session's summary with its start, ok and stop
events, and once a week a stumble with its 14 s recording and the reset after it. Then times
the check three times from the page cache and three times from disk (the file's pages
dropped from the cache first with ``posix_fadvise(DONTNEED)``: no root needed), and
``integrity_check`` from the cache for comparison, and prints how far the store's budget
(``QUICK_CHECK_WITHIN_S``) would get.

    .venv/bin/python benchmarks/caregiver_quick_check.py [--days 365] [--devices 8] [--keep F]

Measured (x86, 2 cores shared with other work, Dec 2026; docs/caregiver.md, "A database
damaged past its first pages"): a year of 8 treadmills, 12.9k messages, 12 MB: quick_check
9-10 ms cached, 180-210 ms from disk; integrity_check 18 ms. Ten years (129k messages,
118 MB): 80-90 ms cached, 1.7-2.8 s from disk; integrity_check 240-270 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

# Run as a script, benchmarks/ is first on sys.path and its caregiver.py would shadow the
# ``caregiver`` package; the project goes first instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig  # noqa: E402
from caregiver.service import CaregiverService  # noqa: E402
from caregiver.storage.store import QUICK_CHECK_WITHIN_S  # noqa: E402
from core.sqlite_check import quick_check  # noqa: E402
from firmware.session.record import session_payload  # noqa: E402
from sim.recordings import fall_recording  # noqa: E402
from tests.caregiver_support import session_record  # noqa: E402

RUNS = (("quick_check", False), ("quick_check", True), ("integrity_check", False))
"""Each pragma timed, and whether from disk (False: from the page cache)."""


def write(path: Path, days: int, devices: int) -> int:
    """The database at ``path``; how many messages were stored."""
    names = [f"treadmill-{n}" for n in range(1, devices + 1)]
    first = dt.datetime(2025, 12, 1, 9, tzinfo=dt.UTC)
    now = [first.timestamp()]
    config = CaregiverConfig(
        server=ServerConfig(database=str(path), timezone="UTC"),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
        devices={d: d for d in names},
    )
    service = CaregiverService(config, clock=lambda: now[0])
    recording = msgspec.to_builtins(fall_recording())
    seqs = dict.fromkeys(names, 0)

    def event(
        device: str, kind: str, state: str, when: dt.datetime, **extra: object
    ) -> tuple[str, bytes]:
        seqs[device] += 1
        body = {
            "schema": 1, "id": uuid.uuid4().hex, "seq": seqs[device], "type": kind,
            "device_id": device, "severity": "warning" if kind == "stumble" else "info",
            "state": state, "reason": kind, "wall_time": when.isoformat(timespec="milliseconds"),
            "t_monotonic": 100.0 + seqs[device], "figures": {}, **extra,
        }  # fmt: skip
        return f"retroguard/{device}/event", json.dumps(body).encode()

    stored = 0
    try:
        for day in range(days):
            for k, device in enumerate(names):
                when = first + dt.timedelta(days=day, minutes=40 * k)
                now[0] = when.timestamp()
                tripped = day % 7 == k % 7
                record = session_record(
                    device, when, backward_min=10, longest_min=4, trips=int(tripped)
                )
                batch = [
                    event(device, "start", "STARTING", when),
                    event(device, "ok", "ARMED", when),
                    (f"retroguard/{device}/session", session_payload(record).encode()),
                ]
                if tripped:
                    incident = uuid.uuid4().hex
                    trip = event(device, "stumble", "TRIPPED", when, incident=incident)
                    of = json.loads(trip[1])["id"]
                    batch += [
                        trip,
                        event(device, "window", "TRIPPED", when, incident=incident, of=of,
                              recording=recording),
                        event(device, "reset", "ARMED", when),
                    ]  # fmt: skip
                batch.append(event(device, "stop", "STANDBY", when + dt.timedelta(minutes=35)))
                if not service.ingestor.handle_batch(batch):
                    raise SystemExit(f"not stored: {service.ingestor.storage_fault}")
                stored += len(batch)
    finally:
        service.store.close()
    return stored


def timed(path: Path, pragma: str, *, cold: bool) -> float:
    if cold:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    conn = sqlite3.connect(path)
    try:
        start = time.perf_counter()
        if pragma == "quick_check":
            checked = quick_check(conn)
            assert checked.findings is None and checked.finished, checked
        else:
            assert conn.execute(f"PRAGMA {pragma}(3)").fetchall() == [("ok",)]
        return time.perf_counter() - start
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "caregiver.db"
        started = time.monotonic()
        stored = write(path, args.days, args.devices)
        print(
            f"{args.days} days x {args.devices} treadmills: {stored} messages stored in "
            f"{time.monotonic() - started:.1f} s, {path.stat().st_size / 1e6:.1f} MB"
        )
        for pragma, cold in RUNS:
            runs = [timed(path, pragma, cold=cold) for _ in range(3)]
            where = "from disk" if cold else "cached"
            print(f"{pragma} {where}: " + ", ".join(f"{r * 1000:.0f} ms" for r in runs))
        print(f"the store's budget at open: {QUICK_CHECK_WITHIN_S:.0f} s")
        print(f"load average: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
