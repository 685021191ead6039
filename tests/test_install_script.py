"""scripts/install-pi.sh: shellcheck clean; its dry run shows every step and changes nothing.

What can be checked off a Pi: the script's syntax and lint, the order and
content of the steps it would run, that a dry run writes nothing, that it
keeps an existing config, and that the config it would write selects the
real hardware and passes the firmware's own validation.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from firmware.config import load_config
from launcher.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-pi.sh"


def run_script(
    *args: str, env_dirs: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        RETROGUARD_PREFIX=str(env_dirs / "opt"),
        RETROGUARD_ETC=str(env_dirs / "etc"),
        RETROGUARD_UNIT_DIR=str(env_dirs / "units"),
        RETROGUARD_SYSTEM_CONF_DIR=str(env_dirs / "system.conf.d"),
        RETROGUARD_MODULES_LOAD_DIR=str(env_dirs / "modules-load.d"),
        RETROGUARD_MOSQUITTO_DIR=str(env_dirs / "mosquitto"),
        RETROGUARD_STATE_DIR=str(env_dirs / "state"),
    )
    env.update(extra_env or {})
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


def steps(output: str) -> list[str]:
    return re.findall(r"^\[\d+\] (.*)$", output, flags=re.M)


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (Debian package 'shellcheck')")
    # Every shell script, not a list that a new one (demo.sh, test.sh) can miss.
    scripts = sorted(str(path) for path in (ROOT / "scripts").glob("*.sh"))
    assert str(SCRIPT) in scripts
    result = subprocess.run(
        [shellcheck, "--severity=style", *scripts],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bash_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_dry_run_lists_every_install_step_and_changes_nothing(tmp_path: Path) -> None:
    result = run_script("--dry-run", env_dirs=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("install-pi.sh: dry run, nothing is changed")
    assert [s.split(" ")[0] for s in steps(out)] == [
        "Check",
        "Install",  # Debian packages
        "Enable",  # I2C
        "Create",  # user
        "Install",  # venv
        "Write",  # config
        "Hardware",  # watchdog
        "Install",  # unit
        "Done:",
    ]
    opt, etc = tmp_path / "opt", tmp_path / "etc"
    # The monitor's own: not the caregivers' web stack (the 'caregiver' extra), nor its fonts.
    assert f"Install RetroGuard[pi] into {opt}/venv" in out
    assert "caregiver" not in out and "fonts-" not in out
    assert f"+ python3 -m venv {opt}/venv" in out
    lock = re.escape(f"{ROOT}/constraints.txt")  # the versions the tests ran with, also in
    # the isolated build environment, where mypyc compiles the detector (-c does not reach it)
    assert re.search(
        rf"pip install --quiet --upgrade -c {lock} --build-constraint {lock} "
        rf"{re.escape(str(ROOT))}\\\[pi\\\]",
        out,
    )
    assert f"+ write {etc}/config.toml (mode 0640, root:retroguard)" in out
    assert "RuntimeWatchdogSec=10s" in out
    # i2c-dev at every boot, not only until the next one (a modprobe alone).
    assert f"+ write {tmp_path}/modules-load.d/retroguard-i2c.conf (mode 0644, root:root)" in out
    assert f"+ install -m 0644 {ROOT}/systemd/retroguard.service {tmp_path}/units/" in out
    assert "+ systemctl enable retroguard.service" in out
    assert "+ systemctl restart retroguard.service" in out
    # The user and its groups, unless this machine already has them.
    if "user exists" not in out:
        assert "+ useradd --system --user-group" in out
    assert "gpio" in out and "i2c" in out
    # The spoken prompts: the speech engine, the player, and the sound device's group.
    assert (
        "Install Debian packages: python3-venv python3-dev gcc i2c-tools espeak-ng alsa-utils"
        in out
    )
    assert "Create system user 'retroguard' in groups gpio i2c audio, and " in out
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


@pytest.mark.parametrize("how", ["--caregiver", "its unit installed"])
def test_the_caregiver_service_s_packages_are_installed_when_it_runs_here(
    tmp_path: Path, how: str
) -> None:
    """The caregivers' service on the same Pi needs the 'caregiver' extra and the PDF's fonts:
    asked for, or implied by its unit (an upgrade run without the option must not leave an
    installed service without what it imports)."""
    options = ["--dry-run"]
    if how == "--caregiver":
        options.append("--caregiver")
    else:
        (tmp_path / "units").mkdir()
        (tmp_path / "units" / "retroguard-caregiver.service").write_text("")
    result = run_script(*options, env_dirs=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Install RetroGuard[pi,caregiver] into {tmp_path / 'opt'}/venv" in out
    assert re.search(r"pip install --quiet --upgrade .* \S*\\\[pi\\,caregiver\\\]", out)
    assert "alsa-utils fonts-liberation2 fonts-dejavu-core" in out
    # A running caregivers' service is restarted on the code just installed (only if its
    # unit is here: --caregiver alone installs packages, not the unit).
    restarted = "+ systemctl try-restart retroguard-caregiver.service" in out
    assert restarted == (how == "its unit installed")


def test_dry_run_keeps_an_existing_config_and_honours_options(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.toml").write_text("# mine\n")
    result = run_script("--dry-run", "--no-start", "--no-hardware-watchdog", env_dirs=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kept: " + str(tmp_path / "etc" / "config.toml") in result.stdout
    assert "write " + str(tmp_path / "etc" / "config.toml") not in result.stdout
    assert "systemctl restart" not in result.stdout
    assert "skipped (--no-hardware-watchdog)" in result.stdout
    assert (tmp_path / "etc" / "config.toml").read_text() == "# mine\n"


def test_the_doctor_s_folder_is_made_before_the_service_first_starts(tmp_path: Path) -> None:
    """docs/deployment.md runs the doctor as the service user with LG_WD in the unit's state
    folder, which systemd makes only when the service starts: after ``--no-start`` it was
    missing, and the doctor's gpio, event-store and imu-int lines failed for that alone. The
    installer makes it, as the unit's StateDirectory= would."""
    guide = (ROOT / "docs" / "deployment.md").read_text()
    doctor_wd = re.findall(r"sudo -u retroguard env LG_WD=(\S+)", guide)
    unit = (ROOT / "systemd" / "retroguard.service").read_text()
    state = re.search(r"^StateDirectory=(\S+)$", unit, flags=re.M)
    mode = re.search(r"^StateDirectoryMode=(\d+)$", unit, flags=re.M)
    default = re.search(r"^STATE_DIR=\$\{RETROGUARD_STATE_DIR:-(\S+)\}$", SCRIPT.read_text(), re.M)
    assert state and mode and default and doctor_wd
    assert set(doctor_wd) == {f"/var/lib/{state.group(1)}"} == {default.group(1)}
    out = run_script("--dry-run", "--no-start", env_dirs=tmp_path).stdout
    made = f"+ install -d -m {mode.group(1)} -o retroguard -g retroguard {tmp_path / 'state'}"
    assert made in [line.strip() for line in out.splitlines()]
    (tmp_path / "state").mkdir()  # an earlier run, or the service, made it: left as it is
    again = run_script("--dry-run", "--no-start", env_dirs=tmp_path).stdout
    assert made not in again and f"{tmp_path / 'state'} exists" in again


