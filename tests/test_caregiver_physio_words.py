"""What a physio reads on a walker's pages, in plain words: how each session ended (never the
protocol's enum), a session the monitor's restart closed (``interrupted``), and the plan page's
"sent" note without leading with an internal request id. Real service, real database."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from msgspec.structs import replace

from caregiver.progress import parse_summary
from caregiver.storage import SCHEMA_VERSION, Store
from caregiver.storage.records import WALK_FIELDS
from tests.caregiver_db import store_at_schema
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    make_config,
    received,
    running_service,
    session_record,
)
from tools.broker import Mosquitto

DEVICE = "treadmill-1"
RESTARTED = "the treadmill restarted before the end was recorded"


def test_the_progress_page_says_how_each_session_ended_and_when_a_restart_closed_it(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """The device marks ``interrupted`` a session its next start closed (docs/sessions.md): the
    page showed only "completed"/"stopped", raw, as if the walker had ended it. An older
    device's summary (no flag) reads as not interrupted."""
    now = dt.datetime.now(dt.UTC)

    def at(hours: int) -> dt.datetime:
        return now - dt.timedelta(hours=hours)

    plain = session_record(DEVICE, at(5), backward_min=10, longest_min=10)
    stopped = replace(session_record(DEVICE, at(4), backward_min=3, longest_min=2),
                      status="stopped")  # fmt: skip
    abandoned = replace(session_record(DEVICE, at(3), backward_min=3, longest_min=2),
                        status="abandoned")  # fmt: skip
    cut_done = replace(session_record(DEVICE, at(2), backward_min=10, longest_min=10),
                       interrupted=True)  # fmt: skip
    cut_short = replace(session_record(DEVICE, at(1), backward_min=3, longest_min=2),
                        status="stopped", interrupted=True)  # fmt: skip
    older = {k: v for k, v in received(cut_done).items() if k != "interrupted"}
    row, problem = parse_summary(older, DEVICE)
    assert row is not None and row.interrupted == 0, problem
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        for record in (plain, stopped, abandoned, cut_done, cut_short):
            device.session(record)
        ingestor = service.ingestor
        assert ingestor.wait_for(lambda: ingestor.sessions_stored >= 5, WAIT)
        stored = {s.id: s.interrupted for s in service.store.walk_sessions(DEVICE, 10)}
        assert stored == {plain.id: 0, stopped.id: 0, abandoned.id: 0, cut_done.id: 1,
                          cut_short.id: 1}  # fmt: skip
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        cells = {
            m[1]: m[2].strip()
            for m in re.finditer(
                r'<tr data-session="(\w+)".*?<td data-label="Status"[^>]*>(.*?)</td>', page, re.S
            )
        }
        assert cells == {
            plain.id: "Completed",
            stopped.id: "Stopped before the end",
            abandoned.id: "Ended after a long pause",
            cut_done.id: f"Completed \u2014 {RESTARTED}",
            cut_short.id: f"Stopped before the end \u2014 {RESTARTED}",
        }
        device.close()


def test_the_plan_page_says_sent_in_words_with_the_request_id_as_small_print(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    """After sending a plan the page led with "Sent (request cg-...)": an internal id a physio
    cannot use. It says what happened; the id stays, for support, as small print."""
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        device.session(session_record(DEVICE, dt.datetime.now(dt.UTC), backward_min=3,
                                      longest_min=2))  # fmt: skip
        assert service.ingestor.wait_for(lambda: service.ingestor.sessions_stored >= 1, WAIT)
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/plan?sent=cg-0123abcd")
        assert status == 200
        note = re.search(r'<p id="plan-status"[^>]*>(.*?)</p>', page, re.S)
        assert note is not None
        assert note[1].startswith("Sent to the treadmill. Its answer appears below")
        assert "(request" not in note[1]
        assert re.search(r'<small class="request-ref"[^>]*>Reference for support: '
                         r"<code>cg-0123abcd</code></small>", note[1])  # fmt: skip
        device.close()


def test_sessions_stored_before_the_restart_flag_read_as_not_interrupted(caregiver_db: str) -> None:
    """Both engines: a database at schema 18 (before ``walk_sessions.interrupted``) holds a
    session; upgraded, it is kept and reads as not interrupted, and a new summary's flag is
    stored."""
    record = session_record(DEVICE, dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), backward_min=10,
                            longest_min=10)  # fmt: skip
    row, problem = parse_summary(received(record), DEVICE)
    assert row is not None, problem
    before = [f for f in WALK_FIELDS if f != "interrupted"]
    with store_at_schema(caregiver_db, 18) as old, old.transaction() as tx:
        tx._db.execute("INSERT INTO devices (device_id, last_seen) VALUES (?, 1.0)", (DEVICE,))
        tx._db.execute(
            f"INSERT INTO walk_sessions ({', '.join(before)}, received_at, payload) "
            f"VALUES ({', '.join('?' * (len(before) + 2))})",
            (*(getattr(row, f) for f in before), 1.0, "{}"),
        )
    store = Store(caregiver_db)
    try:
        assert (store.schema.before, store.schema.after) == (18, SCHEMA_VERSION)
        (kept,) = store.walk_sessions(DEVICE, 10)
        assert kept == row and kept.interrupted == 0
        cut = replace(session_record(DEVICE, dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC),
                                     backward_min=3, longest_min=2), interrupted=True)  # fmt: skip
        new, problem = parse_summary(received(cut), DEVICE)
        assert new is not None, problem
        with store.transaction() as tx:
            assert tx.record_walk_session(new, "{}", 2.0) == "new"
        assert [s.interrupted for s in store.walk_sessions(DEVICE, 10)] == [1, 0]
    finally:
        store.close()
