"""Walker profiles: the typed walker, the device's registry (migration 5, old files kept working)
and the local CLI, which writes the database and arms nothing."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import deque
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from core.plan_presets import PRESETS
from core.protocol.commands import (
    AssignPlan,
    ChangeProgression,
    CommandRefused,
    encode_command,
    parse_command,
)
from core.protocol.events import EventType
from core.protocol.messages import ProgressMessage, ProtocolError, SessionRecord, SessionSummary
from core.protocol.payloads import decode_as, encode
from core.protocol.topics import Topics
from core.protocol.walker import (
    DEFAULT_WALKER,
    MAX_WALKERS,
    Walker,
    WalkerInvalid,
    check_walker_name,
    walker_id_for,
)
from firmware.mqtt.status import RetainedStatus
from firmware.safety import SafetyState
from firmware.session.runner import (
    SessionRunner,
    SessionState,
    attach_session,
    detach_session,
)
from firmware.storage.database import connect, transaction
from firmware.storage.sessions import load_sessions, save_session
from firmware.storage.walkers import (
    add_walker,
    remove_walker,
    roster,
    roster_revision,
    said_alike,
    select_walker,
    walker_names,
)
from tests.app_support import Heard, Rig, close_rigs, make_rig, pump_link_until
from tests.caregiver_support import session_record, walked
from tests.mqtt_helpers import schema
from tests.storage_support import database_at_version
from tools.broker import Mosquitto


def test_a_walker_is_an_id_and_a_name_checked_on_the_wire() -> None:
    anna = msgspec.json.decode(b'{"id": "anna-b", "name": "Anna B"}', type=Walker)
    assert anna == Walker("anna-b", "Anna B")
    bad_ids = (b'"Anna"', b'"a/b"', b'"anna\\n"')  # "$" would let a final newline through
    for bad in (*(b'{"id": %s, "name": "x"}' % i for i in bad_ids), b'{"id": "a"}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=Walker)
    assert walker_id_for("Anna B.") == "anna-b"
    assert walker_id_for("Anna B.", {"anna-b"}) == "anna-b-2"
    assert walker_id_for("Zoë") == "zoe"
    assert walker_id_for("李") == "walker"
    assert check_walker_name("  Anna   B ") == "Anna B"
    with pytest.raises(WalkerInvalid, match="blank"):
        check_walker_name("   ")


def test_an_old_database_is_the_default_walker_s(tmp_path: Path) -> None:
    """A version-4 file (sessions, plans, an incident) upgrades: every record is the default
    walker's, and the default walker is registered and chosen."""
    db = tmp_path / "device.db"
    old = database_at_version(db, 4)
    old.execute(
        "INSERT INTO sessions (id, device_id, plan, status, started_wall, planned_s, done_s,"
        " backward_s, longest_backward_s, steps, walking_s, trips, stumbles, body)"
        " VALUES ('s1', 'tm', 'p', 'completed', '2026-11-30T10:00:00+00:00', 1, 1, 1, 1, 0,"
        " 0, 0, 0, '{}')"
    )
    old.execute(
        "INSERT INTO plans (plan, assigned_by, via, assigned_wall) VALUES (NULL, 'Jo', 'cli', 'w')"
    )
    old.execute(
        "INSERT INTO incidents (id, device_id, opened_seq, opened_wall, severity)"
        " VALUES ('i1', 'tm', 1, 'w', 'fall')"
    )
    old.close()
    conn = connect(db)
    try:
        for table in ("sessions", "plans", "incidents"):
            assert conn.execute(f"SELECT walker FROM {table}").fetchall() == [("default",)]
        current = roster(conn)
        assert current.walkers == (DEFAULT_WALKER,) and current.selected == DEFAULT_WALKER
        assert current.revision == 0
    finally:
        conn.close()


def test_the_registry_adds_selects_and_removes_keeping_records(tmp_path: Path) -> None:
    conn = connect(tmp_path / "device.db")
    try:
        with transaction(conn):
            anna = add_walker(conn, "Anna B", by="Jo", wall="w1")
            ben = add_walker(conn, "Ben", walker_id="ben", by="Jo", wall="w2")
        assert anna == Walker("anna-b", "Anna B")
        assert roster(conn).walkers == (DEFAULT_WALKER, anna, ben)
        before = roster_revision(conn)
        with transaction(conn):
            select_walker(conn, "ben", by="Jo", via="cli", wall="w3")
        assert roster(conn).selected == ben and roster_revision(conn) > before
        with pytest.raises(WalkerInvalid, match="is taken"):
            add_walker(conn, "anna b", by="Jo", wall="w4")  # names are spoken: each must differ
        with pytest.raises(WalkerInvalid, match="cannot be removed"):
            remove_walker(conn, "default", by="Jo", wall="w4")
        with pytest.raises(WalkerInvalid, match="no walker 'zed'"):
            select_walker(conn, "zed", by="Jo", via="cli", wall="w4")
        with transaction(conn):
            remove_walker(conn, "ben", by="Jo", wall="w5")
        # Removing the chosen walker leaves the default chosen; the name stays for old records.
        assert roster(conn).selected == DEFAULT_WALKER
        assert roster(conn).walkers == (DEFAULT_WALKER, anna)
        assert walker_names(conn)["ben"] == "Ben"
        with transaction(conn):
            back = add_walker(conn, "Benjamin", walker_id="ben", by="Jo", wall="w6")
        assert back == Walker("ben", "Benjamin") and roster(conn).walkers[-1] == back
        with transaction(conn):
            for n in range(MAX_WALKERS - 3):
                add_walker(conn, f"Walker {n}", by="Jo", wall="w7")
        with pytest.raises(WalkerInvalid, match="remove one first"):
            add_walker(conn, "One too many", by="Jo", wall="w8")
    finally:
        conn.close()


