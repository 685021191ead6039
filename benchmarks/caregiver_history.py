"""The dashboard after a year of a clinic: every page and API read, timed at a year's history.

A fresh database of each engine named (migrated by the service's own ``Store`` as it opens
it) is filled with ``--scale`` years of a clinic through the service's write paths, on a
clock that walks through the year so every row carries the time it would have had:
``--devices`` treadmills with ``--walkers`` walkers each, three guided sessions a week per
walker (``.../session`` summaries), ``--stumbles`` stumbles a week per treadmill (the trip
and its recording under one incident) and a fall a month (trip, fall, recording: it pages,
so an alert), each incident acknowledged from the dashboard a minute later
(:meth:`CaregiverService.acknowledge`, which closes it and its alert), and a telemetry
message a day per treadmill; all messages go through
:meth:`caregiver.ingest.Ingestor.handle_batch` as ``benchmarks/caregiver_ingest.py`` does
(the service runs its web server and its MQTT link to a throwaway Mosquitto, which carries
the acknowledgements' closes; no escalation ticker, no notifier). No raw SQL writes
anything. Recordings are sim.recordings' fall at ``--rate`` Hz (the belt's is 200 Hz: a
smaller number keeps the fill quick; recordings are read only on the event page and its
plot). Not written: plans and commands sent to the treadmills, walker stages, self-tests
(a handful a walker, not a history).

Then the real Starlette app, served by uvicorn in this process, is asked ``--reads`` times
for each page and API route as a logged-in physio, over HTTP on 127.0.0.1: per route the
p50 / max milliseconds and the response's size are printed, per engine, with the load
average. ``/stream`` is timed to the feed's first message. Then the store's reads the pages
make most, called directly ten times as often (no HTTP, no rendering: less noise on a
shared machine). ``--only progress`` times only the routes whose path has "progress" in
it, and not the store's reads.

    .venv/bin/python benchmarks/caregiver_history.py [--scale 1.0] [--devices 8]
        [--walkers 4] [--stumbles 3] [--reads 15] [--rate 50] [--engine sqlite postgresql]
        [--statistics] [--measures] [--only PATH_PART]

``--statistics``: then the query planner's statistics as the service keeps them
(``Store.optimize``; on PostgreSQL an ``ANALYZE``, autovacuum's work), every read timed again
(p50 before and after, their ratio), and on SQLite every distinct query the reads ran that the
statistics plan otherwise, both plans.

``--measures`` gives every summary an eyes-open balance check and backward gait figures, as
a monitor with the measurement thread sends them: the progress page then has its weekly
trends of balance and gait too, a table each (without, the summaries carry none and those
tables are absent).

Prints figures; asserts nothing (speed is not a test). Run it on two trees one after the
other (the same machine, minutes apart) to compare them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import msgspec  # noqa: E402

from caregiver.config import (  # noqa: E402
    CaregiverConfig,
    CaregiverMqttConfig,
    ServerConfig,
)
from caregiver.routes.site import COOKIE  # noqa: E402
from caregiver.service import CaregiverService  # noqa: E402
from caregiver.storage import Role  # noqa: E402
from caregiver.storage.engines import SqliteDatabase  # noqa: E402
from core.protocol.messages import (  # noqa: E402
    BalanceFigures,
    Direction,
    GaitFigures,
    IntervalSummary,
    SessionRecord,
)
from core.protocol.walker import Walker  # noqa: E402
from firmware.session.record import session_payload  # noqa: E402
from sim.recordings import fall_recording  # noqa: E402
from tools.broker import Mosquitto  # noqa: E402
from tools.pgcluster import PostgresCluster  # noqa: E402

START = dt.datetime(2025, 12, 1, 8, 0, tzinfo=dt.UTC)
"""A Monday: the clinic's year starts here."""
PASSWORD = "a benchmark's password"


class Clock:
    """The service's clock, set to when each message of the year arrives."""

    def __init__(self) -> None:
        self.now = START.timestamp()

    def __call__(self) -> float:
        return self.now


