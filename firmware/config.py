"""The monitor's TOML config, loaded into typed, validated objects.

Sections map one-to-one onto frozen dataclasses (hardware ones live in
:mod:`hal.config`, the detector's in :mod:`firmware.detection.config`). The
loader walks the dataclass fields, so a new field needs no loader code: its
type and default are the schema. Every problem is collected and reported as
``file: key: what is wrong`` — all at once, so a technician fixes the file in
one pass — and the CLI exits with status 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core import tomlschema
from core.errors import ConfigError
from core.mounting import Mounting, MountingError
from core.mqttlink import BrokerLink, files_beside, keepalive_problem, password_without_user
from core.protocol.ids import check_device_id
from core.tomlschema import Check
from firmware.detection.config import DetectorConfig
from firmware.presses import (
    HELP_WINDOW_S,
    LONG_PRESS_MAX_S,
    LONG_PRESS_MIN_S,
    PATTERN_GAP_MAX_S,
    PATTERN_GAP_MIN_S,
)
from firmware.session.config import SPEECH_RATE_MAX_WPM, SPEECH_RATE_MIN_WPM, SessionConfig
from firmware.session.plan import PLAN_FILE_SUFFIXES, check_plan_reference
from firmware.session.voice import check_language, check_voice
from hal.config import GYRO_BIAS_MAX_DPS, I2C_BUS_MAX, GpioConfig, ImuConfig, PinConfig

LogLevel = Literal["debug", "info", "warning", "error"]

ACCEL_RANGES_G = (2, 4, 8, 16)
GYRO_RANGES_DPS = (250, 500, 1000, 2000)
DLPF_BANDWIDTHS_HZ = (260, 184, 94, 44, 21, 10, 5)

HOLD_MARGIN = 0.875
"""The share of ``gpio.heartbeat_hold_s`` a gap between heartbeat edges may reach while ARMED.

The configured hold is what a technician measured (the wiring guide's multimeter average, good
to about 10 %) or the default 50 ms, while the default parts nominally hold 45 ms and a
capacitor's time drifts with temperature. A check at the full configured hold let a real hold
shorter than it drop the latch unseen (without the contact read back, the state stayed ARMED
and the next press closed the latch). Seven eighths (44 ms of the default 50) sits below that
spread and above the longest gaps a healthy loop makes (about 30 ms under heavy load; a wake is
at most a quarter of the hold); exact in binary, so tests can hit it exactly.