def test_the_cli_manages_walkers_locally_and_says_nothing_was_armed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    connect(db).close()  # what the monitor's first start leaves
    assert main(["walker", "--db", db, "list"]) == 0
    assert "* 1. default              Default walker" in capsys.readouterr().out
    assert main(["walker", "--db", db, "add", "Anna B", "--by", "Jo"]) == 0
    out = capsys.readouterr().out
    assert "Walker anna-b added: Anna B." in out and "  2. anna-b" in out
    assert main(["walker", "--db", db, "select", "anna-b"]) == 0
    out = capsys.readouterr().out
    assert "Nothing was armed or started" in out and "* 2. anna-b" in out
    assert main(["walker", "--db", db, "add", "  "]) == 2
    assert "walker name: must not be blank" in capsys.readouterr().err
    assert main(["walker", "--db", db, "remove", "default"]) == 2
    assert "cannot be removed" in capsys.readouterr().err
    assert main(["walker", "--db", db, "remove", "anna-b"]) == 0
    assert "* 1. default" in capsys.readouterr().out
    raw = sqlite3.connect(db)
    changes = raw.execute("SELECT walker, change, via FROM walker_changes ORDER BY id").fetchall()
    raw.close()
    assert changes == [
        ("anna-b", "added", "cli"),
        ("anna-b", "selected", "cli"),
        ("anna-b", "removed", "cli"),
        ("default", "selected", "cli"),
    ]
    assert load_sessions(db) == []  # the CLI records walkers, it starts nothing


def test_adding_a_walker_renders_the_name_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The name is rendered to WAV once, at add (espeak-ng), so the button never waits for it."""
    import shutil

    from launcher.cli import main

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ndatabase = "{tmp_path / "device.db"}"\n'
        f'[session]\nvoice = "auto"\nprompt_cache = "{tmp_path / "prompts"}"\n'
    )
    assert main(["walker", "-c", str(config), "add", "Anna"]) == 0
    out = capsys.readouterr().out
    assert "Name prompt rendered: 'Walker: Anna.'" in out
    wavs = list((tmp_path / "prompts").glob("*.wav"))
    assert len(wavs) == 1 and wavs[0].stat().st_size > 1000


def test_a_walker_added_to_a_database_named_on_the_command_line_keeps_its_prompt_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`walker add --db X` without a config rendered the name into the default config's
    /var/lib/retroguard/prompts (from review): the prompt goes beside X, where a monitor on
    that database looks for it."""
    import shutil

    from launcher.cli import main

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    db = tmp_path / "device.db"
    assert main(["walker", "add", "Anna", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"({tmp_path / 'prompts'}" in out
    assert len(list((tmp_path / "prompts").glob("*.wav"))) == 1


# -- at the machine: a double press in STANDBY cycles the profiles, and never arms ----------


ANNA = Walker("anna", "Anna")
BEN = Walker("ben", "Ben")


def _registered(tmp_path: Path) -> None:
    conn = connect(tmp_path / "events.db")
    try:
        with transaction(conn):
            add_walker(conn, "Anna", walker_id="anna", by="Jo", wall="w1")
            add_walker(conn, "Ben", walker_id="ben", by="Jo", wall="w2")
    finally:
        conn.close()


def _rig_with_walkers(tmp_path: Path, speaker: Heard | None) -> tuple[Rig, SessionRunner]:
    _registered(tmp_path)
    rig = make_rig(tmp_path)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=speaker)
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(1.0)
    assert runner.walkers == (DEFAULT_WALKER, ANNA, BEN) and runner.walker == DEFAULT_WALKER
    assert rig.state == "STANDBY"
    return rig, runner


def _double_press(rig: Rig, first_s: float = 0.15) -> None:
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + first_s)
    rig.button.press_at(now + first_s + 0.2, now + first_s + 0.35)


def _until_chosen(rig: Rig, runner: SessionRunner, count: int) -> None:
    for _ in range(300):  # a bound in loop seconds (3 s), not a timing
        if len(runner.walker_choices) >= count:
            return
        rig.run_for(0.01)
    raise AssertionError(f"no walker chosen (choices: {list(runner.walker_choices)})")


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_double_press_in_standby_says_each_walker_in_turn_and_never_arms(
    tmp_path: Path,
) -> None:
    heard = Heard()
    rig, runner = _rig_with_walkers(tmp_path, heard)
    for expected in (ANNA, BEN, DEFAULT_WALKER, ANNA):
        _double_press(rig)
        _until_chosen(rig, runner, len(heard.said) + 1)
        assert runner.walker == expected
        assert heard.said[-1] == f"Walker: {expected.name}."
        rig.run_for(1.0)
    assert rig.state == "STANDBY" and not rig.hardware.contact_closed()
    assert rig.hardware.history == []  # the relay was never asked to close
    assert EventType.RESET not in rig.events()
    assert "ARMED" not in [t.state.value for t in rig.app.controller.transitions]
    # The courier stores each choice: the CLI, the progress and a restart agree.
    assert pump_link_until(rig.app.link, lambda: rig.courier.db.read(roster).selected == ANNA)
    # The chosen walker's session: arming is still the reset button held to the chirp.
    rig.press_reset()
    assert rig.state == "ARMED"
    runner.request("start")
    rig.run_for(0.1)
    assert runner.session is not None and runner.session.walker == ANNA
    runner.request("stop")
    rig.run_for(0.1)
    assert runner.finished[-1].walker == ANNA
    detach_session(rig.app, runner)
    stored = load_sessions(tmp_path / "events.db", walker="anna")
    assert [s.record.walker for s in stored] == [ANNA]
    assert load_sessions(tmp_path / "events.db", walker="default") == []


