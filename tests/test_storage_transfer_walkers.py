"""Every walker's records survive the move to memory and back: profiles, choices, and each
walker's plan and progression in force, with their walker, once.

Real SQLite files (and the real courier on a thread, with a real Mosquitto, for a start on a
read-only disk): the courier's connections made read-only or full with SQLite's own pragmas
(tests/storage_support.py), a damaged file by overwriting a table's root page; a "CLI" writing
the file meanwhile is a plain connection of its own, as ``retroguard plan set`` and
``retroguard walker`` open one.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.plan_presets import PRESETS, PROGRESSIONS
from core.protocol.plan import Plan
from core.protocol.topics import Topics
from core.protocol.walker import DEFAULT_WALKER_ID
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import CourierSupervisor, ThreadCourier
from firmware.storage.database import connect, transaction
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.outbox import Outbox
from firmware.storage.plans import (
    assign_plan,
    current_plan,
    current_plans,
    current_revision,
    plan_history,
)
from firmware.storage.progressions import (
    ProgressionState,
    change_progression,
    current_progression,
    start_progression,
)
from firmware.storage.schema import migrate
from firmware.storage.transfer import TRANSFERRED
from firmware.storage.walkers import (
    add_walker,
    remove_walker,
    roster,
    select_walker,
    selected_walker,
)
from tests.app_support import make_config, pump_link_until
from tests.mqtt_helpers import WAIT, config_for
from tests.storage_support import FillableDisk, alert, break_the_root_page
from tools.broker import Mosquitto

TOWARD = PROGRESSIONS["toward-10-minutes"]
WEEK_1, WEEK_2, WEEK_3 = (PRESETS[f"progression-week-{w}"] for w in (1, 2, 3))
ALTERNATE = PRESETS["alternate-2-2"]


@contextmanager
def cli(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own to the file, one transaction, as a ``retroguard`` command."""
    conn = connect(path)
    try:
        with transaction(conn):
            yield conn
    finally:
        conn.close()


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(n)
    finally:
        conn.close()


def on_file(path: Path) -> FallbackDatabase:
    db = FallbackDatabase(path)
    assert db.open().fault is None
    return db


def shared_treadmill(path: Path) -> None:
    """Ann and Bob walk here besides the default walker; each has a plan in force, Ann a
    progression at its second stage, held by her physio, and the default walker's plan is the
    newest row of all."""
    with cli(path) as conn:
        add_walker(conn, "Ann", walker_id="ann", by="admin", wall="w0")
        add_walker(conn, "Bob", walker_id="bob", by="admin", wall="w0")
        start_progression(conn, TOWARD, stage=1, by="Jo", wall="w1", walker="ann")
        change_progression(conn, "hold", by="Jo", wall="w2", walker="ann")
        assign_plan(conn, ALTERNATE, by="Jo", via="mqtt", assigned_wall="w3", walker="bob")
        assign_plan(conn, WEEK_1, by="Jo", via="cli", assigned_wall="w4")


def plans_of(conn: sqlite3.Connection) -> dict[str, Plan | None]:
    return {walker: a.plan for walker, a in current_plans(conn).items()}


def stage_of(state: ProgressionState | None) -> tuple[str, int, bool] | None:
    return None if state is None else (state.progression.name, state.stage, state.held)


SHARED_PLANS = {"ann": WEEK_2, "bob": ALTERNATE, DEFAULT_WALKER_ID: WEEK_1}


# --------------------------------------------- a start on an unwritable file


def test_a_monitor_started_on_a_read_only_disk_hands_the_loop_every_walker_s_plan(
    tmp_path: Path, mosquitto: Mosquitto, disk: FillableDisk
) -> None:
    """The monitor starts on a read-only card: the courier runs from memory and hands the loop
    the plans in force, from which each walker's next session starts. Before, memory held only
    the newest plan row, as the default walker's: the loop was told the default walker's plan
    alone, and Ann's and Bob's sessions walked the config's plan."""
    config = make_config(tmp_path, config_for(mosquitto))
    shared_treadmill(Path(config.storage.database))
    disk.go_read_only()
    link = CourierLink(time.monotonic)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    link.hello(messages.encode(messages.Hello(config, os.getpid(), started)))
    supervisor = CourierSupervisor(link, ThreadCourier)
    supervisor.start()
    told: dict[str, Plan | None] = {}

    def every_walker_told() -> bool:
        told.update(link.take_plan() or {})
        return link.storage_ok is False and set(told) == set(SHARED_PLANS)

    try:
        assert pump_link_until(link, every_walker_told), told
    finally:
        link.goodbye("test over")
        link.close()
        supervisor.stop(WAIT)
    assert told == SHARED_PLANS


