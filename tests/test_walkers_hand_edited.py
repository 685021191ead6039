"""A walker row that breaks the contract, stored by a hand edit of the device's database.

Every writer checks a walker first, so only an edit by hand stores one (an id with a space,
a name with a control character). Handed to the loop as it was, the loop's reading of the
link refused the roster: the link was dropped, the courier was started again every few
seconds (a "stopped without shutting down" FAULT event each time) and nothing the loop sent
was confirmed on disk. Such a row is left out of the roster now, said in the log and by
``retroguard walker list``, and ``retroguard walker remove`` takes it off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.protocol.events import EventType
from firmware.storage.database import connect, transaction
from firmware.storage.walkers import (
    add_walker,
    remove_walker,
    roster,
    select_walker,
    selected_walker,
)
from tests.app_support import close_rigs, make_rig, pump_link_until
from tests.log_support import LogLines, lines_of

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


@pytest.fixture
def courier_said() -> Iterator[LogLines]:
    with lines_of("firmware.courier.service", logging.WARNING) as said:
        yield said


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("id", "Anna B"),
        ("name", "Anna\x07B"),
        ("name", ""),
        # as the writers' check reads it, trimmed, "Anna B"; as stored, past the wire's 40
        ("name", "Anna" + " " * 40 + "B"),
        ("name", "Anna\nB"),  # trimmed, one space; as stored, a line break spoken and shown
        # not UTF-8 (typed in a Latin-1 terminal's sqlite3): it could not even be read
        ("name", b"Ren\xe9e"),
    ],
)
def test_a_walker_row_edited_by_hand_is_left_out_said_and_the_loop_s_records_reach_the_disk(
    tmp_path: Path,
    courier_said: LogLines,
    capsys: pytest.CaptureFixture[str],
    column: str,
    value: str | bytes,
) -> None:
    from launcher.cli import main

    rig = make_rig(tmp_path)
    db = str(rig.app.config.storage.database)
    conn = connect(db)
    try:
        with transaction(conn):
            add_walker(conn, "Anna B", by="Jo", wall="w1")
            add_walker(conn, "Ben", walker_id="ben", by="Jo", wall="w2")
            conn.execute(
                f"UPDATE walkers SET {column} = CAST(? AS TEXT) WHERE id = 'anna-b'", (value,)
            )
    finally:
        conn.close()
    bad_id = value if column == "id" else "anna-b"
    link = rig.app.link
    assert pump_link_until(
        link, lambda: link._new_roster is not None and link._new_roster.revision == 2
    )
    assert link._new_roster is not None
    assert [w.id for w in link._new_roster.walkers] == ["default", "ben"]
    told = [line for line in courier_said.lines if f"walker {bad_id!r}" in line]
    assert len(told) == 1 and f"retroguard walker remove {bad_id!r} takes it off" in told[0]
    # the roster sent again unchanged (a walker chosen with the button; each look while the
    # link to the loop is down): said once a change, not once a second
    rig.courier.forward_roster(force=True)
    assert [line for line in courier_said.lines if f"walker {bad_id!r}" in line] == told

    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "ARMED"
    assert EventType.RESET in rig.events()  # the arming, confirmed on disk by the courier
    supervisor = rig.app.supervisor
    assert supervisor is not None and supervisor.starts == 1  # the link held

    assert main(["walker", "--db", db, "list"]) == 0
    out = capsys.readouterr().out
    assert "  2. ben" in out and f"  ! walker {bad_id!r}" in out
    assert main(["walker", "--db", db, "remove", bad_id]) == 0
    out = capsys.readouterr().out
    assert "removed; their records stay" in out and "  ! " not in out


def test_a_chosen_walker_edited_out_and_removed_is_not_chosen_again_when_added_back(
    tmp_path: Path,
) -> None:
    """A walker chosen, then edited by hand out of the contract, reads as the default walker
    chosen; removed, they leave the default chosen on record, as any chosen walker removed
    does. The removal asked who was chosen through the roster, which had left them out, so
    their choice stayed the last on record: added back (``--id``) they were chosen again,
    and the next session's records went to them with no one having chosen them."""
    conn = connect(str(tmp_path / "w.db"))
    try:
        with transaction(conn):
            add_walker(conn, "Anna B", by="Jo", wall="w1")
            select_walker(conn, "anna-b", by="Jo", via="cli", wall="w2")
            conn.execute("UPDATE walkers SET name = 'Anna\x07B' WHERE id = 'anna-b'")
        assert selected_walker(conn).id == "default"
        with transaction(conn):
            remove_walker(conn, "anna-b", by="Jo", wall="w3")
            add_walker(conn, "Anna B", walker_id="anna-b", by="Jo", wall="w4")
        assert selected_walker(conn).id == "default"
    finally:
        conn.close()


def test_the_default_walker_edited_out_leaves_the_default_walker_on_the_roster(
    tmp_path: Path,
) -> None:
    """Every row edited out of the contract, the default's too: the roster is the default
    walker still, and chosen, so the loop has a walker to record under (mut39: an empty
    roster left nobody chosen, and asking who was chosen raised)."""
    conn = connect(str(tmp_path / "w.db"))
    try:
        with transaction(conn):
            conn.execute("UPDATE walkers SET name = 'Default\x07walker' WHERE id = 'default'")
        assert [w.id for w in roster(conn).walkers] == ["default"]
        assert selected_walker(conn).id == "default"
        assert len(roster(conn).refused) == 1
    finally:
        conn.close()
