"""Config loading: typed values, every problem reported as ``file: key: what``, exit code 2."""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from pathlib import Path

import pytest

import firmware.app
from core.errors import ConfigError
from firmware.config import HOLD_MARGIN, Config, load_config, parse_config
from launcher.cli import main
from tools.config_example import example_config_text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_example_loads_and_equals_defaults() -> None:
    text = example_config_text()
    assert parse_config(tomllib.loads(text)) == Config()


def test_example_mentions_every_field() -> None:
    text = example_config_text()

    def walk(obj: object, prefix: str) -> None:
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                assert f"[{prefix}{f.name}]" in text
                walk(value, f"{prefix}{f.name}.")
            elif value is None:  # unset by default: shown commented out
                assert f"\n# {f.name} = " in text, f"{prefix}{f.name} missing from the example"
            else:
                assert f"\n{f.name} = " in text, f"{prefix}{f.name} missing from the example"

    walk(Config(), "")


def test_values_are_typed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[device]
id = "tm-7"
[imu]
sample_rate_hz = 100
accel_range_g = 16
gyro_bias_dps = [0.5, -1, 2]
[gpio]
relay_drive = "static"
[gpio.pins]
relay = 5
[storage]
database = "events.db"
[mqtt]
host = "broker.lan"
tls = true
ca_file = "certs/ca.pem"
username = "tm-7"
password_file = "/etc/retroguard/mqtt.pass"
""",
    )
    config = load_config(path)
    assert config.device.id == "tm-7"
    assert config.imu.sample_rate_hz == 100.0 and isinstance(config.imu.sample_rate_hz, float)
    assert config.imu.gyro_bias_dps == (0.5, -1.0, 2.0)
    assert config.gpio.relay_drive == "static"
    assert config.gpio.pins.relay == 5
    assert config.storage.database == str(tmp_path / "events.db")
    assert config.mqtt.ca_file == str(tmp_path / "certs" / "ca.pem")  # relative to the file
    assert config.mqtt.password_file == "/etc/retroguard/mqtt.pass"


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[imu]
sample_rate_hz = 300
accel_range_g = 3
backend = "spi"
[gpio]
relay_drive = "pulse"
heartbeet_hold_s = 0.05
[gpio.pins]
buzzer = 17
[safety]
sample_timeout_s = -1
[nonsense]
x = 1
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    text = "\n".join(problems)
    assert all(p.startswith(f"{path}: ") for p in problems)
    assert "imu.sample_rate_hz: must be 1000 / (1 + n) Hz" in text
    assert "imu.accel_range_g: must be one of 2, 4, 8, 16" in text
    assert "imu.backend: must be one of 'mpu6050', 'simulated'" in text
    assert "gpio.relay_drive: must be one of 'static', 'heartbeat'" in text
    assert "gpio.heartbeet_hold_s: unknown key (did you mean 'heartbeat_hold_s'?)" in text
    assert "safety.sample_timeout_s: must be greater than 0" in text
    assert "nonsense: unknown key" in text


def test_pin_used_twice_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[gpio.pins]\nbuzzer = 17\n")
    with pytest.raises(ConfigError, match=r"GPIO17 is used twice \(relay, buzzer\)"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[imu]\nsample_rate_hz = true\n", "imu.sample_rate_hz: must be a number, not bool"),
        ("[imu]\ni2c_bus = 1.5\n", "imu.i2c_bus: must be a whole number"),
        ("[imu]\ngyro_bias_dps = [1, 2]\n", "imu.gyro_bias_dps: must be a list of 3 numbers"),
        ("[imu]\nsample_rate_hz = nan\n", "imu.sample_rate_hz: must be a finite number"),
        ("imu = 3\n", "imu: must be a table"),
        ("[imu\n", "not valid TOML"),
        ("[safety]\nsample_timeout_s = 0.005\n", "at least two sample periods"),
        ("[imu]\nsample_rate_hz = 20\n", "too slow for the heartbeat relay drive"),
        ("[mqtt]\nport = 70000\n", "mqtt.port: must be a TCP port"),
        (
            '[mqtt]\ndashboard_url = "care.local:8080"\n',
            "mqtt.dashboard_url: must be an http:// or https:// address",
        ),
        ("[imu]\nsample_rate_hz = 50\n", "imu.dlpf_hz: 44 Hz must be below half the sample rate"),
        ("[detector]\nsoft_impact_g = 0.9\n", "detector.soft_impact_g: must be above 1 g"),
        ("[detector]\nsoft_confirm_s = 0\n", "detector.soft_confirm_s: must be greater than 0"),
        ("[detector]\nimpact_g = 1.0\n", "detector.impact_g: must be above 1 g"),
        ("[detector]\ntilt_speed_tau_s = 0\n", "detector.tilt_speed_tau_s: must be greater than 0"),
        ("[detector]\nvelocity_tau_s = -1\n", "detector.velocity_tau_s: must be greater than 0"),
        (
            "[detector]\nbalance_extrapolate_s = -0.1\n",
            "balance_extrapolate_s: must not be negative",
        ),
        (
            "[detector]\nsoft_impact_g = 2.5\n",
            "soft_impact_g: 2.5 g must not be above detector.impact_g",
        ),
        ("[detector]\nsoft_confirm_s = 1\n", "soft_confirm_s: 1 s must not be shorter than"),
        (
            "[safety]\ncontact_debounce_s = 0.01\n",
            "safety.contact_debounce_s: must be between 0.03 s",
        ),
        ("[safety]\ncontact_debounce_s = 5\n", "longer leaves a welded contact unreported"),
        # One quiet block (a walker standing unusually still) must not stop the belt.
        (
            "[safety]\nworn_block_s = 3\nnot_worn_trip_s = 5.9\n",
            "safety.not_worn_trip_s: 5.9 s must be at least two blocks",
        ),
        ("[gpio.pins]\nrelay_sense = 27\n", r"GPIO27 is used twice \(relay_sense, reset_button"),
        # A time so long it switches a protection off, or makes a retry never come.
        ("[safety]\nfrozen_after_s = 1e300\n", "safety.frozen_after_s: must be in \\(0, 2] s"),
        ("[safety]\nsample_timeout_s = 5\n", "safety.sample_timeout_s: must be in \\(0, 1] s"),
        ("[imu]\nstale_timeout_s = 1e300\n", "imu.stale_timeout_s: must be in \\(0, 1] s"),
        ("[gpio]\nheartbeat_hold_s = 60\n", "gpio.heartbeat_hold_s: must be in \\(0, 1] s"),
        ("[gpio]\nbutton_bounce_s = 1\n", "gpio.button_bounce_s: must be in \\(0, 0.2] s"),
        ("[safety]\nhealthy_before_arm_s = 1e9\n", "healthy_before_arm_s: must be in \\(0, 60] s"),
        ("[mqtt]\nreceipt_retry_s = 1e300\n", "mqtt.receipt_retry_s: must be in \\(0, 3600] s"),
        ("[mqtt]\nreconnect_max_s = 1e300\n", "mqtt.reconnect_max_s: must be in \\(0, 3600] s"),
        ("[mqtt]\nreconnect_min_s = 0\n", "mqtt.reconnect_min_s: must be greater than 0"),
        ("[mqtt]\ntelemetry_interval_s = -5\n", "telemetry_interval_s: must not be negative"),
        ("[session]\nmax_pause_s = 1e300\n", "session.max_pause_s: must be in \\(0, 86400] s"),
        # Broker or not, a device id names the device's rows, topics and files.
        ('[device]\nid = "t\\u0000"\n', "device.id: device id 't.x00' cannot be used"),
        ('[device]\nid = "my treadmill"\n', "device.id: device id 'my treadmill' cannot be used"),
        ('[device]\nid = ""\n', "device.id: device id '' cannot be used"),
        # another account's name: the ACL's per-device patterns would let it forge the device
        ('[device]\nid = "caregiver-b"\n', "device.id: device id 'caregiver-b' is a broker acc"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[")):
        load_config(write(tmp_path, text))


def test_the_bounded_times_accept_their_limits(tmp_path: Path) -> None:
    text = (
        "[safety]\nfrozen_after_s = 2\nsample_timeout_s = 1\nhealthy_before_arm_s = 60\n"
        "[gpio]\nbutton_bounce_s = 0.2\n"
        "[mqtt]\nreceipt_retry_s = 3600\nreconnect_max_s = 3600\ntelemetry_interval_s = 0\n"
        "receipt_retry_max_s = 86400\n"
        "[session]\nmax_pause_s = 86400\n"
    )
    config = load_config(write(tmp_path, text))
    assert (config.safety.frozen_after_s, config.mqtt.telemetry_interval_s) == (2.0, 0.0)
    assert config.mqtt.receipt_retry_max_s == 86400.0
    # a cap equal to the first wait: no backoff, the behaviour before receipt_retry_max_s
    text = "[mqtt]\nreceipt_retry_s = 3600\nreceipt_retry_max_s = 3600\n"
    assert load_config(write(tmp_path, text)).mqtt.receipt_retry_max_s == 3600.0


@pytest.mark.parametrize("rate", ["45.45454545454545", "40"])
def test_a_rate_whose_one_late_sample_faults_the_heartbeat_is_refused_by_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: str
) -> None:
    """The heartbeat gap faults at seven eighths of the hold (``HOLD_MARGIN``): 43.75 ms of the
    default 50. At 40 to 45.45 Hz one late sample (two periods, 44 to 50 ms between edges)
    faulted a healthy walk, while the rule of half the hold called the config fine."""
    path = write(tmp_path, f"[imu]\nsample_rate_hz = {rate}\ndlpf_hz = 10\n")
    assert main(["config", "--check", str(path)]) == 2
    checked = capsys.readouterr().err
    said = f"{path}: imu.sample_rate_hz: {float(rate):g} Hz is too slow for the heartbeat relay"
    assert said in checked
    assert "one late sample (two periods) must stay under the heartbeat gap's fault" in checked
    assert "at 7/8 of gpio.heartbeat_hold_s (43.75 ms): a sample period under 21.875 ms" in (
        checked
    )
    assert main(["run", "-c", str(path)]) == 2  # the same loader: run refuses what check does
    assert capsys.readouterr().err == checked


def test_the_slowest_rate_the_heartbeat_allows_has_a_late_sample_inside_the_margin(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, "[imu]\nsample_rate_hz = 50\ndlpf_hz = 21\n"))
    two_periods_s = 2 / config.imu.sample_rate_hz
    assert two_periods_s < config.gpio.heartbeat_hold_s * HOLD_MARGIN  # 40 ms < 43.75 ms


def test_a_rate_whose_late_sample_lands_exactly_on_the_gap_fault_is_refused(
    tmp_path: Path,
) -> None:
    """The gap faults once it reaches seven eighths of the hold (``>=``, :meth:`_hold`): 14 ms
    of a 16 ms hold, which two periods at 1000/7 Hz are exactly. The rule let a period of
    exactly half that through ("at most"), so the one late sample it is there to allow
    faulted a healthy walk; a period just under it is taken."""
    text = "[imu]\nsample_rate_hz = {}\ndlpf_hz = 44\n[gpio]\nheartbeat_hold_s = {}\n"
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, text.format(1000 / 7, 0.016)))
    assert "a sample period under 7 ms" in str(refused.value)
    config = load_config(write(tmp_path, text.format(1000 / 7, 0.01601)))
    assert 2 / config.imu.sample_rate_hz < config.gpio.heartbeat_hold_s * HOLD_MARGIN


def test_a_slow_rate_is_no_heartbeat_problem_under_static_drive(tmp_path: Path) -> None:
    """The sample-rate rule is the heartbeat's: static drive holds a level, whatever the
    rate (mut39: the rule asked under static drive too refused a working 20 Hz setup)."""
    text = '[gpio]\nrelay_drive = "static"\n[imu]\nsample_rate_hz = 20\ndlpf_hz = 5\n'
    config = load_config(write(tmp_path, text))
    assert config.gpio.relay_drive == "static" and config.imu.sample_rate_hz == 20


def test_zero_is_allowed_where_it_means_off(tmp_path: Path) -> None:
    text = "[detector]\nbalance_extrapolate_s = 0\nconfirm_upright_max_s = 0\n"
    config = load_config(write(tmp_path, text))
    assert config.detector.balance_extrapolate_s == 0.0
    assert config.detector.confirm_upright_max_s == 0.0


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_cli_exit_code_2_and_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[imu]\naccel_range_g = 5\n")
    assert main(["config", "--check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: imu.accel_range_g: must be one of 2, 4, 8, 16" in err


def test_cli_example_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--example"]) == 0
    path = write(tmp_path, capsys.readouterr().out)
    assert main(["config", "--check", str(path)]) == 0


# ------------------------------------------------- press timings (docs/safety.md, the table)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("long_press_s = 0.1", "session.long_press_s: must be at least 2 s, not 0.1: "),
        ("long_press_s = 1.9", "session.long_press_s: must be at least 2 s, not 1.9: "),
        (
            "double_press_gap_s = 5",
            "session.double_press_gap_s: must be between 0.3 and 0.6 s, not 5: ",
        ),
        (
            "double_press_gap_s = 0.65",
            "session.double_press_gap_s: must be between 0.3 and 0.6 s, not 0.65: ",
        ),
        (
            "double_press_gap_s = 0.1",
            "session.double_press_gap_s: must be between 0.3 and 0.6 s, not 0.1: ",
        ),
    ],
)
def test_press_timings_that_would_confuse_two_patterns_are_refused_by_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = write(tmp_path, f"[session]\n{text}\n")
    assert main(["config", "--check", str(path)]) == 2
    checked = capsys.readouterr().err
    assert f"{path}: {expected}" in checked
    assert main(["run", "-c", str(path)]) == 2  # the same loader: run refuses what check does
    assert capsys.readouterr().err == checked


def test_press_timings_at_their_limits_are_accepted(tmp_path: Path) -> None:
    for gap in (0.3, 0.6):
        text = f"[session]\nlong_press_s = 2.0\ndouble_press_gap_s = {gap}\n"
        session = load_config(write(tmp_path, text)).session
        assert (session.long_press_s, session.double_press_gap_s) == (2.0, gap)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[session]\nlong_press_s = 1e308\n",
            "session.long_press_s: must be at most 10 s, not 1e+308: ",
        ),
        (
            "[session]\nlong_press_s = 10.5\n",
            "session.long_press_s: must be at most 10 s, not 10.5",
        ),
        ("[imu]\ni2c_bus = -1\n", "imu.i2c_bus: must be a bus number N of /dev/i2c-N, from 0 "),
        (
            "[imu]\ni2c_bus = 1048576\n",
            "imu.i2c_bus: must be a bus number N of /dev/i2c-N, from 0 ",
        ),
        ("[session]\nspeech_rate_wpm = 79\n", "session.speech_rate_wpm: must be from 80 to 450 "),
        ("[session]\nspeech_rate_wpm = 451\n", "session.speech_rate_wpm: must be from 80 to 450 "),
        ("[mqtt]\ncommand_burst = 1001\n", "mqtt.command_burst: must be in [1, 1000] commands"),
        ("[mqtt]\ncommand_burst = 0\n", "mqtt.command_burst: must be in [1, 1000] commands"),
        (
            "[mqtt]\ncommand_rate_per_s = 1e308\n",
            "mqtt.command_rate_per_s: must be in [0.1, 100] commands a second",
        ),
        (
            "[mqtt]\ncommand_rate_per_s = 1e-300\n",
            "mqtt.command_rate_per_s: must be in [0.1, 100] commands a second",
        ),
        (
            "[mqtt]\nreceipt_retry_max_s = 1e300\n",
            "mqtt.receipt_retry_max_s: must be in (0, 86400] s (an alert without a receipt",
        ),
        ("[mqtt]\nreceipt_retry_max_s = 0\n", "mqtt.receipt_retry_max_s: must be greater than 0"),
        (
            "[mqtt]\nreceipt_retry_s = 120\nreceipt_retry_max_s = 60\n",
            "mqtt.receipt_retry_max_s: 60 s must not be shorter than mqtt.receipt_retry_s (120 s)",
        ),
    ],
)
def test_values_no_device_could_mean_are_refused_by_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    """Each passed both ``config --check`` and ``run`` (found by fuzzing), and quietly switched
    something off: a long press that never fires (the session cannot be stopped from the
    button), a bus that fails only when the real sensor is opened, a speaking rate espeak-ng
    clamps or compresses past hearing, a command budget that no longer bounds a flood (or never
    answers again)."""
    path = write(tmp_path, text)
    assert main(["config", "--check", str(path)]) == 2
    checked = capsys.readouterr().err
    assert f"{path}: {expected}" in checked
    assert main(["run", "-c", str(path)]) == 2  # the same loader: run refuses what check does
    assert capsys.readouterr().err == checked


def test_all_of_them_are_reported_at_once(tmp_path: Path) -> None:
    text = (
        "[imu]\ni2c_bus = -1\n[mqtt]\ncommand_burst = 100000\ncommand_rate_per_s = 1e308\n"
        "[session]\nlong_press_s = 1e308\nspeech_rate_wpm = 1000000\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, text))
    keys = [p.split(": ")[1] for p in refused.value.problems]
    assert sorted(keys) == [
        "imu.i2c_bus",
        "mqtt.command_burst",
        "mqtt.command_rate_per_s",
        "session.long_press_s",
        "session.speech_rate_wpm",
    ]


@pytest.mark.parametrize(
    ("bus", "burst", "rate", "hold", "wpm"),
    [(0, 1, 0.1, 2.0, 80), (1048575, 1000, 100.0, 10.0, 450)],
    ids=["lowest", "highest"],
)
def test_those_bounds_accept_their_limits(
    tmp_path: Path, bus: int, burst: int, rate: float, hold: float, wpm: int
) -> None:
    text = (
        f"[imu]\ni2c_bus = {bus}\n"
        f"[mqtt]\ncommand_burst = {burst}\ncommand_rate_per_s = {rate}\n"
        f"[session]\nlong_press_s = {hold}\nspeech_rate_wpm = {wpm}\n"
    )
    config = load_config(write(tmp_path, text))
    assert (config.imu.i2c_bus, config.mqtt.command_burst, config.mqtt.command_rate_per_s) == (
        bus,
        burst,
        rate,
    )
    assert (config.session.long_press_s, config.session.speech_rate_wpm) == (hold, wpm)


def _presses(*spans: tuple[float, float]) -> list[tuple[float, bool]]:
    return [edge for down, up in spans for edge in ((down, True), (up, False))]


def test_at_the_limits_a_call_for_help_is_help_and_never_a_session_gesture() -> None:
    """Why the limits are what they are (firmware/presses.py): at the longest gap three presses
    let go before the chirp are still help; at the shortest long press the longest first press
    of a call for help does not stop the session; past either limit they would be confused."""
    from firmware.presses import (
        ARM_HOLD_S,
        LONG_PRESS_MIN_S,
        PATTERN_GAP_MAX_S,
        HelpPattern,
        ResetButtonPatterns,
    )
    from firmware.session.gestures import GestureKind, GestureRecognizer

    gap = PATTERN_GAP_MAX_S - 0.001
    hold = ARM_HOLD_S - 0.001  # let go just before the chirp
    slowest = _presses(
        (0.0, hold), (hold + gap, 2 * hold + gap), (2 * (hold + gap), 3 * hold + 2 * gap)
    )
    patterns = ResetButtonPatterns(gap_s=PATTERN_GAP_MAX_S)
    found = patterns.feed(slowest, 5.0, armable=True)  # in STANDBY: and nothing arms
    assert found == [HelpPattern(0.0, 2 * (hold + gap))]
    gestures = GestureRecognizer(double_gap_s=PATTERN_GAP_MAX_S, long_press_s=LONG_PRESS_MIN_S)
    assert gestures.feed(slowest, 5.0) == []  # three presses: help's, nothing for the session

    # ARMED: a first press held 1.7 s, then two taps, the third within 2 s: help, no stop
    held_first = _presses((0.0, 1.7), (1.75, 1.8), (1.85, 1.9))
    found = ResetButtonPatterns(gap_s=PATTERN_GAP_MAX_S).feed(held_first, 5.0, armable=False)
    assert found == [HelpPattern(0.0, 1.85)]
    at_limit = GestureRecognizer(double_gap_s=PATTERN_GAP_MAX_S, long_press_s=LONG_PRESS_MIN_S)
    assert at_limit.feed(held_first, 5.0) == []
    below = GestureRecognizer(double_gap_s=PATTERN_GAP_MAX_S, long_press_s=1.5)
    # below the limit (refused): the call for help stops the session, its taps a double press
    assert [g.kind for g in below.feed(held_first, 5.0)] == [GestureKind.LONG, GestureKind.DOUBLE]

    # two double presses 1.2 s apart: two double presses at the limit, help past it
    two_doubles = _presses((0.0, 0.1), (0.3, 0.4), (1.6, 1.7), (1.9, 2.0))
    at_limit = GestureRecognizer(double_gap_s=PATTERN_GAP_MAX_S, long_press_s=LONG_PRESS_MIN_S)
    kinds = [g.kind for g in at_limit.feed(two_doubles[:4], 1.2)]
    kinds += [g.kind for g in at_limit.feed(two_doubles[4:], 5.0)]
    assert kinds == [GestureKind.DOUBLE, GestureKind.DOUBLE]
    assert ResetButtonPatterns(gap_s=PATTERN_GAP_MAX_S).feed(two_doubles, 5.0, armable=False) == []
    past = ResetButtonPatterns(gap_s=1.5).feed(two_doubles, 5.0, armable=False)
    assert [type(p) for p in past] == [HelpPattern]


@pytest.mark.parametrize(
    ("level", "argv_extra", "expected"),
    [("warning", [], "WARNING"), ("debug", [], "DEBUG"), ("error", ["-v"], "DEBUG")],
)
def test_run_logs_at_the_config_s_level_unless_asked_for_debug(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    level: str,
    argv_extra: list[str],
    expected: str,
) -> None:
    seen: list[str] = []

    def instead_of_the_loop(config: Config) -> int:  # the loop itself runs until stopped
        seen.append(logging.getLevelName(logging.getLogger().getEffectiveLevel()))
        return 0

    monkeypatch.setattr(firmware.app, "run_forever", instead_of_the_loop)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    before = root.level
    try:
        path = write(tmp_path, f'[logging]\nlevel = "{level}"\n')
        assert main([*argv_extra, "run", "-c", str(path)]) == 0
    finally:
        root.setLevel(before)
    assert seen == [expected]