@pytest.mark.usefixtures(close_rigs.__name__)
def test_two_double_presses_without_waiting_for_the_name_are_a_call_for_help(
    tmp_path: Path,
) -> None:
    """Four quick presses are one sequence whose third press comes within 2 s of the first:
    a call for help (the safe reading), and no walker is chosen; waiting for the name
    (more than the 0.6 s sequence gap) makes two choices (docs/safety.md)."""
    heard = Heard()
    rig, runner = _rig_with_walkers(tmp_path, heard)
    now = rig.clock.monotonic()
    for k in range(4):
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.1)
    rig.run_for(2.5)
    assert EventType.HELP in rig.events() and runner.walker_choices == deque()
    assert rig.state == "STANDBY" and rig.hardware.history == []


@pytest.mark.usefixtures(close_rigs.__name__)
def test_without_a_voice_the_walker_s_number_is_beeped(tmp_path: Path) -> None:
    rig, runner = _rig_with_walkers(tmp_path, None)
    _double_press(rig)
    _until_chosen(rig, runner, 1)
    (choice,) = runner.walker_choices
    assert (choice.walker, choice.position, choice.spoken) == (ANNA, 2, "")
    assert rig.app.gpio.buzzer.pattern == "walker_2"
    rig.run_for(3.0)
    assert rig.state == "STANDBY" and rig.hardware.history == []


def _let_go_too_soon(rig: Rig) -> float:
    """A reset press let go before the chirp: the controller's ``refused`` (1.5 s, priority 60)
    plays once its sequence has closed, 0.81 s from now; returns when it starts."""
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.2)
    return now + 0.81


def _beeped(rig: Rig, runner: SessionRunner, seconds: float) -> list[str]:
    """The buzzer's patterns, each time it changes, over ``seconds`` of the loop."""
    seen: list[str] = []
    for _ in range(round(seconds / 0.01)):  # loop seconds, not a timing
        rig.run_for(0.01)
        pattern = rig.app.gpio.buzzer.pattern
        if pattern is not None and (not seen or seen[-1] != pattern):
            seen.append(pattern)
    return seen


@pytest.mark.usefixtures(close_rigs.__name__)
def test_without_a_voice_a_walker_s_number_refused_or_cut_short_is_beeped_once_free(
    tmp_path: Path,
) -> None:
    """Without a voice the number's beeps (priority 28) are the walker's only answer. Made
    while the controller's ``refused`` sounded (a reset press let go too soon, 60), they were
    refused and never beeped: the walker could not tell whose session came next. They are
    beeped once the buzzer is free; cut short by a call for help, again after it; never once
    a session is under way (another answer then)."""
    rig, runner = _rig_with_walkers(tmp_path, None)
    buzzer = rig.app.gpio.buzzer
    refused_at = _let_go_too_soon(rig)
    rig.run_for(0.9)  # that press's sequence is closed: the double press is one of its own
    _double_press(rig)
    _until_chosen(rig, runner, 1)
    assert buzzer.pattern == "refused"
    (choice,) = runner.walker_choices
    assert (choice.walker, choice.pattern, choice.played) == (ANNA, "walker_2", False)
    rig.run_for(refused_at + 1.55 - rig.clock.monotonic())  # refused lasts 1.5 s
    assert buzzer.pattern == "walker_2"
    assert _beeped(rig, runner, 3.0) == ["walker_2"]  # once, to its end

    # The next choice's beeps (walker_3, 1.23 s) cut short by a call for help (three presses).
    _double_press(rig)
    _until_chosen(rig, runner, 2)
    assert buzzer.pattern == "walker_3"
    now = rig.clock.monotonic()
    for k in range(3):
        rig.button.press_at(now + 0.25 * k, now + 0.25 * k + 0.1)
    assert _beeped(rig, runner, 4.0) == ["walker_3", "help_sent", "walker_3"]
    assert runner.walker == BEN and rig.state == "STANDBY"

    # Refused again, and a session started before the buzzer is free: the number is stale.
    _let_go_too_soon(rig)
    rig.run_for(0.9)
    _double_press(rig)
    _until_chosen(rig, runner, 3)
    assert buzzer.pattern == "refused" and not runner.walker_choices[-1].played
    runner.request("start")
    rig.run_for(0.05)
    assert runner.state is SessionState.BALANCE
    assert _beeped(rig, runner, 3.0) == ["refused", "sway_start"]
    assert rig.state == "STANDBY" and rig.hardware.history == []
    detach_session(rig.app, runner)


@pytest.mark.usefixtures(close_rigs.__name__)
def test_the_other_patterns_choose_no_walker_and_the_choice_cannot_arm(tmp_path: Path) -> None:
    heard = Heard()
    rig, runner = _rig_with_walkers(tmp_path, heard)
    # Three quick presses: a call for help, not a walker.
    now = rig.clock.monotonic()
    for k in range(3):
        rig.button.press_at(now + 0.35 * k, now + 0.35 * k + 0.15)
    rig.run_for(2.0)
    assert EventType.HELP in rig.events() and runner.walker_choices == deque()
    rig.run_for(11.0)
    # A session under way (started in STANDBY, waiting for arming) keeps its walker.
    runner.request("start")
    rig.run_for(0.1)
    assert runner.state in (SessionState.PAUSED, SessionState.BALANCE)
    _double_press(rig)
    rig.run_for(1.5)
    assert runner.walker_choices == deque() and runner.walker == DEFAULT_WALKER
    runner.request("stop")
    rig.run_for(0.1)
    # A double press whose first press is held to the chirp is the arming press: it arms (as
    # it always did), and chooses no walker.
    _double_press(rig, first_s=0.5)
    rig.run_for(2.0)
    assert rig.state == "ARMED" and runner.walker == DEFAULT_WALKER
    assert runner.walker_choices == deque()
    assert not any(text.startswith("Walker:") for text in heard.said)
    # While ARMED a double press is the session's (it starts one), never a walker choice.
    _double_press(rig)
    rig.run_for(1.5)
    assert runner.state is SessionState.RUNNING and runner.walker_choices == deque()
    assert runner.session is not None and runner.session.walker == DEFAULT_WALKER
    detach_session(rig.app, runner)


