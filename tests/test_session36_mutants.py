"""Session 36's new code: decisions that hand mutation (mut37) found no test noticing.

Mutants killed here (each survived the tests of its module before):

* tools/walkers: the monitor told of a selection stored in another database than its own, and
  not told of one stored in its own (the database comparison turned round). Turning it round
  changed nothing: ``--db`` rewrote the config before the comparison, so every ``--db`` was
  "the config's" (a bug, fixed with this test).
* tools/walkers: a stale control socket (a monitor that crashed) said as a monitor "not told"
  (``ConnectionRefusedError`` not taken as "no monitor running").
* walker_choice: a roster whose selection is older than the walker's latest press (the courier
  had not stored it yet) leaving the walker profiles "not known": every start refused until the
  courier's next roster (``known`` set only for a current selection).
* walker_choice: ``select`` of a walker not on the loop's roster answered as a success, so
  ``retroguard walker select`` said "The running monitor has it" of a walker it does not have.
* control: ``walker <anything>`` taken as a command (no walker id check): a malformed id went to
  the loop, answered as a walker not on the roster, not as the unknown command it is.
* courier: the plans and the roster sent after the storage report, not before it: the monitor
  allowed arming before it knew whose session a start would be.
* runner: "Not started yet. The monitor is still reading who is walking" said for any refused
  press (a long press with no session to stop), the roster long in (``not known`` dropped).
* mqtt_callbacks: the held messages not forgotten at a new connection (``reconnect`` without
  ``_held.clear()``): the poisoned message the broker sends again was taken for a copy and
  acknowledged, and the bound counted every connection's; a copy of a held message past the
  bound said let go (the bound looked at before the copy).
* mqtt_callbacks: the log's "; 2 messages held" said only from three on, or the count of held
  messages given as one.
* mqtt_callbacks: the shorter of two backed-off callbacks' delays given to paho, not the
  longer; the owner's delays (``reconnect_delay_set``) not given to paho until a fault's
  back-off ended.
* mqtt_callbacks: :data:`HELD_MOST` a step up (a size: the guide, and the banner it quotes,
  give the number).
* header_checked: the rows' spacing taken as their shortest or longest interval, not the
  median (a late or a lost sample refused a good trace); a label at the last row's time said
  "after the last row".
* record: ``--seconds`` equal to the scenario's impact let through (its rows end before it).
* voice: an HDMI card named in capitals counted as a speaker for "auto".
* health_discovery: Home Assistant's ``message_held`` defaulting to true when the health
  message leaves it out (as it does while none is held).

Beside the feature's tests: tests/test_side_faults_refused_then_as_stored.py (a table's own
write fault kept after a write of it committed, or not cleared by a write while no values were
refused), tests/test_device_state_refused.py (a treadmill taken away clearing the refusals of
another whose name begins with its own), tests/test_caregiver_broker_link.py (a message let go
no longer said once a later fault on the connection was a copy; two held said as one),
tests/test_doctor.py (the heartbeat line blaming the latch for a contact read closed before any
edge; the latch said tested with no contact sense wired), tests/test_demo_and_replay.py (a
labelled trace with no row: a bug, fixed with its test).
"""

from __future__ import annotations

import queue
import socket
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from core.mqtt_callbacks import HELD_MOST, CallbackFault, GuardedClient
from core.plan_presets import PRESETS
from core.protocol.walker import DEFAULT_WALKER, Walker
from firmware.link.endpoint import CourierLink
from firmware.link.messages import WalkerRoster
from firmware.safety import SafetyState
from firmware.session.control import send_command
from firmware.session.runner import SessionRunner, attach_session, detach_session
from firmware.storage.database import connect, transaction
from firmware.storage.walkers import add_walker, select_walker
from tests.app_support import Heard, Rig, close_rigs, make_rig, pump_link_until
from tools.broker import Mosquitto

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


