"""Checks outside the sensor and pins: the MQTT broker, the event store, the clocks.

Broker: one real MQTT connection with the configured host, port,
credentials and TLS settings (the reporter's own :func:`make_client`, so the
doctor tests exactly what the monitor will use), waiting at most a bounded
time for the CONNACK. It connects under its own client id, so it never
kicks the running monitor's session off the broker.

Event store: the SQLite database is opened with the store's own settings
(an older file upgraded, as the monitor would at start), checked (``PRAGMA
quick_check``), and a row is written inside a transaction that is then
rolled back, which proves the file, its directory (WAL and journal files)
and the disk all accept writes, without leaving anything behind. What would
be a storage fault in the monitor fails here: a file it would move aside
(damaged, or written by a newer release), a disk that refuses the write or
has almost no room. A database the check had to create is removed again:
run as root by mistake, the doctor would otherwise leave a root-owned file
the service cannot write.

Clocks: the monotonic clock must advance (every timing decision reads it),
and the wall clock must not be before the year this software was built — a
Pi has no battery-backed clock, and until NTP answers it runs from the last
saved time or from 1970, which would stamp every event with a wrong date.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.cliargs import unreachable
from firmware.config import Config
from firmware.storage.damage import moved_aside_files, quick_check, wal_damage
from firmware.storage.database import connect
from firmware.storage.errors import SchemaError
from firmware.storage.events import probe_write
from firmware.storage.faults import Trouble, describe, disk_full, trouble
from tools.diagnostics.result import CheckResult, failed, passed, skipped, warned

BROKER, STORE, CLOCK, CONFIG = "broker", "event-store", "clock", "config"

BUILD_YEAR = 2025
"""A wall clock before 1 January of this year is certainly wrong."""
MONOTONIC_READS = 1_000_000
"""Reads of the monotonic clock allowed before it must have moved (a few ms at most)."""

_MQTT_FIX = "see docs/mqtt.md (accounts, TLS) and the [mqtt] section of the config"


def check_config(config: Config) -> CheckResult:
    """What ``retroguard run`` checks before it starts (the same :func:`preflight`)."""
    from firmware.preflight import BENCH_WARNING, preflight

    result = preflight(config, "config")
    if result.problems:
        more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        return failed(
            CONFIG,
            result.problems[0].removeprefix("config: ") + more,
            "retroguard config --check FILE lists every problem",
        )
    if any(BENCH_WARNING in w for w in result.warnings):
        return warned(CONFIG, BENCH_WARNING)
    return passed(CONFIG, "everything retroguard run checks before starting is fine")


def check_broker(config: Config, timeout_s: float) -> CheckResult:
    """Connect once with the configured credentials and TLS; SKIP when no broker is set."""
    mq = config.mqtt
    if not mq.host:
        return skipped(BROKER, "mqtt.host is empty: events are only stored locally")
    from core.mqttlink import MqttSetupError, make_client

    where = f"{mq.host}:{mq.port}" + (" (TLS)" if mq.tls else "")
    try:
        client = make_client(mq.link(), f"retroguard-doctor-{config.device.id}")
    except MqttSetupError as exc:
        return failed(BROKER, str(exc), _MQTT_FIX)
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    client.connect_timeout = timeout_s
    try:
        result = _connect_and_judge(client, mq.host, mq.port, where, timeout_s, answered, outcome)
    finally:
        with contextlib.suppress(Exception):  # best effort: the outcome is already decided
            client.disconnect()
            client.loop(timeout=0.1)
    if result.failed:
        return result
    user = f"as {mq.username}" if mq.username else "anonymously"
    if mq.alert_receipts:
        delivery = "alerts stay in the outbox until the caregiver service confirms them (receipts)"
    else:
        delivery = (
            "alert receipts OFF: an alert leaves the outbox on the broker's PUBACK, so a broker "
            "crash can lose it - right only with no caregiver service (Home Assistant alone)"
        )
    return passed(BROKER, f"{where}: connected {user}; {delivery}")


def _connect_and_judge(
    client: Any,
    host: str,
    port: int,
    where: str,
    timeout_s: float,
    answered: threading.Event,
    outcome: dict[str, Any],
) -> CheckResult:
    try:
        client.connect(host, port, keepalive=max(5, int(timeout_s) + 5))
    except ssl.SSLCertVerificationError as exc:
        return failed(
            BROKER,
            f"{where}: the broker's certificate is not trusted ({exc.verify_message})",
            "set mqtt.ca_file to the CA that signed it, and use the host name in the certificate",
        )
    except ssl.SSLError as exc:
        return failed(
            BROKER,
            f"{where}: TLS handshake failed ({exc.reason or exc})",
            "check that the port speaks TLS (8883) and mqtt.tls, mqtt.cert_file, mqtt.key_file",
        )
    except ConnectionRefusedError:
        return failed(
            BROKER,
            f"{where}: connection refused (nothing listens on that port)",
            "start the broker (systemctl status mosquitto), check mqtt.host and mqtt.port",
        )
    except socket.gaierror as exc:
        return failed(
            BROKER,
            f"{where}: host name does not resolve ({exc.strerror})",
            "check mqtt.host and the Pi's network and DNS",
        )
    except (TimeoutError, OSError) as exc:
        what = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        return failed(
            BROKER,
            f"{where}: cannot connect ({what})",
            "check the network path and firewall to the broker",
        )
    deadline = time.monotonic() + timeout_s
    while not answered.is_set() and time.monotonic() < deadline:
        rc = client.loop(timeout=0.1)
        if rc != 0 and not answered.is_set():
            return failed(
                BROKER,
                f"{where}: the broker closed the connection before answering",
                "does the port expect TLS (mqtt.tls = true)? " + _MQTT_FIX,
            )
    if not answered.is_set():
        return failed(
            BROKER,
            f"{where}: no answer within {timeout_s:g} s",
            "check the port is an MQTT listener and the firewall lets it through",
        )
    reason = outcome["reason"]
    if getattr(reason, "is_failure", False):
        return failed(
            BROKER,
            f"{where}: the broker refused the connection ({reason})",
            "check mqtt.username and the password (mqtt.password_file); " + _MQTT_FIX,
        )
    return passed(BROKER, f"{where}: connected")


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def _remove_created(path: Path, new_dirs: list[Path]) -> None:
    """Remove the database files and directories the check created (best effort)."""
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            leftover.unlink(missing_ok=True)
    for directory in new_dirs:
        try:
            directory.rmdir()
        except OSError:
            break


def check_store(config: Config) -> CheckResult:
    """Open the database, check it, and write a row inside a transaction that is rolled back.

    FAIL for what would be a storage fault in the monitor: a file from a newer
    release or damaged (the monitor moves it aside and starts a new one), a
    disk that refuses the write or has almost no room left (the monitor keeps
    alerts in memory and refuses to arm). A pass names damaged files moved
    aside earlier: someone should look at them.
    """
    path = Path(config.storage.database)
    reach = unreachable(path)
    if reach is not None:
        return failed(
            STORE,
            reach,
            "check storage.database, and that its folders may be entered by the service user "
            "(/var/lib/retroguard, the unit's StateDirectory); run the doctor as that user",
        )
    existed = path.exists()
    new_dirs = _missing_parents(path)
    conn: sqlite3.Connection | None = None
    # before any connection: SQLite would ignore a damaged log, and this check's own write
    # (a new file's schema, for a log whose header is gone) would overwrite it for good
    wal = wal_damage(path)
    if wal is not None:
        return _damaged(path, f"write-ahead log damaged: {wal}")
    try:
        conn = connect(path)
        problem = quick_check(conn)
        if problem is not None:
            return _damaged(path, f"quick_check: {problem}")
        probe_write(conn)
    except SchemaError as exc:
        return failed(
            STORE,
            str(exc),
            "the monitor moves such a file aside at start (to <name>.damaged-<time>) and begins "
            "a new log; to keep this one, install the release that wrote it",
        )
    except (sqlite3.Error, OSError) as exc:
        kind = trouble(exc)
        if kind is Trouble.DAMAGED:
            return _damaged(path, describe(exc))
        if disk_full(exc):
            return _disk_full(path, describe(exc))
        return failed(
            STORE,
            f"{path}: not writable ({exc})",
            "check storage.database, and that the directory belongs to the service user "
            "(/var/lib/retroguard, the unit's StateDirectory); run the doctor as that user",
        )
    finally:
        if conn is not None:
            conn.close()
        if not existed:
            _remove_created(path, new_dirs)
    free = shutil.disk_usage(_existing_parent(path)).free
    if free < MIN_FREE_BYTES:
        return _disk_full(path, f"only {free // 1024} KiB free on its disk")
    note = "" if existed else " (created for the check and removed again)"
    moved = moved_aside_files(path)
    if moved:
        note += (
            f"; {len(moved)} damaged file{'s' if len(moved) > 1 else ''} moved aside earlier, "
            f"newest {moved[-1].name}: inspect, then delete"
        )
    return passed(STORE, f"{path}: a write in a transaction works{note}")


MIN_FREE_BYTES = 16 * 1024 * 1024
"""Less room than this on the database's disk is a fault waiting to happen."""


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")


