"""Session 36's new code: decisions that hand mutation (mut37) found no test noticing.

Mutants killed here (each survived the tests of its module before):

* tools/walkers: the monitor told of a selection stored in another database than its own, and
  not told of one stored in its own (the database comparison turned round). Turning it round
  changed nothing: ``--db`` rewrote the config before the comparison, so every ``--db`` was
  "the config's" (a bug, fixed with this test).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.plan_presets import PRESETS
from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.session.runner import attach_session, detach_session
from firmware.storage.database import connect, transaction
from firmware.storage.walkers import add_walker, select_walker
from tests.app_support import Heard, Rig, close_rigs, make_rig, pump_link_until

ANNA = Walker("anna", "Anna")
BEN = Walker("ben", "Ben")


def _registered(tmp_path: Path, selected: str | None = None) -> Path:
    """Anna and Ben in the device database (``selected`` chosen), as ``retroguard walker``."""
    db = tmp_path / "events.db"
    conn = connect(db)
    try:
        with transaction(conn):
            add_walker(conn, "Anna", walker_id="anna", by="Jo", wall="w1")
            add_walker(conn, "Ben", walker_id="ben", by="Jo", wall="w2")
            if selected is not None:
                select_walker(conn, selected, by="Jo", via="cli", wall="w3")
    finally:
        conn.close()
    return db


def _walker_cli(rig: Rig, argv: list[str]) -> int:
    """``retroguard walker ...`` on its own thread while the loop runs (it answers the control
    socket's request on a tick); its exit code."""
    from launcher.cli import main

    codes: list[int] = []
    command = threading.Thread(target=lambda: codes.append(main(["walker", *argv])))
    command.start()
    for _ in range(100_000):  # the loop answers the socket's request; a bound, not a timing
        if not command.is_alive():
            break
        rig.run_for(0.01)
    command.join()
    return codes[0]


@pytest.mark.usefixtures(close_rigs.__name__)
def test_select_tells_the_monitor_of_its_own_database_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no ``--socket``, ``retroguard walker select`` tells the monitor at the config's
    control socket only when the database it stored the choice in is the config's: a choice in
    a copy of the database (another file) is none of the running monitor's, and it is not told;
    a choice in its own database is told at once."""
    db = _registered(tmp_path)
    sock = tmp_path / "session.sock"
    config = tmp_path / "retroguard.toml"
    config.write_text(f'[storage]\ndatabase = "{db}"\n\n[session]\ncontrol_socket = "{sock}"\n')
    rig = make_rig(tmp_path)
    runner = attach_session(
        rig.app, PRESETS["alternate-2-2"], speaker=Heard(), control_socket=str(sock)
    )
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(1.0)
    rig.courier.forward_roster = lambda **_: None  # type: ignore[method-assign]  # its next look
    (tmp_path / "copy").mkdir()
    other = _registered(tmp_path / "copy")
    capsys.readouterr()
    assert _walker_cli(rig, ["-c", str(config), "--db", str(other), "select", "anna"]) == 0
    assert "The running monitor" not in capsys.readouterr().out
    assert runner.walker == DEFAULT_WALKER

    assert _walker_cli(rig, ["-c", str(config), "select", "ben"]) == 0
    assert "The running monitor has it: the monitor's next session is Ben's." in (
        capsys.readouterr().out
    )
    assert runner.walker == BEN
    detach_session(rig.app, runner)