def _socket_command(rig: Rig, path: Path, command: str) -> tuple[bool, str]:
    """``command`` over the control socket while the loop runs; the loop's answer."""
    answers: queue.SimpleQueue[tuple[bool, str]] = queue.SimpleQueue()
    sender = threading.Thread(target=lambda: answers.put(send_command(path, command)))
    sender.start()
    for _ in range(100_000):  # a bound, not a timing
        if not sender.is_alive():
            break
        rig.run_for(0.01)
    sender.join()
    return answers.get_nowait()


def test_a_roster_older_than_the_walker_s_press_still_lets_a_session_start() -> None:
    """The monitor has just started: the walker double-presses in standby before the courier's
    roster has come (the loop tells the courier the choice), and the roster that then comes was
    read before the courier stored that press (its selection older). It keeps the walker's
    press, and it is the roster: the walker profiles are known, and a start is taken, not
    refused as "the monitor is still reading who is walking" until another roster comes."""

    class Standby:
        state = SafetyState.STANDBY
        since = -10.0
        transitions: tuple[object, ...] = ()
        reason = "IMU healthy; press reset to arm"
        last_detection = None
        incident = None

    from tests.test_voice import QuietBuzzer

    link = CourierLink.__new__(CourierLink)  # only its roster bookkeeping, no socket
    link._choices_sent, link._roster_revision, link._new_roster = 0, None, None
    link._unconfirmed_choice = None

    def choose(walker: str) -> None:
        link._choices_sent += 1

    runner = SessionRunner(
        PRESETS["alternate-2-2"],
        safety=Standby(),  # type: ignore[arg-type]
        buzzer=QuietBuzzer(),
        device_id="t",
        new_roster=link.take_roster,
        walker_chosen=choose,
    )
    runner.tick(0.0)
    runner._cycle_walker(1.0)  # before the roster: the only profile the loop has
    link._new_roster = WalkerRoster(1, [DEFAULT_WALKER, ANNA, BEN], DEFAULT_WALKER, 0)
    runner.tick(1.1)
    assert runner.walkers == (DEFAULT_WALKER, ANNA, BEN)
    ok, message = runner.start(1.2)
    assert ok, message
    assert runner.session is not None and runner.session.walker == DEFAULT_WALKER


@pytest.mark.usefixtures(close_rigs.__name__)
def test_the_walker_profiles_are_in_before_the_monitor_may_arm(tmp_path: Path) -> None:
    """The monitor allows arming once its courier has said how storage is; a walker who arms
    then and double-presses at once must find whose session it is already there (the courier
    sends the plans and the roster first). Here: the moment the storage report is in, before
    the loop has run, the roster naming Ben, the walker chosen, has come with it."""
    _registered(tmp_path, selected="ben")
    rig = make_rig(tmp_path)  # returns as soon as storage has been reported
    new = rig.app.link.take_roster()
    assert new is not None, "the storage report came before the walker profiles"
    roster, current = new
    assert current and roster.selected == BEN


