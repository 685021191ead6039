"""The systemd unit says what the issue asks for, and systemd itself accepts it."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "retroguard.service"
CAREGIVER_UNIT = ROOT / "systemd" / "retroguard-caregiver.service"
DOCUMENTED_IN = {
    UNIT: ROOT / "docs" / "deployment.md",
    CAREGIVER_UNIT: ROOT / "docs" / "caregiver.md",
}
"""Each unit, and the page that states its ``systemd-analyze security`` score."""
INSTALLED_BIN = "/opt/retroguard/venv/bin/retroguard"
MAX_EXPOSURE = {UNIT: 1.7, CAREGIVER_UNIT: 1.5}
"""No worse than this. The monitor's is 1.7, not 1.5: its helpers must take real-time
priority back (RestrictRealtime= off, sched_setscheduler allowed; docs/deployment.md)."""


def directives(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines by key (systemd allows a key more than once)."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_the_required_settings() -> None:
    d = directives(UNIT.read_text())
    single = {key: values[-1] for key, values in d.items()}
    assert single["Type"] == "notify"
    assert single["NotifyAccess"] == "main"
    assert single["WatchdogSec"] == "2s"
    assert single["Restart"] == "always"  # a stray SIGTERM exits 0: restarted too
    assert single["StartLimitIntervalSec"] == "0"
    assert single["ExecStart"].startswith(INSTALLED_BIN + " run ")
    assert single["ExecStopPost"].startswith(INSTALLED_BIN + " safe-outputs ")
    assert single["User"] == "retroguard"
    # audio: the spoken prompts play on /dev/snd (docs/sessions.md)
    assert set(single["SupplementaryGroups"].split()) == {"gpio", "i2c", "audio"}
    assert single["ProtectSystem"] == "strict"
    assert single["StateDirectory"] == "retroguard"
    assert single["RuntimeDirectory"] == "retroguard"
    assert "LG_WD=/run/retroguard" in d["Environment"]
    assert single["NoNewPrivileges"] == "yes"
    assert single["DevicePolicy"] == "closed"
    assert {"char-gpiochip rw", "char-i2c rw", "char-alsa rw"} <= set(d["DeviceAllow"])
    assert single["WantedBy"] == "multi-user.target"
    # the loop is scheduled first; the courier it forks is not (benchmarks/flood.py)
    assert single["CPUSchedulingPolicy"] == "fifo"
    assert single["CPUSchedulingResetOnFork"] == "yes"


def test_a_stop_leaves_time_for_the_records_of_the_last_moments() -> None:
    """``TimeoutStopSec`` covers the longest a clean stop may wait, added up from the code's
    own bounds: after the relay is released, the session's records (its measurements settled,
    then the link flushed: :func:`detach_session`'s timeout each), then ``App.close``'s flush
    to the courier's disk and the courier's exit. At 5 s a slow SD card had the records of the
    last moments killed before they were on disk."""
    from firmware import app
    from firmware.session.runner import detach_session

    detach = inspect.signature(detach_session).parameters["timeout"].default
    drain = inspect.signature(app.App.close).parameters["drain_timeout"].default
    worst = 2 * detach + (drain + app.LINK_FLUSH_S) + (drain + app.COURIER_EXIT_S)
    timeout = directives(UNIT.read_text())["TimeoutStopSec"][-1]
    assert timeout.endswith("s")
    assert float(timeout[:-1]) >= worst + 10.0  # slack: the journal, the GPIO, the interpreter


def test_the_unit_lets_the_loop_s_helpers_take_real_time_priority_back() -> None:
    """``CPUSchedulingResetOnFork`` starts every new thread at normal priority; the helpers
    that can hold the GIL the loop needs take SCHED_FIFO back themselves (core/realtime.py,
    hal/gpio.py) and the courier nices itself. The unit must let them: realtime not
    restricted, an RTPRIO limit up to the loop's priority (no higher: nothing outranks the
    loop), and the two system calls let back through the filter that denies @resources.
    Each of the three refused them (systemd-analyze syscall-filter @resources)."""
    d = directives(UNIT.read_text())
    single = {key: values[-1] for key, values in d.items()}
    assert single.get("RestrictRealtime", "no") == "no"
    assert int(single["LimitRTPRIO"]) == int(single["CPUSchedulingPriority"])
    filters = d["SystemCallFilter"]
    denied = max(i for i, f in enumerate(filters) if f.startswith("~") and "@resources" in f)
    allowed_after = {
        name for f in filters[denied + 1 :] if not f.startswith("~") for name in f.split()
    }
    assert {"sched_setscheduler", "setpriority"} <= allowed_after, filters


def test_everything_the_monitor_writes_by_default_is_writable_under_the_unit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ProtectSystem=strict`` leaves the unit's own directories writable and nothing else
    (no ``ReadWritePaths=``): the event store and the rendered prompts must be in its
    ``StateDirectory``, the session socket and lgpio's FIFO in its ``RuntimeDirectory``."""
    from firmware.config import Config
    from firmware.session.runner import prompt_cache_dir

    d = directives(UNIT.read_text())
    single = {key: values[-1] for key, values in d.items()}
    assert "ReadWritePaths" not in d
    state = Path("/var/lib") / single["StateDirectory"]
    runtime = Path("/run") / single["RuntimeDirectory"]
    assert Path(single["WorkingDirectory"]) == state
    config = Config()
    assert Path(config.storage.database).parent == state
    assert prompt_cache_dir(config).parent == state
    assert f"LG_WD={runtime}" in d["Environment"]
    from firmware.session.control import default_socket_path

    monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime))  # as systemd sets it
    assert default_socket_path().parent == runtime
    monkeypatch.delenv("RUNTIME_DIRECTORY")  # `retroguard session ...` from a shell
    assert default_socket_path().parent == runtime


