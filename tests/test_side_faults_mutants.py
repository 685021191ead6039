"""Parts of the caregiver database the service goes on without: decisions that hand mutation
(mut31) found no test noticing.

docs/safety.md says a storage fault is reported, never silent; for a side table (the
walkers' names, a fall's recording, the sessions...) that is :class:`SideFaults`, said by the
dashboard's banner and ``/healthz`` and logged once when it starts and once when it ends
(docs/caregiver.md, "Parts of the database the service goes on without"). Its bookkeeping is
pure (a part failed, a part works, a clock for the wall time people read), so these tests
drive it with a scripted clock whose times are exact in binary; what people read of it goes
through the real :func:`caregiver.health.health_of` and :func:`caregiver.feed.side_message`.
The paths that set and clear it in ingest run on the real service over the real broker
(:mod:`tests.test_ingest_side_tables`).

Survivors left alone, each equivalent (no input tells it from the original) unless said:

* side_faults: the unlocked ``not self._faults`` early return of ``works`` dropped (the
  locked look then finds nothing to clear); ``before is None`` dropped (the same).
* ingest: the ``if faults.failing`` guard before a batch's telemetry is said to work, always
  true (``works`` on a part not failing is a no-op: the guard saves a closure a batch).
* store: ``settle=True`` dropped from :meth:`Store.attachment` *survives, not shown
  equivalent*: on PostgreSQL in a pipelined batch the refused recording's error still comes
  inside the savepoint, most likely at the recording's second statement (its event's
  ``has_window``: psycopg takes in the answers that have come as it sends the next); an
  attachment of one statement would get it at the RELEASE, outside the savepoint, and lose
  the batch. The store has no such write to test it with.
* stream: the live feed's ``works(Part.PLANS)`` after it reads a card's plan line dropped
  *survives, not equivalent*: it is reached only with a browser on the live feed when a
  card changes; the pages' read of the line (:func:`caregiver.progress.card_plan`, tested
  here) and the housekeeping look within 10 s clear the part all the same.

Not mutated here: :meth:`Store.probe_side_faults` and the parts' tables it reads (another
helper, flap31, changed how the probe clears a part meanwhile: a read clears only a failed
read, tested in :mod:`tests.test_side_faults`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from caregiver import feed
from caregiver.broker_link import Connected, Lost, Problem
from caregiver.health import health_of
from caregiver.progress import card_plan
from caregiver.routes.api import event_plot_series
from caregiver.routes.pages import RECORDING_UNREAD, recording_missing
from caregiver.service import CaregiverService
from caregiver.storage import Part, SideFault, SideFaults, Store, Table, Use
from core.protocol import payloads
from core.protocol.messages import SCHEMA_VERSION, TelemetryMessage, WalkersMessage
from core.protocol.walker import DEFAULT_WALKER
from tests.caregiver_db import execute
from tests.caregiver_support import WAIT, Receiver, SimDevice, new_event
from tests.stage_support import STAGE_EXAMPLE
from tests.test_card_plan import _walked
from tests.test_caregiver_service import _fake_clock_service
from tools.broker import Mosquitto, mosquitto_available

DEVICE = "treadmill-1"


class Clock:
    """Wall times the test sets (seconds, exact in binary)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


PG_ERROR = (
    'relation "recordings" does not exist\n'
    "LINE 1: INSERT INTO recordings (trip_id, event_id, blob) VALUES ($1...\n"
    "                    ^"
)
"""A PostgreSQL error as psycopg words it: the statement and a caret under the first line."""


def _moment(at: float, _format: str) -> feed.Moment:
    return feed.Moment(str(at), str(at))


