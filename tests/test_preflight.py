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
from collections.abc import Callable
from pathlib import Path

import pytest

from core.clock import SimClock
from firmware.app import build_app
from firmware.config import Config, detector_range, load_config
from firmware.detection.config import DetectorConfig
from firmware.link.supervisor import ThreadCourier
from firmware.preflight import BENCH_WARNING, preflight
from sim.backends import simulated_hardware
from tests.app_support import run_monitor

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
    "a prefix of two levels in a config whose broker is set later": (
        '[mqtt]\ntopic_prefix = "a/b"\n',
        "mqtt.topic_prefix: 'a/b' must be one topic level",
    ),
    "a voice name no espeak-ng voice can have (a space in it)": (
        '[session]\nvoice = "en gb"\n',
        'session.voice: "auto", "off", or an espeak-ng voice\'s name',
    ),
    "a voice name espeak-ng would read as an option": (
        '[session]\nvoice = "-w"\n',
        'session.voice: "auto", "off", or an espeak-ng voice\'s name',
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
    # Each of these passed the check, then crashed `run` (or its courier, over and over) with a
    # traceback, or left it refused by the broker at every connect.
    "a gyro bias no working chip has, which would make a still walker spin": (
        "[imu]\ngyro_bias_dps = [1e300, 0.0, 0.0]\n",
        "imu.gyro_bias_dps: each axis must be within ±40 deg/s",
    ),
    "a keepalive MQTT cannot carry (two bytes)": (
        '[mqtt]\nhost = "127.0.0.1"\nkeepalive_s = 70000\n',
        "mqtt.keepalive_s: must be between 1 and 65535 s",
    ),
    "a topic prefix with a control character the broker refuses": (
        '[mqtt]\nhost = "127.0.0.1"\ntopic_prefix = "rg\\u0001"\n',
        "mqtt.topic_prefix: 'rg\\x01' must not contain control characters",
    ),
    "a user name with a Unicode noncharacter the broker refuses": (
        '[mqtt]\nhost = "127.0.0.1"\nusername = "tm\\uFFFE"\n',
        "mqtt.username: must not contain Unicode noncharacters",
    ),
    "a dashboard address in brackets that are no IPv6 address's (a URL parser raises)": (
        '[mqtt]\nhost = "127.0.0.1"\ndashboard_url = "http://[carepc.home.lan]:8080"\n',
        "mqtt.dashboard_url: must be an http:// or https:// address",
    ),
    "a client id with a NUL": (
        '[mqtt]\nhost = "127.0.0.1"\nclient_id = "tm\\u0000"\n',
        "mqtt.client_id: must not contain control characters",
    ),
    "a password file whose name holds a NUL": (
        '[mqtt]\nhost = "127.0.0.1"\nusername = "tm"\npassword_file = "/tmp/a\\u0000b"\n',
        "mqtt.password_file: '/tmp/a\\x00b' is not a file name",
    ),
    "a CA file name too long for the file system": (
        f'[mqtt]\nhost = "127.0.0.1"\ntls = true\nca_file = "/{"x" * 300}.pem"\n',
        "mqtt.ca_file: cannot read",
    ),
    "a language name too long for the file system": (
        f'[session]\nlanguage = "{"x" * 300}"\n',
        "session.language: no prompt file for this language",
    ),
    "a recording window no ring buffer can hold": (
        "[safety]\nwindow_before_s = 1e300\n",
        "safety.window_before_s: must be greater than 0 and at most 60 s",
    ),
    "a retention past the last date Python has": (
        "keep_events_days = 1e300\n",  # in BASE's [storage]
        "storage.keep_events_days: must be between 0 (forever) and 36500 days",
    ),
    "a control socket path too long for a Unix socket": (
        f'[session]\ncontrol_socket = "/tmp/{"x" * 200}.sock"\n',
        "session.control_socket: 210 bytes long",
    ),
    "a control socket path holding a NUL": (
        '[session]\ncontrol_socket = "/tmp/a\\u0000b.sock"\n',
        "session.control_socket: '/tmp/a\\x00b.sock' holds a NUL character",
    ),
    "a control socket under a file": (
        '[session]\ncontrol_socket = "/proc/version/session.sock"\n',
        "session.control_socket: /proc/version is not a directory",
    ),
}


RefusedAlike = Callable[[Path, str], None]


