"""Storage faults are visible and survivable (issue 12): the whole monitor on simulated hardware,
the courier on real SQLite files, a real Mosquitto, and real processes where it matters.

* A damaged database at start: the monitor starts, arms and detects; the file is moved aside and
  a FAULT names where it went.
* A disk that fills while a walk is under way: the walk goes on; every alert is kept in memory,
  published, and held by the loop; the fault is reported (event, telemetry, state reason); a new
  walk cannot be armed and the buzzer says so; when space returns everything lands on disk and
  arming works again.
* The MQTT publisher survives database errors (tests/test_mqtt_delivery.py).
* An unclean stop (kill -9 of the monitor process, or of monitor and courier together: a power
  cut) is reported once, at the next start.

Waits are on messages and files (bounded as a safety net), never on time passing.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from core.protocol.events import Event, EventType
from core.samples import ImuSample
from firmware.detection.base import Detection, DetectionKind
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import CourierSupervisor, ProcessCourier
from firmware.storage.damage import moved_aside_files
from firmware.storage.database import connect
from firmware.storage.events import EventStore
from tests.app_support import TripAt, close_rigs, make_config, make_rig, pump_link_until
from tests.mqtt_helpers import WAIT, Subscriber, config_for, subscriber, validate
from tests.storage_support import DAMAGE, FillableDisk, damage, wait_for
from tools.broker import Mosquitto

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "treadmill-1"
ALERTS = {EventType.STUMBLE, EventType.NO_RECOVERY, EventType.FALL}


ALERT_PADDING = "." * 20_000
"""Each scripted alert's reason is this long: an alert needs room a full disk does not have.
(Alerts were that big when they carried their IMU window; the window now follows in an event of
its own, 10 s later, and a bare alert fits in the free room of a page.)"""


class Scripted:
    """A detector that decides each planned (time, kind) once, at the first sample at or past it."""

    def __init__(self, *plan: tuple[float, DetectionKind]) -> None:
        self._plan = sorted(plan)

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        due = []
        while self._plan and sample.t >= self._plan[0][0]:
            _, kind = self._plan.pop(0)
            reason = f"test {kind.value} {ALERT_PADDING}"
            due.append(Detection(kind, sample.t, reason, {"tilt_deg": 40.0}))
        return tuple(due)

    def reset(self) -> None:
        pass


def stored(path: Path) -> list[Event]:
    with EventStore(path) as store:
        return [s.event for s in store.events()]


# ------------------------------------------------------------------ damaged at start


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_the_monitor_starts_arms_and_detects_on_a_damaged_database(
    tmp_path: Path, kind: str
) -> None:
    db = tmp_path / "events.db"
    damage(kind, db)
    rig = make_rig(tmp_path, detector=TripAt(2.0))
    assert rig.app.link.storage_ok is True  # a new file, not a fault that blocks arming
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    rig.run_for(1.5)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()

    stored_events = rig.app.stored_events()
    (moved,) = moved_aside_files(db)
    carried, events = stored_events[:-4], stored_events[-4:]
    assert all(e.event.type is EventType.STUMBLE for e in carried)  # the old queue, if readable
    assert [e.event.type for e in events] == [
        EventType.FAULT,
        EventType.START,
        EventType.RESET,
        EventType.STUMBLE,
    ]
    reason = events[0].event.reason
    assert f"the device database {db} was damaged" in reason
    assert f"moved aside to {moved} (kept for inspection)" in reason


def test_the_courier_process_starts_on_a_database_from_a_newer_release(tmp_path: Path) -> None:
    """The crash loop of the issue: a real courier process, a file it must not use."""
    db = tmp_path / "events.db"
    before = damage("newer schema", db)
    rig = make_rig(tmp_path, detector=TripAt(2.0), courier=ProcessCourier)
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.5)
    assert rig.state == "TRIPPED"
    types = [e.event.type for e in rig.app.stored_events()]
    assert types == [EventType.FAULT, EventType.START, EventType.RESET, EventType.STUMBLE]
    (moved,) = moved_aside_files(db)
    assert moved.read_bytes() == before  # the newer release's log, kept whole


# ----------------------------------------------------------------------- full disk


def test_a_disk_that_fills_loses_no_alert_refuses_arming_and_recovers(
    tmp_path: Path,
    mosquitto: Mosquitto,
    disk: FillableDisk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("firmware.storage.fallback.DISK_RETRY_S", 0.2)
    monkeypatch.setattr("firmware.courier.service.HEARTBEAT_S", 0.05)
    sub = Subscriber(mosquitto, [f"retroguard/{DEVICE}/#"])
    detector = Scripted(
        (6.0, DetectionKind.STUMBLE), (7.0, DetectionKind.NO_RECOVERY), (8.0, DetectionKind.FALL)
    )
    rig = make_rig(
        tmp_path, detector=detector, mqtt=config_for(mosquitto, telemetry_interval_s=0.1)
    )
    link, db = rig.app.link, tmp_path / "events.db"
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "ARMED"
    assert pump_link_until(link, lambda: link.pending == 0)  # start and reset are on disk

    disk.fill()
    rig.run_for(3.0)  # a walk under way goes on: nothing about storage stops it
    assert rig.state == "ARMED" and rig.hardware.contact_closed()

    # Alerts on the full disk (each needs room the file does not have): kept in memory,
    # published, and held by the loop, which is not told they are persisted.
    rig.run_for(3.5)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()

    def published(kinds: set[EventType]) -> list[dict[str, object]]:
        out = [json.loads(m.payload) for m in sub.on("/event")]
        return [e for e in out if EventType(str(e["type"])) in kinds]

    assert sub.wait(lambda: {str(e["type"]) for e in published(ALERTS)} == ALERTS)
    alert_ids = {str(e["id"]) for e in published(ALERTS)}
    assert pump_link_until(link, lambda: link.storage_ok is False)
    problem = link.storage_problem(rig.clock.monotonic())
    assert problem is not None and "the disk is full" in problem
    assert link.pending == 3  # the loop keeps them until they are on disk
    assert not alert_ids & {e.id for e in stored(db)}

    # The fault is reported to caregivers: a FAULT event and telemetry.
    assert sub.wait(
        lambda: any("storage fault" in str(e["reason"]) for e in published({EventType.FAULT}))
    )
    assert sub.wait(
        lambda: any(json.loads(m.payload).get("storage_ok") is False for m in sub.on("/telemetry"))
    )
    for message in sub.on("/telemetry"):
        validate("telemetry", message.payload)

    # A new walk cannot be armed, and the buzzer and the state say why.
    rig.press_reset()
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    reason = rig.app.controller.reason
    assert reason.startswith("cannot arm: alerts cannot be stored: ") and "disk is full" in reason
    assert rig.app.gpio.buzzer.pattern == "refused"
    assert sub.wait(
        lambda: any(
            str(json.loads(m.payload)["reason"]).startswith("cannot arm") for m in sub.on("/state")
        )
    )

    # Space returns: everything lands on disk, the loop is told, arming works again.
    disk.free()
    assert pump_link_until(link, lambda: link.storage_ok is True and link.pending == 0)
    on_disk = stored(db)
    assert alert_ids <= {e.id for e in on_disk}
    assert any("storage fault" in e.reason for e in on_disk if e.type is EventType.FAULT)
    assert sub.wait(
        lambda: any(json.loads(m.payload).get("storage_ok") is True for m in sub.on("/telemetry"))
    )
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    sub.close()


def test_an_alert_the_courier_failed_to_store_for_another_reason_is_handed_over_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that fails for a reason that is not the disk's (here a constraint; SQLITE_NOMEM
    or a bug alike): no storage fault, so the loop kept the alert but nothing would ever hand
    it over again while that courier ran — neither stored nor published, lost at the stop.
    Now it is handed over again while storage works, and lands once the store takes it."""
    monkeypatch.setattr("firmware.link.endpoint.UNCONFIRMED_RESEND_S", 0.2)
    rig = make_rig(tmp_path, detector=Scripted((3.0, DetectionKind.STUMBLE)))
    link, db = rig.app.link, tmp_path / "events.db"
    rig.run_for(1.0)
    rig.press_reset()
    assert pump_link_until(link, lambda: link.pending == 0)
    refuse = sqlite3.connect(db)
    refuse.execute(
        "CREATE TRIGGER refuse_stumbles BEFORE INSERT ON events WHEN NEW.type = 'stumble'"
        " BEGIN SELECT RAISE(ABORT, 'refused, as a store that runs out of memory'); END"
    )
    refuse.commit()
    rig.run_for(2.5)
    assert rig.state == "TRIPPED"
    assert pump_link_until(link, lambda: "refused, as a store" in caplog.text)
    assert link.pending == 1 and link.storage_ok is True  # no storage fault said
    refuse.execute("DROP TRIGGER refuse_stumbles")
    refuse.commit()
    refuse.close()
    assert pump_link_until(link, lambda: link.pending == 0)
    assert [e.type for e in stored(db)].count(EventType.STUMBLE) == 1


