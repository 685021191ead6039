"""``retroguard watch`` as a caregiver runs it: a subprocess against a real broker."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import msgspec
import paho.mqtt.client as mqtt
import pytest

from core.errors import ConfigError
from core.plan_presets import PRESETS
from core.protocol import payloads
from core.protocol.commands import LATEST, Ack, encode_command
from core.protocol.events import Event, EventType
from core.protocol.messages import FaultSaid, IncidentMessage, WornSaid
from core.protocol.plan import plan_words
from core.protocol.topics import Topics
from core.protocol.words import FAULT_KIND_SAID
from firmware.config import MqttConfig
from firmware.mqtt import MqttReporter
from firmware.safety import STILL_MEASURING_REASON
from sim.recordings import fall_recording
from tests.mqtt_helpers import WAIT, config_for, fall, info, subscriber
from tests.stage_support import STAGE_EXAMPLE, anna_and_bob_on_stage_one
from tools.broker import Mosquitto, mosquitto_available
from tools.watch import (
    WORN_WORDS,
    Watcher,
    _settings,
    format_message,
    incident_line,
    stage_line,
)

REPO = Path(__file__).resolve().parent.parent


def _watch(*args: str) -> subprocess.Popen[str]:
    """``retroguard watch ARGS`` in a process of its own, its stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "tools.watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def test_watch_prints_events_once_and_exits_after_count(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    proc = _watch("--port", str(mosquitto.port), "--count", "2")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("watching ")  # subscribed: nothing missed now
        reporter = MqttReporter(
            config_for(mosquitto), device_id="tm1", device_name="T1", database=tmp_path / "w.db"
        )
        reporter.start()
        reporter.publish_state("TRIPPED", "fall: impact then lying")
        first = fall("tm1", with_window=True)
        reporter.sink.handle(first)
        reporter.sink.handle(info("tm1", EventType.RESET))
        out, err = proc.communicate(timeout=WAIT)
        reporter.close()
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "ONLINE" in out
    # each event labelled as the dashboard's timeline says it, not its type ("RESET")
    (fell,) = [line for line in out.splitlines() if first.id in line]
    assert " !! Fall " in fell and "[10 IMU samples]" in fell
    assert " Reset at the machine " in out and "RESET" not in out
    assert "-> TRIPPED: fall: impact then lying" in out


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """The lines of a subprocess's pipe as they come, to wait for with a deadline."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_watch_says_it_cannot_reach_the_broker_and_watches_once_it_can() -> None:
    """Nothing listening: it printed nothing and waited, which looks like a quiet device.
    Now stderr says so at once (once, not per retry), when the broker answers, and when it is
    lost again."""
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    broker = Mosquitto()  # its port chosen, not started: nothing listens there yet
    proc = _watch("--port", str(broker.port))
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _lines(proc.stdout), _lines(proc.stderr)
        where = f"127.0.0.1:{broker.port}"
        assert err.get(timeout=WAIT) == (
            f"retroguard watch: cannot reach the broker at {where}; retrying (Ctrl-C to stop)\n"
        )
        broker.start()
        try:
            assert out.get(timeout=WAIT).startswith("watching ")
            assert err.get(timeout=WAIT) == f"retroguard watch: reached the broker at {where}\n"
            assert err.empty()  # one line for the outage, not one per retry
        finally:
            broker.cleanup()
        assert err.get(timeout=WAIT) == (
            f"retroguard watch: lost the broker at {where}; retrying (Ctrl-C to stop)\n"
        )
    finally:
        proc.kill()
        proc.wait()


def test_a_port_that_takes_the_connection_but_speaks_no_mqtt_cannot_be_reached() -> None:
    """A listener that accepts and hangs up (a wrong port, a broker expecting TLS): the broker
    was never reached, so stderr says "cannot reach", not "lost"."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    proc = _watch("--port", str(port))
    try:
        assert proc.stderr is not None
        err = _lines(proc.stderr)
        assert err.get(timeout=WAIT) == (
            f"retroguard watch: cannot reach the broker at 127.0.0.1:{port}; "
            "retrying (Ctrl-C to stop)\n"
        )
    finally:
        proc.kill()
        proc.wait()
        listener.close()