def test_a_part_failing_again_keeps_its_first_fault_and_time_and_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A side table refuses every message of its kind, each one a ``failed``: the banner and
    /healthz say since when it has failed, which is the first time, and the log says it once
    (mutant: the early return of ``failed`` for a part already failing dropped: the "since"
    moved on with every message, the log said it each time and the banner was said again)."""
    clock = Clock(1000.5)
    faults = SideFaults(clock)
    changes: list[int] = []
    faults.on_change = lambda: changes.append(1)
    caplog.set_level(logging.INFO, logger="caregiver.storage.side_faults")
    faults.failed(Part.SESSIONS, "walk_sessions: no such table", Use.WRITE, Part.SESSIONS.tables)
    clock.now = 1060.25
    faults.failed(Part.SESSIONS, "database is locked", Use.WRITE, Part.SESSIONS.tables)
    assert faults.now() == (
        SideFault(
            Part.SESSIONS,
            "walk_sessions: no such table",
            1000.5,
            frozenset({(Table.WALK_SESSIONS, Use.WRITE)}),
        ),
    )
    assert changes == [1]
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.ERROR,
            "guided sessions cannot be stored (walk_sessions: no such table): alerts are still "
            "stored and notified, but new sessions are missing from progress and reports (the "
            "treadmill sends them again) until it works again",
        )
    ]


def test_a_part_that_works_again_is_said_once_and_one_not_failing_not_at_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The end of a fault is logged once, as its start was (docs/caregiver.md), and only the
    end of one: every read of the walkers' names that works calls ``works`` (mutant: the
    "works again" line dropped: the log said when the names failed and never that they came
    back, so whoever reads it takes them for failing still)."""
    faults = SideFaults(Clock(1000.5))
    changes: list[int] = []
    faults.on_change = lambda: changes.append(1)
    faults.works(Part.WALKERS, Use.READ, Part.WALKERS.tables)  # not failing: nothing to say
    assert changes == [] and caplog.records == []
    caplog.set_level(logging.INFO, logger="caregiver.storage.side_faults")
    faults.failed(Part.WALKERS, "device_walkers: no such table", Use.READ, Part.WALKERS.tables)
    assert faults.failing  # the service's housekeeping looks at the tables while it is
    faults.works(Part.WALKERS, Use.READ, Part.WALKERS.tables)
    faults.works(Part.WALKERS, Use.READ, Part.WALKERS.tables)
    assert faults.now() == () and not faults.failing
    assert changes == [1, 1]
    assert [(r.levelno, r.getMessage()) for r in caplog.records][1:] == [
        (logging.INFO, "walkers works again: the walkers' names can be read or stored")
    ]


def test_a_postgresql_fault_is_said_by_its_first_line() -> None:
    """PostgreSQL's errors add the statement and a caret under it: the banner (one line, on a
    phone too) and /healthz say the first line that has words, the table's name in it (mutants:
    the whole text kept, or the first line kept though blank)."""
    faults = SideFaults(Clock(1000.5))
    faults.failed(Part.RECORDINGS, PG_ERROR, Use.READ, Part.RECORDINGS.tables)
    faults.failed(
        Part.WALKERS,
        "\n  \n" + PG_ERROR.replace("recordings", "device_walkers"),
        Use.READ,
        Part.WALKERS.tables,
    )
    assert [(f.part, f.fault) for f in faults.now()] == [
        (Part.RECORDINGS, 'relation "recordings" does not exist'),
        (Part.WALKERS, 'relation "device_walkers" does not exist'),
    ]