def test_a_storage_fault_during_a_walk_never_stops_it(
    tmp_path: Path, disk: FillableDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("firmware.storage.fallback.DISK_RETRY_S", 0.2)
    monkeypatch.setattr("firmware.courier.service.HEARTBEAT_S", 0.05)
    monkeypatch.setattr("firmware.courier.service.PROBE_S", 0.1)
    rig = make_rig(tmp_path)
    link = rig.app.link
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    disk.go_read_only()  # the SD card is remounted read-only under a walk
    assert pump_link_until(link, lambda: link.storage_ok is False)  # the courier's probe
    assert "read-only" in str(link.storage_problem(rig.clock.monotonic()))
    armed_at = rig.clock.monotonic()
    rig.run_for(5.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert rig.hardware.opened_after(armed_at) is None  # not one drop of the relay
    disk.free()
    assert pump_link_until(link, lambda: link.storage_ok is True and link.pending == 0)
    rig.run_for(1.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_alerts_past_the_memory_bound_wait_in_the_loop_and_reach_the_disk_later(
    tmp_path: Path, disk: FillableDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("firmware.storage.fallback.DISK_RETRY_S", 0.2)
    # Room for a few alerts beyond the empty schema (which grows with migrations: 104 KiB at
    # schema 4, when this bound was 128 KiB), so memory fills up too.
    empty = connect(":memory:")
    schema_bytes = empty.execute("PRAGMA page_count").fetchone()[0] * 4096
    empty.close()
    monkeypatch.setattr("firmware.storage.fallback.MEMORY_LIMIT_BYTES", schema_bytes + 24 * 1024)
    monkeypatch.setattr("firmware.courier.service.HEARTBEAT_S", 0.05)
    plan = [(3.0 + 0.5 * i, DetectionKind.STUMBLE) for i in range(10)]
    rig = make_rig(tmp_path, detector=Scripted(*plan))
    link, db = rig.app.link, tmp_path / "events.db"
    rig.run_for(1.0)
    rig.press_reset()
    assert pump_link_until(link, lambda: link.pending == 0)
    disk.fill()
    rig.run_for(7.0)  # past the last planned stumble
    courier = rig.courier

    def stumbles_in_memory() -> list[str]:
        return [e.event.id for e in courier.store.events() if e.event.type is EventType.STUMBLE]

    # Not only the storage fault: the courier reads what the loop sent in drains, and a backlog
    # that arrived together is stored after the fault was already told (under load).
    assert pump_link_until(link, lambda: link.storage_ok is False and bool(stumbles_in_memory()))
    in_memory = stumbles_in_memory()
    on_disk = [e.id for e in stored(db) if e.type is EventType.STUMBLE]  # before it was full
    assert in_memory and len(on_disk) + len(in_memory) < 10  # memory filled up too
    assert link.pending == 10 - len(on_disk)  # the loop holds every one not on disk
    disk.free()
    assert pump_link_until(link, lambda: link.storage_ok is True and link.pending == 0)
    stumbles = [e for e in stored(db) if e.type is EventType.STUMBLE]
    assert len(stumbles) == 10 and len({e.id for e in stumbles}) == 10  # each once


def test_a_disk_read_only_from_the_start_still_publishes_and_refuses_arming(
    tmp_path: Path, mosquitto: Mosquitto, disk: FillableDisk
) -> None:
    EventStore(tmp_path / "events.db").close()
    disk.go_read_only()
    with subscriber(mosquitto, [f"retroguard/{DEVICE}/event"]) as sub:
        rig = make_rig(tmp_path, detector=TripAt(3.0), mqtt=config_for(mosquitto))
        assert rig.app.link.storage_ok is False
        rig.run_for(1.0)
        rig.press_reset()
        assert rig.state == "STANDBY" and not rig.hardware.contact_closed()
        assert rig.app.controller.reason.startswith("cannot arm: alerts cannot be stored")
        # The start event and the storage FAULT are still published.
        assert sub.wait(lambda: len(sub.event_ids()) >= 2)
        types = {json.loads(m.payload)["type"] for m in sub.on("/event")}
        assert {"start", "fault"} <= types


# -------------------------------------------------------------------- unclean stops


class MonitorProcess:
    """``tests/monitor_process.py`` in a process of its own, with its courier child."""

    def __init__(self, database: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.monitor_process", str(database)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        line = self.proc.stdout.readline().split() if ready else []
        assert line[:1] == ["ready"], f"the monitor process did not start: {line}"
        self.courier_pid = int(line[1])

    def stop(self) -> None:
        """A clean stop: SIGTERM, as systemd sends."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(WAIT) == 0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(WAIT)


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def fault_reasons(database: Path) -> list[str]:
    return [e.reason for e in stored(database) if e.type is EventType.FAULT]


def runs(database: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT clean, reported FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture
def monitors() -> Iterator[list[MonitorProcess]]:
    started: list[MonitorProcess] = []
    yield started
    for monitor in started:
        if monitor.proc.poll() is None:
            monitor.kill()


def test_a_killed_monitor_is_reported_once_by_its_courier(
    tmp_path: Path, monitors: list[MonitorProcess]
) -> None:
    db = tmp_path / "events.db"
    first = MonitorProcess(db)
    monitors.append(first)
    first.kill()  # kill -9: its courier sees the link close without a goodbye
    assert wait_for(lambda: gone(first.courier_pid))
    assert [r for r in fault_reasons(db) if "without shutting down" in r]
    second = MonitorProcess(db)
    monitors.append(second)
    second.stop()
    reasons = fault_reasons(db)
    assert len([r for r in reasons if "without shutting down" in r]) == 1
    assert not [r for r in reasons if "did not stop cleanly" in r]  # already reported
    assert runs(db) == [(0, 1), (1, 0)]


def test_a_power_cut_is_reported_once_at_the_next_start(
    tmp_path: Path, monitors: list[MonitorProcess]
) -> None:
    db = tmp_path / "events.db"
    first = MonitorProcess(db)
    monitors.append(first)
    os.kill(first.courier_pid, signal.SIGSTOP)  # the courier never runs again: nothing recorded
    first.kill()
    os.kill(first.courier_pid, signal.SIGKILL)
    assert wait_for(lambda: gone(first.courier_pid))
    assert fault_reasons(db) == []

    second = MonitorProcess(db)
    monitors.append(second)
    second.stop()
    (report,) = fault_reasons(db)
    assert report.startswith("the previous run (started ")
    assert report.endswith(
        "UTC) did not stop cleanly (power loss, crash or kill): events of its last moments may "
        "be missing"
    )
    third = MonitorProcess(db)
    monitors.append(third)
    third.stop()
    assert len(fault_reasons(db)) == 1  # once
    assert runs(db) == [(0, 1), (1, 0), (1, 0)]


def test_a_courier_replaced_within_a_run_does_not_count_a_new_run(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    link = CourierLink(time.monotonic)
    hello = messages.Hello(config, os.getpid(), "2026-12-01T21:00:00.000+00:00")
    link.hello(messages.encode(hello))
    supervisor = CourierSupervisor(link, ProcessCourier)
    supervisor.start()
    try:
        link.submit(Event.now(EventType.START, DEVICE, 0.0, "STARTING", "started"))
        assert pump_link_until(link, lambda: link.pending == 0)
        courier = supervisor.current
        assert isinstance(courier, ProcessCourier)
        os.kill(courier.pid, signal.SIGKILL)
        link.submit(Event.now(EventType.RESET, DEVICE, 1.0, "ARMED", "armed"))
        assert pump_link_until(link, lambda: supervisor.starts == 2 and link.pending == 0)
    finally:
        link.goodbye("test over")
        link.close()
        supervisor.stop(WAIT)
    db = Path(config.storage.database)
    assert fault_reasons(db) == []
    assert runs(db) == [(1, 0)]


def test_home_assistant_shows_a_storage_fault_from_telemetry() -> None:
    from core.protocol.topics import Topics
    from firmware.mqtt.discovery import discovery_payload

    payload = validate("discovery", discovery_payload(Topics("retroguard", DEVICE), "T"))
    sensor = payload["cmps"][f"retroguard_{DEVICE}_storage"]
    assert sensor["p"] == "binary_sensor" and sensor["dev_cla"] == "problem"
    assert sensor["stat_t"] == f"retroguard/{DEVICE}/telemetry"
    assert "storage_ok" in sensor["val_tpl"]