@pytest.fixture
def refused_alike(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> RefusedAlike:
    """:func:`_refused_alike`'s checks on the command line's own function, in this process:
    two Python starts a case (~1 s of CPU each, the heavy imports) were most of this file's
    time. ``run`` past its refusal fails here rather than start a monitor; the commands as
    installed are still run by :func:`_refused_alike` (the Latin-1 password file), the voice
    and bench rig checks, and tests/test_config.py."""
    import firmware.app
    from launcher.cli import main

    def went_past(config: object) -> int:
        raise AssertionError("run went past its refusal: it would have started the monitor")

    monkeypatch.setattr(firmware.app, "run_forever", went_past)

    def check(path: Path, words: str) -> None:
        capsys.readouterr()
        status = main(["config", "--check", str(path)])
        checked = capsys.readouterr().err
        assert status == 2 and words in checked, checked  # before `run` is started with it
        assert main(["run", "-c", str(path)]) == 2
        _same_refusal(path, checked, capsys.readouterr().err)

    return check


def _same_refusal(path: Path, check: str, run: str) -> None:
    """``run`` said every line of the check's refusal of ``path``, without a traceback."""
    refusal = [line for line in check.splitlines() if line.startswith(str(path))]
    assert refusal and all(line in run for line in refusal), (check, run)
    assert "Traceback" not in run


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_check_and_run_refuse_the_same_config_with_the_same_words(
    tmp_path: Path, case: str, refused_alike: RefusedAlike
) -> None:
    extra, words = REFUSED[case]
    refused_alike(write(tmp_path, extra), words)


def _refused_alike(path: Path, words: str) -> None:
    """``config --check`` and ``run`` as installed (``python -m launcher.cli``) both refuse
    ``path``, status 2, with the same lines (one of them holding ``words``), without a
    traceback."""
    check = retroguard("config", "--check", str(path))
    assert check.returncode == 2 and words in check.stderr, check.stderr
    run = retroguard("run", "-c", str(path))
    assert run.returncode == 2, run.stderr
    _same_refusal(path, check.stderr, run.stderr)


def test_a_password_file_that_is_not_utf8_is_refused_by_check_and_run(tmp_path: Path) -> None:
    """A password file saved in Latin-1 raised UnicodeDecodeError out of the check."""
    (tmp_path / "pw").write_bytes(b"gr\xfcn\n")
    path = write(tmp_path, '[mqtt]\nhost = "127.0.0.1"\nusername = "tm"\npassword_file = "pw"\n')
    _refused_alike(path, f"mqtt.password_file: {tmp_path / 'pw'}: byte 2 is not UTF-8")


@pytest.mark.parametrize(
    ("database", "words"),
    [
        (".", "storage.database: {dir} is a directory; name the database file in it"),
        ("config.toml/events.db", "storage.database: {dir}/config.toml is not a directory"),
        ("x" * 300 + ".db", "storage.database: {dir}/" + "x" * 300 + ".db: File name too long"),
        ("a\\u0000b.db", "storage.database: '{dir}/a\\x00b.db' holds a NUL character"),
    ],
)
def test_a_database_path_sqlite_cannot_open_is_refused_by_check_and_run(
    tmp_path: Path, database: str, words: str, refused_alike: RefusedAlike
) -> None:
    """A directory (`database = "/tmp"`) passed the check, and `run` then started in a storage
    FAULT; so did a path under a file. A name too long for the file system raised OSError out
    of the check; one holding a NUL passed it, and the courier then died opening it, over and
    over."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndatabase = "{database}"\n')
    refused_alike(path, words.format(dir=tmp_path))


def test_a_voice_this_machine_s_espeak_ng_does_not_have_is_said_by_check_and_run(
    tmp_path: Path,
) -> None:
    """``session.voice = "robot"`` passed ``config --check`` without a word, and the monitor
    then beeped every cue where the physio expected words. A voice's shape is the config's
    (refused above); whether a voice is there is this machine's espeak-ng's (an MBROLA voice
    is a package of its own): the check and the run's preflight (one function) both warn,
    naming the key, and the voices it has pass without a word."""
    from firmware.session.voice import on_path

    if on_path("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: the warning is that it is not")
    path = write(tmp_path, '[session]\nvoice = "robot"\n')
    check = retroguard("config", "--check", str(path))
    assert check.returncode == 0, check.stderr
    said = (
        f"warning: {path}: session.voice: 'robot': this machine's espeak-ng has no such voice "
        "(The specified espeak-ng voice does not exist.), so cues will be beeps only; "
        "espeak-ng --voices lists its voices (and --voices=variant the +variants)"
    )
    assert said in check.stderr.splitlines(), check.stderr
    run = preflight(load_config(path), str(path)).warnings  # what `run` logs before it starts
    assert [f"warning: {w}" for w in run if "session.voice" in w] == [said]
    for voice in ("en-gb", "en+f3", "gmw/en-GB-x-rp"):
        path.write_text(BASE + f'[session]\nvoice = "{voice}"\n')
        assert not any("session.voice" in w for w in preflight(load_config(path)).warnings)


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
    run_monitor(app.monitor, clock, 0.2)
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
    run_monitor(app.monitor, clock, 1.0)
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


def test_an_account_not_named_as_the_device_is_a_warning(tmp_path: Path) -> None:
    """The documented ACL grants a device's account ``retroguard/%u/...``: logged in as
    another name, the device's every message is refused by the broker (kept and sent again),
    which only the monitor's log said, once it ran. The check and the start say it first."""
    other = load_config(
        write(tmp_path, '[device]\nid = "tm1"\n[mqtt]\nhost = "127.0.0.1"\nusername = "tm2"\n')
    )
    (warning,) = [w for w in preflight(other).warnings if "mqtt.username:" in w]
    assert "'tm2' is not the device id ('tm1')" in warning and "retroguard/<account>/" in warning
    assert not preflight(other).problems
    named = dataclasses.replace(other, mqtt=dataclasses.replace(other.mqtt, username="tm1"))
    anonymous = dataclasses.replace(other, mqtt=dataclasses.replace(other.mqtt, username=""))
    for config in (named, anonymous):
        assert not [w for w in preflight(config).warnings if "mqtt.username:" in w]


WRITTEN_IN_SYSTEM_FOLDERS = {
    "an event store in /etc": (
        '[storage]\ndatabase = "/etc/retroguard/events.db"\n',
        "storage.database: /etc/retroguard/events.db is in /etc, which the service can never write",
    ),
    "a prompt cache in /usr": (
        '[session]\nprompt_cache = "/usr/share/retroguard/prompts"\n',
        "session.prompt_cache: /usr/share/retroguard/prompts is in /usr",
    ),
    "a control socket in /etc": (
        '[session]\ncontrol_socket = "/etc/retroguard/session.sock"\n',
        "session.control_socket: /etc/retroguard/session.sock is in /etc",
    ),
}


@pytest.mark.parametrize("case", sorted(WRITTEN_IN_SYSTEM_FOLDERS))
def test_a_path_the_service_writes_in_a_read_only_system_folder_is_refused_by_check_and_run(
    tmp_path: Path, case: str, refused_alike: RefusedAlike
) -> None:
    """The unit's ProtectSystem= makes /etc and /usr read-only whoever owns them; the check,
    run as root (who may write /etc), passed such a config, and the monitor then started in a
    storage FAULT (or without its session socket) and could never arm. The check is asked
    first: a check that lets it through fails here before `run` is started with it."""
    path = tmp_path / "config.toml"
    extra, words = WRITTEN_IN_SYSTEM_FOLDERS[case]
    path.write_text(extra if extra.startswith("[storage]") else BASE + extra)
    refused_alike(path, words)


def test_a_relative_path_beside_a_config_in_etc_is_refused_by_check_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The installed config is /etc/retroguard/config.toml, so a relative `storage.database`
    (or prompt cache, or control socket: every relative path is the config file's folder's)
    was /etc/retroguard/events.db: a file the service can never write, and `config --check`
    said nothing. Here tmp_path/etc stands for /etc (the check asks core.writable)."""
    import core.writable
    from launcher.cli import main

    etc = tmp_path / "etc"
    monkeypatch.setattr(core.writable, "READ_ONLY_SYSTEM_DIRS", (str(etc),))
    folder = etc / "retroguard"
    folder.mkdir(parents=True)
    path = folder / "config.toml"
    path.write_text('[storage]\ndatabase = "events.db"\n')
    assert main(["config", "--check", str(path)]) == 2
    check = capsys.readouterr().err
    assert f"{path}: storage.database: {folder}/events.db is in {etc}, which the service" in check
    assert "a relative path is relative to the config file's folder" in check
    assert main(["run", "-c", str(path)]) == 2  # before anything is opened
    assert check in capsys.readouterr().err
    assert list(folder.iterdir()) == [path]
    # In a folder the service may write (a temporary one here, /var/lib/retroguard on the Pi),
    # the same relative name is fine: the demo and the tests keep their files beside the config.
    elsewhere = tmp_path / "var" / "config.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text('[storage]\ndatabase = "events.db"\n')
    assert main(["config", "--check", str(elsewhere)]) == 0


def test_a_relative_control_socket_is_the_config_folder_s_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was left relative to the working directory: the monitor, under its unit, listened in
    /var/lib/retroguard, and `retroguard session` typed in a home directory looked there."""
    path = tmp_path / "config.toml"
    path.write_text(BASE + '[session]\ncontrol_socket = "session.sock"\n')
    monkeypatch.chdir("/")
    assert load_config(path).session.control_socket == str(tmp_path / "session.sock")