def test_the_parts_are_said_oldest_first_from_the_time_each_failed() -> None:
    """/healthz lists the parts "the oldest first", and the banner says since when the first
    failed (mutants: the clock's time not kept; the newest first; the banner's time the
    newest part's)."""
    clock = Clock(1_700_000_040.0)  # 22:14:00 UTC
    faults = SideFaults(clock)
    faults.failed(Part.WALKERS, "device_walkers: no such table", Use.READ, Part.WALKERS.tables)
    clock.now += 120.0
    faults.failed(Part.RECORDINGS, "recordings: no such table", Use.READ, Part.RECORDINGS.tables)
    assert [(f.part, f.since) for f in faults.now()] == [
        (Part.WALKERS, 1_700_000_040.0),
        (Part.RECORDINGS, 1_700_000_160.0),
    ]
    health = health_of((), Connected(), 0.0, storing=True, side=faults.now())
    assert health.status == "degraded"
    assert [(p.part, p.since) for p in health.database_parts] == [
        ("walkers", "2023-11-14T22:14:00Z"),
        ("recordings", "2023-11-14T22:16:00Z"),
    ]
    assert health.database_parts[0].said.startswith(
        "the walkers' names cannot be read or stored since 22:14\u00a0UTC: alerts are still"
    )
    banner = feed.side_message(faults.now(), _moment)
    assert banner.since == _moment(1_700_000_040.0, "minute")
    assert banner.detail == (
        "the walkers' names cannot be read or stored (device_walkers: no such table); "
        "falls' sensor recordings cannot be stored or read (recordings: no such table)"
    )


def test_healthz_says_the_parts_failing_while_the_broker_is_down_too() -> None:
    """A broker gone does not make the database's parts work: /healthz still lists them, for
    whoever looks after the service (mutant: the parts left out of the answer while not
    receiving)."""
    faults = SideFaults(Clock(1_700_000_040.0))
    faults.failed(Part.RECORDINGS, "recordings: no such table", Use.READ, Part.RECORDINGS.tables)
    link = Lost(1_700_000_100.0, 50.0, Problem.DROPPED)
    health = health_of((), link, 60.0, storing=True, side=faults.now())
    assert health.status == "not receiving"
    assert [p.part for p in health.database_parts] == ["recordings"]


def test_side_faults_with_nobody_to_tell_log_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """A store without a dashboard (a tool, a test) has no ``on_change``: a part failing is
    logged as a fault, and nothing says the banner could not be said (mutant: the check for
    no ``on_change`` dropped: every change logged a TypeError as the banner's error)."""
    faults = SideFaults(Clock(1000.5))
    faults.failed(Part.PLANS, "walker_stages: no such table", Use.READ, Part.PLANS.tables)
    faults.works(Part.PLANS, Use.READ, Part.PLANS.tables)
    assert [r for r in caplog.records if r.exc_info] == []


def test_an_attachment_written_outside_a_transaction_is_its_own(caregiver_db: str) -> None:
    """:meth:`Store.attachment` outside a transaction is written and committed on its own, as
    documented (mutant: the branch for no open transaction dropped: its savepoint had no
    transaction around it)."""
    store = Store(caregiver_db)
    try:
        trip = new_event(1)
        with store.transaction() as tx:
            assert tx.record_event(trip, 1.0)
        store.attachment(lambda ops: ops.store_recording(trip.id, trip.id, b"recorded"))
        assert store.recording(trip.id) == b"recorded"
    finally:
        store.close()
    again = Store(caregiver_db)  # committed: another connection reads it
    try:
        assert again.recording(trip.id) == b"recorded"
    finally:
        again.close()


def test_a_page_that_reads_a_part_again_says_it_works(caregiver_db: str) -> None:
    """A fall's page reads its recording, a card its plan line: a read that works says its
    part works again at once, not at the housekeeping's next look at its tables (mutants: the
    ``works`` after the plot's read of the recording, and after the card's plan line,
    dropped)."""
    store = Store(caregiver_db)
    try:
        trip = new_event(1)
        with store.transaction() as tx:
            assert tx.record_event(trip, 1.0)
        store.side_faults.failed(
            Part.RECORDINGS, "recordings: no such table", Use.READ, Part.RECORDINGS.tables
        )
        store.side_faults.failed(
            Part.PLANS, "walker_stages: no such table", Use.READ, Part.PLANS.tables
        )
        event_plot_series(store, trip.id)
        assert [f.part for f in store.side_faults.now()] == [Part.PLANS]
        assert card_plan(store, trip.device_id) == ""  # no session yet: no line, no stage read
        assert [f.part for f in store.side_faults.now()] == [Part.PLANS]
        _walked(store, 3, "Anna, week 3")  # its card now reads every table of its line
        assert card_plan(store, trip.device_id).startswith("Plan: ")
        assert store.side_faults.now() == ()
    finally:
        store.close()