def _watch_parser() -> argparse.ArgumentParser:
    from launcher.cli import build_parser

    return build_parser(["watch"])


def test_a_port_that_is_no_tcp_port_is_refused_by_argparse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for port, shown in (("70000", "70000"), ("0", "0"), ("http", "'http'")):
        with pytest.raises(SystemExit) as refused:
            _watch_parser().parse_args(["watch", "--port", port])
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --port: must be a TCP port (1-65535), not {shown}" in err


def test_a_password_file_without_a_user_name_is_refused(tmp_path: Path) -> None:
    """paho sends a password only with a user name: it was dropped without a word."""
    password = tmp_path / "pw"
    password.write_text("secret\n")
    parser = _watch_parser()
    alone = parser.parse_args(["watch", "--password-file", str(password)])
    with pytest.raises(ConfigError, match="--password-file needs --username"):
        _settings(alone)
    named = parser.parse_args(["watch", "--password-file", str(password), "--username", "ann"])
    assert _settings(named).username == "ann"


def test_a_watch_never_logs_in_with_the_monitors_own_account(tmp_path: Path) -> None:
    """``--config`` is for the broker's address: with the device's [mqtt] account the watch
    would take the monitor's session over (a client's id is its user name on the documented
    broker), so its account is never inherited, and naming it is refused with the reason."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[device]\nid = "tm-7"\n[mqtt]\nhost = "broker.lan"\nport = 8883\ntls = true\n'
        'username = "tm-7"\npassword_file = "/etc/retroguard/mqtt-password"\n'
        'topic_prefix = "clinic"\n'
    )
    parser = _watch_parser()
    settings = _settings(parser.parse_args(["watch", "--config", str(config)]))
    assert (settings.host, settings.port, settings.tls) == ("broker.lan", 8883, True)
    assert settings.topic_prefix == "clinic"
    assert (settings.username, settings.password_file, settings.password) == ("", "", "")
    own = parser.parse_args(["watch", "--config", str(config), "--username", "tm-7"])
    with pytest.raises(ConfigError, match="the monitor's own broker account") as refused:
        _settings(own)
    assert (
        "--username caregiver-watch --password-file /etc/retroguard/caregiver-watch-mqtt-password"
        in str(refused.value)
    )
    password = tmp_path / "pw"
    password.write_text("secret\n")
    watcher = ["--username", "caregiver-watch", "--password-file", str(password)]
    other = parser.parse_args(["watch", "--config", str(config), *watcher])
    settings = _settings(other)
    assert (settings.username, settings.password_file) == ("caregiver-watch", str(password))


def test_every_line_has_the_device_in_one_column() -> None:
    """The time column is 28 wide on a line with a time; the availability line and an
    unreadable payload's have none and were padded 24, so their device stood 4 columns left
    of every other line's."""
    stamped = format_message(
        "retroguard/tm1/event", payloads.event_payload(fall("tm1"), 1).encode()
    )
    lines = [
        stamped,
        format_message("retroguard/tm1/availability", b"online"),
        format_message("retroguard/tm1/event", b"\xff not json"),
    ]
    assert all(line is not None for line in lines), lines
    assert {line.index(" tm1 ") for line in lines if line is not None} == {28}, lines


def test_format_handles_garbage() -> None:
    assert format_message("retroguard/tm1/event", b"\xff not json").startswith(" ")  # type: ignore[union-attr]
    assert format_message("retroguard", b"{}") is None
    assert format_message("retroguard/tm1/event", b"[1]") is None


def test_watch_names_a_failed_self_test_and_does_not_call_a_refused_one_a_problem() -> None:
    """A self-test reply is always ``ok`` when it ran, passed or not: the line said "ok" for a
    failed one. It names the failed checks; a refused one (not run) says so and why."""
    topic = "retroguard/tm1/reply"
    failed = {
        "passed": False,
        "checks": {
            "imu": {"ok": False, "detail": "no samples for 2 s"},
            "broker": {"ok": True, "detail": "connected"},
        },
    }
    line = format_message(
        topic, payloads.reply_payload("tm1", "self_test", "t1", True, failed).encode()
    )
    assert line is not None and line.endswith("<- self_test (t1) FAILED: imu: no samples for 2 s")
    passed = {"passed": True, "checks": {"broker": {"ok": True, "detail": "connected"}}}
    line = format_message(
        topic, payloads.reply_payload("tm1", "self_test", "t2", True, passed).encode()
    )
    assert line is not None and line.endswith("<- self_test (t2) passed")
    refused = payloads.reply_payload(
        "tm1", "self_test", None, False, error="retained command"
    ).encode()
    line = format_message(topic, refused)
    assert line is not None
    assert line.endswith(
        "<- self_test (None) REFUSED (not run, no device problem): retained command"
    )


