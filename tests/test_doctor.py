"""``retroguard doctor`` on simulated hardware: all pass, and each injected fault gives its line.

Everything runs on a SimClock: the 2 s stream, the heartbeat edges and the
hold circuit's lapse take no real time, and the lines are exact.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory

from core.clock import SimClock
from firmware.config import Config, MqttConfig, StorageConfig
from launcher import cli
from sim import scenarios
from sim.backends import SimulatedImuRig, build_simulated_imu
from sim.pins import ClockedMockFactory
from tools.broker import Mosquitto, free_port
from tools.diagnostics import int_checks, system_checks
from tools.doctor import Bench, diagnose, report

FIX_WIRING = (
    "fix: check VCC (3.3 V), GND, SDA and SCL, and imu.address (0x68, or 0x69 with AD0 high); "
    "`sudo i2cdetect -y 1` must show 68"
)
FIX_PIN_HELD = (
    "fix: another process holds it — usually the monitor: sudo systemctl stop retroguard; "
    "otherwise find it with `gpioinfo | grep -i used`"
)


def make_config(tmp_path: Path, **sections: Any) -> Config:
    config = Config(storage=StorageConfig(database=str(tmp_path / "state" / "events.db")))
    return dataclasses.replace(config, **sections)


def standing_rig(config: Config, clock: SimClock) -> SimulatedImuRig:
    motion = scenarios.Sequence([scenarios.Standing(600.0)], seed=1)
    return build_simulated_imu(config.imu, clock, motion)


def lines(config: Config, bench: Bench) -> dict[str, str]:
    return {result.name: result.line() for result in diagnose(config, bench)}


def store_check(config: Config) -> dict[str, str]:
    """The event-store check's line by its name, as :func:`lines` has it, without every check
    :func:`diagnose` runs before it (the IMU's stream and the INT line: most of a diagnosis's
    second of CPU). That :func:`diagnose` runs it and says its line:
    test_simulated_rig_passes_every_check."""
    result = system_checks.check_store(config)
    return {result.name: result.line()}


@pytest.fixture
def clock() -> SimClock:
    return SimClock(100.0)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def rig(config: Config, clock: SimClock) -> SimulatedImuRig:
    return standing_rig(config, clock)


class LateWakingClock(SimClock):
    """A host that oversleeps once, at ``at``, by ``late_s``: the process was descheduled."""

    def __init__(self, start: float, at: float, late_s: float) -> None:
        super().__init__(start)
        self._at = at
        self._late_s = late_s

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self._late_s and self.monotonic() >= self._at:
            late, self._late_s = self._late_s, 0.0
            self.advance(late)


def test_simulated_rig_passes_every_check(config: Config, clock: SimClock) -> None:
    out = io.StringIO()
    status = report(config, Bench(clock=clock), None, out)
    text = out.getvalue().splitlines()
    assert status == 0, "\n".join(text)
    assert text[0] == (
        "retroguard doctor: built-in defaults (simulated IMU, 200 Hz; simulated pins, "
        "heartbeat relay drive)"
    )
    assert text[1:5] == [
        "PASS  i2c-bus          the simulated I2C bus is open",
        "PASS  imu-id           MPU-6050 at 0x68 on the simulated I2C bus (WHO_AM_I 0x68)",
        "PASS  sample-rate      200.0 Hz over 2.0 s (configured 200 Hz, +0.0 %, tolerance ±5 %)",
        "PASS  fifo             no overflow in 2 s (400 samples read)",
    ]
    assert text[5:10] == [
        "PASS  gpio             pin factory: simulated pins",
        "PASS  pin-relay        GPIO17 claimable",
        "PASS  pin-relay-enable GPIO23 claimable",
        "PASS  pin-buzzer       GPIO18 claimable",
        "PASS  pin-status-led   GPIO22 claimable",
    ]
    assert text[10] == (
        "PASS  reset-button     GPIO27 reads released; a simulated press reads pressed"
    )
    assert text[11] == (
        "PASS  heartbeat        GPIO17 changes level on every hold(); relay_enable GPIO23 "
        "clears on release(); simulated hold circuit closes only with reset and drops 50 ms "
        "after the last edge"
    )
    assert text[12] == (
        "PASS  relay-sense      GPIO24 reads the relay contact open with the relay released; "
        "follows the simulated contact when it closes and opens"
    )
    assert text[13] == "SKIP  broker           mqtt.host is empty: events are only stored locally"
    db = config.storage.database
    assert text[14] == (
        f"PASS  event-store      {db}: a write in a transaction works "
        "(created for the check and removed again)"
    )
    assert text[15].startswith("PASS  clock            monotonic clock advances; wall clock ")
    assert text[16] == (
        "PASS  config           everything retroguard run checks before starting is fine"
    )
    assert text[17] == (
        "SKIP  audio            simulated pins: spoken prompts are printed, not played "
        '(session.voice = "auto" speaks on the board)'
    )
    assert text[18] == "SKIP  audio-pins       simulated pins: no boot config to check"
    assert text[19] == (  # last: it needs the IMU and the pins
        "PASS  imu-int          100 rising edge(s) on GPIO4 for 100 samples in 0.5 s: the "
        "data-ready interrupt paces the loop"
    )
    assert text[20] == "all checks passed (19 run or skipped)"  # 19: + imu-int
    assert not Path(db).parent.exists()  # nothing left behind


def test_wrong_who_am_i(config: Config, clock: SimClock, rig: SimulatedImuRig) -> None:
    rig.chip.who_am_i = 0x70
    found = lines(config, Bench(clock=clock, sim_imu=rig))
    assert found["imu-id"] == (
        "FAIL  imu-id           WHO_AM_I at 0x68 reads 0x70, expected 0x68 (an MPU-6500); "
        "fix: fit an MPU-6050; if one is fitted, it is at 0x69 (AD0 high) and another chip "
        "answers at 0x68 (a DS3231 or DS1307 clock module sits at 0x68): set imu.address = "
        "0x69 (AD0 changes the address, never WHO_AM_I)"
    )
    assert found["sample-rate"] == "SKIP  sample-rate      not run: needs imu-id"
    assert found["fifo"] == "SKIP  fifo             not run: needs imu-id"


class ClockModule:
    """A DS3231 real-time clock module on the bus: it sits at 0x68 and has no register 0x75,
    so WHO_AM_I reads 0x00 there."""

    def i2c_write(self, data: bytes) -> None:
        pass

    def i2c_read(self, length: int) -> bytes:
        return bytes(length)


def test_an_mpu6050_with_ad0_high_beside_a_clock_module_is_found_by_the_fix(
    config: Config, clock: SimClock
) -> None:
    """AD0 moves an MPU-6050 from 0x68 to 0x69; its WHO_AM_I reads 0x68 at either. The guide's
    imu-id row gave "AD0 high" as a cause of a wrong WHO_AM_I, and the doctor's fix named it
    beside fitting an MPU-6050 alone: a wrong value at the address is another chip there (a
    clock module at 0x68, the reason to strap AD0 high), the MPU-6050 at the other address.
    The fix says so and where; followed, the line passes. The guide says what the doctor
    does."""
    ad0_high = dataclasses.replace(config, imu=dataclasses.replace(config.imu, address=0x69))
    rig = standing_rig(ad0_high, clock)
    rig.bus.attach(0x68, ClockModule())
    found = lines(config, Bench(clock=clock, sim_imu=rig))  # the config says 0x68
    assert found["imu-id"].startswith(
        "FAIL  imu-id           WHO_AM_I at 0x68 reads 0x00, expected 0x68 (not an MPU-6050); "
    )
    assert "set imu.address = 0x69 (AD0 changes the address, never WHO_AM_I)" in found["imu-id"]
    followed = lines(ad0_high, Bench(clock=clock, sim_imu=rig))
    assert followed["imu-id"] == (
        "PASS  imu-id           MPU-6050 at 0x69 on the simulated I2C bus (WHO_AM_I 0x68)"
    )
    guide = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    row = re.search(r"^\| `imu-id` \|.*$", guide, flags=re.M)
    assert row is not None
    assert "AD0 changes the address" in row[0] and "never WHO_AM_I" in row[0]
    assert "or AD0 high (address" not in row[0]


def test_a_wrong_who_am_i_at_0x69_sends_the_technician_back_to_0x68(
    config: Config, clock: SimClock
) -> None:
    """The fix names the other address from the one configured: an MPU-6050 expected at 0x69
    (AD0 high) whose address answers with another chip's WHO_AM_I is at 0x68, AD0 low.
    (Mutation, mut38: the fix said 0x69 whatever the address read.)"""
    ad0_high = dataclasses.replace(config, imu=dataclasses.replace(config.imu, address=0x69))
    rig = standing_rig(ad0_high, clock)
    rig.chip.who_am_i = 0x70
    fix = lines(ad0_high, Bench(clock=clock, sim_imu=rig))["imu-id"].split("fix: ", 1)[1]
    assert fix.startswith("fit an MPU-6050; if one is fitted, it is at 0x68 (AD0 low) and ")
    assert "another chip answers at 0x69: set" in fix  # no clock module sits at 0x69
    assert "set imu.address = 0x68 (AD0 changes the address, never WHO_AM_I)" in fix


def test_disconnected_bus(config: Config, clock: SimClock, rig: SimulatedImuRig) -> None:
    rig.bus.disconnect()
    found = lines(config, Bench(clock=clock, sim_imu=rig))
    assert found["imu-id"] == (
        "FAIL  imu-id           no answer at 0x68 on the simulated I2C bus "
        f"([Errno 121] Remote I/O error); {FIX_WIRING}"
    )


def test_flaky_bus(config: Config, clock: SimClock, rig: SimulatedImuRig) -> None:
    rig.bus.inject_errors(2, errno=5)
    found = lines(config, Bench(clock=clock, sim_imu=rig))
    assert found["imu-id"] == (
        "FAIL  imu-id           2 of 5 WHO_AM_I reads at 0x68 failed "
        "([Errno 5] Input/output error): the bus is unreliable; fix: check the belt cable, "
        "connectors and pull-ups (docs/deployment.md, Troubleshooting)"
    )


def test_missing_i2c_device_node(tmp_path: Path, clock: SimClock) -> None:
    """The real-hardware path: smbus2 cannot open a bus that does not exist."""
    config = make_config(tmp_path)
    config = dataclasses.replace(
        config, imu=dataclasses.replace(config.imu, backend="mpu6050", i2c_bus=99)
    )
    found = lines(config, Bench(clock=clock))
    assert found["i2c-bus"] == (
        "FAIL  i2c-bus          /dev/i2c-99 does not exist; fix: enable I2C (sudo raspi-config "
        "nonint do_i2c 0, or dtparam=i2c_arm=on in /boot/firmware/config.txt) and reboot; "
        "check imu.i2c_bus"
    )
    assert found["imu-id"] == "SKIP  imu-id           not run: needs i2c-bus"


def test_fifo_overflow_when_the_host_stalls(config: Config) -> None:
    clock = LateWakingClock(100.0, at=101.0, late_s=0.6)
    rig = standing_rig(config, clock)
    found = lines(config, Bench(clock=clock, sim_imu=rig))
    assert found["fifo"] == (
        "FAIL  fifo             1 overflow(s) in 2 s, at least 42 samples lost; fix: the host "
        "did not read for over 365 ms (the FIFO's depth at 200 Hz): stop other busy programs, "
        "and run the doctor with the service stopped"
    )
    # The rate is counted on both sides of the gap, so it still reads right.
    assert found["sample-rate"].startswith("PASS  sample-rate      200.0 Hz")


def test_stalled_chip(config: Config, clock: SimClock, rig: SimulatedImuRig) -> None:
    rig.chip.stalled = True
    found = lines(config, Bench(clock=clock, sim_imu=rig))
    assert found["imu-id"].startswith("PASS")
    assert found["sample-rate"] == (
        "FAIL  sample-rate      no samples in 2 s: the chip answers but does not sample; "
        "fix: power-cycle the sensor; if it stays silent, replace it"
    )
    assert found["fifo"] == "SKIP  fifo             not judged: no samples in 2 s (see sample-rate)"


def test_slow_chip_clock(config: Config, clock: SimClock, rig: SimulatedImuRig) -> None:
    rig.chip.clock_skew = -0.1
    found = lines(config, Bench(clock=clock, sim_imu=rig))
    assert found["sample-rate"] == (
        "FAIL  sample-rate      180.4 Hz over 2.0 s (configured 200 Hz, -9.8 %, tolerance "
        "±5 %); fix: a chip clock this far off is faulty: replace the sensor; if the rate is "
        "low and the CPU is busy, the host is not keeping up"
    )


def test_pin_already_claimed(config: Config, clock: SimClock) -> None:
    factory = ClockedMockFactory(clock)
    holder = DigitalOutputDevice(17, pin_factory=factory)
    try:
        found = lines(config, Bench(clock=clock, pin_factory=factory))
    finally:
        holder.close()
        factory.close()
    held_by = (
        "pin GPIO17 is already in use by <gpiozero.DigitalOutputDevice object on pin GPIO17, "
        "active_high=True, is_active=False>"
    )
    assert found["pin-relay"] == (
        f"FAIL  pin-relay        GPIO17 cannot be claimed: {held_by}; {FIX_PIN_HELD}"
    )
    assert found["heartbeat"] == (
        f"FAIL  heartbeat        cannot open the relay: {held_by}; {FIX_PIN_HELD}"
    )
    assert found["pin-buzzer"] == "PASS  pin-buzzer       GPIO18 claimable"


def test_button_stuck_pressed(config: Config, clock: SimClock) -> None:
    factory = ClockedMockFactory(clock)
    pin = factory.observed_pin(27)
    try:
        original = pin._set_pull

        def pulled_but_shorted(value: str) -> None:
            original(value)
            pin.drive_low()  # shorted to ground: reads pressed with the pull-up

        pin._set_pull = pulled_but_shorted
        found = lines(config, Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    assert found["reset-button"] == (
        "FAIL  reset-button     GPIO27 reads pressed while nobody presses it; fix: let go of "
        "it; otherwise the button is stuck or shorted, or gpio.button_pull_up is wrong "
        "(configured: pull-up)"
    )
    # A shorted button holds the latch's bypass: edges alone would close the relay.
    assert found["heartbeat"] == (
        "FAIL  heartbeat        the simulated hold circuit closed on edges alone, without a "
        "reset press (a reset button that reads pressed bypasses the latch); fix: check "
        "gpio.relay_drive and the relay pins against wiring/README.md"
    )


def test_static_drive_on_simulated_pins(tmp_path: Path, clock: SimClock) -> None:
    config = make_config(tmp_path)
    config = dataclasses.replace(
        config, gpio=dataclasses.replace(config.gpio, relay_drive="static")
    )
    found = lines(config, Bench(clock=clock))
    assert "pin-relay-enable" not in found
    assert found["heartbeat"] == (
        "PASS  heartbeat        static drive: GPIO17 holds and releases the simulated coil"
    )


def test_relay_sense_not_wired_is_said(tmp_path: Path, clock: SimClock) -> None:
    config = make_config(tmp_path)
    config = dataclasses.replace(
        config, gpio=dataclasses.replace(config.gpio, relay_sense_wired=False)
    )
    found = lines(config, Bench(clock=clock))
    assert found["relay-sense"] == (
        "SKIP  relay-sense      not wired (gpio.relay_sense_wired = false): the monitor cannot "
        "see a welded relay contact, nor a latch that let go on its own (wiring/README.md, "
        "section 6)"
    )


FIX_SENSE = (
    "fix: a welded relay contact, a cut sense wire or a dead optocoupler (wiring/README.md, "
    "section 6); an installation without the sense wiring must say gpio.relay_sense_wired = false"
)


def _real_pins(tmp_path: Path) -> Config:
    """The real-hardware path (a plain gpiozero factory: no circuit model behind the pins)."""
    config = make_config(tmp_path)
    return dataclasses.replace(
        config, gpio=dataclasses.replace(config.gpio, backend="gpiozero", pin_factory="mock")
    )


def test_relay_sense_reading_closed_while_released(tmp_path: Path, clock: SimClock) -> None:
    """Nothing pulls the pin low — no optocoupler, a cut wire, a welded contact — so its
    pull-up reads "closed" while the relay is released."""
    factory = MockFactory()
    try:
        found = lines(_real_pins(tmp_path), Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    assert found["relay-sense"] == (
        f"FAIL  relay-sense      GPIO24 reads the relay contact closed with the relay released; "
        f"{FIX_SENSE}"
    )


def test_relay_sense_reading_open_while_released(tmp_path: Path, clock: SimClock) -> None:
    factory = MockFactory()
    pin = factory.pin(24)
    original = pin._set_pull

    def mirror_contact_closed(value: str) -> None:
        original(value)
        pin.drive_low()  # the optocoupler conducts: K1's mirror contact is closed

    pin._set_pull = mirror_contact_closed
    try:
        found = lines(_real_pins(tmp_path), Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    assert found["relay-sense"] == (
        "PASS  relay-sense      GPIO24 reads the relay contact open with the relay released"
    )


def _real_rig(*, latch_bypassed: bool = False, reset_shorted: bool = False) -> MockFactory:
    """Plain gpiozero pins wired as the guide says, the circuit played by hand: GPIO24 reads
    K1's mirror contact (low: relay open). With ``latch_bypassed`` the relay closes on any
    edge of GPIO17 while GPIO23 enables the hold timer, reset pressed or not (S1a shorted,
    K2a welded, the coils wired straight to Q1); ``reset_shorted`` holds GPIO27 low."""
    factory = MockFactory()
    sense, relay, enable = factory.pin(24), factory.pin(17), factory.pin(23)

    def pulled(pin: Any, level: Any) -> None:
        original = pin._set_pull

        def pull_then_drive(value: str) -> None:
            original(value)
            level()

        pin._set_pull = pull_then_drive

    pulled(sense, lambda: sense.drive_high() if relay_closed else sense.drive_low())
    if reset_shorted:
        button = factory.pin(27)
        pulled(button, button.drive_low)
    relay_closed = False
    drive_relay = relay._set_state

    def edge(value: bool) -> None:
        nonlocal relay_closed
        drive_relay(value)
        if latch_bypassed and enable.state and not relay_closed:
            relay_closed = True
            if sense.function == "input":
                sense.drive_high()

    relay._set_state = edge
    drive_enable = enable._set_state

    def clear(value: bool) -> None:
        nonlocal relay_closed
        drive_enable(value)
        if not value and relay_closed:
            relay_closed = False
            if sense.function == "input":
                sense.drive_low()

    enable._set_state = clear
    return factory


def test_on_a_real_rig_the_heartbeat_edges_must_leave_the_relay_open(
    tmp_path: Path, clock: SimClock
) -> None:
    """With nobody on reset the latch keeps the relay open whatever the edges do; the
    doctor sends its edges with the contact sense open, and says it stayed open."""
    factory = _real_rig()
    try:
        found = lines(_real_pins(tmp_path), Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    assert found["heartbeat"] == (
        "PASS  heartbeat        GPIO17 changes level on every hold(); relay_enable GPIO23 "
        "clears on release(); the relay stays open on edges without a reset press (GPIO24)"
    )
    assert found["relay-sense"].startswith("PASS  relay-sense ")


def test_on_a_real_rig_a_relay_closing_on_edges_alone_has_its_latch_bypassed(
    tmp_path: Path, clock: SimClock
) -> None:
    """A bypassed latch closes the relay on the heartbeat without a press: edges alone would
    start the belt, with no hand on reset. The doctor's
    edges were the real rig's only test of it, and passed whatever the relay did."""
    factory = _real_rig(latch_bypassed=True)
    try:
        found = lines(_real_pins(tmp_path), Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    assert found["heartbeat"] == (
        "FAIL  heartbeat        the relay closed on heartbeat edges alone, with nobody on reset "
        "(GPIO24 read it closed): its latch is bypassed, so heartbeat edges alone would start "
        "the belt, with no hand on reset; fix: wire the latch as wiring/README.md, section 6 "
        "says: the coils through S1a in parallel with K2a to Q1, nothing across them; a K2 "
        "whose contact stays closed unpowered is welded: replace it"
    )
    # released again by the check: the sense, read next, finds the relay open
    assert found["relay-sense"].startswith("PASS  relay-sense ")


def test_on_a_real_rig_no_edges_are_sent_while_reset_reads_pressed(
    tmp_path: Path, clock: SimClock
) -> None:
    """Edges with reset held close the latch: the doctor promises never to close the
    treadmill's relay, so a reset button that reads pressed (held, stuck or shorted) stops the
    heartbeat check before its first edge."""
    factory = _real_rig(reset_shorted=True)
    try:
        found = lines(_real_pins(tmp_path), Bench(clock=clock, pin_factory=factory))
        relay_levels = [state.state for state in factory.pin(17).states]
    finally:
        factory.close()
    assert found["reset-button"].startswith("FAIL  reset-button     GPIO27 reads pressed ")
    assert found["heartbeat"] == (
        "SKIP  heartbeat        not run: the reset button reads pressed (see reset-button), "
        "and edges with reset held would close the relay"
    )
    assert True not in relay_levels  # not one edge: GPIO17 never left its released level


def test_relay_sense_pin_already_claimed(config: Config, clock: SimClock) -> None:
    factory = ClockedMockFactory(clock)
    holder = DigitalOutputDevice(24, pin_factory=factory)
    try:
        found = lines(config, Bench(clock=clock, pin_factory=factory))
    finally:
        holder.close()
        factory.close()
    assert found["relay-sense"].startswith(
        "FAIL  relay-sense      GPIO24 cannot be claimed: pin GPIO24 is already in use by "
    )
    assert found["relay-sense"].endswith(FIX_PIN_HELD)


def test_unwritable_event_store(tmp_path: Path, clock: SimClock) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = make_config(tmp_path, storage=StorageConfig(database=str(blocker / "events.db")))
    found = store_check(config)
    assert found["event-store"] == (
        f"FAIL  event-store      {blocker}/events.db: not writable ([Errno 17] File exists: "
        f"'{blocker}'); fix: check storage.database, and that the directory belongs to the "
        "service user (/var/lib/retroguard, the unit's StateDirectory); run the doctor as that "
        "user"
    )


def test_existing_event_store_is_left_as_it_was(config: Config, clock: SimClock) -> None:
    from firmware.storage.events import EventStore

    EventStore(config.storage.database).close()
    found = store_check(config)
    assert found["event-store"] == (
        f"PASS  event-store      {config.storage.database}: a write in a transaction works"
    )
    assert EventStore(config.storage.database).events() == []


def test_event_store_from_a_newer_release(config: Config, clock: SimClock) -> None:
    import sqlite3

    from firmware.storage.schema import SCHEMA_VERSION

    db = config.storage.database
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    found = store_check(config)
    assert found["event-store"] == (
        f"FAIL  event-store      {db}: the database has schema version {SCHEMA_VERSION + 1}, "
        f"newer than this RetroGuard knows (up to {SCHEMA_VERSION}): it was written by a newer "
        "release. Run that release, or move the file aside to start a new log; nothing was "
        "changed; fix: the monitor moves such a file aside at start (to <name>.damaged-<time>) "
        "and begins a new log; to keep this one, install the release that wrote it"
    )


def test_a_damaged_event_store_fails(config: Config, clock: SimClock) -> None:
    from tests.storage_support import damage

    db = Path(config.storage.database)
    before = damage("random bytes", db)
    found = store_check(config)
    assert found["event-store"] == (
        f"FAIL  event-store      {db}: damaged (not an SQLite database (file is not a "
        "database)); fix: the monitor moves it aside at start (to <name>.damaged-<time>, kept "
        "for inspection) and begins a new log; check the SD card (dmesg | grep -i mmc) and the "
        "power supply"
    )
    assert db.read_bytes() == before  # the doctor only looks


def test_a_malformed_event_store_fails_its_quick_check(config: Config, clock: SimClock) -> None:
    from tests.storage_support import damage

    damage("malformed page", Path(config.storage.database))
    found = store_check(config)
    assert found["event-store"].startswith(
        f"FAIL  event-store      {config.storage.database}: damaged (quick_check: *** in "
        "database main ***; Page "
    )


def test_an_event_store_whose_write_ahead_log_is_damaged_fails_and_is_left_alone(
    config: Config, clock: SimClock, tmp_path: Path
) -> None:
    """SQLite ignores a log whose header is wrong: the database looked new and empty, the
    check created the schema in it, overwrote the log and passed, and every commit since the
    last checkpoint was gone for good before the monitor could say so."""
    from tests.storage_support import with_damaged_wal

    db = Path(config.storage.database)
    damaged = with_damaged_wal(db, tmp_path / "live")

    found = store_check(config)
    assert found["event-store"].startswith(
        f"FAIL  event-store      {db}: damaged (write-ahead log damaged: its header is not a "
        "write-ahead log's); fix: the monitor moves it aside at start"
    )
    assert Path(f"{db}-wal").read_bytes() == damaged  # the doctor only looks


def test_an_event_store_on_a_disk_about_full_fails(
    config: Config, clock: SimClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(
        "tools.diagnostics.system_checks.shutil.disk_usage",
        lambda path: real(path)._replace(free=3 * 1024 * 1024),
    )
    found = store_check(config)
    assert found["event-store"] == (
        f"FAIL  event-store      {config.storage.database}: the disk is full (only 3072 KiB free "
        "on its disk); fix: free space on it (df -h, journalctl --vacuum-size=...); until then "
        "the monitor keeps alerts in memory, still publishes them, and refuses to arm a new walk"
    )


def test_files_moved_aside_earlier_are_named(config: Config, clock: SimClock) -> None:
    from firmware.storage.fallback import FallbackDatabase
    from tests.storage_support import damage

    db = Path(config.storage.database)
    damage("truncated", db)
    courier_db = FallbackDatabase(db, stamp=lambda: "20261201T210003Z")
    courier_db.open()
    courier_db.close()
    found = store_check(config)
    assert found["event-store"] == (
        f"PASS  event-store      {db}: a write in a transaction works; 1 damaged file moved "
        "aside earlier, newest events.db.damaged-20261201T210003Z: inspect, then delete"
    )


def test_clock_before_the_build_year(config: Config, clock: SimClock) -> None:
    found = lines(config, Bench(clock=clock, wall_time=lambda: 0.0))
    assert found["clock"] == (
        "FAIL  clock            the wall clock says 1970-01-01 00:00 UTC, before 2025; fix: the "
        "Pi has no battery clock: give it network access for NTP (timedatectl show-timesync), "
        "or fit an RTC module"
    )


def test_stuck_monotonic_clock(config: Config, clock: SimClock) -> None:
    found = lines(config, Bench(clock=clock, monotonic=lambda: 5.0))
    assert found["clock"] == (
        "FAIL  clock            the monotonic clock does not advance (stuck at 5.000000); fix: "
        "the system clock source is broken: reboot; if it persists, reflash the system"
    )


def test_unreachable_broker(tmp_path: Path, clock: SimClock) -> None:
    port = free_port()
    config = make_config(tmp_path, mqtt=MqttConfig(host="127.0.0.1", port=port))
    found = lines(config, Bench(clock=clock))
    assert found["broker"] == (
        f"FAIL  broker           127.0.0.1:{port}: connection refused (nothing listens on that "
        "port); fix: start the broker (systemctl status mosquitto), check mqtt.host and "
        "mqtt.port"
    )


def test_missing_password_file(tmp_path: Path, clock: SimClock) -> None:
    missing = tmp_path / "nope"
    mqtt = MqttConfig(host="127.0.0.1", username="tm1", password_file=str(missing))
    found = lines(make_config(tmp_path, mqtt=mqtt), Bench(clock=clock))
    assert found["broker"] == (
        f"FAIL  broker           mqtt.password_file: cannot read {missing}: No such file or "
        "directory; fix: see docs/mqtt.md (accounts, TLS) and the [mqtt] section of the config"
    )


@pytest.fixture
def secured() -> Iterator[Mosquitto]:
    from tools.broker import mosquitto_available

    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto mosquitto-clients)")
    broker = Mosquitto(users={"tm1": "right-password"})
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()


def test_broker_with_the_right_and_a_wrong_password(
    tmp_path: Path, clock: SimClock, secured: Mosquitto
) -> None:
    def broker_line(password: str) -> str:
        mqtt = MqttConfig(host=secured.host, port=secured.port, username="tm1", password=password)
        return lines(make_config(tmp_path, mqtt=mqtt), Bench(clock=clock))["broker"]

    where = f"{secured.host}:{secured.port}"
    assert broker_line("right-password") == (
        f"PASS  broker           {where}: connected as tm1; alerts stay in the outbox until the "
        "caregiver service confirms them (receipts)"
    )
    assert broker_line("wrong") == (
        f"FAIL  broker           {where}: the broker refused the connection (Not authorized); "
        "fix: check mqtt.username and the password (mqtt.password_file); see docs/mqtt.md "
        "(accounts, TLS) and the [mqtt] section of the config"
    )


def test_cli_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "-c", str(tmp_path / "missing.toml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_report_exit_status_on_failure(config: Config, clock: SimClock) -> None:
    out = io.StringIO()
    status = report(config, Bench(clock=clock, wall_time=lambda: 0.0), Path("x.toml"), out)
    assert status == 1
    # 19: + audio, + audio-pins, + imu-int
    assert out.getvalue().splitlines()[-1] == "1 of 19 checks FAILED: clock"


# ------------------------------------------------------------------ the IMU's INT line

INT_WIRING = (
    "check the wire from the MPU-6050's INT pad to GPIO4 (header pin 7) in the belt cable and "
    "its connector, and that gpio.pins.imu_int names the pin it is on (wiring/README.md, "
    'section 8); if INT is not wired, set imu.pacing = "poll"'
)


def test_a_dead_int_line_is_a_warning_that_says_what_to_check(
    config: Config, clock: SimClock
) -> None:
    out = io.StringIO()
    status = report(config, Bench(clock=clock, sim_int_wired=False), None, out)
    assert status == 0  # "auto": the monitor polls instead, nothing fails
    assert out.getvalue().splitlines()[-2] == (
        "WARN  imu-int          no data-ready pulse: 0 rising edge(s) on GPIO4 for 100 samples "
        "in 0.5 s; the monitor falls back to polling (more I2C traffic and CPU); " + INT_WIRING
    )


def test_a_dead_int_line_fails_when_the_interrupt_is_required(tmp_path: Path) -> None:
    clock = SimClock(100.0)
    config = make_config(tmp_path)
    config = dataclasses.replace(config, imu=dataclasses.replace(config.imu, pacing="interrupt"))
    found = lines(config, Bench(clock=clock, sim_int_wired=False))
    assert found["imu-int"] == (
        "FAIL  imu-int          no data-ready pulse: 0 rising edge(s) on GPIO4 for 100 samples "
        'in 0.5 s; with imu.pacing = "interrupt" the monitor falls back to polling (more I2C '
        "traffic and CPU); fix: " + INT_WIRING
    )
    wired = lines(config, Bench(clock=SimClock(100.0)))
    assert wired["imu-int"].startswith("PASS  imu-int          100 rising edge(s) on GPIO4")


def test_with_polling_configured_the_int_line_is_not_checked(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config = dataclasses.replace(config, imu=dataclasses.replace(config.imu, pacing="poll"))
    found = lines(config, Bench(clock=SimClock(100.0)))
    assert found["imu-int"] == (
        'SKIP  imu-int          imu.pacing = "poll": the monitor does not use the INT line'
    )


def test_an_int_pin_held_by_another_process_is_said(config: Config, clock: SimClock) -> None:
    factory = ClockedMockFactory(clock)
    holder = DigitalOutputDevice(4, pin_factory=factory)
    try:
        found = lines(config, Bench(clock=clock, pin_factory=factory))
    finally:
        holder.close()
        factory.close()
    assert found["imu-int"].startswith(
        "WARN  imu-int          GPIO4 cannot be opened for the data-ready line: "
    )
    assert found["imu-int"].endswith(
        "stop the monitor (sudo systemctl stop retroguard) and run the doctor again"
    )


@pytest.mark.parametrize(
    ("edges", "required", "verdict"),
    [(90, False, "PASS"), (89, False, "WARN"), (50, False, "WARN"), (50, True, "FAIL")],
)
def test_an_int_line_that_loses_pulses_is_a_marginal_wire(
    edges: int, required: bool, verdict: str
) -> None:
    """Up to a tenth of the samples may come without their own edge (two samples in one
    wait); more is a marginal wire, failed only where the interrupt is required."""
    result = int_checks._judge(edges, 100, 0.5, 4, required)
    text = f"{result.status.value} {result.detail} {result.fix}"
    assert text.startswith(verdict), text
    if verdict != "PASS":
        assert f"pulses lost: {edges} rising edge(s) on GPIO4 for 100 samples in 0.5 s" in text
        assert "a marginal wire" in text and "header pin 7" in text


def test_every_check_has_its_row_in_the_deployment_guide() -> None:
    """docs/deployment.md, section 6, says what each line's PASS and FAIL mean; the
    troubleshooting table sends a technician to "the doctor's audio line" there. The
    help-button, config and audio lines had no row."""
    from tools.diagnostics import audio_checks, gpio_checks, imu_checks, system_checks

    names = {
        audio_checks.AUDIO,
        *(gpio_checks.FACTORY, gpio_checks.BUTTON, gpio_checks.HEARTBEAT, gpio_checks.SENSE),
        gpio_checks.HELP_BUTTON,
        *(imu_checks.BUS, imu_checks.IDENTITY, imu_checks.RATE, imu_checks.FIFO),
        int_checks.INT,
        *(system_checks.BROKER, system_checks.STORE, system_checks.CLOCK),
        system_checks.CONFIG,
    }
    guide = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    rows = set(re.findall(r"^\| `([a-z0-9-]+)`", guide, flags=re.M))
    assert names - rows == set()


def test_the_wiring_guide_quotes_the_heartbeat_line_a_latch_that_holds_gives(
    tmp_path: Path, clock: SimClock
) -> None:
    """wiring/README.md, section 6, tells a technician what the heartbeat line must end with
    on a rig built right: the doctor's own words, as a real rig prints them."""
    factory = _real_rig()
    try:
        found = lines(_real_pins(tmp_path), Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    ending = found["heartbeat"].rpartition("; ")[2]
    guide = (Path(__file__).resolve().parent.parent / "wiring" / "README.md").read_text()
    assert f"`{ending}`" in " ".join(guide.split())


def test_on_a_real_rig_a_contact_read_closed_before_any_edge_is_not_blamed_on_the_latch(
    tmp_path: Path, clock: SimClock
) -> None:
    """The contact sense reads closed before the heartbeat check sends an edge (nothing pulls
    it low: a welded contact, a cut wire): the edges cannot be judged by it, so the heartbeat
    line says nothing of the latch (no "bypassed", no "stays open"), and the relay-sense line
    says what is wrong. (Mutation, mut37: the sense read after the edges alone failed the
    latch for it.)"""
    factory = MockFactory()
    try:
        found = lines(_real_pins(tmp_path), Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    assert found["heartbeat"] == (
        "PASS  heartbeat        GPIO17 changes level on every hold(); relay_enable GPIO23 "
        "clears on release()"
    )
    assert found["relay-sense"].startswith("FAIL  relay-sense ")


def test_on_a_real_rig_with_no_contact_sense_wired_the_latch_is_not_said_tested(
    tmp_path: Path, clock: SimClock
) -> None:
    """``gpio.relay_sense_wired = false``: GPIO24 is no contact sense, whatever it reads, so
    the heartbeat line does not say the relay stayed open on the edges. (Mutation, mut37: the
    pin read all the same, and the line claimed the latch tested.)"""
    config = _real_pins(tmp_path)
    config = dataclasses.replace(
        config, gpio=dataclasses.replace(config.gpio, relay_sense_wired=False)
    )
    factory = _real_rig()
    try:
        found = lines(config, Bench(clock=clock, pin_factory=factory))
    finally:
        factory.close()
    assert found["heartbeat"] == (
        "PASS  heartbeat        GPIO17 changes level on every hold(); relay_enable GPIO23 "
        "clears on release()"
    )