# ---------------------------------------------------------------- the audit


def test_the_transfer_copies_every_column_of_every_table_the_migrations_make() -> None:
    """A column the transfer does not name reaches the other side as its default: plans and
    progressions lacked ``walker`` (added by migration 5), sessions their walker and falls
    (migrations 5 and 7). A migration that adds a table or a column fails here until the
    transfer copies it (firmware/storage/transfer.py, TRANSFERRED)."""
    conn = connect(":memory:")
    migrate(conn, "reference")
    tables = {
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    assert set(TRANSFERRED) == tables
    for table, columns in TRANSFERRED.items():
        schema = [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]
        assert len(set(columns)) == len(columns), table
        assert sorted(columns) == sorted(schema), table
    conn.close()


# ------------------------------------------------------- memory and back


def test_a_plan_and_progression_assigned_to_a_walker_in_memory_reach_the_file_as_theirs(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The disk went read-only; the physio assigned Bob a plan and a progression, and held it.
    Before, both came back to the file as the default walker's: Bob's prescription was applied
    to the default walker at the next session start and Bob kept his old plan."""
    path = tmp_path / "device.db"
    shared_treadmill(path)
    before = {t: count(path, t) for t in ("plans", "progressions")}
    db = on_file(path)
    disk.go_read_only()
    db.probe()
    assert db.in_memory
    db.write(lambda c: start_progression(c, TOWARD, stage=2, by="Jo", wall="w5", walker="bob"))
    db.write(lambda c: change_progression(c, "hold", by="Jo", wall="w6", walker="bob"))
    disk.free()
    assert db.recover(now=True)
    db.close()

    conn = connect(path)
    assert plans_of(conn) == {**SHARED_PLANS, "bob": WEEK_3}
    assert stage_of(current_progression(conn, "bob")) == (TOWARD.name, 2, True)
    assert stage_of(current_progression(conn, "ann")) == (TOWARD.name, 1, True)
    assert current_progression(conn) is None  # the default walker was never given one
    # once: the rows copied into memory are not written again, those made there are, once
    assert count(path, "plans") == before["plans"] + 1
    assert count(path, "progressions") == before["progressions"] + 2
    conn.close()


def test_every_walker_s_plan_and_progression_in_force_is_in_memory(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """Before, memory took the single newest plan row and progression row, whoever's they were
    (and as the default walker's): Ann and Bob had none there, and a session either started
    while the disk refused writes ran the config's plan; Ann's held stage was gone."""
    path = tmp_path / "device.db"
    shared_treadmill(path)
    before = {t: count(path, t) for t in ("plans", "progressions", "walker_changes")}
    db = on_file(path)
    disk.go_read_only()
    db.probe()
    assert db.in_memory
    assert db.read(plans_of) == SHARED_PLANS
    assert stage_of(db.read(lambda c: current_progression(c, "ann"))) == (TOWARD.name, 1, True)
    assert db.read(lambda c: current_progression(c, "bob")) is None
    assert [w.id for w in db.read(roster).walkers] == [DEFAULT_WALKER_ID, "ann", "bob"]
    disk.free()
    assert db.recover(now=True)
    db.close()
    assert {t: count(path, t) for t in before} == before  # nothing came back twice


def test_a_damaged_file_s_replacement_keeps_every_walker_s_plan_and_progression(
    tmp_path: Path,
) -> None:
    """A damaged file is moved aside and its readable records carried into a new one through
    memory (:func:`firmware.storage.damage.salvage`): before, only the newest plan went, as the
    default walker's, and every other walker lost their prescription."""
    path = tmp_path / "device.db"
    shared_treadmill(path)
    break_the_root_page(path, "sessions")
    db = FallbackDatabase(path)
    opened = db.open()
    assert opened.moved is not None and opened.fault is None
    assert db.read(plans_of) == SHARED_PLANS
    assert stage_of(db.read(lambda c: current_progression(c, "ann"))) == (TOWARD.name, 1, True)
    assert [w.id for w in db.read(roster).walkers] == [DEFAULT_WALKER_ID, "ann", "bob"]
    db.close()
    assert count(path, "plans") == 3 and count(path, "progressions") == 1


def test_a_damaged_plans_table_does_not_keep_the_queue_from_the_new_file(tmp_path: Path) -> None:
    """The walkers and their plans are copied after the queue and apart from it: before, a
    plans table the damaged file could not give failed the whole salvage, and its queued alert
    stayed only in the file moved aside."""
    path = tmp_path / "device.db"
    shared_treadmill(path)
    outbox = Outbox(path, Topics("retroguard", "tm-1"))
    outbox.enqueue_event(alert())
    outbox.close()
    break_the_root_page(path, "plans")
    db = FallbackDatabase(path)
    opened = db.open()
    assert opened.moved is not None and opened.moved.carried == 1
    assert db.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()) == (1,)
    db.close()


# ---------------------------------------------- the file written meanwhile


@pytest.fixture
def full(tmp_path: Path, disk: FillableDisk) -> FallbackDatabase:
    """The courier runs from memory: an alert bigger than a page found the file full. A small
    row still fits the file's free room, as ``retroguard plan set`` or ``walker`` write it."""
    path = tmp_path / "device.db"
    shared_treadmill(path)
    db = on_file(path)
    disk.fill()
    Outbox(db, Topics("retroguard", "tm-1")).enqueue_event(alert())
    assert db.in_memory
    disk.free()
    return db


def test_a_plan_assigned_in_memory_is_kept_when_the_cli_took_its_id_on_the_file(
    full: FallbackDatabase,
) -> None:
    """The physio gave Bob a plan over MQTT (memory); ``retroguard plan set`` gave Ann one on
    the file meanwhile, under the same row id. Before, the merge ignored memory's row as one
    the file had already: Bob's plan was lost without a word."""
    full.write(
        lambda c: assign_plan(c, WEEK_3, by="Jo", via="mqtt", assigned_wall="w5", walker="bob")
    )
    with cli(full.path) as conn:
        assign_plan(conn, WEEK_1, by="Al", via="cli", assigned_wall="w5", walker="ann")
    assert full.recover(now=True)
    conn = connect(full.path)
    assert plans_of(conn) == {**SHARED_PLANS, "ann": WEEK_1, "bob": WEEK_3}
    assert [a.assigned_wall for a in plan_history(conn, walker="bob")] == ["w5", "w3"]
    plan = current_plan(conn, "bob")  # numbered after the CLI's: the courier forwards it
    assert plan is not None and plan.revision == current_revision(conn)
    conn.close()
    full.close()


def test_a_walker_removed_on_the_file_stays_removed_and_a_choice_in_memory_stays(
    full: FallbackDatabase,
) -> None:
    """``retroguard walker remove bob`` wrote the file while the courier ran from memory, where
    the button chose Ann. Before, the merge wrote memory's stale copy of Bob's profile over the
    file's (Bob back on the button's cycle, removed in his history) and dropped Ann's choice,
    whose row id the removal had taken."""
    full.write(lambda c: select_walker(c, "ann", by="walker", via="button", wall="w5"))
    with cli(full.path) as conn:
        remove_walker(conn, "bob", by="admin", wall="w5")
    assert full.recover(now=True)
    conn = connect(full.path)
    assert [w.id for w in roster(conn).walkers] == [DEFAULT_WALKER_ID, "ann"]
    assert selected_walker(conn).id == "ann"
    changes = conn.execute("SELECT walker, change FROM walker_changes ORDER BY id").fetchall()
    assert changes[-2:] == [("bob", "removed"), ("ann", "selected")]
    conn.close()
    full.close()


def _moved_aside_then_stopped(path: Path, disk: FillableDisk, *also_broken: str) -> None:
    """The shared treadmill's file damaged (its sessions table, and ``also_broken``), moved
    aside at a start while the disk refused a new file (its queue marked to be carried), the
    monitor stopped, the disk free again: the next start carries the old file's records in."""
    shared_treadmill(path)
    break_the_root_page(path, "sessions")
    for table in also_broken:
        break_the_root_page(path, table)
    disk.go_read_only()
    db = FallbackDatabase(path)
    opened = db.open()
    assert opened.moved is not None and opened.fault is not None
    db.close()
    disk.free()


def test_a_plan_carried_from_a_damaged_file_does_not_displace_one_assigned_since(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """A damaged file was moved aside while the disk refused a new one (its queue marked to be
    carried); the monitor stopped; ``retroguard plan set`` then made the new file and gave Ann
    a plan, under the row id Ann's old plan had. The next start carries the old file's records
    in: Ann's old plan, older than the new file, stays behind the one assigned since, and the
    others' plans come in."""
    path = tmp_path / "device.db"
    _moved_aside_then_stopped(path, disk)
    with cli(path) as conn:
        assign_plan(conn, WEEK_3, by="Al", via="cli", assigned_wall="w9", walker="ann")
    db = on_file(path)
    assert db.read(plans_of) == {**SHARED_PLANS, "ann": WEEK_3}
    db.close()


def test_the_damaged_file_s_newest_plan_row_stays_behind_the_new_file_s_under_its_id(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """As above, with the new file's plans reaching the old file's last id (the default
    walker's plan, the newest row copied): that row is a copy too, older than the new file's
    under its id, and stays behind it; only rows after the old file's numbering were made in
    memory."""
    path = tmp_path / "device.db"
    _moved_aside_then_stopped(path, disk)
    with cli(path) as conn:
        for walker in ("ann", "bob", DEFAULT_WALKER_ID):
            assign_plan(conn, WEEK_3, by="Al", via="cli", assigned_wall="w9", walker=walker)
    db = on_file(path)
    assert db.read(plans_of) == {"ann": WEEK_3, "bob": WEEK_3, DEFAULT_WALKER_ID: WEEK_3}
    db.close()


def test_a_plan_made_in_memory_is_kept_when_the_file_had_none_and_the_cli_took_its_id(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """A treadmill whose file never had a plan (no numbering for the table there) went to
    memory; the physio gave Bob a plan over MQTT there and ``retroguard plan set`` gave Ann
    one on the file, both as row 1. Memory's row was made there (every row after the file's
    numbering, none): it comes back under a new id, not left out as a copy."""
    path = tmp_path / "device.db"
    with cli(path) as conn:
        add_walker(conn, "Ann", walker_id="ann", by="admin", wall="w0")
        add_walker(conn, "Bob", walker_id="bob", by="admin", wall="w0")
    db = on_file(path)
    disk.fill()
    Outbox(db, Topics("retroguard", "tm-1")).enqueue_event(alert())
    assert db.in_memory
    disk.free()
    db.write(
        lambda c: assign_plan(c, WEEK_3, by="Jo", via="mqtt", assigned_wall="w5", walker="bob")
    )
    with cli(path) as conn:
        assign_plan(conn, WEEK_1, by="Al", via="cli", assigned_wall="w5", walker="ann")
    assert db.recover(now=True)
    db.close()
    conn = connect(path)
    assert plans_of(conn) == {"ann": WEEK_1, "bob": WEEK_3}
    conn.close()


def test_a_plan_carried_from_a_file_whose_numbering_is_lost_stays_behind_the_new_file_s(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """As above, with the damaged file's numbering unreadable too: which rows were copied is
    unknown, so every row carried is taken for a copy, and Ann's old plan stays behind the
    one the CLI gave her on the new file under its id (never put in force over it)."""
    path = tmp_path / "device.db"
    _moved_aside_then_stopped(path, disk, "sqlite_sequence")
    with cli(path) as conn:
        assign_plan(conn, WEEK_3, by="Al", via="cli", assigned_wall="w9", walker="ann")
    db = on_file(path)
    assert db.read(plans_of) == {**SHARED_PLANS, "ann": WEEK_3}
    db.close()