def test_watch_says_what_the_loop_did_with_a_silence() -> None:
    """Every silence the device took read "ok", even one whose alarm was kept (another alarm,
    a newer fall, was sounding) or that found nothing sounding. It says which now."""
    topic = "retroguard/tm1/reply"
    fall_id, stumble_id, incident = "5316f9de" + "0" * 24, "ed253c7a" + "0" * 24, "26cf97f2" * 4

    def line(result: dict[str, str]) -> str:
        text = format_message(
            topic, payloads.reply_payload("tm1", "silence", "s1", True, result).encode()
        )
        assert text is not None
        return text.split("<- silence (s1) ")[1]

    kept = {"silence": "not_that_alarm", "pattern": "alarm", "event_id": fall_id}
    assert line(kept | {"incident": incident}) == (
        "KEPT: the alarm sounding is another alarm (event 5316f9de, incident 26cf97f2), "
        "not the one named: see it before silencing it"
    )
    stopped = {"silence": "stopped", "pattern": "alarm", "event_id": stumble_id}
    assert line(stopped) == "alarm stopped (event ed253c7a)"
    assert line({"silence": "nothing_sounding"}) == "nothing was sounding"
    assert line({"silence": "cue_left_playing", "pattern": "cue_backward"}) == (
        "no alarm sounding: the walker's cue (cue_backward) plays on"
    )
    refused = payloads.reply_payload("tm1", "silence", "s1", False, error="event_id must be")
    assert format_message(topic, refused.encode()).endswith("REFUSED: event_id must be")  # type: ignore[union-attr]


def test_watch_shows_times_in_the_local_zone_with_its_name() -> None:
    """The device sends UTC; the person at the terminal reads local time (a Berlin winter
    afternoon here), said as such; what is not a time is shown as sent."""
    from zoneinfo import ZoneInfo

    from tools.watch import _when

    berlin = ZoneInfo("Europe/Berlin")
    assert _when("2026-03-01T13:05:12.250+00:00", berlin) == "2026-03-01 14:05:12.250 CET"
    assert _when("2026-07-01T13:05:12.250", berlin) == "2026-07-01 15:05:12.250 CEST"  # naive: UTC
    assert _when("not a time", berlin) == "not a time"


def test_watch_shows_the_incident_who_closed_it_and_the_recording() -> None:
    incident = "ab" * 16
    window = Event.now(
        EventType.WINDOW,
        "tm1",
        12.0,
        "TRIPPED",
        "IMU",
        incident=incident,
        recording=fall_recording(),
    )
    closed = Event.now(
        EventType.CLOSED,
        "tm1",
        13.0,
        "TRIPPED",
        "closed",
        incident=incident,
        by="Ann",
        via="dashboard",
    )
    lines = [
        format_message("retroguard/tm1/event", payloads.event_payload(e, i).encode())
        for i, e in enumerate((window, closed), start=1)
    ]
    assert all(line is not None and "incident=abababab" in line for line in lines)
    assert "[1400 IMU samples]" in str(lines[0])
    assert "by Ann via dashboard" in str(lines[1])


