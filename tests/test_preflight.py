"""One validation: ``config --check`` refuses exactly what ``run`` refuses, with the same words.

The issue's tester found 13 configs that passed the check and crashed ``run``
with a traceback, 11 that silently disabled MQTT, detector thresholds of
1e308 that made the detector blind, and a static relay drive accepted
without a word.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from core.clock import SimClock
from firmware.app import build_app
from firmware.config import Config, detector_range, load_config
from firmware.detection.config import DetectorConfig
from firmware.link.supervisor import ThreadCourier
from firmware.preflight import BENCH_WARNING, preflight
from sim.backends import simulated_hardware

BASE = """
[storage]
database = "events.db"
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(BASE + extra)
    return path


def retroguard(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


REFUSED = {
    "impact threshold beyond the sensor": ("[detector]\nimpact_g = 1e308\n", "detector.impact_g"),
    "a negative tilt": ("[detector]\nlying_tilt_deg = -5.0\n", "detector.lying_tilt_deg"),
    "a blind velocity rule": (
        "[detector]\nstumble_velocity_mps = 1e9\n",
        "detector.stumble_velocity_mps",
    ),
    "a discovery prefix with a wildcard": (
        '[mqtt]\nhost = "127.0.0.1"\ndiscovery_prefix = "home#"\n',
        "mqtt.discovery_prefix: 'home#' must be one topic level",
    ),
    "a password file that is not there": (
        '[mqtt]\nhost = "127.0.0.1"\nusername = "tm"\npassword_file = "/nonexistent/pw"\n',
        "mqtt.password_file: cannot read /nonexistent/pw",
    ),
    "a CA file that is not there": (
        '[mqtt]\nhost = "127.0.0.1"\ntls = true\nca_file = "/nonexistent/ca.pem"\n',
        "mqtt.ca_file: no such file",
    ),
    "a device id no topic can carry": (
        '[device]\nid = "tread mill/1"\n[mqtt]\nhost = "127.0.0.1"\n',
        "device.id: device id 'tread mill/1' cannot be used in MQTT topics",
    ),
    "a prefix of two levels": (
        '[mqtt]\nhost = "127.0.0.1"\ntopic_prefix = "a/b"\n',
        "mqtt.topic_prefix: 'a/b' must be one topic level",
    ),
    "a static relay drive on a walker's treadmill": (
        '[gpio]\nrelay_drive = "static"\n',
        "gpio.relay_drive: 'static' holds the relay by a level",
    ),
    "a plan file that is not there": (
        '[session]\nplan = "/nonexistent/plan.toml"\n',
        "plan file not found",
    ),
    "a password file without a user name (the password would be ignored)": (
        '[mqtt]\nhost = "127.0.0.1"\npassword_file = "/etc/hostname"\n',
        "mqtt.password_file: set, but mqtt.username is empty",
    ),
    "a password without a user name": (
        '[mqtt]\nhost = "127.0.0.1"\npassword = "secret-pw"\n',
        "mqtt.password: set, but mqtt.username is empty",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_check_and_run_refuse_the_same_config_with_the_same_words(
    tmp_path: Path, case: str
) -> None:
    extra, words = REFUSED[case]
    _refused_alike(write(tmp_path, extra), words)


def _refused_alike(path: Path, words: str) -> None:
    """``config --check`` and ``run`` both refuse ``path``, status 2, with the same lines (one
    of them holding ``words``), without a traceback."""
    check = retroguard("config", "--check", str(path))
    run = retroguard("run", "-c", str(path))
    assert check.returncode == 2 and run.returncode == 2, (check.stderr, run.stderr)
    assert words in check.stderr
    refusal = [line for line in check.stderr.splitlines() if line.startswith(str(path))]
    assert refusal and all(line in run.stderr for line in refusal)
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("database", "words"),
    [
        (".", "storage.database: {dir} is a directory; name the database file in it"),
        ("config.toml/events.db", "storage.database: {dir}/config.toml is not a directory"),
    ],
)
def test_a_database_path_sqlite_cannot_open_is_refused_by_check_and_run(
    tmp_path: Path, database: str, words: str
) -> None:
    """A directory (`database = "/tmp"`) passed the check, and `run` then started in a storage
    FAULT; so did a path under a file."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndatabase = "{database}"\n')
    _refused_alike(path, words.format(dir=tmp_path))


def test_every_detector_setting_has_a_physical_range() -> None:
    fields = [f.name for f in dataclasses.fields(DetectorConfig)]
    assert [name for name in fields if detector_range(name) is None] == []


def test_a_bench_rig_may_drive_the_relay_statically_and_says_so_everywhere(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '[gpio]\nrelay_drive = "static"\nbench_rig = true\n')
    check = retroguard("config", "--check", str(path))
    assert check.returncode == 0 and BENCH_WARNING in check.stderr
    config = load_config(path)
    clock = SimClock()
    sim = simulated_hardware(config.imu, config.gpio, clock)
    app = build_app(config, clock, imu=sim.imu_rig.imu, gpio=sim.gpio, courier=ThreadCourier)
    app.start()
    app.monitor.run(until=clock.monotonic() + 0.2)
    app.close()
    start = app.stored_events()[0].event
    assert BENCH_WARNING in start.reason  # the dashboard and Home Assistant show the start


MUTATIONS = [
    ("imu", "sample_rate_hz", 100.0),
    ("imu", "sample_rate_hz", 1000.0),
    ("imu", "accel_range_g", 16),
    ("imu", "gyro_range_dps", 2000),
    ("imu", "dlpf_hz", 94),
    ("safety", "window_before_s", 10.0),
    ("detector", "impact_g", 15.9),
    ("detector", "no_recovery_s", 300.0),
    ("detector", "upright_tau_s", 0.01),
    ("detector", "balance_score", 999.0),
    ("session", "plan", "alternate-2-2"),
]


@pytest.mark.parametrize(("section", "key", "value"), MUTATIONS)
def test_what_the_check_accepts_the_monitor_runs(
    tmp_path: Path, section: str, key: str, value: object
) -> None:
    config = Config()
    config = dataclasses.replace(
        config,
        **{section: dataclasses.replace(getattr(config, section), **{key: value})},
        storage=dataclasses.replace(config.storage, database=str(tmp_path / "e.db")),
    )
    checked = preflight(config)
    if checked.problems:
        pytest.skip(f"refused, as it should be: {checked.problems}")
    clock = SimClock()
    sim = simulated_hardware(config.imu, config.gpio, clock)
    app = build_app(config, clock, imu=sim.imu_rig.imu, gpio=sim.gpio, courier=ThreadCourier)
    app.start()
    app.monitor.run(until=clock.monotonic() + 1.0)
    app.close()
    assert app.controller.state.value in ("STANDBY", "STARTING")  # running, not crashed


def test_a_device_id_home_assistant_cannot_discover_is_a_warning_not_a_refusal(
    tmp_path: Path,
) -> None:
    dotted = load_config(write(tmp_path, '[device]\nid = "tm.1"\n[mqtt]\nhost = "127.0.0.1"\n'))
    (warning,) = [w for w in preflight(dotted).warnings if "device.id:" in w]
    assert "Home Assistant ignores" in warning and "mqtt.discovery = false" in warning
    assert not preflight(dotted).problems
    quiet = dataclasses.replace(dotted, mqtt=dataclasses.replace(dotted.mqtt, discovery=False))
    assert not [w for w in preflight(quiet).warnings if "device.id:" in w]
    plain = dataclasses.replace(dotted, device=dataclasses.replace(dotted.device, id="tm-1"))
    assert not [w for w in preflight(plain).warnings if "device.id:" in w]
