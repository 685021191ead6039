"""Everything ``retroguard run`` needs from a config, checked before anything is opened.

``retroguard config --check`` and ``retroguard run`` call the same
:func:`preflight`, so the check refuses exactly what a start would refuse,
with the same ``file: key: what is wrong`` lines and exit status 2. Beyond
what the TOML loader checks (types, ranges, cross-field rules), it builds
every piece it can without hardware: the MPU-6050's register settings, the
backends the config names, the detector, the guided-session plan, and the
MQTT client with its credentials and TLS files.

Warnings are things a start survives but a person should know (the event
store's directory cannot be written, so the monitor would run with a
storage fault and refuse to arm; spoken prompts without espeak-ng).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.cliargs import unreachable
from core.dbfile import database_file_problem
from core.errors import ConfigError
from core.mounting import Mounting, up_vector
from core.protocol.ids import discovery_id_problem
from core.protocol.topics import text_problem, topic_level_problem
from core.writable import written_path_problem
from firmware.config import Config
from firmware.session.voice import on_path, voice_unknown

BENCH_WARNING = "bench mode: a hung loop does not stop the belt (gpio.relay_drive = 'static')"
"""What every start, doctor and the dashboard say about a bench rig."""
WORN_CHECK_OFF_WARNING = (
    "sensor-worn check off (safety.worn_check = false): a sensor not worn can arm the belt"
)
"""What every start and doctor say when the sensor-worn check is switched off."""


@dataclass(slots=True)
class Preflight:
    problems: list[str] = field(default_factory=list)
    """What stops a start (each ``key: what is wrong``)."""
    warnings: list[str] = field(default_factory=list)


def preflight(config: Config, source: str = "<config>") -> Preflight:
    """Check what a start would need; the caller raises on ``problems``."""
    result = Preflight()
    _imu(config, result)
    _backends(config, result)
    _detector(config, result)
    _relay(config, result)
    if not config.safety.worn_check:
        result.warnings.append(WORN_CHECK_OFF_WARNING)
    _session(config, result)
    _mqtt(config, result)
    _storage(config, result)
    result.problems = [f"{source}: {p}" for p in result.problems]
    result.warnings = [f"{source}: {w}" for w in result.warnings]
    return result


def check_or_raise(config: Config, source: str) -> Preflight:
    """:func:`preflight`, raising :class:`ConfigError` when a start would fail."""
    result = preflight(config, source)
    if result.problems:
        raise ConfigError(result.problems)
    return result


def _imu(config: Config, result: Preflight) -> None:
    from hal.mpu6050 import register_settings

    try:
        register_settings(config.imu)
    except ValueError as exc:
        result.problems.append(f"imu: {exc}")


def _backends(config: Config, result: Preflight) -> None:
    from hal.backends import GPIO_BACKENDS, IMU_BACKENDS, load_backend
    from hal.errors import HalError

    for group, key, name, builtin in (
        (IMU_BACKENDS, "imu.backend", config.imu.backend, "mpu6050"),
        (GPIO_BACKENDS, "gpio.backend", config.gpio.backend, "gpiozero"),
    ):
        if name == builtin:
            continue
        try:
            load_backend(group, name)
        except HalError as exc:
            result.problems.append(f"{key}: {exc}")


def _detector(config: Config, result: Preflight) -> None:
    from firmware.detection.factory import build_detector

    try:
        build_detector(
            config.detector,
            config.imu.sample_rate_hz,
            up=up_vector(Mounting.parse(config.imu.mounting)),
        )
    except (ValueError, ArithmeticError) as exc:
        result.problems.append(f"detector: cannot be built: {exc}")


def _relay(config: Config, result: Preflight) -> None:
    if config.gpio.relay_drive != "static":
        return
    if not config.gpio.bench_rig:
        result.problems.append(
            "gpio.relay_drive: 'static' holds the relay by a level, so a hung or crashed loop "
            "keeps the belt running for as long as it hangs; it is for a bench rig only - use "
            "'heartbeat' (wiring/README.md), or set gpio.bench_rig = true on a rig with no "
            "walker on it"
        )
    else:
        result.warnings.append(BENCH_WARNING)


def _session(config: Config, result: Preflight) -> None:
    from firmware.session.plan import resolve_plan

    try:
        resolve_plan(config.session.plan)
    except ConfigError as exc:
        result.problems.extend(exc.problems)
    if config.session.control_socket:
        _control_socket(config.session.control_socket, result)
    if config.session.prompt_cache and (
        problem := written_path_problem(
            "session.prompt_cache",
            config.session.prompt_cache,
            'leave it "" (prompts/ beside the event store) or name a folder in /var/lib/retroguard',
        )
    ):
        result.problems.append(problem)
    voice = config.session.voice
    if voice in ("", "off", "auto"):
        return
    if on_path("espeak-ng") is None:
        # An explicit voice is a promise; "auto" falls back to beeps by design (the doctor
        # says why on its audio line).
        result.warnings.append(
            "session.voice: espeak-ng is not installed, so cues will be beeps only"
        )
    elif (unknown := voice_unknown(voice)) is not None:
        # A warning, as espeak-ng missing is: which voices there are is this machine's (an
        # MBROLA voice is a package of its own), and the cues are beeps without it
        result.warnings.append(
            f"session.voice: {voice!r}: this machine's espeak-ng has no such voice "
            f"({unknown}), so cues will be beeps only; espeak-ng --voices lists its voices "
            "(and --voices=variant the +variants)"
        )


SOCKET_PATH_MAX = 107
"""The longest path a Unix socket can be bound to, in bytes (``sun_path`` less its NUL)."""


def _control_socket(path: str, result: Preflight) -> None:
    key = "session.control_socket"
    if "\0" in path:
        result.problems.append(f"{key}: {path!r} holds a NUL character")
    elif len(os.fsencode(path)) > SOCKET_PATH_MAX:
        result.problems.append(
            f"{key}: {len(os.fsencode(path))} bytes long: a Unix socket's path may have at most "
            f"{SOCKET_PATH_MAX}"
        )
    elif problem := written_path_problem(
        key, path, 'leave it "" (session.sock in the runtime directory, /run/retroguard)'
    ):
        result.problems.append(problem)
    elif reach := unreachable(Path(path).parent):  # exists() below would raise for it
        result.problems.append(f"{key}: {reach}")
    else:
        folder = Path(path).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            result.problems.append(f"{key}: {folder} is not a directory, so {path} cannot be made")


def _mqtt(config: Config, result: Preflight) -> None:
    mq = config.mqtt
    # Their shapes with or without a broker: a config whose host is set later (the installer's
    # --broker, a caregiver service added) must not then meet a refusal kept from before.
    for key, value in (
        ("mqtt.topic_prefix", mq.topic_prefix),
        ("mqtt.discovery_prefix", mq.discovery_prefix),
    ):
        if (problem := topic_level_problem(value)) is not None:
            result.problems.append(f"{key}: {value!r} {problem}")
    for key, value in (("mqtt.client_id", mq.client_id), ("mqtt.username", mq.username)):
        if (problem := text_problem(value)) is not None:
            result.problems.append(f"{key}: {problem}")
    if not mq.host:
        return
    if mq.username and mq.username != config.device.id:
        result.warnings.append(
            f"mqtt.username: {mq.username!r} is not the device id ({config.device.id!r}): the "
            "documented broker's ACL lets a device's account write only the topics named after "
            f"it ({mq.topic_prefix}/<account>/..., docs/mqtt.md), so it would refuse every "
            "message of this device (kept in the outbox, sent again); log in with an account "
            "named as the device"
        )
    if mq.discovery and (ignored := discovery_id_problem(config.device.id)) is not None:
        result.warnings.append(
            f"device.id: {ignored}: rename the device to appear there, or set "
            "mqtt.discovery = false"
        )
    from core.mqttlink import MqttSetupError, make_client

    try:
        make_client(mq.link(), "retroguard-preflight")
    except MqttSetupError as exc:
        result.problems.append(str(exc))


def _storage(config: Config, result: Preflight) -> None:
    database = Path(config.storage.database)
    try:
        is_dir = database.is_dir()
    except OSError as exc:  # a name too long for the file system
        result.problems.append(f"storage.database: {database}: {exc.strerror}")
        return
    if "\0" in str(database):
        result.problems.append(f"storage.database: {str(database)!r} holds a NUL character")
        return
    problem = written_path_problem(
        "storage.database",
        database,
        "name a file in the state directory, e.g. /var/lib/retroguard/retroguard.db",
    )
    if problem is not None:
        # Whoever runs the check: root may write /etc, the service never can.
        result.problems.append(problem)
        return
    if is_dir:
        # SQLite cannot open a directory: the monitor would start in a storage FAULT.
        result.problems.append(
            f"storage.database: {database} is a directory; name the database file in it "
            f"(e.g. {database / 'retroguard.db'})"
        )
        return
    not_a_database = database_file_problem(database)
    if not_a_database is not None:
        # Not refused: an SD card's damage can zero a real database's header, and the
        # monitor then protects with a new one. But a path naming another file (the config
        # itself) would have that file renamed away at the start with nothing said before.
        result.warnings.append(
            f"storage.database: {not_a_database}: the monitor's start will move it aside as "
            f"a damaged database ({database.name}.damaged-<time>) and start a new one there; "
            "if the path is a mistake, name the database file (e.g. "
            "/var/lib/retroguard/retroguard.db)"
        )
    folder = database.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        result.problems.append(
            f"storage.database: {folder} is not a directory, so {database} cannot be made"
        )
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        result.warnings.append(
            f"storage.database: {folder} cannot be written by this user, so events could not be "
            "stored: the monitor would run with a storage fault and refuse to arm"
        )