def test_a_recordings_page_says_it_cannot_be_read_only_while_the_recordings_fail(
    caregiver_db: str,
) -> None:
    """A recording's page says its recording "cannot be read now" while the recordings part
    fails, and not otherwise (mutant: said of every recorded event, the part failing or
    not: a sound dashboard told the physio the recording was unreadable)."""
    store = Store(caregiver_db)
    try:
        window = new_event(1, type="window")
        with store.transaction() as tx:
            assert tx.record_event(window, 1.0)
        stored = store.event(window.id)
        assert stored is not None
        assert recording_missing(store, stored) == ""
        store.side_faults.failed(
            Part.RECORDINGS, "recordings: no such table", Use.READ, Part.RECORDINGS.tables
        )
        assert recording_missing(store, stored) == RECORDING_UNREAD
    finally:
        store.close()


# -- ingest: a part said to work only once what proved it has committed -----------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def service(
    mosquitto: Mosquitto, tmp_path: Path, receiver: Receiver, caregiver_db: str
) -> Iterator[CaregiverService]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    started, _ = _fake_clock_service(mosquitto, tmp_path, receiver, database=caregiver_db)
    yield started
    started.stop()


def _committed_when_said(
    service: CaregiverService, database: str, sql: str, params: tuple[object, ...]
) -> list[bool]:
    """What another connection (one that sees only what is committed) finds of ``sql`` each
    time a part is said to work."""
    said: list[bool] = []

    def look() -> None:
        said.append(bool(execute(database, sql, params)))

    service.store.side_faults.on_change = look
    return said


def test_telemetry_and_a_roster_in_a_batch_say_their_parts_work_once_committed(
    service: CaregiverService, caregiver_db: str
) -> None:
    """A batch says a part works again after it commits (a batch that then failed would leave
    the part said working, the banner gone, its figures and names not stored; mutants: the
    batch's telemetry, and a side message's part (``_stored_again``), said from inside the
    batch's transaction)."""
    faults = service.store.side_faults
    faults.failed(Part.TELEMETRY, "caregiver database: locked", Use.WRITE, Part.TELEMETRY.tables)
    faults.failed(Part.WALKERS, "caregiver database: locked", Use.WRITE, (Table.DEVICE_WALKERS,))
    now = dt.datetime.now(dt.UTC).isoformat()
    telemetry = TelemetryMessage(
        schema=SCHEMA_VERSION, device_id=DEVICE, wall_time=now, outbox_depth=3
    )
    roster = WalkersMessage(
        schema=SCHEMA_VERSION, device_id=DEVICE, wall_time=now, walkers=[DEFAULT_WALKER]
    )
    said = _committed_when_said(
        service,
        caregiver_db,
        "SELECT 1 FROM devices d JOIN device_walkers w ON w.device_id = d.device_id "
        "WHERE d.device_id = ? AND d.telemetry IS NOT NULL",
        (DEVICE,),
    )
    prefix = f"retroguard/{DEVICE}"
    assert service.ingestor.handle_batch(
        [
            (f"{prefix}/walkers", msgspec.json.encode(roster)),
            (f"{prefix}/telemetry", msgspec.json.encode(telemetry)),
        ]
    )
    assert faults.now() == ()
    assert said == [True, True], "a part was said to work before the batch committed"


def _state_reason(service: CaregiverService) -> str | None:
    card = service.store.device(DEVICE)
    return card["state_reason"] if card is not None else None