def test_exec_stop_post_names_a_real_subcommand() -> None:
    from tools import safe_outputs

    d = directives(UNIT.read_text())
    config_arg = d["ExecStopPost"][-1].split()[-1]
    assert config_arg == str(safe_outputs.DEFAULT_CONFIG)


def test_caregiver_unit_restarts_a_service_that_stopped_or_hung() -> None:
    d = directives(CAREGIVER_UNIT.read_text())
    single = {key: values[-1] for key, values in d.items()}
    assert single["Type"] == "notify" and single["NotifyAccess"] == "main"
    assert single["WatchdogSec"] == "30s"
    assert single["Restart"] == "always" and single["StartLimitIntervalSec"] == "0"
    assert single["RestartPreventExitStatus"] == "2"  # a lasting error: see test_caregiver_cli
    argv = single["ExecStart"].split()
    assert argv[:2] == [INSTALLED_BIN, "caregiver"]
    from caregiver.cli import DEFAULT_CONFIG

    assert argv[2:] == ["-c", str(DEFAULT_CONFIG)]
    from caregiver.config import ServerConfig

    state = Path("/var/lib") / single["StateDirectory"]
    assert Path(ServerConfig().database).parent == state  # the default database is writable
    assert single["User"] == "retroguard" and single["ProtectSystem"] == "strict"
    assert single["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("unit", [UNIT, CAREGIVER_UNIT], ids=lambda u: u.name)
def test_systemd_analyze_verify(tmp_path: Path, unit: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd')")
    # verify fails when ExecStart names a file missing on this machine, so check
    # a copy pointing at this checkout's entry point.
    here = Path(sys.executable).with_name("retroguard")
    if not here.exists():
        pytest.skip(f"{here} missing: run scripts/bootstrap.sh")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED_BIN, str(here)))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False
    )
    # verify exits 0 even for lines it ignores ("Failed to parse ..., ignoring"),
    # so any output that names the unit is a failure too.
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if copy.name in line
    ]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.parametrize("unit", [UNIT, CAREGIVER_UNIT], ids=lambda u: u.name)
def test_systemd_analyze_security_score(tmp_path: Path, unit: Path) -> None:
    """Keeps the score each unit's page reports honest (it must not get worse)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd')")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text())
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    overall = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    assert overall, result.stdout + result.stderr
    score = float(overall[0].split(":")[1].split()[0])
    assert score <= MAX_EXPOSURE[unit], overall[0]
    page = DOCUMENTED_IN[unit]
    documented = page.read_text()
    assert f"overall exposure {score:.1f}" in documented, (
        f"update the score in {page.name}: {overall[0]}"
    )