@pytest.mark.usefixtures(close_rigs.__name__)
def test_selecting_a_walker_the_monitor_has_not_heard_of_yet_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cleo is added while the monitor runs, and chosen before its courier has passed the new
    roster on (held back here): the running monitor does not have her yet, and the command
    says so (she comes with the roster within a second), not that the monitor has her; the
    next session is still the one chosen before. A command on the socket that is no walker's
    id is refused as unknown, not looked up."""
    from firmware.storage.walkers import roster as stored_roster

    db = _registered(tmp_path)
    sock = tmp_path / "session.sock"
    rig = make_rig(tmp_path)
    runner = attach_session(
        rig.app, PRESETS["alternate-2-2"], speaker=Heard(), control_socket=str(sock)
    )
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(1.0)
    assert runner.walker == DEFAULT_WALKER
    rig.courier.forward_roster = lambda **_: None  # type: ignore[method-assign]  # held back
    conn = connect(db)
    try:
        with transaction(conn):
            add_walker(conn, "Cleo", walker_id="cleo", by="Jo", wall="w4")
    finally:
        conn.close()
    capsys.readouterr()
    assert _walker_cli(rig, ["--db", str(db), "select", "cleo", "--socket", str(sock)]) == 0
    out = capsys.readouterr().out
    assert "The running monitor: walker cleo is not on the monitor's roster yet" in out
    assert "has it" not in out
    assert runner.walker == DEFAULT_WALKER
    conn = connect(db)
    try:
        assert stored_roster(conn).selected.id == "cleo"  # stored: the next roster brings her
    finally:
        conn.close()

    ok, message = _socket_command(rig, sock, "walker Not/An Id")
    assert not ok and message.startswith("unknown command")
    assert runner.walker == DEFAULT_WALKER
    detach_session(rig.app, runner)


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


def test_select_with_a_stale_control_socket_says_nothing_of_a_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A monitor that crashed leaves its control socket's file behind; nobody listens on it.
    ``retroguard walker select`` stores the choice and says nothing of a running monitor (a
    monitor started later reads the choice from the database), not that one "was not told"
    and "takes it within a second"."""
    from launcher.cli import main

    db = _registered(tmp_path)
    stale = tmp_path / "session.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left:
        left.bind(str(stale))  # closed without unlinking: what a killed process leaves
    assert stale.exists()
    assert main(["walker", "--db", str(db), "select", "ben", "--socket", str(stale)]) == 0
    out = capsys.readouterr().out
    assert "Walker ben (Ben) chosen for the next session" in out
    assert "The running monitor" not in out


def _message(topic: str, payload: bytes, mid: int = 1) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    message.qos = 1  # as the treadmills send
    message.payload = payload
    return message


def test_a_message_held_on_one_connection_is_kept_again_on_the_next(mosquitto: Mosquitto) -> None:
    """The caregiver's ingest holds a message whose handler fails every time: the broker keeps
    it, unacknowledged, and sends it again at the next connection. On that connection it is
    held again, kept (not taken for a copy of one held already and acknowledged: the broker
    would drop the one message it kept), and the bound of :data:`HELD_MOST` counts that
    connection's held messages afresh. Driven as paho drives the guard (its wrapped
    ``on_message``), on a client whose connections are real (Mosquitto)."""
    faults: list[CallbackFault] = []
    client = GuardedClient(
        mqtt.CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
        on_fault=faults.append,
    )

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        raise RuntimeError("a bug")

    client.on_message = on_message
    guarded = client.on_message
    assert guarded is not None
    topic = "retroguard/treadmill-1/event"
    poisoned = _message(topic, b"the poisoned one")
    others = [_message(topic, f"stumble {n}".encode(), mid=n + 2) for n in range(HELD_MOST)]
    client.connect(mosquitto.host, mosquitto.port)
    try:
        guarded(client, None, poisoned)  # the first time: reconnecting (no connection loop here)
        for message in (poisoned, *others[:-1]):
            guarded(client, None, message)
        assert faults[-1].unacknowledged and faults[-1].held_now == HELD_MOST
        guarded(client, None, poisoned)  # its copy on the same connection: the broker has one
        assert faults[-1].copy_of_held and not faults[-1].unacknowledged
        guarded(client, None, others[-1])  # past the bound on this connection: let go
        assert faults[-1].let_go
    finally:
        client.disconnect()
    client.connect(mosquitto.host, mosquitto.port)  # the broker sends the kept ones again
    try:
        guarded(client, None, poisoned)
        assert faults[-1].unacknowledged and not faults[-1].copy_of_held
        assert faults[-1].held_now == 1
        assert "left unacknowledged (the broker sends it again" in faults[-1].words()
        guarded(client, None, others[-1])  # one let go before: held now, the bound is afresh
        assert faults[-1].unacknowledged and not faults[-1].let_go
    finally:
        client.disconnect()