def _wall(at: dt.datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def _event(device_id: str, seq: int, kind: str, at: dt.datetime, group: str, **extra: Any) -> Any:
    data = {
        "schema": 1, "id": uuid.uuid4().hex, "seq": seq, "type": kind, "device_id": device_id,
        "severity": {"fall": "critical", "stumble": "warning"}.get(kind, "info"),
        "state": "TRIPPED", "reason": "benchmark", "incident": group, "wall_time": _wall(at),
        "t_monotonic": at.timestamp() - START.timestamp(), "figures": {},
    }  # fmt: skip
    data.update(extra)
    return data


def _measures(day: int) -> dict[str, Any]:
    """An eyes-open balance check and backward gait, drifting slowly over the year."""
    sway = 0.20 - 0.06 * min(day, 180) / 180 + 0.01 * (day % 3)
    balance = BalanceFigures(
        condition="eyes open", status="measured", duration_s=30.0, axes="mounting",
        rms_ap_ms2=sway, rms_ml_ms2=0.08, rms_ms2=(sway**2 + 0.08**2) ** 0.5, path_ms2=7.3,
        noise_floor_ms2=0.004,
    )  # fmt: skip
    cadence = 86.0 + 6 * min(day, 200) / 200
    gait = GaitFigures(
        analysed_s=600.0, steady_s=480.0, steady_share=0.8, steps=int(480 * cadence / 60),
        axes="mounting", cadence_spm=cadence, step_time_s=60 / cadence,
        step_time_cv_pct=4.0 - 0.5 * (day % 5) / 5, step_regularity=0.7,
        stride_regularity=0.75, rms_ml_ms2=0.9,
    )  # fmt: skip
    return {"balance": [balance], "gait_backward": gait}


SESSION_INTERVALS: tuple[tuple[Direction, float], ...] = (
    ("forward", 10.0),
    ("backward", 6.0),
    ("backward", 4.0),
    ("forward", 10.0),
)
"""A session's intervals: direction and minutes."""


def _session(
    device_id: str, walker: Walker, at: dt.datetime, trips: int, measures: dict[str, Any]
) -> bytes:
    """A 30-minute guided session's summary: 10 minutes backward in two intervals;
    ``measures``: its balance check and gait (:func:`_measures`), or none."""
    intervals = [
        IntervalSummary(
            index=n, direction=direction, speed="0.5 mph", planned_s=minutes * 60,
            done_s=minutes * 60, steps=int(minutes * 90), walking_s=minutes * 57,
            cadence_spm=96.0, trips=trips if n == 1 else 0, stumbles=trips if n == 1 else 0,
        )
        for n, (direction, minutes) in enumerate(SESSION_INTERVALS)
    ]  # fmt: skip
    record = SessionRecord(
        id=uuid.uuid4().hex, device_id=device_id, plan="progression-week-9", status="completed",
        started_wall=_wall(at), ended_wall=_wall(at + dt.timedelta(minutes=32)),
        planned_s=1800.0, planned_backward_s=600.0, done_s=1800.0, backward_s=600.0,
        longest_backward_s=360.0, paused_s=45.0 * trips, pauses=trips, steps=2700,
        walking_s=1710.0, cadence_spm=96.0, trips=trips, stumbles=trips, intervals=intervals,
        walker=walker, **measures,
    )  # fmt: skip
    return session_payload(record, _wall(at + dt.timedelta(minutes=33))).encode()


def _telemetry(device_id: str, at: dt.datetime) -> bytes:
    data = {
        "schema": 1, "device_id": device_id, "wall_time": _wall(at), "outbox_depth": 0,
        "state": "ARMED", "sample_rate_hz": 200.0, "imu_ok": True, "imu_errors": 0,
        "bus_errors": 0, "belt_enabled": True, "storage_ok": True, "uptime_s": 3600.0,
    }  # fmt: skip
    return json.dumps(data).encode()


def _year(args: argparse.Namespace) -> list[tuple[dt.datetime, str, list[tuple[str, bytes]]]]:
    """The clinic's messages in time order: (when, the device, the batch it sends then)."""
    recording = msgspec.to_builtins(fall_recording(rate_hz=args.rate))
    days = int(365 * args.scale)
    out: list[tuple[dt.datetime, str, list[tuple[str, bytes]]]] = []
    for d in range(args.devices):
        device_id = f"tm-{d:02d}"
        topic = f"retroguard/{device_id}"
        walkers = [Walker(f"w{d:02d}-{w}", f"Walker {d}-{w}") for w in range(args.walkers)]
        seq = 0
        incidents = 0
        for day in range(days):
            date = START + dt.timedelta(days=day, minutes=7 * d)
            out.append((date, device_id, [(f"{topic}/telemetry", _telemetry(device_id, date))]))
            if date.weekday() in (0, 2, 4):
                for w, walker in enumerate(walkers):
                    at = date + dt.timedelta(hours=w)
                    trips = 1 if (day + w) % 9 == 0 else 0
                    measures = _measures(day) if args.measures else {}
                    summary = _session(device_id, walker, at, trips, measures)
                    out.append((at, device_id, [(f"{topic}/session", summary)]))
            if date.weekday() >= 5:
                continue
            per_day = args.stumbles / 5
            due = int((day + 1) * per_day) - int(day * per_day)
            for k in range(due):
                at = date + dt.timedelta(hours=1, minutes=20 * k + 5)
                incidents += 1
                group, trip = uuid.uuid4().hex, uuid.uuid4().hex
                kinds = ["stumble"] + (["fall"] if incidents % 13 == 0 else [])
                batch = []
                for kind in kinds:
                    seq += 1
                    extra = {"id": trip} if kind == "stumble" else {}
                    batch.append(_event(device_id, seq, kind, at, group, **extra))
                seq += 1
                batch.append(
                    _event(device_id, seq, "window", at, group, of=trip, recording=recording)
                )
                messages = [(f"{topic}/event", json.dumps(m).encode()) for m in batch]
                out.append((at, device_id, messages))
    out.sort(key=lambda item: item[0])
    return out


def fill(service: CaregiverService, clock: Clock, args: argparse.Namespace) -> dict[str, int]:
    """The year through ingest, each incident acknowledged a minute after it arrived."""
    counts = {"batches": 0, "acks": 0}
    for at, device_id, batch in _year(args):
        clock.now = at.timestamp()
        if not service.ingestor.handle_batch(batch):
            raise RuntimeError(f"the database refused a batch: {service.ingestor.storage_fault}")
        counts["batches"] += 1
        if batch[0][0].endswith("/event"):
            clock.now += 60.0
            # from the page of its newest event that pages (the fall, else the stumble)
            newest = [json.loads(payload) for _, payload in batch if b'"window"' not in payload]
            service.acknowledge(device_id, newest[-1]["id"], "physio")
            counts["acks"] += 1
    return counts


class Browser:
    """A logged-in physio's requests to the served dashboard (one connection a request)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.cookie = f"{COOKIE}={token}"

    def get(self, path: str) -> tuple[int, int]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            page = not path.startswith(("/api/", "/healthz", "/stream")) and "report" not in path
            accept = "text/html" if page else "*/*"  # a page asks for HTML, a script not
            conn.request("GET", path, headers={"cookie": self.cookie, "accept": accept})
            response = conn.getresponse()
            if path == "/stream":  # the feed's first message, then hang up
                body = b""
                while b"\n\n" not in body:
                    body += response.read1(65536)
            else:
                body = response.read()
            return response.status, len(body)
        finally:
            conn.close()


def routes(service: CaregiverService) -> list[str]:
    store = service.store
    device = "tm-00"
    newest = store.events_for(device, limit=200)
    fall = next(e for e in newest if e.type == "fall")
    window = next(e for e in newest if e.type == "window")
    walker = "w00-0"
    return [
        "/",
        "/api/fleet",
        "/api/alarms",
        f"/devices/{device}",
        f"/events/{fall.id}",
        f"/events/{window.id}",
        f"/api/events/{window.id}/plot",
        f"/devices/{device}/progress",
        f"/devices/{device}/progress?walker={walker}",
        f"/devices/{device}/progress?walker={walker}&weeks=all",
        f"/api/devices/{device}/progress",
        f"/api/devices/{device}/trends",
        f"/devices/{device}/plan",
        f"/api/devices/{device}/plan-commands",
        f"/devices/{device}/self-test",
        f"/devices/{device}/report.csv",
        f"/devices/{device}/report.pdf",
        "/healthz",
        "/healthz/receiving",
        "/stream",
    ]


def store_reads(service: CaregiverService) -> dict[str, Callable[[], object]]:
    """The store's reads the pages make most (a page names walkers once a card or alarm)."""
    store, device = service.store, "tm-00"
    return {
        "Store.devices()  (the cards)": store.devices,
        "Store.walkers(device)  (who walked: names on every page)": lambda: store.walkers(device),
        "Store.open_critical(None, 50)  (alarms on every page)": lambda: store.open_critical(
            None, 50
        ),
        "Store.events_for(device)  (the timeline)": lambda: store.events_for(device),
        "Store.incidents_for(device)": lambda: store.incidents_for(device),
        "Store.walk_sessions(device)  (progress, reports)": lambda: store.walk_sessions(device),
    }


def measure(database: str, broker: Mosquitto, args: argparse.Namespace, engine: str) -> None:
    clock = Clock()
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=database, timezone="UTC"),
        mqtt=CaregiverMqttConfig(host=broker.host, port=broker.port),
    )
    service = CaregiverService(config, clock=clock)
    try:
        service.start(background=False, port=0)  # the acks' closes go out to the broker
        filled = time.perf_counter()
        counts = fill(service, clock, args)
        filled = time.perf_counter() - filled
        service.store.checkpoint()
        rows = {
            "events": service.store.event_count(),
            "incidents": sum(
                len(service.store.incidents_for(f"tm-{d:02d}", 1_000_000))
                for d in range(args.devices)
            ),
        }
        print(
            f"  {engine}: filled in {filled:.0f} s: {counts['batches']} batches, "
            f"{counts['acks']} incidents acknowledged; {rows['events']} events, "
            f"{rows['incidents']} incidents"
        )
        clock.now = (START + dt.timedelta(days=int(365 * args.scale) + 1)).timestamp()
        service.accounts.add_user("physio", PASSWORD, Role.PHYSIO)
        token, _ = service.accounts.create_session("physio", 12.0)
        browser = Browser(service.port, token)
        before = time_reads(service, browser, args)
        if args.statistics:
            statistics_compared(service, browser, args, engine, before)
        print(f"    (load average now {os.getloadavg()[0]:.1f})")
    finally:
        service.stop()