@pytest.mark.usefixtures(close_rigs.__name__)
def test_the_cli_chooses_the_walker_of_a_running_monitor_without_arming(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    rig, runner = _rig_with_walkers(tmp_path, Heard())
    assert main(["walker", "--db", str(tmp_path / "events.db"), "select", "ben"]) == 0
    capsys.readouterr()
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(0.5)
    assert runner.walker == BEN and runner.state is SessionState.IDLE
    assert rig.state == "STANDBY" and rig.hardware.history == []
    detach_session(rig.app, runner)


@pytest.mark.usefixtures(close_rigs.__name__)
def test_no_session_starts_before_the_walker_chosen_has_reached_the_loop(
    tmp_path: Path,
) -> None:
    """Ben is the walker chosen in the device database, and the roster that says so is still
    on its way from the courier (held back here, as a courier slow at start-up, or a failed
    read of the profiles, leaves it) when the walker, armed, double-presses to start, and when
    ``retroguard session start`` asks. Before, the session started at once as the Default
    walker's: his sessions, progress and incidents recorded as another's, and nothing said
    whose it was. Now the start is refused, in words saying why, and once the roster is in the
    session is Ben's; the refusals touched nothing."""
    import queue

    from firmware.session.voice import Prompts

    db = tmp_path / "events.db"
    _registered(tmp_path)
    conn = connect(db)
    try:
        with transaction(conn):
            select_walker(conn, "ben", by="Jo", via="cli", wall="w3")
    finally:
        conn.close()
    heard = Heard()
    rig = make_rig(tmp_path)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=heard)
    link = rig.app.link
    assert pump_link_until(link, lambda: link._new_roster is not None)
    held, link._new_roster = link._new_roster, None  # still on its way
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    rig.run_for(1.0)  # the reset press's sequence is over: the next presses are the session's
    relay = list(rig.hardware.history)

    _double_press(rig)
    rig.run_for(1.5)
    assert runner.session is None and runner.state is SessionState.IDLE
    assert heard.said[-1] == Prompts.for_language("en").file.prompts.not_started_walkers
    reply: queue.SimpleQueue[tuple[bool, str]] = queue.SimpleQueue()
    runner.request("start", reply)
    rig.run_for(0.1)
    ok, message = reply.get_nowait()
    assert not ok and "whose session" in message and runner.session is None

    link._new_roster = held  # it arrives
    rig.run_for(0.1)
    assert runner.walker == BEN
    _double_press(rig)
    rig.run_for(1.5)
    assert runner.session is not None and runner.session.walker == BEN
    runner.request("stop")
    rig.run_for(0.1)
    detach_session(rig.app, runner)
    assert [s.record.walker for s in load_sessions(db, walker="ben")] == [BEN]
    assert load_sessions(db, walker="default") == []
    assert rig.state == "ARMED" and rig.hardware.history == relay


