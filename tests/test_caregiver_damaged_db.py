"""A caregiver database damaged past its first pages (safety rule 4: a storage fault is
reported, never silent).

SQLite opens such a file: it reads only the header and the schema. Before, it failed only
when a statement reached the damaged page: ``retroguard caregiver users`` and ``report`` of
some devices exited 0 with whatever they could read, a report of another device exited 1 with
"caregiver database: database disk image is malformed" (no file named; exit 1, which the unit
restarts), and the service took alerts it could not store, holding them with the broker
(right: no receipt) while its log and banner said "works again" each time a state message
stored between two failed events. Now the store checks the file when it opens it (``PRAGMA
quick_check``, :meth:`caregiver.storage.Store._check_sqlite`): one line naming the file and
what to do, exit status 2; and a damaged page met later (past what the check read in its
time) is the same named fault, said by the log, the banner and ``/healthz`` until a person
replaces the file, never a receipt for an alert it did not store.

Real SQLite files written by the real ingest, damaged on disk as a power cut or a failing SD
card damages them; the service over a real Mosquitto.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import random
import sqlite3
import struct
import uuid
from pathlib import Path

import pytest

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.ingest import STORING_DAMAGED
from caregiver.service import CaregiverService
from caregiver.storage import store as store_module
from core.protocol.messages import CaregiverPresence
from launcher.cli import main
from tests.caregiver_support import (
    WAIT,
    SimDevice,
    make_config,
    running_service,
    session_record,
)
from tests.mqtt_helpers import subscriber
from tests.test_caregiver_presence import PRESENCE, _presence
from tools.broker import Mosquitto

DEVICES = [f"treadmill-{n}" for n in range(1, 9)]
ADVICE = (
    "The file is damaged: stop the service, move the file aside (with its -wal and -shm files) "
    "and restore a backup, or start afresh with a new file"
)
DAYS = 40
"""Days of sessions and events of 8 treadmills: about 330 pages of 4 KiB, each table on many."""


def _written(path: Path) -> None:
    """A caregiver database as the service's ingest writes it: every day, on each of 8
    treadmills, a guided session's summary and its start and stop events, and once a week a
    stumble with its recording."""
    from firmware.session.record import session_payload

    config = CaregiverConfig(
        server=ServerConfig(database=str(path), timezone="UTC"),
        mqtt=CaregiverMqttConfig(host="127.0.0.1", port=1),
        devices={d: d for d in DEVICES},
    )
    first = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)
    now = [first.timestamp()]
    service = CaregiverService(config, clock=lambda: now[0])
    seqs = dict.fromkeys(DEVICES, 0)

    def event(device: str, kind: str, state: str, when: dt.datetime, **extra: object) -> tuple:
        seqs[device] += 1
        body = {
            "schema": 1, "id": uuid.uuid4().hex, "seq": seqs[device], "type": kind,
            "device_id": device, "severity": "info", "state": state, "reason": kind,
            "wall_time": when.isoformat(timespec="milliseconds"),
            "t_monotonic": 100.0 + seqs[device], "figures": {}, **extra,
        }  # fmt: skip
        return f"retroguard/{device}/event", json.dumps(body).encode()

    try:
        for day in range(DAYS):
            for k, device in enumerate(DEVICES):
                when = first + dt.timedelta(days=day, minutes=40 * k)
                now[0] = when.timestamp()
                record = session_record(device, when, backward_min=10, longest_min=4)
                batch = [
                    event(device, "start", "STARTING", when),
                    (f"retroguard/{device}/session", session_payload(record).encode()),
                    event(device, "stop", "STANDBY", when + dt.timedelta(minutes=35)),
                ]
                if day % 7 == k % 7:
                    batch.append(
                        event(device, "stumble", "TRIPPED", when, incident=uuid.uuid4().hex)
                    )
                assert service.ingestor.handle_batch(batch), service.ingestor.storage_fault
    finally:
        service.store.close()  # its last connection checkpoints the WAL into the file


def _leaves(path: Path, table: str) -> list[int]:
    """The pages holding ``table``'s rows, in key order (SQLite's dbstat table)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path",
            (table,),
        ).fetchall()
    finally:
        conn.close()
    return [int(r[0]) for r in rows]