def test_watch_started_after_a_fall_says_it_is_open_and_then_who_closed_it(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The fall happened before the watch started: the stream of events is gone, but the
    retained incident says a fall is open, in plain words. The caregiver's ack (the real
    command, on the broker) closes it: the watch says by whom, and lists the incident's
    events it saw, every line of it carrying the incident's short id."""
    incident = "fe" * 16
    reporter = MqttReporter(
        config_for(mosquitto), device_id="tm1", device_name="T1", database=tmp_path / "w.db"
    )
    reporter.start()
    trip = Event.now(EventType.STUMBLE, "tm1", 1.0, "TRIPPED", "trunk rotated", incident=incident)
    reporter.sink.handle(trip)
    reporter.sink.handle(dataclasses.replace(fall("tm1", 2.0), incident=incident))
    reporter.publish_state("TRIPPED", "fall: impact then lying")
    assert reporter.wait_drained(WAIT)
    # No --count: the watch would end at the CLOSED event, and the retained incident's
    # closing, published after it, may then never be read (it failed so in CI once).
    proc = _watch("--port", str(mosquitto.port))
    try:
        assert proc.stdout is not None
        out = _lines(proc.stdout)
        assert out.get(timeout=WAIT).startswith("watching ")
        retained = [out.get(timeout=WAIT), out.get(timeout=WAIT), out.get(timeout=WAIT)]
        (opened,) = [line for line in retained if "INCIDENT" in line]
        assert f"INCIDENT {incident[:8]} OPEN: FALL (opened " in opened
        assert opened.rstrip().endswith("not closed yet") and "!!" in opened
        assert any("-> TRIPPED" in line for line in retained)
        with subscriber(mosquitto, ["retroguard/tm1/reply"]) as caregiver:
            ack = encode_command(Ack(LATEST, "Ann", via="dashboard"), "r1")
            caregiver.client.publish(Topics("retroguard", "tm1").command("ack"), ack, qos=1)
            after = [out.get(timeout=WAIT)]
            while " INCIDENT " not in after[-1]:
                after.append(out.get(timeout=WAIT))
        assert any("<- ack (r1) ok" in line for line in after)
        (closed_event,) = [line for line in after if " Acknowledged " in line]
        assert f"incident={incident[:8]}" in closed_event and "by Ann via dashboard" in closed_event
        closing = after[-1]
        assert f"INCIDENT {incident[:8]} closed by Ann on the dashboard: Fall" in closing
        assert closing.rstrip().endswith("seen here: Acknowledged")  # the trip, fall came before
    finally:
        proc.kill()
        proc.wait()
        reporter.close()


def test_the_incident_line_says_what_is_open_and_who_closed_it() -> None:
    def line(**fields: object) -> str:
        message = IncidentMessage(
            schema=1, device_id="tm1", wall_time="2026-03-01T13:05:12.250+00:00", **fields
        )
        return incident_line("tm1", message, ["stumble", "fall", "no_recovery", "ok", "reset"])

    assert "no incident open" in line(open=False)
    lying = line(open=True, incident="ab" * 16, severity="no_recovery")
    # the dashboard's words: the card's while it is open, a closed headline's after (it said
    # "a FALL, NOT GETTING UP", "a call for HELP", and listed the types: "no_recovery, ok")
    assert "!! INCIDENT abababab OPEN: FALL — not getting up, not closed yet" in lying
    by_walker = line(open=False, incident="ab" * 16, severity="no_recovery", closed_by="walker")
    assert 'closed by the walker at the machine ("I\'m OK")' in by_walker
    assert ": Fall, not getting up; seen here: " in by_walker
    assert by_walker.endswith(
        "seen here: Stumble — belt stopped, Fall, Not getting up, Walker pressed I'm OK, "
        "Reset at the machine"
    )
    help_ha = line(
        open=False,
        incident="ab" * 16,
        severity="help",
        closed_by="home-assistant",
        closed_via="home-assistant",
    )
    assert "closed by home-assistant from Home Assistant: Help requested" in help_ha