The config's rule for the sample rate uses it too: the loop sends one edge a sample, so one late
sample (two periods between edges) must stay under it, or a healthy walk faults."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str = "treadmill-1"
    """Stable identifier; used in event records and (later) MQTT topics."""
    name: str = "Treadmill 1"
    """Human name shown to caregivers."""


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    sample_timeout_s: float = 0.1
    """No sample for this long (monotonic) is an IMU loss: FAULT, relay released."""
    frozen_after_s: float = 0.25
    """Bit-identical samples for this long mean a stuck sensor: FAULT."""
    healthy_before_arm_s: float = 0.5
    """The IMU must have delivered good samples for this long before arming is allowed."""
    window_before_s: float = 4.0
    """Seconds of IMU before each stumble or fall in its recording (the ``window`` event sent
    10 s after the trip, docs/incidents.md)."""
    worn_check: bool = True
    """Arm only while the IMU shows a body (postural sway, breathing, gait), and release the
    relay while ARMED when it stops showing one for ``not_worn_trip_s``: a sensor lying on the
    console or fallen off the belt protects no one (docs/safety.md, "Sensor-worn check").
    false only on a bench where no one wears the sensor."""
    worn_min_rotation_dps: float = 0.05
    """The body signal's threshold: the gyro's variation below 2 Hz about each block's mean,
    RMS over three axes. A resting or vibrating MPU-6050 reads about 0.015 deg/s, the quietest
    standing recording 0.155 deg/s (docs/safety.md has the measurements behind this default)."""
    worn_block_s: float = 3.0
    """The block the body signal is measured over (seconds)."""
    not_worn_trip_s: float = 6.0
    """While ARMED, this long without a body signal releases the relay (FAULT "sensor not
    worn"), like a lost IMU. At least two blocks, so one quiet block cannot trip."""
    contact_debounce_s: float = 0.1
    """How long the relay's contact, read back (gpio.relay_sense_wired), may disagree with
    the state before it is a FAULT: open while ARMED, or closed while released. It covers the
    latch closing at the first heartbeat after a reset and the relay's own travel (docs/safety.md,
    "Relay contact feedback")."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    database: str = "/var/lib/retroguard/retroguard.db"
    """SQLite event store (WAL). A relative path is relative to the config file's folder; never
    under /etc (refused: the service cannot write there): keep it in /var/lib/retroguard."""
    keep_telemetry_days: float = 7.0
    """Telemetry the broker never took is dropped after this many days (0: kept until sent)."""
    keep_windows_days: float = 365.0
    """The IMU recordings of trips (about 10 kB each) are deleted after this many days; the
    events stay (0: forever). Nothing of an alert still waiting in the outbox is deleted."""
    keep_events_days: float = 0.0
    """Events (about 1 kB each) are deleted after this many days (0: forever). An alert still
    waiting in the outbox for the broker or a caregiver service's receipt is never deleted."""


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str = ""
    """Broker host name or address. "" = no broker configured: events are only stored locally
    (the demo then starts its own Mosquitto on a free loopback port)."""
    port: int = 1883
    """Broker port (8883 is the usual TLS port)."""
    username: str = ""
    """Broker user name ("" = connect anonymously). One account per device, see docs/mqtt.md."""
    password: str = field(default="", repr=False)
    """Broker password. Prefer password_file so the secret stays out of this file; never logged."""
    password_file: str = ""
    """File whose first line is the broker password (used when password is ""); either needs
    username (a password without a user name is refused)."""
    tls: bool = False
    """Connect with TLS, checking the broker's certificate against ca_file (or the system CAs)."""
    ca_file: str = ""
    """PEM file of the CA that signed the broker's certificate ("" = system CA store)."""
    cert_file: str = ""
    """PEM client certificate for brokers that require one ("" = none)."""
    key_file: str = ""
    """PEM private key of cert_file ("" = none, or the key is inside cert_file)."""
    topic_prefix: str = "retroguard"
    """First topic level: topics are <topic_prefix>/<device id>/availability, /state, /event, ..."""
    client_id: str = ""
    """MQTT client id ("" = retroguard-<device id>)."""
    keepalive_s: int = 30
    """MQTT keepalive: the broker publishes the Last Will (offline) after about 1.5 times this."""
    reconnect_min_s: float = 0.5
    """First wait before reconnecting after a lost connection; doubles up to reconnect_max_s."""
    reconnect_max_s: float = 30.0
    """Longest wait between reconnection attempts during a broker outage."""
    max_inflight: int = 100
    """Outbox messages sent but not yet acknowledged (PUBACK) at any time."""
    outbox_max_rows: int = 10000
    """Outbox bound. When full, the oldest telemetry is dropped first, then the oldest start/stop/
    reset events; alerts (help too), faults, ok/closed/window/test events and session summaries
    are never dropped: the bound is exceeded instead (logged)."""
    telemetry_interval_s: float = 60.0
    """Seconds between telemetry messages (sample rate, IMU health, outbox depth); 0 = none."""
    alert_receipts: bool = True
    """Keep each alert, fault and session summary until an alert consumer (the caregiver
    service) publishes a receipt after committing it, republishing it after every reconnect and
    every receipt_retry_s until then. false: a broker PUBACK is enough - only for installations
    with no caregiver service (Home Assistant alone), where nothing sends receipts."""
    caregiver_expected: bool | None = None
    """A caregiver service is expected on this broker (it announces itself on
    <topic_prefix>/caregiver/status): while it is not online the self-test fails, Home
    Assistant's Caregiver service sensor is off and the walker hears at arming that caregivers
    will not be called. Unset: expected when alert_receipts is on (receipts come only from a
    caregiver service); false: Home Assistant alone. The belt never waits for it."""
    receipt_retry_s: float = 60.0
    """How soon alerts still waiting for a receipt are published again after a (re)connect
    or a consumer's receipt; each round that brings no receipt doubles the wait, up to
    receipt_retry_max_s. Rows the broker refused (its ACL, a quota) are sent again this often."""
    receipt_retry_max_s: float = 3600.0
    """The longest wait between republications of unreceipted alerts (at least
    receipt_retry_s; equal to it: no backoff). Every copy is queued by the broker for an
    offline caregiver's session: at 60 s, 1,440 copies of one alert a day filled Mosquitto's
    per-session queue (max_queued_messages, 1000) and new alerts were dropped; backing off to
    3600 s sends 29 a day. A caregiver that comes back without its broker session waits at
    most this long for what it missed."""
    command_rate_per_s: float = 20.0
    """Commands (ack, silence, self_test, ping) handled per second on average; a flood beyond
    it, and beyond command_burst at once, is dropped where it arrives (a few a second of
    the dropped ones are answered with a refusal, the rest not at all). From 0.1 (a
    caregiver's silence or ack waits at most 10 s) to 100 (more is a flood, not people)."""
    command_burst: int = 40
    """Commands handled at once before command_rate_per_s applies: 1 to 1000."""
    discovery: bool = True
    """Announce the device to Home Assistant (MQTT device-based discovery)."""
    discovery_prefix: str = "homeassistant"
    """Home Assistant's discovery prefix (its MQTT integration setting)."""
    dashboard_url: str = ""
    """The caregiver dashboard's address (http:// or https://), Home Assistant's link from the
    device to it ("" = none). With discovery = false the device removes itself from Home
    Assistant at its next connect."""

    def expects_caregiver(self) -> bool:
        """Whether a caregiver service is expected: ``caregiver_expected``, else (unset) with
        alert receipts on; never without a broker."""
        if not self.host:
            return False
        return self.alert_receipts if self.caregiver_expected is None else self.caregiver_expected

    def link(self) -> BrokerLink:
        """The connection settings, for :func:`core.mqttlink.make_client`."""
        return BrokerLink.of(self)


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: LogLevel = "info"