def test_an_upgrade_checks_the_kept_config_and_fails_the_run_when_it_does_not_pass(
    tmp_path: Path,
) -> None:
    """A kept config was never checked by the release the run had just installed: one the
    new release refuses (a key renamed, a range narrowed) left a monitor failing at every
    start, its relay open, after a run that said "Done". The run (its own steps, the system's
    stubbed) checks it with the installed release's CLI and exits 1 naming it."""
    venv_bin = tmp_path / "opt" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    retroguard = venv_bin / "retroguard"  # the installed release: this checkout's CLI
    retroguard.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m launcher.cli "$@"\n'
    )
    retroguard.chmod(0o755)
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    (tmp_path / "units").mkdir()
    stubbed = "; ".join(
        f"{step}() {{ :; }}"
        for step in (
            "require_root",
            "check_platform",
            "install_packages",
            "enable_i2c",
            "create_user",
            "install_venv",
            "install_hw_watchdog",
        )
    )
    env = dict(
        os.environ,
        RETROGUARD_PREFIX=str(tmp_path / "opt"),
        RETROGUARD_ETC=str(tmp_path / "etc"),
        RETROGUARD_UNIT_DIR=str(tmp_path / "units"),
    )

    def upgrade() -> subprocess.CompletedProcess[str]:
        script = f'source {SCRIPT}; {stubbed}; systemctl() {{ echo "systemctl $*"; }}; main'
        return subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
        )

    config.write_text('[gpio]\nrelay_drive = "heartbeet"\n')
    refused = upgrade()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "gpio.relay_drive: must be one of 'static', 'heartbeat'" in refused.stderr
    assert refused.stderr.rstrip().endswith(
        f"install-pi.sh: installed, but {config} fails its check: fix it, then: "
        "sudo systemctl restart retroguard"
    )
    assert "Done:" not in refused.stdout
    assert config.read_text() == '[gpio]\nrelay_drive = "heartbeet"\n'  # kept as it was
    config.write_text('[gpio]\nrelay_drive = "heartbeat"\n')
    passed = upgrade()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"kept: {config} exists; checked with the release just installed" in passed.stdout
    assert "Done:" in passed.stdout