def test_a_recording_stored_in_a_batch_says_its_part_works_once_committed(
    mosquitto: Mosquitto, service: CaregiverService, caregiver_db: str
) -> None:
    """A batch writes its recordings at its end and says the part works when the batch has
    committed (mutant: said at once, from inside the batch's transaction)."""
    device = SimDevice(mosquitto, DEVICE)
    try:
        device.online()
        ids = device.incident_fall()
        assert service.ingestor.wait_for(
            lambda: service.store.event(ids["window"]["id"]) is not None, WAIT
        )
        # The window's batch says its recording stored after its commit, which another
        # connection may see first: a state sent now comes in a later batch, and once it is
        # stored the ingest thread has done all of the window's. (Without this wait the test
        # failed once on a loaded machine, as a late "works" of the old recording would.)
        device.set_state("TRIPPED", "after the fall")
        assert service.ingestor.wait_for(lambda: _state_reason(service) == "after the fall", WAIT)
        service.store.side_faults.failed(
            Part.RECORDINGS, "caregiver database: locked", Use.WRITE, Part.RECORDINGS.tables
        )
        device.seq += 1
        window = dict(ids["window"], id=uuid.uuid4().hex, seq=device.seq)
        said = _committed_when_said(
            service, caregiver_db, "SELECT 1 FROM events WHERE id = ?", (window["id"],)
        )
        topic = f"retroguard/{DEVICE}/event"
        assert service.ingestor.handle_batch([(topic, json.dumps(window).encode())])
        assert service.store.side_faults.now() == ()
        assert said == [True], "the part was said to work before the batch committed"
    finally:
        device.close()


def test_a_walkers_stage_stored_says_the_progression_works_not_the_sessions(
    service: CaregiverService,
) -> None:
    """A walker's stage is kept with the progression (``walker_stages``): one stored says that
    part works again, and says nothing of the sessions' table, which may still refuse its
    summaries (mutant: a stage's kind counted in the sessions' part, which a stored stage then
    said to work while the progression stayed said failing)."""
    faults = service.store.side_faults
    faults.failed(Part.PROGRESS, "walker_stages: no such table", Use.WRITE, (Table.WALKER_STAGES,))
    faults.failed(Part.SESSIONS, "walk_sessions: no such table", Use.WRITE, Part.SESSIONS.tables)
    topic = f"retroguard/{DEVICE}/stage/{STAGE_EXAMPLE.walker.id}"
    assert service.ingestor.handle(topic, payloads.encode(STAGE_EXAMPLE).encode())
    assert service.store.walker_stage(DEVICE, STAGE_EXAMPLE.walker.id) is not None
    assert [f.part for f in faults.now()] == [Part.SESSIONS]


SIDE_LEAD = "Part of the service's database cannot be used"


def test_the_banner_says_alerts_not_stored_before_a_part_of_the_database(
    service: CaregiverService,
) -> None:
    """The banner has one line for the worst news: a database that stores no alert must not
    be hidden behind "part of the database cannot be used, alerts are still stored and
    notified", which would then be false (mutant: the side faults' banner said while the
    database refused)."""
    service.store.side_faults.failed(
        Part.WALKERS, "device_walkers: no such table", Use.READ, Part.WALKERS.tables
    )
    assert service.hub.broker.lead == SIDE_LEAD
    assert service.store.on_damaged is not None  # the service's: what a damaged page calls
    service.store.on_damaged("caregiver database: database disk image is malformed")
    banner = service.hub.broker
    assert banner.lead == "Not storing alerts from the treadmills" and not banner.degraded


def test_the_banner_says_alerts_not_received_before_a_part_of_the_database(
    mosquitto: Mosquitto, service: CaregiverService
) -> None:
    """Nor behind it a broker that delivers no alert (mutant: the side faults' banner said
    while the broker was gone)."""
    service.store.side_faults.failed(
        Part.WALKERS, "device_walkers: no such table", Use.READ, Part.WALKERS.tables
    )
    assert service.hub.broker.lead == SIDE_LEAD
    mosquitto.stop()
    link = service.ingestor.link
    assert link.wait_for(lambda s: isinstance(s, Lost), WAIT), link.state
    banner = service.hub.broker
    assert banner.down and not banner.degraded and banner.lead != SIDE_LEAD