def test_the_guide_says_the_bound_of_held_messages_the_client_keeps() -> None:
    """docs/mqtt.md tells an operator how many failing messages are held before the rest are
    let go (the banner then says that number): the figure it gives is the client's."""
    guide = (Path(__file__).parents[1] / "docs" / "mqtt.md").read_text()
    assert f"`HELD_MOST` ({HELD_MOST}) held messages" in guide
    assert f'The banner says "{HELD_MOST} messages are held' in guide


def _recorded(tmp_path: Path, scenario: str, seconds: str) -> tuple[Path, list[str], int]:
    """A trace ``retroguard record`` wrote; its lines, and the index of its first row."""
    from launcher.cli import main

    trace = tmp_path / f"{scenario}.csv"
    assert main(["record", str(trace), "--scenario", scenario, "--seconds", seconds]) == 0
    lines = trace.read_text().splitlines(keepends=True)
    return trace, lines, lines.index("t,ax,ay,az,gx,gy,gz\n") + 1


def test_a_lost_sample_and_a_late_one_do_not_make_a_trace_s_rate_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real recording loses a sample now and then, and one comes late: its rows' spacing is
    still the header's (the median of their intervals, which neither moves), and replay takes
    it, where the shortest or the longest interval would call a 200 Hz trace 1000 Hz or 100."""
    from launcher.cli import main

    trace, lines, body = _recorded(tmp_path, "walk-backward", "4")
    rows = lines[body:]
    t, *values = rows[31].split(",")
    rows[31] = ",".join([f"{float(t) + 0.004:.6f}", *values])  # 4 ms late: 9 ms, then 1 ms
    del rows[11]  # lost: a 10 ms gap
    trace.write_text("".join(lines[:body] + rows))
    capsys.readouterr()
    assert main(["replay", str(trace)]) == 0
    said = capsys.readouterr()
    assert said.err == "" and said.out.startswith(f"{trace}: ")


def test_a_fall_trace_ending_on_its_impact_row_is_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trace whose last row is its labelled impact holds the impact: it is replayed, not
    refused as cut off ("after the last row" is after it, not at it)."""
    from launcher.cli import main

    trace, lines, body = _recorded(tmp_path, "backward-fall", "12")
    assert "# impact_t: 4.95\n" in lines
    kept = [line for line in lines[body:] if float(line.split(",")[0]) <= 4.95]
    assert kept[-1].startswith("4.950000,")
    trace.write_text("".join(lines[:body] + kept))
    capsys.readouterr()
    assert main(["replay", str(trace)]) == 0
    assert "after the last row" not in capsys.readouterr().err


def test_record_refuses_seconds_ending_on_the_scenario_s_impact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--seconds 4.95`` of the backward fall ends as its impact comes: the recording's rows
    stop before it (the last at 4.945 s), so its label would lie; refused, as a shorter one."""
    from launcher.cli import main

    trace = tmp_path / "fall.csv"
    argv = ["record", str(trace), "--scenario", "backward-fall", "--seconds", "4.95"]
    assert main(argv) == 2
    assert "ends before the scenario's fall (onset at 4 s, impact at 4.95 s)" in (
        capsys.readouterr().err
    )
    assert not trace.exists()


def test_an_hdmi_card_named_in_capitals_is_no_speaker_for_auto(tmp_path: Path) -> None:
    """A card's line names HDMI in any case (an HDA card on a bench PC says "HDA ATI HDMI"):
    it is no speaker "auto" can count on, whatever the case of its name."""
    from firmware.session.voice import all_sound_cards, sound_cards

    cards = tmp_path / "cards"
    cards.write_text(
        " 0 [HDMI           ]: HDA-Intel - HDA ATI HDMI\n"
        "                      HDA ATI HDMI at 0xf7e40000 irq 33\n"
    )
    assert sound_cards(cards) == []
    assert all_sound_cards(cards) == ["0 [HDMI           ]: HDA-Intel - HDA ATI HDMI"]


@pytest.mark.usefixtures(close_rigs.__name__)
def test_a_long_press_with_no_session_says_nothing_of_reading_who_walks(tmp_path: Path) -> None:
    """Armed, the walker profiles in, no session under way: a long press (the stop pattern)
    has nothing to stop. The monitor knows who is walking, so it must not say it is "still
    reading who is walking" (the words of a start refused before the roster came)."""
    from firmware.session.voice import Prompts

    _registered(tmp_path)
    heard = Heard()
    rig = make_rig(tmp_path)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], speaker=heard)
    assert pump_link_until(rig.app.link, lambda: rig.app.link._new_roster is not None)
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "ARMED" and runner.session is None
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 3.0)
    rig.run_for(3.5)
    assert runner.session is None
    assert Prompts.for_language("en").file.prompts.not_started_walkers not in heard.said
    detach_session(rig.app, runner)