@dataclass(frozen=True, slots=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    imu: ImuConfig = field(default_factory=ImuConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _long_press(value: Any) -> str | None:
    if value > LONG_PRESS_MAX_S:
        return (
            f"must be at most {LONG_PRESS_MAX_S:g} s, not {value:g}: a person holds a button "
            "on purpose for some seconds, and a walker asked to hold longer lets go first, so "
            'the session could not be stopped from the button (docs/safety.md, "Button press '
            'patterns")'
        )
    if value >= LONG_PRESS_MIN_S:
        return None
    return (
        f"must be at least {LONG_PRESS_MIN_S:g} s, not {value:g}: the presses of a call for "
        f"help go down within {HELP_WINDOW_S:g} s, and a shorter long press would stop the "
        'session on one of them (docs/safety.md, "Button press patterns")'
    )


def _press_gap(value: Any) -> str | None:
    if PATTERN_GAP_MIN_S <= value <= PATTERN_GAP_MAX_S:
        return None
    return (
        f"must be between {PATTERN_GAP_MIN_S:g} and {PATTERN_GAP_MAX_S:g} s, not {value:g}: "
        f"three quick presses must make one sequence within the {HELP_WINDOW_S:g} s help "
        "window, or a call for help and a double press could be taken for each other "
        '(docs/safety.md, "Button press patterns")'
    )


def _one_of(choices: tuple[int, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return "must be one of " + ", ".join(str(c) for c in choices)

    return check


def _imu_rate(value: Any) -> str | None:
    if not 4.0 <= value <= 1000.0:
        return "must be between 4 and 1000 Hz"
    divider = 1000.0 / value - 1.0
    if abs(divider - round(divider)) > 1e-9:
        return "must be 1000 / (1 + n) Hz for a whole n (e.g. 1000, 500, 250, 200, 100)"
    return None


def _i2c_address(value: Any) -> str | None:
    return None if value in (0x68, 0x69) else "must be 0x68 (AD0 low) or 0x69 (AD0 high)"


def _i2c_bus(value: Any) -> str | None:
    if 0 <= value <= I2C_BUS_MAX:
        return None
    return (
        f"must be a bus number N of /dev/i2c-N, from 0 to {I2C_BUS_MAX} (Linux's i2c-dev), "
        f"not {value} (1 on a Raspberry Pi's header)"
    )


def _speech_rate(value: Any) -> str | None:
    if SPEECH_RATE_MIN_WPM <= value <= SPEECH_RATE_MAX_WPM:
        return None
    return (
        f"must be from {SPEECH_RATE_MIN_WPM} to {SPEECH_RATE_MAX_WPM} words a minute, not "
        f"{value}: espeak-ng's range (it speaks slower at {SPEECH_RATE_MIN_WPM} all the same, and "
        "time-compresses faster past what a walker on a belt can follow)"
    )


def _bcm_pin(value: Any) -> str | None:
    return None if 0 <= value <= 27 else "must be a BCM GPIO number from 0 to 27"


def _tcp_port(value: Any) -> str | None:
    return None if 1 <= value <= 65535 else "must be a TCP port (1-65535)"


def _mounting(value: Any) -> str | None:
    try:
        Mounting.parse(value)
    except MountingError as exc:
        return str(exc)
    return None


def _gyro_bias(value: Any) -> str | None:
    if all(abs(axis) <= GYRO_BIAS_MAX_DPS for axis in value):
        return None
    return (
        f"each axis must be within ±{GYRO_BIAS_MAX_DPS:g} deg/s (twice the MPU-6050's zero-rate "
        "tolerance): run `retroguard calibrate` standing still, or replace the chip"
    )


def _above_1g(value: Any) -> str | None:
    # At rest the accelerometer reads 1 g: a landing threshold at or below it
    # would watch for a fall on every sample of standing still.
    if value <= 1.0:
        return "must be above 1 g (what the accelerometer reads at rest)"
    return _within(1.0, 16.0, "g (the MPU-6050 measures at most 16 g)")(value)


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


COMMAND_RATE_MIN_PER_S = 0.1
"""The slowest command budget: once a burst is spent, a caregiver's ``silence`` or ``ack`` is
taken within 10 s. A slower one (``1e-300`` passed) answers no command again, for ever."""
COMMAND_RATE_MAX_PER_S = 100.0
"""The fastest command budget. Commands are people's clicks on a dashboard and a physio's
plans, a few a minute per device (the default, 20 a second, is many times that); a hundred a
second is no caregiver, it is the flood the budget exists to drop, and an unbounded rate
(``1e308`` passed) switched that protection off."""
COMMAND_BURST_MAX = 1000
"""The most commands handled back to back before the rate applies: the broker queues no
commands for a device (a clean session), so a burst is only what people send at one moment;
a larger one is, again, no budget."""
KEEP_DAYS_MAX = 36500.0
"""A hundred years: the longest keep_*_days (a larger one is a typo, and past Python's dates)."""
WINDOW_BEFORE_MAX_S = 60.0
"""The most IMU kept before a trip for its recording (the ring buffer holds this much)."""


def _keep_days(value: Any) -> str | None:
    if 0 <= value <= KEEP_DAYS_MAX:
        return None
    return f"must be between 0 (forever) and {KEEP_DAYS_MAX:g} days"


def _window_before(value: Any) -> str | None:
    if 0 < value <= WINDOW_BEFORE_MAX_S:
        return None
    return f"must be greater than 0 and at most {WINDOW_BEFORE_MAX_S:g} s"


def _contact_debounce(value: Any) -> str | None:
    if 0.03 <= value <= 1.0:
        return None
    return (
        "must be between 0.03 s (shorter faults on the relay's own travel) and 1 s (longer "
        "leaves a welded contact unreported)"
    )


def _worn_threshold(value: Any) -> str | None:
    if 0.02 <= value <= 0.5:
        return None
    return (
        "must be between 0.02 deg/s (a resting sensor's own noise reads as a body below it) and "
        "0.5 deg/s (a walker standing quietly reads as no body above it)"
    )


def _worn_block(value: Any) -> str | None:
    if 1.0 <= value <= 10.0:
        return None
    return "must be between 1 s (shorter misses slow sway) and 10 s (longer decides too late)"


def _not_worn_trip(value: Any) -> str | None:
    if 2.0 <= value <= 30.0:
        return None
    return "must be between 2 s and 30 s (the belt runs unprotected for that long)"


def _web_address(value: Any) -> str | None:
    if not value:
        return None
    from urllib.parse import urlsplit  # only when one is set: start-up imports stay few

    try:  # brackets around no IPv6 address ("http://[carepc.home.lan]"): a ValueError
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts and parts.scheme in ("http", "https") and parts.netloc and value == value.strip():
        return None
    return "must be an http:// or https:// address (or empty)"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "imu.sample_rate_hz": _imu_rate,
    "imu.i2c_bus": _i2c_bus,
    "imu.address": _i2c_address,
    "imu.dlpf_hz": _one_of(DLPF_BANDWIDTHS_HZ),
    "imu.accel_range_g": _one_of(ACCEL_RANGES_G),
    "imu.gyro_range_dps": _one_of(GYRO_RANGES_DPS),
    "imu.stale_timeout_s": _positive,
    "imu.mounting": _mounting,
    "imu.gyro_bias_dps": _gyro_bias,
    "imu.samples_per_wake": _positive,
    "gpio.button_bounce_s": _positive,
    "gpio.heartbeat_hold_s": _positive,
    "safety.sample_timeout_s": _positive,
    "safety.frozen_after_s": _positive,
    "safety.healthy_before_arm_s": _positive,
    "safety.window_before_s": _window_before,
    "safety.contact_debounce_s": _contact_debounce,
    "safety.worn_min_rotation_dps": _worn_threshold,
    "safety.worn_block_s": _worn_block,
    "safety.not_worn_trip_s": _not_worn_trip,
    "storage.keep_telemetry_days": _keep_days,
    "storage.keep_windows_days": _keep_days,
    "storage.keep_events_days": _keep_days,
    "mqtt.port": _tcp_port,
    "mqtt.keepalive_s": keepalive_problem,
    "mqtt.reconnect_min_s": _positive,
    "mqtt.reconnect_max_s": _positive,
    "mqtt.max_inflight": _positive,
    "mqtt.outbox_max_rows": _positive,
    "mqtt.receipt_retry_s": _positive,
    "mqtt.receipt_retry_max_s": _positive,
    "mqtt.dashboard_url": _web_address,
    "session.plan": check_plan_reference,
    "session.speech_rate_wpm": _speech_rate,
    "session.language": check_language,
    "session.voice": check_voice,
    "session.max_pause_s": _positive,
    "session.double_press_gap_s": _press_gap,
    "session.long_press_s": _long_press,
}
_CHECKS.update({f"gpio.pins.{f.name}": _bcm_pin for f in dataclasses.fields(PinConfig)})


def _within(low: float, high: float, unit: str, *, low_open: bool = True) -> Check:
    """A physically meaningful range: a value outside it makes the detector blind or trigger-
    happy without an error (a threshold of 1e308 g is never reached)."""

    def check(value: Any) -> str | None:
        if low == 0.0 and low_open and value <= 0:
            return "must be greater than 0"
        if low == 0.0 and not low_open and value < 0:
            return "must not be negative"
        if (value > low if low_open else value >= low) and value <= high:
            return None
        bracket = "(" if low_open else "["
        return f"must be in {bracket}{low:g}, {high:g}] {unit}"

    return check


DETECTOR_RANGES: dict[str, Check] = {
    "_s": _within(0.0, 300.0, "s"),
    "_g": _within(0.0, 16.0, "g (the MPU-6050 measures at most 16 g)"),
    "_gs": _within(0.0, 5.0, "g s"),
    "_deg": _within(0.0, 180.0, "degrees"),
    "_dps": _within(0.0, 2000.0, "deg/s (the MPU-6050 measures at most 2000 deg/s)"),
    "_mps": _within(0.0, 10.0, "m/s"),
    "_score": _within(0.0, 1000.0, "(a loss-of-balance score)"),
}
"""A range for every detector setting, by its unit suffix (a test checks none is left out)."""


def detector_range(name: str) -> Check | None:
    for suffix, check in DETECTOR_RANGES.items():
        if name.endswith(suffix):
            return check
    return None


def _device_id(value: Any) -> str | None:
    """Every device id names its rows, its topics and its files, broker or not."""
    try:
        check_device_id(value)
    except ValueError as exc:
        return str(exc)
    return None


# Times whose huge value would switch a protection off without a word (a frozen sensor never
# noticed, a lost bus never a fault), or make "retry" mean "never": each a range a person
# could mean, its reason in the message.
_CHECKS.update(
    {
        "device.id": _device_id,
        "imu.stale_timeout_s": _within(0.0, 1.0, "s (bus errors for longer lose the IMU)"),
        "gpio.button_bounce_s": _within(0.0, 0.2, "s (a press is longer than its bounce)"),
        "gpio.heartbeat_hold_s": _within(
            0.0, 1.0, "s (the hold circuit's time, about 0.05 s as wired/README.md builds it)"
        ),
        "safety.sample_timeout_s": _within(0.0, 1.0, "s (no sample for longer is a lost IMU)"),
        "safety.frozen_after_s": _within(
            0.0, 2.0, "s (a sensor stuck for longer must stop the belt)"
        ),
        "safety.healthy_before_arm_s": _within(0.0, 60.0, "s"),
        "mqtt.reconnect_min_s": _within(0.0, 60.0, "s"),
        "mqtt.reconnect_max_s": _within(0.0, 3600.0, "s (a broker back must be found again)"),
        "mqtt.receipt_retry_s": _within(
            0.0, 3600.0, "s (an alert without a receipt is sent again within the hour)"
        ),
        "mqtt.receipt_retry_max_s": _within(
            0.0, 86400.0, "s (an alert without a receipt is sent again at least daily)"
        ),
        "mqtt.telemetry_interval_s": _within(0.0, 86400.0, "s (0: no telemetry)", low_open=False),
        "session.max_pause_s": _within(0.0, 86400.0, "s"),
        "mqtt.command_rate_per_s": _within(
            COMMAND_RATE_MIN_PER_S,
            COMMAND_RATE_MAX_PER_S,
            "commands a second (slower leaves a caregiver's silence unanswered; faster is a "
            "flood, not people)",
            low_open=False,
        ),
        "mqtt.command_burst": _within(
            1, COMMAND_BURST_MAX, "commands (more at once is a flood)", low_open=False
        ),
    }
)


# The detector divides by its time constants and counts in its windows: none of them may be
# zero or negative; every threshold has a physical range.
for _field in dataclasses.fields(DetectorConfig):
    _range = detector_range(_field.name)
    if _range is not None:
        _CHECKS[f"detector.{_field.name}"] = _range
# ... except two times that may be zero: no extrapolation, no rebound tolerance.
_CHECKS["detector.balance_extrapolate_s"] = _within(0.0, 1.0, "s", low_open=False)
_CHECKS["detector.confirm_upright_max_s"] = _within(0.0, 5.0, "s", low_open=False)
_CHECKS["detector.impact_g"] = _above_1g
_CHECKS["detector.soft_impact_g"] = _above_1g


def _cross_checks(config: Config, problems: list[str]) -> None:
    pins = dataclasses.asdict(config.gpio.pins)
    by_number: dict[int, list[str]] = {}
    for name, number in pins.items():
        by_number.setdefault(number, []).append(name)
    for number, names in sorted(by_number.items()):
        if len(names) > 1:
            problems.append(f"gpio.pins: GPIO{number} is used twice ({', '.join(names)})")
    period = 1.0 / config.imu.sample_rate_hz
    if config.imu.dlpf_hz >= config.imu.sample_rate_hz / 2:
        problems.append(
            f"imu.dlpf_hz: {config.imu.dlpf_hz} Hz must be below half the sample rate "
            f"({config.imu.sample_rate_hz / 2:g} Hz), or fast motion aliases into the samples"
        )
    gap_fault_s = config.gpio.heartbeat_hold_s * HOLD_MARGIN
    # refused at exactly half too: the gap faults once it reaches the limit (>=)
    if config.gpio.relay_drive == "heartbeat" and period >= gap_fault_s / 2 * (1 - 1e-9):
        problems.append(
            f"imu.sample_rate_hz: {config.imu.sample_rate_hz:g} Hz is too slow for the heartbeat "
            f"relay drive: the loop toggles once per sample, and one late sample (two periods) "
            f"must stay under the heartbeat gap's fault at 7/8 of gpio.heartbeat_hold_s "
            f"({gap_fault_s * 1000:g} ms): a sample period under {gap_fault_s * 500:g} ms"
        )
    per_wake = config.imu.samples_per_wake  # unset: chosen to fit (firmware.pacing)
    wake_s = (per_wake or 1) * period
    quarter_hold_s = config.gpio.heartbeat_hold_s / 4
    heartbeat = config.gpio.relay_drive == "heartbeat"
    # one sample a wake is what leaving it unset gives where a pair does not fit: the
    # sample rate's own check above bounds it
    if per_wake is not None and per_wake > 1 and heartbeat and wake_s > quarter_hold_s * (1 + 1e-9):
        problems.append(
            f"imu.samples_per_wake: {config.imu.samples_per_wake} samples "
            f"({wake_s * 1000:g} ms) between reads is too long for the heartbeat relay drive: "
            f"the loop sends one edge per read, and waits for the interrupt at most a quarter "
            f"of gpio.heartbeat_hold_s ({quarter_hold_s * 1000:g} ms)"
        )
    det = config.detector
    if det.soft_impact_g > det.impact_g:
        problems.append(
            f"detector.soft_impact_g: {det.soft_impact_g:g} g must not be above "
            f"detector.impact_g ({det.impact_g:g} g): a soft landing is the weaker kind"
        )
    if det.soft_confirm_s < det.confirm_window_s:
        problems.append(
            f"detector.soft_confirm_s: {det.soft_confirm_s:g} s must not be shorter than "
            f"detector.confirm_window_s ({det.confirm_window_s:g} s): a soft landing needs "
            "the longer lie"
        )
    if config.safety.not_worn_trip_s < 2 * config.safety.worn_block_s:
        problems.append(
            f"safety.not_worn_trip_s: {config.safety.not_worn_trip_s:g} s must be at least two "
            f"blocks of safety.worn_block_s ({2 * config.safety.worn_block_s:g} s): one quiet "
            "block must not stop the belt"
        )
    if config.mqtt.receipt_retry_max_s < config.mqtt.receipt_retry_s:
        problems.append(
            f"mqtt.receipt_retry_max_s: {config.mqtt.receipt_retry_max_s:g} s must not be "
            f"shorter than mqtt.receipt_retry_s ({config.mqtt.receipt_retry_s:g} s): it is the "
            "longest wait between republications, the first being receipt_retry_s (equal: no "
            "backoff)"
        )
    if config.mqtt.caregiver_expected and not config.mqtt.host:
        problems.append(
            "mqtt.caregiver_expected: true, but mqtt.host is empty: without a broker the device "
            "cannot hear a caregiver service (set mqtt.host, or remove mqtt.caregiver_expected)"
        )
    problems.extend(password_without_user(config.mqtt))
    if config.safety.sample_timeout_s < 2.0 / config.imu.sample_rate_hz:
        problems.append(
            "safety.sample_timeout_s: must be at least two sample periods "
            f"({2.0 / config.imu.sample_rate_hz:.3f} s at {config.imu.sample_rate_hz:g} Hz)"
        )


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Validate a parsed TOML mapping; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    config = tomlschema.build(Config, data, problems, _CHECKS)
    if not problems:
        _cross_checks(config, problems)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    assert isinstance(config, Config)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file.

    A relative path (``storage.database``, the MQTT files, a plan file,
    ``session.prompt_cache``, ``session.control_socket``) is resolved against
    the file's directory, so a config works the same from any working
    directory: the monitor under its unit (working directory
    /var/lib/retroguard) and ``retroguard session`` typed anywhere find the
    same socket. For /etc/retroguard/config.toml that is /etc/retroguard,
    which the service cannot write: the preflight refuses the written ones
    there (:mod:`core.writable`).
    """
    path = Path(path)
    data = tomlschema.read_toml(path)
    config = parse_config(data, str(path))
    db = Path(config.storage.database)
    if not db.is_absolute():
        storage = dataclasses.replace(config.storage, database=str(path.parent / db))
        config = dataclasses.replace(config, storage=storage)
    mqtt_files = files_beside(config.mqtt, path.parent)
    if mqtt_files:
        config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, **mqtt_files))
    plan = config.session.plan
    if plan.endswith(PLAN_FILE_SUFFIXES) and not Path(plan).is_absolute():
        session = dataclasses.replace(config.session, plan=str(path.parent / plan))
        config = dataclasses.replace(config, session=session)
    session_paths: dict[str, Any] = {
        key: str(path.parent / value)
        for key in ("prompt_cache", "control_socket")
        if (value := getattr(config.session, key)) and not Path(value).is_absolute()
    }
    if session_paths:
        session = dataclasses.replace(config.session, **session_paths)
        config = dataclasses.replace(config, session=session)
    return config