def test_watch_marks_the_times_the_device_stamped_with_its_clock_not_set(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """After a power cut the Pi stamps the time of its last shutdown until NTP sets its clock:
    the event, state and incident lines it stamped so say "clock not set"; once set, not."""
    incident = "ab" * 16
    reporter = MqttReporter(
        config_for(mosquitto), device_id="tm1", device_name="T1", database=tmp_path / "w.db"
    )
    reporter.start()
    unset = dataclasses.replace(
        Event.now(EventType.STUMBLE, "tm1", 1.0, "TRIPPED", "trunk rotated", incident=incident),
        wall_unsynced=True,
    )
    reporter.sink.handle(unset)
    reporter.publish_state("TRIPPED", "trunk rotated", unset.wall_time, wall_unsynced=True)
    assert reporter.wait_drained(WAIT)
    proc = _watch("--port", str(mosquitto.port))
    try:
        assert proc.stdout is not None
        out = _lines(proc.stdout)
        assert out.get(timeout=WAIT).startswith("watching ")
        retained = [out.get(timeout=WAIT), out.get(timeout=WAIT), out.get(timeout=WAIT)]
        (opened,) = [line for line in retained if "INCIDENT" in line]
        assert f"INCIDENT {incident[:8]} OPEN: Stumble (opened " in opened
        assert ", clock not set), not closed yet" in opened
        (state,) = [line for line in retained if "-> TRIPPED" in line]
        assert state.rstrip().endswith("trunk rotated (clock not set)")
        # NTP has set the clock: the walker's reset is stamped right
        reset = dataclasses.replace(info("tm1", EventType.RESET, 2.0), wall_unsynced=False)
        reporter.sink.handle(dataclasses.replace(unset, id="cd" * 16, type=EventType.OK))
        reporter.sink.handle(reset)
        lines = [out.get(timeout=WAIT)]
        while reset.id not in lines[-1]:
            lines.append(out.get(timeout=WAIT))
        (ok,) = [line for line in lines if " Walker pressed I'm OK " in line]
        assert ok.rstrip().endswith(f"id={'cd' * 16} (clock not set)")
        assert "clock not set" not in lines[-1]
    finally:
        proc.kill()
        proc.wait()
        reporter.close()


def test_the_state_line_says_whether_the_sensor_is_not_worn_or_still_measuring() -> None:
    """Both reasons begin "sensor not worn"; the line says which the state message's ``worn``
    means (a release before the field: its reason's prefix), and nothing of it otherwise."""
    topic = Topics("retroguard", "tm1").state
    wall = "2026-03-01T13:05:12.250+00:00"

    def line(reason: str, worn: WornSaid | None = None) -> str:
        text = format_message(
            topic, payloads.state_payload("tm1", "STANDBY", reason, wall, worn=worn).encode()
        )
        assert text is not None
        return text

    measuring = line(STILL_MEASURING_REASON, WornSaid.MEASURING)
    assert measuring.endswith(f"{STILL_MEASURING_REASON} [{WORN_WORDS[WornSaid.MEASURING]}]")
    assert "NOT WORN" not in measuring
    off = line("sensor not worn: no body signal", WornSaid.NOT_WORN)
    assert off.endswith(f"[{WORN_WORDS[WornSaid.NOT_WORN]}]")
    assert line(STILL_MEASURING_REASON) == measuring  # an older release: its reason's prefix
    assert "[" not in line("press reset to arm")


def test_watch_says_the_sensor_is_still_being_checked_not_that_it_is_off(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The device's retained state of a press refused while the sensor-worn check measures
    reaches a watch started after it with the check's word, not a sensor said to be off."""
    reporter = MqttReporter(
        config_for(mosquitto), device_id="tm1", device_name="T1", database=tmp_path / "w.db"
    )
    reporter.start()
    reporter.publish_state("STANDBY", STILL_MEASURING_REASON, worn=WornSaid.MEASURING)
    assert reporter.wait_drained(WAIT)
    proc = _watch("--port", str(mosquitto.port))
    try:
        assert proc.stdout is not None
        out = _lines(proc.stdout)
        assert out.get(timeout=WAIT).startswith("watching ")
        state = out.get(timeout=WAIT)
        while "-> STANDBY" not in state:
            state = out.get(timeout=WAIT)
        assert state.rstrip().endswith(f"[{WORN_WORDS[WornSaid.MEASURING]}]")
    finally:
        proc.kill()
        proc.wait()
        reporter.close()


def test_the_documented_watch_account_watches_on_the_documented_broker(tmp_path: Path) -> None:
    """docs/mqtt.md, "Watching from a terminal": on a broker whose client ids are user names, a
    watch logs in with an account of its own (logging in as ``caregiver`` would take the
    service's session over); the documented ACL (the installed one) has the ``user`` block the
    page gives, which lets it see what it watches, and its example's user name is that
    block's."""
    doc = (REPO / "docs" / "mqtt.md").read_text(encoding="utf-8")
    section = doc.split("## Watching from a terminal", 1)[1].split("\n## ", 1)[0]
    username = section.split("--username ", 1)[1].split()[0]
    block = section.split(f"```\nuser {username}\n", 1)[1].split("```", 1)[0]
    assert username.startswith("caregiver-") and block.strip()
    acl = (REPO / "docs" / "mqtt" / "mosquitto.acl").read_text(encoding="utf-8")
    assert _watch_block(acl) == block.splitlines()
    secret = tmp_path / "watch-pw"
    secret.write_text("pw-w\n", encoding="utf-8")
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    broker = Mosquitto(users={"tm1": "pw-d", username: "pw-w"}, acl=acl)
    broker.start()
    reporter: MqttReporter | None = None
    proc = _watch(
        "--port", str(broker.port), "--username", username, "--password-file", str(secret),
        "--count", "2",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("watching ")
        config = config_for(broker, username="tm1", password="pw-d")
        reporter = MqttReporter(
            config, device_id="tm1", device_name="T1", database=tmp_path / "w.db"
        )
        reporter.start()
        reporter.publish_state("TRIPPED", "fall: impact then lying")
        reporter.sink.handle(fall("tm1"))
        reporter.sink.handle(info("tm1", EventType.RESET))
        out, err = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
        if reporter is not None:
            reporter.close()
        broker.cleanup()  # its folder too: stop() left one a run
    assert proc.returncode == 0, err
    assert " Fall " in out and " Reset at the machine " in out
    assert "-> TRIPPED: fall: impact then lying" in out


WATCH_ACCOUNT = "caregiver-watch"
STAGE_RULE = "topic read retroguard/+/stage/+"


def _watch_block(acl: str) -> list[str]:
    """The rule lines of ``acl``'s ``user caregiver-watch`` block, in order."""
    tail = acl.split(f"\nuser {WATCH_ACCOUNT}\n", 1)[1].split("\nuser ", 1)[0]
    return [line for line in tail.splitlines() if line.startswith("topic ")]


def _watch_the_stage(acl: str, tmp_path: Path, name: str) -> tuple[list[str], str]:
    """A broker with ``acl``, Bob's stage published by his device (tm1) and kept by the
    broker, and a watch logged in as ``caregiver-watch`` until it has shown a state the device
    sent after it subscribed: its stdout lines and its stderr.

    The watch starts only once the broker holds the stage (the caregiver service's account
    has read it): a reporter slower to connect than the watch to subscribe would otherwise
    send the state first (its publisher sends the state before the retained topics), and the
    watch would stop before the stage came, mended ACL or not."""
    db = tmp_path / f"{name}.db"
    anna_and_bob_on_stage_one(db, dt.datetime.now(dt.UTC))
    secret = tmp_path / f"{name}-pw"
    secret.write_text("pw-w\n", encoding="utf-8")
    users = {"tm1": "pw-d", WATCH_ACCOUNT: "pw-w", "caregiver": "pw-c"}
    broker = Mosquitto(users=users, acl=acl)
    broker.start()
    config = config_for(broker, username="tm1", password="pw-d", discovery=False)
    reporter = MqttReporter(config, device_id="tm1", device_name="T1", database=db)
    reporter.start()
    shown: list[str] = []
    err = ""
    try:
        stage = ["retroguard/tm1/stage/bob"]
        with subscriber(broker, stage, username="caregiver", password="pw-c") as service:
            assert service.wait(lambda: any(m.payload for m in service.messages))
        proc = _watch(
            "--port", str(broker.port), "--username", WATCH_ACCOUNT, "--password-file", str(secret)
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            out = _lines(proc.stdout)
            shown.append(out.get(timeout=WAIT))
            assert shown[0].startswith("watching ")
            reporter.publish_state("TRIPPED", "fall: impact then lying")
            while "-> TRIPPED" not in shown[-1]:
                shown.append(out.get(timeout=WAIT))
            # the retained stage comes on the subscription, before what the device sends after
        finally:
            proc.kill()
            _, err = proc.communicate(timeout=WAIT)
    finally:
        reporter.close()
        broker.cleanup()
    return shown, err


def test_an_acl_from_before_the_stage_is_named_by_the_watch_and_mended_by_the_documented_line(
    tmp_path: Path,
) -> None:
    """A ``caregiver-watch`` block written before the walkers' stage lacks its line: Mosquitto
    grants the subscription and delivers none of it, so the watch shows the rest (the state)
    and never Bob's stage; the one command docs/mqtt.md gives for such an ACL adds the line,
    and the watch then shows his stage. The installed ACL (which install-pi.sh writes again at
    every run, an upgrade's path) has it."""
    if not mosquitto_available():
        pytest.skip("mosquitto not installed")
    acl = (REPO / "docs" / "mqtt" / "mosquitto.acl").read_text(encoding="utf-8")
    assert STAGE_RULE in _watch_block(acl)
    head, tail = acl.split(f"\nuser {WATCH_ACCOUNT}\n", 1)
    older = f"{head}\nuser {WATCH_ACCOUNT}\n" + tail.replace(f"{STAGE_RULE}\n", "")
    assert STAGE_RULE not in _watch_block(older)

    shown, _ = _watch_the_stage(older, tmp_path, "older")
    assert not any("** bob:" in line for line in shown)

    doc = (REPO / "docs" / "mqtt.md").read_text(encoding="utf-8")
    command = next(line for line in doc.splitlines() if line.startswith("sudo sed -i "))
    mend = command.split(" && ", 1)[0].removeprefix("sudo ")
    path = tmp_path / "retroguard.acl"
    path.write_text(older, encoding="utf-8")
    mend = mend.replace("/etc/mosquitto/retroguard.acl", str(path))
    subprocess.run(["bash", "-c", mend], check=True, timeout=WAIT)
    mended = path.read_text(encoding="utf-8")
    assert sorted(_watch_block(mended)) == sorted(_watch_block(acl))

    shown, err = _watch_the_stage(mended, tmp_path, "mended")
    assert "not allowed" not in err
    assert any("** bob: two stage 1 of 2" in line for line in shown)


def test_a_watch_refused_a_topic_says_the_rule_its_account_lacks_and_watches_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A broker that refuses a subscription (a SUBACK's "Not authorized"; Mosquitto 2.0 grants
    it and delivers nothing) gets the line its account's ACL block lacks named, and the watch
    goes on with the topics it was given."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    out = io.StringIO()
    watcher = Watcher(MqttConfig(host="127.0.0.1", port=1), "+", 0, False, out=out)
    granted = ReasonCode(PacketTypes.SUBACK, "Granted QoS 1")
    refused = ReasonCode(PacketTypes.SUBACK, "Not authorized")
    codes = [refused if t.endswith("/stage/+") else granted for t in watcher.topics]
    watcher._on_subscribe(watcher.client, None, 1, codes, None)
    err = capsys.readouterr().err
    assert (
        "retroguard watch: not allowed to read retroguard/+/stage/+: the broker's ACL does not "
        f"give this account it (add '{STAGE_RULE}' to its user block and reload Mosquitto"
    ) in err
    assert err.rstrip().endswith("watching the rest")
    assert out.getvalue().startswith("watching retroguard/+/availability")


def _received(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(topic=topic.encode())
    message.payload = payload
    return message


def test_watch_says_each_walker_s_stage_once_per_change_and_survives_garbage() -> None:
    """The retained ``stage/<walker>`` (republished at least every minute with a new
    ``wall_time``): one line when the walker's progression changes, none for a repeat, a
    readable line for the device's clear, and garbage, a forged walker or a bad topic is a
    line saying so or nothing, never a crash of the watch's network thread."""
    out = io.StringIO()
    watcher = Watcher(MqttConfig(host="127.0.0.1", port=1), "+", 0, False, out=out)
    assert "retroguard/+/stage/+" in watcher.topics
    topic = "retroguard/treadmill-1/stage/bob"
    stage = STAGE_EXAMPLE
    later = msgspec.structs.replace(stage, wall_time="2026-03-03T10:01:00.000+00:00")
    advanced = msgspec.structs.replace(
        later, stage=2, stage_name="progression-week-2", change="advanced", week_done=0
    )
    for sent in (stage, later, advanced):
        watcher._on_message(None, None, _received(topic, payloads.encode(sent).encode()))  # type: ignore[arg-type]
    for bad_topic, garbage in (
        (topic, b"\xff{not json"),
        (topic, b'{"schema": 1}'),
        (topic, b"[]"),
        ("retroguard/treadmill-1/stage/anna", payloads.encode(stage).encode()),  # bob's, on anna's
        ("retroguard/treadmill-1/stage/B B", payloads.encode(stage).encode()),
        ("retroguard/treadmill-1/stage/", b""),
        ("retroguard/treadmill-1/stage/anna", b""),  # nothing said of anna: nothing to clear
    ):
        watcher._on_message(None, None, _received(bad_topic, garbage))  # type: ignore[arg-type]
    watcher._on_message(None, None, _received(topic, b""))  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines
    first, moved, unreadable, cleared = lines
    # the stage's plan by its name and in words, as the dashboard says it (a name alone was a
    # label to look up: core.plan_presets.stage_words)
    two_two = plan_words(PRESETS["alternate-2-2"], 2)
    assert two_two.endswith("; belt 0.5 mph; twice a week")
    assert (
        "treadmill-1" in first
        and f"** bob: two stage 1 of 2 (alternate-2-2: {two_two}), running: assigned" in first
    )
    assert "this week 0 of 2, 0 of 1 week done" in first
    week_2 = plan_words(PRESETS["progression-week-2"], 2)
    assert f"** bob: two stage 2 of 2 (progression-week-2: {week_2}), running: advanced" in moved
    assert "?? unreadable stage of bob" in unreadable
    assert "** bob: no progression kept (walker removed)" in cleared


def test_a_stage_whose_plan_the_watch_cannot_know_is_said_by_its_name() -> None:
    """A custom stage's plan is not in the stage message: its name, never a guess."""
    custom = msgspec.structs.replace(STAGE_EXAMPLE, stage_name="anna-week-3")
    assert "two stage 1 of 2 (anna-week-3), running: assigned" in stage_line("tm1", custom)


def test_watch_shows_a_walker_s_stage_the_device_publishes(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Over the real broker, from the device's own database: Bob's progression (assigned at
    the treadmill) reaches a watch started after it, retained, as one line."""
    db = tmp_path / "device.db"
    anna_and_bob_on_stage_one(db, dt.datetime.now(dt.UTC))
    reporter = MqttReporter(
        config_for(mosquitto, discovery=False), device_id="tm1", device_name="T1", database=db
    )
    reporter.start()
    proc = _watch("--port", str(mosquitto.port))
    try:
        assert proc.stdout is not None
        out = _lines(proc.stdout)
        assert out.get(timeout=WAIT).startswith("watching ")
        line = out.get(timeout=WAIT)
        while "** bob:" not in line:
            line = out.get(timeout=WAIT)
        assert "tm1" in line and "two stage 1 of 2 (alternate-2-2: 2 min backward / " in line
        assert "; twice a week), running: assigned" in line
    finally:
        proc.kill()
        proc.wait()
        reporter.close()


def test_a_fault_line_says_who_must_act_by_its_kind() -> None:
    """The state message's ``fault``: a stall clears by itself, a contact fault stops anyone
    walking; a not-worn FAULT keeps the worn words (said once); a FAULT of unknown kind (a
    release before the field) and a kind outside FAULT add nothing."""
    topic = Topics("retroguard", "tm1").state
    wall = "2026-03-01T13:05:12.250+00:00"

    def line(state: str, reason: str, **typed: Any) -> str:
        text = format_message(
            topic, payloads.state_payload("tm1", state, reason, wall, **typed).encode()
        )
        assert text is not None
        return text

    stall = line("FAULT", "heartbeat gap", fault=FaultSaid.STALL)
    assert stall.endswith(f"heartbeat gap [{FAULT_KIND_SAID[FaultSaid.STALL].then}]")
    contact = line("FAULT", "relay contact open while armed", fault=FaultSaid.CONTACT)
    assert contact.endswith(
        "[the relay may not stop the belt: nobody walks until someone has checked the treadmill]"
    )
    off = line("FAULT", "sensor not worn: 6 s", worn=WornSaid.NOT_WORN, fault=FaultSaid.NOT_WORN)
    assert off.endswith(f"[{WORN_WORDS[WornSaid.NOT_WORN]}]") and off.count("[") == 1
    assert "[" not in line("FAULT", "heartbeat gap")
    assert "[" not in line("STANDBY", "IMU healthy", fault=FaultSaid.STALL)