def test_dry_run_uninstall(tmp_path: Path) -> None:
    (tmp_path / "opt").mkdir()
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "retroguard.service").write_text("")
    result = run_script("--dry-run", "--uninstall", env_dirs=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "+ systemctl disable --now retroguard.service" in out
    assert f"+ rm -rf {tmp_path}/opt" in out
    assert "retroguard-i2c.conf)\n    not present" in out  # the install did not write it
    assert "kept: " in out and "--purge" in out
    assert "userdel" not in out
    purge = run_script("--dry-run", "--uninstall", "--purge", env_dirs=tmp_path).stdout
    assert f"+ rm -rf {tmp_path}/etc {tmp_path}/state" in purge
    assert (tmp_path / "opt").exists()


def test_uninstall_also_removes_the_caregivers_unit_that_runs_from_the_venv(
    tmp_path: Path,
) -> None:
    """The caregivers' unit (docs/caregiver.md) runs /opt/retroguard/venv too: left enabled
    after the venv is gone, it fails and restarts every RestartSec, forever."""
    (tmp_path / "opt").mkdir()
    units = tmp_path / "units"
    units.mkdir()
    (units / "retroguard.service").write_text("")
    (units / "retroguard-caregiver.service").write_text("")
    out = run_script("--dry-run", "--uninstall", env_dirs=tmp_path).stdout
    assert "+ systemctl disable --now retroguard-caregiver.service" in out
    assert f"+ rm -f {units}/retroguard-caregiver.service" in out
    assert out.index("retroguard-caregiver.service") < out.index(f"+ rm -rf {tmp_path}/opt")
    (units / "retroguard-caregiver.service").unlink()  # a monitor-only Pi: nothing to stop
    out = run_script("--dry-run", "--uninstall", env_dirs=tmp_path).stdout
    assert "disable --now retroguard-caregiver.service" not in out


def test_bad_options_exit_2(tmp_path: Path) -> None:
    assert run_script("--frobnicate", env_dirs=tmp_path).returncode == 2
    assert run_script("--purge", env_dirs=tmp_path).returncode == 2


def _example_config_through(pipeline: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """``retroguard config --example``, and what the installer's ``pipeline`` of its own shell
    functions (sourced from the script) makes of it, as install_config() writes it."""
    example = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "config", "--example"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    converted = subprocess.run(
        ["bash", "-c", f"source {SCRIPT} && {pipeline}"],
        input=example,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return example, converted


def test_written_config_selects_real_hardware_and_validates(tmp_path: Path) -> None:
    """The sed in hardware_config() applied to the real example config."""
    example, converted = _example_config_through("hardware_config")
    path = tmp_path / "config.toml"
    path.write_text(converted)
    config = load_config(path)
    assert config.imu.backend == "mpu6050"
    assert config.gpio.backend == "gpiozero"
    assert config.gpio.pin_factory == "lgpio"
    # Nothing else changed: only the three lines differ from the example.
    changed = [
        (a, b) for a, b in zip(example.splitlines(), converted.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 3, changed


def test_the_written_config_recommends_the_pin_factory_it_sets() -> None:
    """The note above [gpio] in the config the installer writes told a technician "rpigpio"
    on boards older than the Pi 5, under the "lgpio" the installer had just set for every
    board (docs/deployment.md says why): a Pi 3 or Zero 2 W moved off the factory the
    service was made and tested for. Every factory the note names is the one it sets."""
    from hal.gpio import PIN_FACTORY_NAMES

    _, converted = _example_config_through("hardware_config")
    note = converted.partition("\n[gpio]\n")[0].rpartition("\n\n")[2]
    named = {name for name in PIN_FACTORY_NAMES if f'"{name}"' in note}
    written = re.search(r'^pin_factory = "(\w+)"$', converted, flags=re.M)
    assert written is not None
    assert named == {written.group(1)}, note


def test_broker_option_installs_mosquitto_with_the_documented_acl_and_the_config_logs_in(
    tmp_path: Path,
) -> None:
    """``--broker``: Mosquitto's packages, its step (before the config's, whose check reads the
    password file the step writes), nothing written in a dry run; a new config logs in to it as
    the device (the example's id, the account the step made) and validates — not before its
    password file is there. The broker itself, run with what the step writes:
    ``tests/test_mqtt_security.py``."""
    result = run_script("--dry-run", "--broker", env_dirs=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "alsa-utils mosquitto mosquitto-clients" in out
    names = [s.split(" ")[0] for s in steps(out)]
    # before the config: a new one names the device's password file, which its check reads
    assert names.index("Mosquitto") == names.index("Write") - 1
    assert "accounts treadmill-1, caregiver, homeassistant and caregiver-watch" in out
    assert f"+ account caregiver: password to {tmp_path}/etc/caregiver-mqtt-password" in out
    # the terminal's read-only watch: root's alone, and the command that uses it
    watch_pw = f"{tmp_path}/etc/caregiver-watch-mqtt-password"
    assert f"+ account caregiver-watch: password to {watch_pw} (mode 0600, root:root)" in out
    assert f"--username caregiver-watch --password-file {watch_pw}" in out
    assert "retroguard.acl" in out and "+ systemctl restart mosquitto" in out
    assert list(tmp_path.iterdir()) == []
    assert "Mosquitto" not in run_script("--dry-run", env_dirs=tmp_path).stdout

    password = tmp_path / "etc" / "mqtt-password"
    _, converted = _example_config_through(
        "broker=1 && hardware_config | broker_config",
        env=dict(os.environ, RETROGUARD_ETC=str(tmp_path / "etc"), RETROGUARD_BROKER_PORT="1884"),
    )
    path = tmp_path / "config.toml"
    path.write_text(converted)
    assert cli_main(["config", "--check", str(path)]) == 2  # the installer's check, at step 6
    password.parent.mkdir()
    password.write_text("pw\n")
    assert cli_main(["config", "--check", str(path)]) == 0
    mqtt = load_config(path).mqtt
    assert (mqtt.host, mqtt.port, mqtt.username) == ("127.0.0.1", 1884, "treadmill-1")
    assert mqtt.password_file == str(password)


def test_i2c_dev_is_loaded_at_every_boot_and_uninstall_removes_the_setting(
    tmp_path: Path,
) -> None:
    """Without raspi-config (which also lists i2c-dev in /etc/modules), ``modprobe i2c-dev``
    alone lasted until the next boot: after a reboot /dev/i2c-1 was gone and the monitor
    never became ready. The installer names the module in modules-load.d, which
    systemd-modules-load reads at every boot, and --uninstall removes what it wrote."""
    if shutil.which("raspi-config") is not None:
        pytest.skip("raspi-config is installed here: the step would enable I2C for real")
    if os.geteuid() != 0:
        pytest.skip("the step writes its file root-owned, as on the Pi: needs root")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    modprobe = stubs / "modprobe"
    modprobe.write_text(f'#!/bin/sh\necho "$*" >>{tmp_path}/modprobe.log\n')
    modprobe.chmod(0o755)
    env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}")
    modules = tmp_path / "modules-load.d"
    env["RETROGUARD_MODULES_LOAD_DIR"] = str(modules)
    subprocess.run(
        ["bash", "-c", f"source {SCRIPT} && enable_i2c"], env=env, check=True, capture_output=True
    )
    conf = modules / "retroguard-i2c.conf"
    # modules-load.d(5): one module name a line; '#' and ';' begin comments.
    names = [
        line.strip()
        for line in conf.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", ";"))
    ]
    assert names == ["i2c-dev"]
    assert conf.stat().st_mode & 0o777 == 0o644
    if not Path("/dev/i2c-1").exists():  # and loaded now, for this boot
        assert (tmp_path / "modprobe.log").read_text() == "i2c-dev\n"
    again = run_script("--uninstall", env_dirs=tmp_path)  # everything else is absent: no-ops
    assert again.returncode == 0, again.stderr
    assert f"rm -f {conf}" not in again.stdout  # not a dry run: done, not printed
    assert not conf.exists()
    assert list(modules.iterdir()) == []


def test_a_re_run_without_the_hardware_watchdog_removes_the_earlier_run_s_setting(
    tmp_path: Path,
) -> None:
    """A Pi installed with the hardware watchdog, then installed again with
    ``--no-hardware-watchdog``: the second run said "skipped" and left the first run's drop-in,
    so PID 1 went on feeding the watchdog the run was told to leave alone. A run now leaves
    what its options say: the drop-in removed (systemd re-executed to read it), and written
    again by a run without the option."""
    if os.geteuid() != 0:
        pytest.skip("the step writes its file root-owned, as on the Pi: needs root")
    conf_dir = tmp_path / "system.conf.d"
    env = dict(os.environ, RETROGUARD_SYSTEM_CONF_DIR=str(conf_dir))
    dropin = conf_dir / "60-retroguard-watchdog.conf"

    def step(*options: str) -> str:
        script = (
            f'source {SCRIPT}; systemctl() {{ echo "systemctl $*"; }}; '
            f"parse_args {' '.join(options)}; install_hw_watchdog"
        )
        done = subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "systemctl daemon-reexec" in step()
    assert "RuntimeWatchdogSec=10s" in dropin.read_text()
    out = step("--no-hardware-watchdog")
    assert not dropin.exists(), out
    assert "removing the earlier run's setting (--no-hardware-watchdog)" in out
    assert "systemctl daemon-reexec" in out  # PID 1 reads its settings again
    again = step("--no-hardware-watchdog")  # nothing of ours left: nothing to do
    assert "skipped (--no-hardware-watchdog)" in again and "systemctl" not in again
    assert list(conf_dir.iterdir()) == []
    step()
    assert "RuntimeWatchdogSec=10s" in dropin.read_text()


def test_the_detector_is_compiled_with_the_locked_mypy_and_never_a_next_major() -> None:
    """pip builds the package in an isolated environment that `-c constraints.txt` does not
    reach (pip 25.3 on: only --build-constraint does), so mypyc, which compiles the detector,
    came in at the newest release [build-system] allowed, any major: the installers pass the
    lock as build constraints too, and the build requirement is bounded like the dev extra's,
    at a major that still admits the locked version (a bound below it would break bootstrap)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (build,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("mypy")]
    (dev,) = [
        r for r in pyproject["project"]["optional-dependencies"]["dev"] if r.startswith("mypy")
    ]
    assert build == dev  # the type check and the compiler: one mypy
    bound = re.fullmatch(r"mypy>=[\d.]+,<(\d+)", build)
    assert bound is not None, build
    (locked,) = re.findall(r"^mypy==(\d+)\.", (ROOT / "constraints.txt").read_text(), re.M)
    assert int(locked) < int(bound.group(1))
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text().replace("\\\n", " ")
    (install,) = [line for line in bootstrap.splitlines() if "pip install" in line and "-e" in line]
    assert re.search(r"-c constraints\.txt +--build-constraint constraints\.txt", install)


@pytest.mark.parametrize(
    "device", ["caregiver", "caregiver-2", "caregiver-ward-b", "homeassistant"]
)
def test_broker_refuses_a_device_named_as_another_account(tmp_path: Path, device: str) -> None:
    """The ACL's per-device patterns apply to every account: a device named ``caregiver``,
    ``homeassistant`` or ``caregiver-<anything>`` (a caregiver service instance's account,
    docs/provider.md) would share its account or let that account forge the device's events."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text(f'[device]\nid = "{device}"\n')
    result = run_script("--dry-run", "--broker", env_dirs=tmp_path)
    assert result.returncode == 1, result.stdout
    assert f"device.id '{device}' is another account's name" in result.stderr
    assert "Write " not in result.stdout  # stopped at the broker's step, before the config's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]
    # a name that only starts like one is a device's
    (etc / "config.toml").write_text('[device]\nid = "caregivers-room"\n')
    result = run_script("--dry-run", "--broker", env_dirs=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "accounts caregivers-room, caregiver, homeassistant and caregiver-watch" in result.stdout


def test_broker_step_on_a_fresh_pi_makes_the_config_folder(tmp_path: Path) -> None:
    """The broker's step runs before the config's (which made /etc/retroguard): on a Pi with
    no /etc/retroguard yet, writing the first password file failed and the install stopped.
    (tests/test_mqtt_security.py made the folder before running the step.)"""
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed (Debian package 'mosquitto')")
    if os.geteuid() != 0:
        pytest.skip("the step writes its files root:mosquitto, as on the Pi: needs root")
    etc = tmp_path / "etc"
    env = dict(os.environ, RETROGUARD_ETC=str(etc), RETROGUARD_MOSQUITTO_DIR=str(tmp_path / "m"))
    script = f"source {SCRIPT}; SVC_USER=root; systemctl() {{ :; }}; broker=1; install_broker"
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (etc / "mqtt-password").read_text().strip()
    plan = run_script("--dry-run", "--broker", env_dirs=tmp_path / "planned").stdout
    assert f"+ install -d -m 0755 {tmp_path}/planned/etc " in plan


def test_broker_refuses_a_kept_password_holding_a_colon_before_writing_anything(
    tmp_path: Path,
) -> None:
    """A password file kept from before (an operator's own) is hashed with ``mosquitto_passwd
    -U``, which cuts a password at its ':': the account took only the part before it, while the
    service, reading the whole line, was refused its login with no word of why. Refused, naming
    the file, before the broker's files are touched; dry run and real run alike."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text('[device]\nid = "treadmill-1"\n')
    (etc / "caregiver-mqtt-password").write_text("carer:pw\n")
    planned = run_script("--dry-run", "--broker", env_dirs=tmp_path)
    assert planned.returncode == 1, planned.stdout
    refusal = f"the password in {etc}/caregiver-mqtt-password holds a ':'"
    assert refusal in planned.stderr
    assert "+ account" not in planned.stdout
    env = dict(os.environ, RETROGUARD_ETC=str(etc), RETROGUARD_MOSQUITTO_DIR=str(tmp_path / "m"))
    script = f"source {SCRIPT}; SVC_USER=root; systemctl() {{ :; }}; broker=1; install_broker"
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert refusal in done.stderr
    assert not (tmp_path / "m").exists()
    assert not (etc / "mqtt-password").exists()
    # without the ':' the same files install
    (etc / "caregiver-mqtt-password").write_text("carer-pw\n")
    if shutil.which("mosquitto_passwd") is None or os.geteuid() != 0:
        return  # the real step writes root:mosquitto files with the real tool
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "caregiver:" in (tmp_path / "m" / "retroguard.passwd").read_text()


def test_broker_gives_the_watch_an_account_whose_password_only_root_reads(tmp_path: Path) -> None:
    """The ACL has a ``caregiver-watch`` block (a terminal's ``retroguard watch``), but the step
    made no such account: the operator had to run mosquitto_passwd by hand. It makes one as it
    makes the others (a random password, hashed from a file, never printed), in
    /etc/retroguard/caregiver-watch-mqtt-password, 0600 root:root (no service reads it: a person
    runs the watch with sudo), kept by the next run; a login given by hand before is kept, not
    replaced by a password its user does not know. The broker taking it:
    ``tests/test_mqtt_security.py``."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text('[device]\nid = "treadmill-1"\n')
    watch_pw = etc / "caregiver-watch-mqtt-password"
    watch_pw.write_text("watch:pw\n")  # cut at its ':' by mosquitto_passwd: refused, named
    planned = run_script("--dry-run", "--broker", env_dirs=tmp_path)
    assert planned.returncode == 1 and f"the password in {watch_pw} holds a ':'" in planned.stderr
    watch_pw.unlink()
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed (Debian package 'mosquitto')")
    if os.geteuid() != 0:
        pytest.skip("the step writes its files root:mosquitto, as on the Pi: needs root")
    mosquitto = tmp_path / "m"
    env = dict(os.environ, RETROGUARD_ETC=str(etc), RETROGUARD_MOSQUITTO_DIR=str(mosquitto))
    script = f"source {SCRIPT}; SVC_USER=root; systemctl() {{ :; }}; broker=1; install_broker"

    def broker_step() -> str:
        done = subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    out = broker_step()
    password = watch_pw.read_text()
    assert re.fullmatch(r"[A-Za-z0-9]{32}\n", password)
    info = watch_pw.stat()
    assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o600, 0, 0)
    assert "account 'caregiver-watch': password in " + str(watch_pw) in out
    assert password.strip() not in out  # never printed
    passwd = mosquitto / "retroguard.passwd"
    hashed = passwd.read_text()
    (line,) = [x for x in hashed.splitlines() if x.startswith("caregiver-watch:")]
    assert password.strip() not in line  # hashed
    again = broker_step()
    assert "account 'caregiver-watch' exists" in again
    assert (watch_pw.read_text(), passwd.read_text()) == (password, hashed)
    # an operator's own login, from before the installer made one: kept, no file written
    watch_pw.unlink()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "caregiver-watch", "mine"], check=True)
    by_hand = passwd.read_text()
    kept = broker_step()
    assert "account 'caregiver-watch' has a password set by hand: kept" in kept
    assert passwd.read_text() == by_hand and not watch_pw.exists()


def _broker_step(tmp_path: Path, extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    """The ``--broker`` step alone (real mosquitto_passwd unless ``extra_env``'s PATH stands
    in for it) on tmp_path's etc and m folders: its exit status and output."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed (Debian package 'mosquitto')")
    if os.geteuid() != 0:
        pytest.skip("the step writes its files root:mosquitto, as on the Pi: needs root")
    env = dict(
        os.environ,
        RETROGUARD_ETC=str(tmp_path / "etc"),
        RETROGUARD_MOSQUITTO_DIR=str(tmp_path / "m"),
        **(extra_env or {}),
    )
    script = f"source {SCRIPT}; SVC_USER=root; systemctl() {{ :; }}; broker=1; install_broker"
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_a_failed_mosquitto_passwd_leaves_no_password_in_clear_text(tmp_path: Path) -> None:
    """Each account's password is hashed from a temporary file holding it in clear text: when
    ``mosquitto_passwd`` failed, ``set -e`` ended the step there and the file stayed in /tmp.
    It goes, and the step says which account it could not hash."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    failing = bin_dir / "mosquitto_passwd"
    failing.write_text('#!/bin/sh\necho "Error: something went wrong" >&2\nexit 1\n')
    failing.chmod(0o755)
    path = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(temp)}
    status, out = _broker_step(tmp_path, path)
    assert status == 1, out
    assert list(temp.iterdir()) == []
    assert "mosquitto_passwd could not hash the password of account 'treadmill-1'" in out
    assert not (tmp_path / "m" / "retroguard.passwd").exists()
    # the next run, with a working mosquitto_passwd, hashes the password kept in the file
    status, out = _broker_step(tmp_path, {"TMPDIR": str(temp)})
    assert status == 0, out
    assert list(temp.iterdir()) == []
    assert "treadmill-1:" in (tmp_path / "m" / "retroguard.passwd").read_text()


def test_a_kept_password_file_is_made_the_mode_and_owner_the_step_gives_a_new_one(
    tmp_path: Path,
) -> None:
    """A password file from before (the operator's own, written by hand as the docs say for
    caregiver-watch, or chmod-ed since) was kept with whatever mode and owner it had: a watch
    password written 0644 stayed readable by every local user. Each is made what the step makes
    a new one (caregiver-watch's 0600 root:root, the device's 0640 root:<its service>), its
    password and the broker's accounts unchanged; the dry run says it would."""
    status, out = _broker_step(tmp_path)
    assert status == 0, out
    etc = tmp_path / "etc"
    watch_pw, device_pw = etc / "caregiver-watch-mqtt-password", etc / "mqtt-password"
    passwords = {f: f.read_text() for f in (watch_pw, device_pw)}
    hashed = (tmp_path / "m" / "retroguard.passwd").read_text()

    def unmade() -> None:
        watch_pw.chmod(0o644)
        os.chown(watch_pw, 65534, 65534)
        device_pw.chmod(0o604)

    unmade()
    status, out = _broker_step(tmp_path)
    assert status == 0, out
    for file, mode in ((watch_pw, 0o600), (device_pw, 0o640)):
        info = file.stat()
        assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (mode, 0, 0), file
        assert file.read_text() == passwords[file]
    assert f"{watch_pw} was 0644, " in out and ": made 0600, root:root" in out
    assert (tmp_path / "m" / "retroguard.passwd").read_text() == hashed
    again = _broker_step(tmp_path)[1]
    assert " was 0" not in again  # as it should be: nothing to say
    unmade()
    planned = run_script("--dry-run", "--broker", env_dirs=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert f"+ chmod 0600 {watch_pw}\n" in planned.stdout
    assert f"+ chown root:root {watch_pw}\n" in planned.stdout
    assert watch_pw.stat().st_mode & 0o777 == 0o644  # a dry run changes nothing


def _stubs(tmp_path: Path, groups: str, passwd: str = "") -> dict[str, str]:
    """PATH with logging stand-ins for what the uninstall changes outside its folders
    (systemctl, userdel, groupdel) and a getent reading these group and passwd lines."""
    bin_dir, fake = tmp_path / "bin", tmp_path / "fake"
    bin_dir.mkdir()
    fake.mkdir()
    (fake / "group").write_text(groups)
    (fake / "passwd").write_text(passwd)
    log = tmp_path / "calls.log"
    for name in ("systemctl", "userdel", "groupdel"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >>{log}\n')
    (bin_dir / "getent").write_text(
        f'#!/bin/sh\ndb=$1; shift\nif [ $# -eq 0 ]; then cat {fake}/"$db"; '
        f'else grep "^$1:" {fake}/"$db"; fi\n'
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def _install_broker_files(tmp_path: Path) -> Path:
    """What ``--broker`` writes (its own step, real mosquitto_passwd) into tmp_path's folders."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed (Debian package 'mosquitto')")
    if os.geteuid() != 0:
        pytest.skip("the step writes its files root:mosquitto, as on the Pi: needs root")
    mosquitto = tmp_path / "mosquitto"
    env = dict(
        os.environ,
        RETROGUARD_ETC=str(tmp_path / "etc"),
        RETROGUARD_MOSQUITTO_DIR=str(mosquitto),
    )
    script = f"source {SCRIPT}; SVC_USER=root; systemctl() {{ :; }}; broker=1; install_broker"
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return mosquitto


def _user_blocks(acl: str) -> dict[str, list[str]]:
    """Each ``user`` block of ACL text: its ``topic`` lines, by account."""
    blocks: dict[str, list[str]] = {}
    rules: list[str] = []
    for line in acl.splitlines():
        if line.startswith("user "):
            rules = blocks.setdefault(line.removeprefix("user "), [])
        elif line.startswith("topic "):
            rules.append(line)
    return blocks


def test_broker_writes_the_caregiver_instances_blocks_again_at_every_run(tmp_path: Path) -> None:
    """``--broker`` writes the ACL again from docs/mqtt/mosquitto.acl at every run (Mosquitto's
    ``acl_file`` cannot include another file), so the ``user caregiver-a``/``caregiver-b``
    blocks docs/provider.md had the operator append were gone after each upgrade and those
    instances lost the stream. ``--caregiver-instance=caregiver-a`` names an instance once: it
    is remembered in /etc/retroguard/caregiver-instances (which the operator may edit), and
    every run, the upgrade's without the option too, writes each listed instance a block with
    the caregiver block's rules. A name that is not an instance's account is refused before
    anything is written: the watch's read-only account would be given the caregiver's
    commands."""
    plan = run_script(
        "--dry-run", "--broker", "--caregiver-instance=caregiver-a", env_dirs=tmp_path
    )
    assert plan.returncode == 0, plan.stderr
    assert f"+ write {tmp_path}/etc/caregiver-instances (mode 0644, root:root)" in plan.stdout
    assert "caregiver instances (" in plan.stdout and "): caregiver-a;" in plan.stdout
    assert list(tmp_path.iterdir()) == []
    for name in ("caregiver-watch", "caregiver", "nurse-a", "caregiver-A", "caregiver-a b"):
        refused = run_script(
            "--dry-run", "--broker", f"--caregiver-instance={name}", env_dirs=tmp_path
        )
        assert refused.returncode == 1, (name, refused.stdout)
        assert f"caregiver instance '{name}'" in refused.stderr, name
        assert (
            "Mosquitto on" in refused.stdout
            and "+ write" not in refused.stdout.split("Mosquitto on")[1]
        )
    alone = run_script("--dry-run", "--caregiver-instance=caregiver-a", env_dirs=tmp_path)
    assert alone.returncode == 2 and "only goes with --broker" in alone.stderr

    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed (Debian package 'mosquitto')")
    if os.geteuid() != 0:
        pytest.skip("the step writes its files root:mosquitto, as on the Pi: needs root")
    mosquitto, etc = tmp_path / "mosquitto", tmp_path / "etc"
    env = dict(os.environ, RETROGUARD_ETC=str(etc), RETROGUARD_MOSQUITTO_DIR=str(mosquitto))

    def broker_step(*options: str) -> str:
        script = (
            f"source {SCRIPT}; SVC_USER=root; systemctl() {{ :; }}; "
            f"parse_args --broker {' '.join(options)}; install_broker"
        )
        done = subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return (mosquitto / "retroguard.acl").read_text()

    documented = (ROOT / "docs" / "mqtt" / "mosquitto.acl").read_text()
    caregiver = _user_blocks(documented)["caregiver"]
    first = broker_step("--caregiver-instance=caregiver-a", "--caregiver-instance=caregiver-b")
    assert first.startswith(documented)
    blocks = _user_blocks(first)
    assert blocks["caregiver-a"] == blocks["caregiver-b"] == caregiver
    assert blocks["caregiver"] == caregiver and blocks["caregiver-watch"] != caregiver
    listed = (etc / "caregiver-instances").read_text()
    assert listed.splitlines()[-2:] == ["caregiver-a", "caregiver-b"]
    assert broker_step() == first  # the upgrade: no option, the blocks all the same
    assert broker_step("--caregiver-instance=caregiver-a") == first  # named again: once
    assert (etc / "caregiver-instances").read_text() == listed
    # the list is the operator's to edit too
    (etc / "caregiver-instances").write_text(listed + "caregiver-ward-c  # the ward's own\n")
    third = _user_blocks(broker_step())
    assert [a for a in third if a.startswith("caregiver-") and a != "caregiver-watch"] == [
        "caregiver-a",
        "caregiver-b",
        "caregiver-ward-c",
    ]
    assert third["caregiver-ward-c"] == caregiver


def _purge(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``--uninstall --purge`` for real, in tmp_path's folders: only after its dry run shows that
    every folder it would remove is there (a script not honouring an override, as before
    RETROGUARD_STATE_DIR, would remove this machine's /var/lib/retroguard)."""
    plan = run_script("--dry-run", "--uninstall", "--purge", env_dirs=tmp_path, extra_env=env)
    removed = re.findall(r"^    \+ rm -r?f (.*)$", plan.stdout, flags=re.M)
    assert removed, plan.stdout
    for line in removed:
        for target in line.split(" "):
            assert Path(target).is_relative_to(tmp_path), plan.stdout
    return run_script("--uninstall", "--purge", env_dirs=tmp_path, extra_env=env)


@pytest.mark.parametrize("other_listener", [False, True])
def test_purge_removes_exactly_the_broker_setup_the_installer_wrote(
    tmp_path: Path, other_listener: bool
) -> None:
    """``--uninstall --purge`` left Mosquitto's conf.d/retroguard.conf, the ACL and the accounts
    (and so a broker still taking the device's login). It removes those three and the password
    files, never the package's own config nor another's, and stops Mosquitto when ours was its
    only listener (else it would fall back to anonymous logins on loopback) or restarts it
    without our accounts when another listener remains."""
    mosquitto = _install_broker_files(tmp_path)
    etc = tmp_path / "etc"
    ours = {"conf.d/retroguard.conf", "retroguard.acl", "retroguard.passwd"}
    assert {str(p.relative_to(mosquitto)) for p in mosquitto.rglob("*") if p.is_file()} == ours
    assert {p.name for p in etc.iterdir()} == {
        "mqtt-password",
        "caregiver-mqtt-password",
        "homeassistant-mqtt-password",
        "caregiver-watch-mqtt-password",
    }
    debian = "pid_file /run/mosquitto/mosquitto.pid\ninclude_dir /etc/mosquitto/conf.d\n"
    (mosquitto / "mosquitto.conf").write_text(debian)
    other = "listener 8883\n" if other_listener else "# someone's notes\nlog_type all\n"
    (mosquitto / "conf.d" / "site.conf").write_text(other)
    env = _stubs(tmp_path, groups="")

    kept = run_script("--uninstall", env_dirs=tmp_path, extra_env=env)  # no purge: all kept
    assert kept.returncode == 0, kept.stderr
    assert "kept: the broker setup of --broker" in kept.stdout
    assert {str(p.relative_to(mosquitto)) for p in mosquitto.rglob("*") if p.is_file()} == ours | {
        "mosquitto.conf",
        "conf.d/site.conf",
    }
    assert len(list(etc.iterdir())) == 4 and _calls(tmp_path) == []

    plan = run_script("--dry-run", "--uninstall", "--purge", env_dirs=tmp_path, extra_env=env)
    assert f"+ rm -f {mosquitto}/conf.d/retroguard.conf {mosquitto}/retroguard.acl" in plan.stdout
    assert (mosquitto / "retroguard.acl").exists() and _calls(tmp_path) == []

    purged = _purge(tmp_path, env)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    left = {str(p.relative_to(mosquitto)) for p in mosquitto.rglob("*") if p.is_file()}
    assert left == {"mosquitto.conf", "conf.d/site.conf"}
    assert (mosquitto / "mosquitto.conf").read_text() == debian
    assert not etc.exists()  # the four passwords with the config
    if other_listener:
        assert _calls(tmp_path) == ["systemctl try-restart mosquitto"]
    else:
        assert _calls(tmp_path) == ["systemctl disable --now mosquitto"]
        assert "ours was Mosquitto's only listener: stopped and disabled" in purged.stdout


def test_purge_keeps_a_broker_config_the_installer_did_not_write(tmp_path: Path) -> None:
    conf_d = tmp_path / "mosquitto" / "conf.d"
    conf_d.mkdir(parents=True)
    mine = "# my own broker, named like RetroGuard's\nlistener 1883\n"
    (conf_d / "retroguard.conf").write_text(mine)
    (tmp_path / "mosquitto" / "retroguard.acl").write_text("user admin\ntopic #\n")
    env = _stubs(tmp_path, groups="")
    out = _purge(tmp_path, env)
    assert out.returncode == 0, out.stderr
    assert "was not written by this script" in out.stdout
    assert (conf_d / "retroguard.conf").read_text() == mine
    assert (tmp_path / "mosquitto" / "retroguard.acl").exists()
    assert not any("mosquitto" in call for call in _calls(tmp_path))


def test_purge_removes_only_the_groups_the_installer_created_and_no_one_else_uses(
    tmp_path: Path,
) -> None:
    """``create_user`` makes gpio, i2c or audio only when the system lacks it (not Raspberry Pi
    OS) and records that; --purge removes such a group once only the service user was in it,
    never one the system had, nor one that someone else has joined since (as a member or as
    their primary group)."""
    etc = tmp_path / "etc"
    # the install's record, as its dry run shows it would be kept
    stub_env = _stubs(tmp_path, groups="audio:x:29:pi\n")
    plan = run_script("--dry-run", env_dirs=tmp_path, extra_env=stub_env)
    assert f"+ groupadd --system gpio\n    + record gpio in {etc}/installer-created-groups" in (
        plan.stdout
    )
    assert "record audio" not in plan.stdout
    shutil.rmtree(tmp_path / "bin")
    shutil.rmtree(tmp_path / "fake")

    etc.mkdir()
    (etc / "installer-created-groups").write_text("gpio\ni2c\nspi\n")
    env = _stubs(
        tmp_path,
        groups="gpio:x:997:retroguard\ni2c:x:998:retroguard,alice\naudio:x:29:retroguard\n",
        passwd="bob:x:1001:998::/home/bob:/bin/sh\n",
    )
    out = _purge(tmp_path, env)
    assert out.returncode == 0, out.stderr
    assert [c for c in _calls(tmp_path) if c.startswith("groupdel")] == ["groupdel gpio"]
    assert "kept group 'i2c' (created by this script): still has members alice,bob" in out.stdout
    assert "kept group 'audio': not created by this script" in out.stdout