def test_the_log_counts_the_messages_held_once_more_than_one_is() -> None:
    """A second poisoned message held beside the first: its log line says that two are held
    now (each keeps one of the broker's in-flight slots, the reader's reason to look), where
    the first one's said none."""
    faults: list[CallbackFault] = []
    client = GuardedClient(
        mqtt.CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
        on_fault=faults.append,
    )

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        raise RuntimeError("a bug")

    client.on_message = on_message
    guarded = client.on_message
    assert guarded is not None
    topic = "retroguard/treadmill-1/event"
    first, second = _message(topic, b"one"), _message(topic, b"two", mid=2)
    for message in (first, first, second):  # the first time reconnects; then each is held
        guarded(client, None, message)
    assert faults[1].words().endswith("(the broker sends it again at the next connection)")
    assert faults[2].held_now == 2
    assert (
        faults[2]
        .words()
        .endswith(
            "left unacknowledged (the broker sends it again at the next connection); "
            "2 messages held"
        )
    )


def test_two_callbacks_backing_off_wait_the_longer_delay() -> None:
    """The owner's reconnect delays (3 s to 64 s) are paho's from the start, before any fault.
    ``on_subscribe`` failed three times (a reconnect in 12 s), ``on_publish`` twice (6 s):
    paho waits the longer, or the callback failing more often is reconnected for at the other's
    pace. Called as paho calls them (the wrapped callbacks, no connection open)."""
    faults: list[CallbackFault] = []
    client = GuardedClient(
        mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, on_fault=faults.append
    )
    client.reconnect_delay_set(3, 64)
    assert (client._reconnect_min_delay, client._reconnect_max_delay) == (3, 64)

    def failing(*args: Any) -> None:
        raise RuntimeError("a bug")

    client.on_subscribe = failing
    client.on_publish = failing
    on_subscribe, on_publish = client.on_subscribe, client.on_publish
    assert on_subscribe is not None and on_publish is not None
    for _ in range(3):
        on_subscribe(client, None, 1, [], None)
    for _ in range(2):
        on_publish(client, None, 1, mqtt.ReasonCode(mqtt.PacketTypes.PUBACK), None)
    assert [f.reconnect_in_s for f in faults] == [None, 6.0, 12.0, None, 6.0]
    assert (client._reconnect_min_delay, client._reconnect_max_delay) == (12.0, 64)


def test_home_assistant_reads_no_message_held_from_a_health_message_that_names_none() -> None:
    """The health message leaves ``message_held`` out while none is held (a reader from before
    it ignores it): Home Assistant's attribute must then read false, and true once one is."""
    import json

    from caregiver.health_discovery import HEALTH_ATTRIBUTES
    from caregiver.health_topic import health_message
    from core.protocol.payloads import encode
    from tests.ha_discovery import render

    for held in (False, True):
        message = health_message(
            "caregiver-1", storing=True, damaged=False, side=(), held=held, wall_time="w"
        )
        payload = encode(message)
        assert ("message_held" in payload) is held
        assert json.loads(render(HEALTH_ATTRIBUTES, payload))["message_held"] is held