def time_reads(
    service: CaregiverService, browser: Browser, args: argparse.Namespace
) -> dict[str, float]:
    """Every route, then the store's reads, timed and printed; the p50 of each by name."""
    p50: dict[str, float] = {}
    for path in [p for p in routes(service) if args.only in p]:
        times, status, size = [], 0, 0
        for _ in range(args.reads):
            start = time.perf_counter()
            status, size = browser.get(path)
            times.append((time.perf_counter() - start) * 1000)
        p50[path] = statistics.median(times)
        print(
            f"    {path[:58]:<58} {status} {size / 1024:7.1f} kB  "
            f"p50 {p50[path]:7.1f} ms  max {max(times):7.1f} ms"
        )
    if args.only:
        return p50
    print("    the store's reads behind them, called directly:")
    for name, read in store_reads(service).items():
        times = []
        for _ in range(args.reads * 10):  # cheap: more of them steady the p50
            start = time.perf_counter()
            read()
            times.append((time.perf_counter() - start) * 1000)
        p50[name] = statistics.median(times)
        print(f"    {name:<58}          p50 {p50[name]:7.2f} ms  max {max(times):7.2f} ms")
    return p50


def statements(service: CaregiverService, browser: Browser) -> list[str]:
    """Every distinct query the routes and the store's reads ran on the SQLite connections
    that run queries (the writing one and the reads'), with their parameters filled in."""
    seen: dict[str, None] = {}

    def heard(sql: str) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.setdefault(sql, None)

    databases = (service.store._db, service.store._reads._db)  # type: ignore[union-attr]
    connections = [db._db for db in databases if isinstance(db, SqliteDatabase)]
    for connection in connections:
        connection.set_trace_callback(heard)
    try:
        for path in routes(service):
            browser.get(path)
        for read in store_reads(service).values():
            read()
    finally:
        for connection in connections:
            connection.set_trace_callback(None)
    return list(seen)