def _overwrite(path: Path, page: int) -> None:
    """Page ``page`` (from 1) overwritten with garbage, as a torn write or a bad card does."""
    size = 4096
    with path.open("r+b") as f:
        f.seek(size * (page - 1))
        f.write(b"\xff" * 64 + random.Random(page).randbytes(size - 64))


def _newest_sessions_overwritten(path: Path) -> None:
    """The page of the newest sessions overwritten (not page 1, not the schema): the file
    opens, and reading the sessions of the treadmill whose are there meets the damage."""
    leaves = _leaves(path, "walk_sessions")
    assert len(leaves) > 10 and leaves[-1] > 2
    _overwrite(path, leaves[-1])


def _child_pointer_misdirected(path: Path) -> None:
    """An interior page of the events table points at a page of another table: every page
    reads, so no statement need ever fail, and the rows it reads are the wrong ones; only a
    check of the whole tree finds it (quick_check lists it, "2nd reference to page ...")."""
    conn = sqlite3.connect(path)
    try:
        (interior,) = conn.execute(
            "SELECT max(pageno) FROM dbstat WHERE name = 'events' AND pagetype = 'internal'"
        ).fetchone()
    finally:
        conn.close()
    other = _leaves(path, "walk_sessions")
    with path.open("r+b") as f:
        f.seek(4096 * (interior - 1) + 8)  # an interior b-tree page's right-most child
        f.write(struct.pack(">I", other[len(other) // 2]))


def _config_file(tmp_path: Path, database: Path) -> Path:
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\nport = 0\n')
    return config


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database written by ingest for the module; each test damages a copy of it."""
    path = tmp_path_factory.mktemp("written") / "caregiver.db"
    _written(path)
    return path


def _copy(written: Path, tmp_path: Path) -> Path:
    database = tmp_path / "caregiver.db"
    database.write_bytes(written.read_bytes())
    return database


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["users"], id="users"),
        pytest.param(["report", "treadmill-3"], id="report"),
    ],
)
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_newest_sessions_overwritten, "cannot open it: database disk image is malformed. "),
        (_child_pointer_misdirected, "cannot open it: damaged (quick_check: "),
    ],
    ids=["a later page overwritten", "a tree pointer misdirected"],
)
def test_a_file_damaged_past_its_first_pages_is_refused_at_open_naming_it_exit_2(
    written: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    damage: object,
    says: str,
) -> None:
    """Before, ``users`` and this ``report`` exited 0 on either file (they read no damaged
    page), and the service started and took alerts onto it (the service opens the store as
    they do: serving is left out here, as without the check it would serve on). Now every
    command that opens it
    says one line naming the file, what is wrong and what to do, exit status 2 (not restarted:
    only a person can fix it), and the file is left as it was (the record of every incident:
    never moved aside or rewritten by the service)."""
    database = _copy(written, tmp_path)
    damage(database)  # type: ignore[operator]
    before = database.read_bytes()
    capsys.readouterr()
    assert main(["caregiver", "-c", str(_config_file(tmp_path, database)), *command]) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"retroguard caregiver: caregiver database {database}: {says}")
    assert line.endswith(ADVICE)
    assert database.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caregiver.db", "caregiver.toml"]


def test_the_check_of_a_sound_file_lets_it_open(
    written: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same file undamaged: the check finds nothing, the commands work (the report lists
    the treadmill's weeks)."""
    database = _copy(written, tmp_path)
    config = str(_config_file(tmp_path, database))
    assert main(["caregiver", "-c", config, "report", "treadmill-3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("week,") and len(out.splitlines()) > 5


@pytest.fixture
def check_out_of_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check at open runs out of its time before it reaches the damage (a file years
    large on a Pi's SD card), stood in by a time already spent: it stops at its first look at
    the clock, after SQLite's first 10 000 steps."""
    monkeypatch.setattr(store_module, "QUICK_CHECK_WITHIN_S", -1.0, raising=False)


def test_damage_past_what_the_check_read_is_named_when_a_report_meets_it(
    written: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    check_out_of_time: None,
) -> None:
    """Before: exit status 1 and "caregiver database: database disk image is malformed",
    naming no file and no remedy. Now the fault met in use is said as at open, exit 2, after
    the log's warning that the check stopped short."""
    database = _copy(written, tmp_path)
    _newest_sessions_overwritten(database)
    capsys.readouterr()
    config = str(_config_file(tmp_path, database))
    # treadmill-8's last session was the last row written: it is on the overwritten page
    assert main(["caregiver", "-c", config, "report", "treadmill-8"]) == 2
    err = capsys.readouterr().err
    warned, line = err.strip().splitlines()  # the log's warning, then the one line
    assert "checked for damage" in warned and "Traceback" not in err
    assert line.startswith(
        f"retroguard caregiver: caregiver database {database}: database disk image is "
        "malformed. The file is damaged: stop the service, move the file aside"
    )


def test_an_alert_met_by_damage_in_use_is_held_not_receipted_and_the_fault_named(
    written: Path,
    tmp_path: Path,
    mosquitto: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    check_out_of_time: None,
) -> None:
    """The service opened the file (its check ran out of time) and a fall's events reach the
    damaged page: none is stored, so none is receipted (the treadmill keeps them and sends
    them again) nor acknowledged to the broker; the storage fault names the file and what to
    do; ``/healthz/receiving`` says 503 "database damaged"; and it stays said though a state
    message stores between two failed events (before, the log said "works again" and the
    banner went each time, every 2 s as held messages were retried)."""
    database = _copy(written, tmp_path)
    leaves = _leaves(database, "events")
    _overwrite(database, leaves[-1])  # where the next events go
    config = make_config(mosquitto, tmp_path, database=str(database))
    caplog.set_level(logging.INFO, "caregiver")
    with (
        subscriber(mosquitto, ["retroguard/+/receipt", PRESENCE]) as receipts,
        running_service(config) as service,
    ):
        device = SimDevice(mosquitto, "treadmill-1")
        device.online()
        fall = device.incident_fall()  # a state message, then three events
        ingestor = service.ingestor
        # held: the three events (the state message before them stored by the retry)
        assert ingestor.wait_for(
            lambda: ingestor.storage_fault is not None and ingestor.held == 3, WAIT
        ), (ingestor.storage_fault, ingestor.held)
        fault = ingestor.storage_fault
        assert fault.startswith(f"caregiver database {database}: database disk image is malformed")
        assert fault.endswith(ADVICE)
        assert service.store.damage is not None and str(database) in service.store.damage
        assert "the caregiver database works again" not in caplog.text

        health = service.health()
        assert (health.storing, health.database_damaged, health.status) == (
            False, True, "database damaged"
        )  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=WAIT)
        conn.request("GET", "/healthz/receiving")
        answer = conn.getresponse()
        body = json.loads(answer.read())
        conn.close()
        assert answer.status == 503 and body["status"] == "database damaged"
        assert str(database) not in json.dumps(body)  # no login here: no path either

        assert ingestor.receipts_sent == 0
        ids = {fall[name]["id"] for name in ("trip", "fall", "window")}
        assert not any(i in m.payload.decode() for m in receipts.messages for i in ids)
        # the treadmills hear it: online, but storing nothing (nobody is paged)
        assert receipts.wait(
            lambda: bool(_presence(receipts)) and not _presence(receipts)[-1].storing
        )
        said = _presence(receipts)[-1]
        assert said.state == CaregiverPresence.ONLINE and said.fault == STORING_DAMAGED
    assert database.exists()  # kept where it is: a person decides what replaces it
    assert not [p for p in tmp_path.iterdir() if "damaged" in p.name]