def _damaged(path: Path, why: str) -> CheckResult:
    return failed(
        STORE,
        f"{path}: damaged ({why})",
        "the monitor moves it aside at start (to <name>.damaged-<time>, kept for inspection) "
        "and begins a new log; check the SD card (dmesg | grep -i mmc) and the power supply",
    )


def _disk_full(path: Path, why: str) -> CheckResult:
    return failed(
        STORE,
        f"{path}: the disk is full ({why})",
        "free space on it (df -h, journalctl --vacuum-size=...); until then the monitor keeps "
        "alerts in memory, still publishes them, and refuses to arm a new walk",
    )


def check_clock(
    wall_time: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> CheckResult:
    """The monotonic clock advances; the wall clock is not before :data:`BUILD_YEAR`."""
    first = monotonic()
    for _ in range(MONOTONIC_READS):
        if monotonic() > first:
            break
    else:
        return failed(
            CLOCK,
            f"the monotonic clock does not advance (stuck at {first:.6f})",
            "the system clock source is broken: reboot; if it persists, reflash the system",
        )
    now = dt.datetime.fromtimestamp(wall_time(), tz=dt.UTC)
    if now.year < BUILD_YEAR:
        return failed(
            CLOCK,
            f"the wall clock says {now:%Y-%m-%d %H:%M} UTC, before {BUILD_YEAR}",
            "the Pi has no battery clock: give it network access for NTP "
            "(timedatectl show-timesync), or fit an RTC module",
        )
    return passed(CLOCK, f"monotonic clock advances; wall clock {now:%Y-%m-%d %H:%M} UTC")