def _cli_while_the_loop_runs(rig: Rig, argv: list[str]) -> int:
    """``retroguard ARGV`` on a thread while the rig's loop runs (it answers the socket)."""
    import threading

    from launcher.cli import main

    codes: list[int] = []
    command = threading.Thread(target=lambda: codes.append(main(argv)))
    command.start()
    for _ in range(100_000):  # the loop answers the socket's request; a bound, not a timing
        if not command.is_alive():
            break
        rig.run_for(0.01)
    command.join()
    return codes[0]


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_walker_chosen_with_the_cli_walks_the_next_session_once_the_command_returns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The courier reads the selection ``retroguard walker select`` stores once a second, so
    Ben's session started in that second (armed, a double press) was the walker chosen before
    (the default walker's) and he heard nothing naming anyone. The command now tells the
    running loop over its local control socket: once it has returned, the next session is
    Ben's, with the courier's roster still to come (held back here)."""
    db = tmp_path / "events.db"
    sock = tmp_path / "session.sock"
    _registered(tmp_path)
    rig = make_rig(tmp_path)
    runner = attach_session(
        rig.app, PRESETS["alternate-2-2"], speaker=Heard(), control_socket=str(sock)
    )
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(1.0)
    assert runner.walker == DEFAULT_WALKER
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "ARMED"
    rig.courier.forward_roster = lambda **_: None  # type: ignore[method-assign]  # its next look
    select = ["walker", "--db", str(db), "select", "ben", "--socket", str(sock)]
    assert _cli_while_the_loop_runs(rig, select) == 0
    assert "The running monitor has it: the monitor's next session is Ben's." in (
        capsys.readouterr().out
    )
    assert rig.app.link._new_roster is None and runner.walker == BEN
    _double_press(rig)
    rig.run_for(1.5)
    assert runner.session is not None and runner.session.walker == BEN
    runner.request("stop")
    rig.run_for(0.1)
    detach_session(rig.app, runner)
    assert [s.record.walker for s in load_sessions(db, walker="ben")] == [BEN]


@pytest.mark.usefixtures(close_rigs.__name__)
def test_session_start_at_the_cli_says_whose_session_it_started_and_its_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A physio at a treadmill Anna and Ben share types ``retroguard session start``: it said
    "session started: alternate-2-2: ..." (or only that it waits for arming), not whose, so a
    session started as the last walker's (the one a double press chose) went unnoticed until
    the records counted it in their week. Now every start names the walker and the plan, not
    armed (it waits) and armed alike."""
    db = tmp_path / "events.db"
    sock = tmp_path / "session.sock"
    _registered(tmp_path)
    conn = connect(db)
    try:
        with transaction(conn):
            select_walker(conn, "ben", by="Jo", via="cli", wall="w3")
    finally:
        conn.close()
    rig = make_rig(tmp_path)
    runner = attach_session(
        rig.app, PRESETS["alternate-2-2"], speaker=Heard(), control_socket=str(sock)
    )
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(1.0)
    assert runner.walker == BEN and rig.state == "STANDBY"
    capsys.readouterr()
    plan = "plan alternate-2-2: 30 min, 14 min backward, 15 intervals"

    assert _cli_while_the_loop_runs(rig, ["session", "start", "--socket", str(sock)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"session started for Ben (ben), {plan}; "), said
    assert "press the reset button" in said and runner.session is not None
    runner.request("stop")
    rig.run_for(0.1)

    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "ARMED"
    assert _cli_while_the_loop_runs(rig, ["session", "start", "--socket", str(sock)]) == 0
    assert capsys.readouterr().out == f"session started for Ben (ben), {plan}\n"
    assert runner.session is not None and runner.session.walker == BEN
    runner.request("stop")
    rig.run_for(0.1)
    detach_session(rig.app, runner)


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_session_detached_mid_way_leaves_no_session_walker_on_the_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anna's session is under way, Ben is chosen for the next one, and the runner is detached
    before her session ends: an incident opened afterwards is Ben's (the chosen walker's), not
    that of a session no longer running; nothing touched the relay."""
    import dataclasses

    from core.protocol.events import Event
    from launcher.cli import main

    db = str(tmp_path / "events.db")
    rig, runner = _rig_with_walkers(tmp_path, Heard())
    assert main(["walker", "--db", db, "select", "anna"]) == 0
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(0.5)
    assert runner.walker == ANNA
    rig.press_reset()
    assert rig.state == "ARMED"
    runner.request("start")
    rig.run_for(0.5)
    assert runner.session is not None and runner.session.walker == ANNA
    assert rig.app.link.session_walker == "anna"
    assert main(["walker", "--db", db, "select", "ben"]) == 0
    capsys.readouterr()
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(0.2)
    assert runner.walker == BEN and rig.app.link.session_walker == "anna"
    relay_before = list(rig.hardware.history)

    detach_session(rig.app, runner)  # Anna's session never ended
    assert rig.app.link.session_walker is None
    help_call = Event.now(EventType.HELP, "treadmill-1", rig.clock.monotonic(), "ARMED", "help")
    rig.app.link.submit(dataclasses.replace(help_call, incident="2" * 32))
    assert pump_link_until(rig.app.link, lambda: rig.app.link.pending == 0)
    walkers = rig.courier.db.read(
        lambda conn: conn.execute("SELECT id, walker FROM incidents").fetchall()
    )
    assert walkers == [("2" * 32, "ben")]
    assert rig.hardware.history == relay_before


# -- records per walker and per treadmill: sessions, progress, plans on the wire ------------


MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _of(record: SessionRecord, walker: Walker) -> SessionRecord:
    return msgspec.structs.replace(record, walker=walker)


def test_the_walker_schemas_agree_with_the_type_and_old_payloads_are_the_default_s() -> None:
    typed = msgspec.json.schema(Walker)["$defs"]["Walker"]
    for kind in ("session", "progress"):
        documented = schema(kind)["$defs"]["walker"]
        assert set(documented["required"]) == set(typed["required"])
        assert set(documented["properties"]) == set(typed["properties"])
        assert documented["properties"]["id"]["pattern"] == typed["properties"]["id"]["pattern"]
        assert schema(kind)["properties"]["walker"]["$ref"] == "#/$defs/walker"
    record = _of(session_record("tm-1", MONDAY, backward_min=10, longest_min=10), ANNA)
    summary = record.summary("2026-03-02T10:00:00+00:00")
    payload = encode(summary)
    jsonschema.validate(json.loads(payload), schema("session"))
    assert json.loads(payload)["walker"] == {"id": "anna", "name": "Anna"}
    assert decode_as(SessionSummary, payload.encode()).walker == ANNA
    old = json.loads(payload)
    del old["walker"]  # a summary from a release before profiles
    assert decode_as(SessionSummary, json.dumps(old).encode()).walker == DEFAULT_WALKER
    bad = json.loads(payload)
    bad["walker"]["id"] = "Anna B"
    with pytest.raises(ProtocolError, match=r"walker\.id"):
        decode_as(SessionSummary, json.dumps(bad).encode())


def test_plan_commands_name_their_walker_and_a_bad_one_is_refused() -> None:
    plan = PRESETS["alternate-2-2"]
    from tests.test_plans import _validator

    payload = encode_command(AssignPlan(plan, by="Jo", walker="anna"), "r1")
    _validator("command").validate(json.loads(payload))
    parsed = parse_command("plan", payload.encode()).command
    assert parsed == AssignPlan(plan, "Jo", "anna")
    assert "walker" not in json.loads(encode_command(AssignPlan(plan), "r2"))  # as before
    assert parse_command("plan", encode_command(AssignPlan(plan)).encode()).command == (
        AssignPlan(plan)
    )
    hold = encode_command(ChangeProgression("hold", walker="ben"))
    assert parse_command("progression", hold.encode()).command == ChangeProgression(
        "hold", "caregiver", "ben"
    )
    with pytest.raises(CommandRefused, match="walker: must be a walker id"):
        parse_command(
            "plan", json.dumps({"plan": json.loads(payload)["plan"], "walker": "A/B"}).encode()
        )


def test_retroguard_sessions_groups_per_walker_and_per_treadmill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    db = tmp_path / "device.db"
    conn = connect(db)
    for day in (0, 2, 4):  # Anna: three sessions of 10 straight minutes, a week at goal
        save_session(conn, _of(session_record("tm-1", MONDAY + dt.timedelta(days=day),
                                              backward_min=10, longest_min=10), ANNA))  # fmt: skip
    save_session(conn, session_record("tm-1", MONDAY, backward_min=4, longest_min=2))
    save_session(conn, _of(session_record("tm-2", MONDAY, backward_min=6, longest_min=3), ANNA))
    conn.close()
    assert main(["sessions", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    headers = [line for line in text.splitlines() if line.startswith("== ")]
    assert headers == [
        "== Anna (anna) on treadmill tm-1: 3 sessions ==",
        "== Default walker (default) on treadmill tm-1: 1 session ==",
        "== Anna (anna) on treadmill tm-2: 1 session ==",
    ]
    anna_tm1 = text.split(headers[0])[1].split(headers[1])[0]
    assert "2026-W10           3        3          30.0     10.0   3/3  yes" in anna_tm1
    default_tm1 = text.split(headers[1])[1].split(headers[2])[0]
    assert "2026-W10           1        0           4.0      2.0   1/3  no" in default_tm1
    assert main(["sessions", "--db", str(db), "--walker", "default"]) == 0
    only = capsys.readouterr().out
    assert [line for line in only.splitlines() if line.startswith("== ")] == [headers[1]]


def test_retroguard_sessions_refuses_a_mistyped_walker_instead_of_saying_they_never_walked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sessions --walker anan`` answered "No guided sessions recorded yet ... for walker
    anan", exit 0: a physio read it as Anna not having walked. A walker the database has never
    known is refused, as ``plan --walker`` refuses one; a known walker (removed ones too: their
    records stay theirs) with no session still gets the plain answer."""
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    assert main(["walker", "--db", db, "add", "Anna", "--id", "anna"]) == 0
    assert main(["walker", "--db", db, "add", "Bob", "--id", "bob"]) == 0
    assert main(["walker", "--db", db, "remove", "bob"]) == 0
    capsys.readouterr()
    assert main(["sessions", "--db", db, "--walker", "anan"]) == 2
    err = capsys.readouterr().err
    assert "retroguard sessions: --walker: no walker 'anan' here (" in err
    assert "anna" in err and "retroguard walker list" in err
    for known in ("anna", "bob", "default"):
        assert main(["sessions", "--db", db, "--walker", known]) == 0
        assert f"No guided sessions recorded yet in {db} for walker {known}." in (
            capsys.readouterr().out
        )


def test_the_retained_progress_is_the_chosen_walker_s_week(tmp_path: Path) -> None:
    db = tmp_path / "device.db"
    conn = connect(db)
    with transaction(conn):
        add_walker(conn, "Anna", walker_id="anna", by="Jo", wall="w")
    for day in (0, 1, 2):
        save_session(conn, _of(session_record("tm-1", MONDAY + dt.timedelta(days=day),
                                              backward_min=10, longest_min=10), ANNA))  # fmt: skip
    save_session(conn, session_record("tm-1", MONDAY, backward_min=4, longest_min=2))
    conn.close()
    now = MONDAY + dt.timedelta(days=3)
    status = RetainedStatus(db, Topics("retroguard", "tm-1"), now=lambda: now, zone=dt.UTC)
    try:
        first = status.progress()
        assert first is not None
        jsonschema.validate(json.loads(first.payload), schema("progress"))
        message = decode_as(ProgressMessage, first.payload.encode())
        assert message.walker == DEFAULT_WALKER
        assert (message.week_sessions, message.week_at_goal, message.weeks_at_goal) == (1, 0, 0)
        conn = connect(db)
        with transaction(conn):
            select_walker(conn, "anna", by="walker", via="button", wall="w")
        conn.close()
        second = status.progress()
        assert second is not None
        jsonschema.validate(json.loads(second.payload), schema("progress"))
        message = decode_as(ProgressMessage, second.payload.encode())
        assert message.walker == ANNA
        assert (message.week_sessions, message.week_at_goal, message.weeks_at_goal) == (3, 3, 1)
    finally:
        status.close()


def test_a_progression_advances_on_its_own_walker_s_sessions_only(tmp_path: Path) -> None:
    from core.protocol.plan import Progression, Stage
    from firmware.storage.plans import current_plan
    from firmware.storage.progressions import (
        advance_if_done,
        current_progression,
        start_progression,
    )

    short = PRESETS["alternate-2-2"]
    progression = Progression("two", (Stage(short, 1, 2), Stage(PRESETS["progression-week-2"])))
    conn = connect(tmp_path / "device.db")
    try:
        with transaction(conn):
            add_walker(conn, "Anna", walker_id="anna", by="Jo", wall="w")
            start_progression(conn, progression, stage=0, by="Jo", wall="2026-03-02T08:00:00+00:00",
                              walker="anna")  # fmt: skip
        assert current_progression(conn) is None  # the default walker has none
        assert current_plan(conn) is None and current_plan(conn, "anna") is not None
        for day in (0, 1):  # the default walker's completed sessions count nothing for Anna
            rec = session_record("tm-1", MONDAY + dt.timedelta(days=day), backward_min=14,
                                 longest_min=2)  # fmt: skip
            save_session(conn, walked(rec, short))
        with transaction(conn):
            assert advance_if_done(conn, dt.UTC, "w2", walker="anna") is None
        for day in (0, 1):
            rec = session_record("tm-1", MONDAY + dt.timedelta(days=day, hours=2),
                                 backward_min=14, longest_min=2)  # fmt: skip
            save_session(conn, _of(walked(rec, short), ANNA))
        with transaction(conn):
            state = advance_if_done(conn, dt.UTC, "w3", walker="anna")
        assert state is not None and state.stage == 1
        now = current_plan(conn, "anna")
        assert now is not None and now.plan == PRESETS["progression-week-2"]
        assert current_plan(conn) is None
    finally:
        conn.close()


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_walker_s_plan_over_mqtt_applies_to_their_next_session_whose_summary_names_them(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Real Mosquitto: a physio's plan for Anna (cmd/plan with ``walker``) reaches the device;
    the walker chooses Anna with the button; her session walks her plan, and its summary on
    ``.../session`` names her. A plan for a walker the device does not have is refused, naming
    the field. Nothing of it touches the relay."""
    from tests.mqtt_helpers import WAIT, Subscriber, config_for, validate
    from tests.test_plans import DEVICE, _send

    _registered(tmp_path)
    rig = make_rig(tmp_path, mqtt=config_for(mosquitto))
    assert rig.courier.reporter is not None
    assert rig.courier.reporter.wait_until(lambda s: s.ready, WAIT)
    heard = Heard()
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=heard)
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(1.0)
    from core.protocol.plan import Interval, Plan

    short = Plan(
        "Anna, week 1", (Interval.of_seconds("forward", 10), Interval.of_seconds("backward", 20))
    )
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/reply", f"retroguard/{DEVICE}/session"])
    try:
        reply = _send(sub, encode_command(AssignPlan(short, by="Jo", walker="anna"), "w1"))
        assert reply["ok"] and reply["result"]["walker"] == "anna"
        refused = _send(sub, encode_command(AssignPlan(short, walker="zed"), "w2"))
        assert not refused["ok"] and refused["error"].startswith("walker: no walker 'zed'")
        assert pump_link_until(rig.app.link, lambda: rig.app.link._new_plan is not None)
        rig.run_for(0.05)
        assert runner.next_plan is None  # the default walker's plan is unchanged
        _double_press(rig)
        _until_chosen(rig, runner, 1)
        assert runner.walker == ANNA and runner.next_plan == short
        rig.run_for(1.0)
        rig.press_reset()
        assert rig.state == "ARMED"
        history = list(rig.hardware.history)
        runner.request("start")
        rig.run_for(35.0)
        assert runner.state is SessionState.FINISHED
        assert runner.finished[-1].plan == short.name and runner.finished[-1].walker == ANNA
        runner.settle_measurements(WAIT)  # a busy gait thread defers the final record

        def summaries() -> list[dict[str, Any]]:
            return [json.loads(m.payload) for m in sub.on("/session")]

        assert pump_link_until(rig.app.link, lambda: bool(summaries()))
        summary = summaries()[0]  # (repeated until a consumer's receipt: none here)
        assert {s["id"] for s in summaries()} == {runner.finished[-1].id}
        validate("session", json.dumps(summary))
        assert summary["walker"] == {"id": "anna", "name": "Anna"}
        assert summary["plan"] == short.name
        assert rig.hardware.history == history and rig.state == "ARMED"
    finally:
        sub.close()
    detach_session(rig.app, runner)


def test_retroguard_plan_sets_a_walker_s_plan_and_refuses_an_unknown_walker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from firmware.storage.plans import current_plan, current_plans
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    assert main(["walker", "--db", db, "add", "Anna", "--id", "anna"]) == 0
    capsys.readouterr()
    assert main(["plan", "--db", db, "--walker", "zed", "set", "alternate-2-2"]) == 2
    assert "--walker: no walker 'zed' here (default, anna" in capsys.readouterr().err
    assert main(["plan", "--db", db, "--walker", "anna", "set", "progression-week-2"]) == 0
    assert "stored for walker anna" in capsys.readouterr().out
    assert (
        main(["plan", "--db", db, "--walker", "anna", "progression", "set", "toward-10-minutes"])
        == 0
    )
    assert main(["plan", "--db", db, "show"]) == 0
    assert "In force: the config's session.plan" in capsys.readouterr().out  # the default's
    conn = connect(db)
    try:
        assert current_plan(conn) is None
        anna = current_plan(conn, "anna")
        assert anna is not None and anna.walker == "anna" and anna.via == "progression"
        assert set(current_plans(conn)) == {"anna"}
    finally:
        conn.close()


def test_plan_and_walker_take_their_options_after_the_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan set anna.toml --walker anna`: options typed after the action count as before it
    (they were "unrecognized arguments" under the top-level usage); given on both sides, the
    later one counts."""
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    assert main(["walker", "add", "Anna", "--id", "anna", "--db", db]) == 0
    assert main(["walker", "list", "--db", db]) == 0
    assert "2. anna" in capsys.readouterr().out
    assert main(["plan", "set", "progression-week-2", "--walker", "anna", "--db", db]) == 0
    assert "stored for walker anna" in capsys.readouterr().out
    assert main(["plan", "--walker", "zed", "--db", db, "show", "--walker", "anna"]) == 0
    assert "In force: plan 1, assigned by" in capsys.readouterr().out
    assert main(["plan", "--db", db, "progression", "show", "--walker", "zed"]) == 2
    assert "--walker: no walker 'zed' here" in capsys.readouterr().err


def test_the_walkers_names_are_rendered_ahead_and_kept_with_the_plans_prompts() -> None:
    """The prompt cache is pruned of what no plan in use needs: the walkers' names are kept
    (and rendered ahead), so a double press never waits for espeak-ng."""
    from collections.abc import Sequence

    from core.protocol.plan import Plan
    from firmware.link.messages import WalkerRoster
    from tests.test_voice import Armed, QuietBuzzer

    class Preparing:
        def __init__(self) -> None:
            self.prepared: list[tuple[tuple[Plan, ...], tuple[str, ...]]] = []

        def say(self, text: str) -> None:
            pass

        def withdraw(self, text: str) -> None:
            pass

        def close(self) -> None:
            pass

        def prepare(self, plans: Sequence[Plan], extra: Sequence[str] = ()) -> None:
            self.prepared.append((tuple(plans), tuple(extra)))

    rosters = [(WalkerRoster(1, [DEFAULT_WALKER, ANNA, BEN], DEFAULT_WALKER), True)]
    speaker = Preparing()
    first = PRESETS["alternate-2-2"]
    runner = SessionRunner(
        first,
        safety=Armed(),
        buzzer=QuietBuzzer(),
        device_id="t",
        speaker=speaker,
        new_roster=lambda: rosters.pop() if rosters else None,
        new_plans=lambda: None,
    )
    runner.tick(0.0)
    runner.assign_plan(PRESETS["progression-week-2"], "anna")
    names = ("Walker: Default walker.", "Walker: Anna.", "Walker: Ben.")
    assert speaker.prepared == [
        ((first,), names),
        ((first, PRESETS["progression-week-2"]), names),
    ]


def test_an_older_selection_from_the_courier_does_not_undo_the_walker_s_latest_press() -> None:
    """The walker presses twice quickly (Anna, then Ben); the courier's roster after storing
    the first press says Anna. It must not take the loop back to Anna: the link says whether a
    roster's selection counts every choice the loop made (its ``choices``)."""
    from firmware.link.endpoint import CourierLink
    from firmware.link.messages import WalkerRoster
    from tests.test_voice import QuietBuzzer

    class Standby:
        state = SafetyState.STANDBY
        since = -10.0
        transitions: tuple[object, ...] = ()
        reason = "IMU healthy; press reset to arm"
        last_detection = None
        incident = None

    link = CourierLink.__new__(CourierLink)  # only its roster bookkeeping, no socket
    link._choices_sent, link._roster_revision, link._new_roster = 0, None, None
    sent: list[str] = []

    def choose(walker: str) -> None:
        link._choices_sent += 1
        sent.append(walker)

    runner = SessionRunner(
        PRESETS["alternate-2-2"],
        safety=Standby(),  # type: ignore[arg-type]
        buzzer=QuietBuzzer(),
        device_id="t",
        new_roster=link.take_roster,
        walker_chosen=choose,
    )
    everyone = [DEFAULT_WALKER, ANNA, BEN]
    link._new_roster = WalkerRoster(1, everyone, DEFAULT_WALKER, 0)
    runner.tick(0.0)
    runner._cycle_walker(1.0)
    runner._cycle_walker(2.0)
    assert runner.walker == BEN and sent == ["anna", "ben"]
    link._new_roster = WalkerRoster(2, everyone, ANNA, 1)  # the first press stored
    runner.tick(2.1)
    assert runner.walker == BEN  # not undone
    link._new_roster = WalkerRoster(3, everyone, BEN, 2)  # both stored
    runner.tick(2.2)
    assert runner.walker == BEN
    link._new_roster = WalkerRoster(4, everyone, ANNA, 2)  # then `retroguard walker select`
    runner.tick(2.3)
    assert runner.walker == ANNA


def test_a_name_said_alike_or_a_removed_walker_s_name_is_not_a_new_walker_unasked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The button says the name and the dashboard lists it: "Anna-B" beside "Anna B", or
    "Emile" beside "Émile", is one name to the walker hearing it and to the physio reading
    the list, and was taken as a second walker. And Anna B, removed in October and added
    again by her name in December, became ``anna-b-2``: her record split in two, two "Anna
    B" in the dashboard's walker list, her old sessions under the one not on the button. Now
    the name is refused, saying how to bring her back with her records (``--id anna-b``)
    or to name another person apart; with ``--id`` her sessions are hers again."""
    from launcher.cli import main

    db = str(tmp_path / "device.db")
    conn = connect(db)
    with transaction(conn):
        add_walker(conn, "Anna B", by="Jo", wall="w1")
        add_walker(conn, "Émile", by="Jo", wall="w1")
    conn.close()
    assert main(["walker", "--db", db, "add", "Anna-B"]) == 2
    assert "walker name 'Anna-B' is taken" in capsys.readouterr().err
    assert main(["walker", "--db", db, "add", "emile"]) == 2
    assert "walker name 'emile' is taken" in capsys.readouterr().err
    assert main(["walker", "--db", db, "add", "Ann AB"]) == 0  # other words: another name
    assert main(["walker", "--db", db, "remove", "ann-ab"]) == 0
    assert main(["walker", "--db", db, "remove", "anna-b"]) == 0
    capsys.readouterr()
    assert main(["walker", "--db", db, "add", "Anna B"]) == 2
    err = capsys.readouterr().err
    assert "'Anna B' is the name of walker anna-b, removed" in err
    assert "retroguard walker add 'Anna B' --id anna-b" in err
    assert [w.id for w in roster(connect(db)).walkers] == ["default", "emile"]  # none added
    assert main(["walker", "--db", db, "add", "Anna B", "--id", "anna-b"]) == 0
    assert "Walker anna-b added: Anna B." in capsys.readouterr().out


def test_names_without_letters_or_digits_are_alike_only_when_they_are_the_same_name(
    tmp_path: Path,
) -> None:
    """Letters and digits make a name's words; a name of symbols alone ("🙂", "★") has none,
    and every such name was "taken" by every other and by any removed walker's."""
    assert not said_alike("🙂", "★")
    assert not said_alike("🙂", "")
    assert said_alike("★ ★", "★ ★") and not said_alike("★ ★", "★")
    assert not said_alike("🙂", "Anna 🙂")
    conn = connect(str(tmp_path / "device.db"))
    with transaction(conn):
        add_walker(conn, "🙂", by="Jo", wall="w1")
        add_walker(conn, "★", by="Jo", wall="w1")
        remove_walker(conn, add_walker(conn, "?!", by="Jo", wall="w1").id, by="Jo", wall="w2")
        add_walker(conn, "♥", by="Jo", wall="w3")  # not the removed "?!"
    assert [w.name for w in roster(conn).walkers] == ["Default walker", "🙂", "★", "♥"]
    with pytest.raises(WalkerInvalid, match="walker name '🙂' is taken"), transaction(conn):
        add_walker(conn, "🙂", by="Jo", wall="w4")