def _plans(database: str, queries: list[str]) -> list[str]:
    import sqlite3

    db = sqlite3.connect(database)  # a new connection: it loads whatever statistics there are
    try:
        return [
            " / ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in queries
        ]
    finally:
        db.close()


def statistics_compared(
    service: CaregiverService,
    browser: Browser,
    args: argparse.Namespace,
    engine: str,
    before: dict[str, float],
) -> None:
    """The statistics the service now keeps (``Store.optimize``, as its housekeeping runs it
    after the reads above: SQLite analyzes what each connection's queries used; PostgreSQL: an
    explicit ``ANALYZE``, autovacuum's work) and each read timed again; on SQLite also every
    query whose plan they changed."""
    database = service.config.server.database
    queries = statements(service, browser) if engine == "sqlite" else []
    plans = _plans(database, queries) if queries else []
    start = time.perf_counter()
    if engine == "sqlite":
        service.store.optimize()
    else:
        import psycopg

        with psycopg.connect(database, autocommit=True) as pg:
            pg.execute("ANALYZE")
    took = (time.perf_counter() - start) * 1000
    print(
        f"    statistics: {'Store.optimize()' if engine == 'sqlite' else 'ANALYZE'} {took:.0f} ms"
    )
    if queries:
        import sqlite3

        db = sqlite3.connect(database)
        (stat1,) = db.execute("SELECT COUNT(*) FROM sqlite_stat1").fetchone()
        db.close()
        print(f"    sqlite_stat1: {stat1} rows")
        changed = [
            (sql, old, new)
            for sql, old, new in zip(queries, plans, _plans(database, queries), strict=True)
            if old != new
        ]
        print(f"    {len(changed)} of {len(queries)} distinct queries planned otherwise:")
        for sql, old, new in changed:
            print(
                f"      {' '.join(sql.split())[:200]}\n        before: {old}\n        after:  {new}"
            )
    after = time_reads(service, browser, args)
    print("    p50 before -> after statistics (ratio after/before):")
    for name, was in before.items():
        print(
            f"      {name[:58]:<58} {was:8.2f} -> {after[name]:8.2f} ms  x{after[name] / was:.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="years of history")
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--walkers", type=int, default=4, help="per treadmill")
    parser.add_argument("--stumbles", type=float, default=3.0, help="incidents a week a treadmill")
    parser.add_argument("--reads", type=int, default=15)
    parser.add_argument("--rate", type=float, default=50.0, help="the recordings' sample rate")
    parser.add_argument(
        "--measures", action="store_true", help="balance and gait figures in every summary"
    )
    parser.add_argument("--only", default="", help="time only the routes with this in them")
    parser.add_argument(
        "--engine", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--statistics",
        action="store_true",
        help="then refresh the query planner's statistics and time every read again",
    )
    args = parser.parse_args()
    print(
        f"caregiver history: {args.scale:g} year(s) of {args.devices} treadmills, "
        f"{args.walkers} walkers each, {args.stumbles:g} incidents a week each; "
        f"{args.reads} reads a route; load average {os.getloadavg()[0]:.1f}"
    )
    cluster: PostgresCluster | None = None
    broker = Mosquitto(persistence=False).start()
    with tempfile.TemporaryDirectory(prefix="retroguard-history-") as work:
        try:
            for engine in args.engine:
                if engine == "postgresql":
                    cluster = PostgresCluster()
                    cluster.start()
                    database = cluster.new_database()
                else:
                    database = str(Path(work) / "caregiver.db")
                measure(database, broker, args, engine)
        finally:
            broker.cleanup()
            if cluster is not None:
                cluster.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
