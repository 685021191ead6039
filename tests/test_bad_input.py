"""Safety rule 6 at the command line: bad input is a clear error naming what is wrong, exit
status 2, never a traceback, and a refused command creates and changes nothing.

Each test is one fault a reviewer reproduced (a traceback, a silently accepted value, a
message that named the wrong thing), run through ``launcher.cli.main`` as a person types it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from caregiver.auth import Accounts
from caregiver.storage import Store
from core.dbfile import database_file_problem
from core.errors import ConfigError
from core.plan_presets import PRESETS, PROGRESSIONS
from core.tomlschema import read_toml
from firmware.storage.database import connect
from firmware.storage.plans import assign_plan
from firmware.storage.progressions import start_progression
from launcher.cli import READER_GONE, main

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "treadmill-1"
NOT_UTF8 = b"\xff\xfe[session]\n"


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command; it must end with status 2 and no traceback; its standard error."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """An argparse refusal (exit status 2, the option named); its standard error."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


# ------------------------------------------------------------------ TOML files


def test_read_toml_names_a_file_that_is_not_utf8_or_is_a_directory(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_bytes(NOT_UTF8)
    with pytest.raises(ConfigError) as err:
        read_toml(bad, "plan file")
    assert err.value.problems == [
        f"{bad}: not a TOML text file: byte 0 is not UTF-8 (save it as UTF-8)"
    ]
    folder = tmp_path / "d.toml"
    folder.mkdir()
    with pytest.raises(ConfigError) as err:
        read_toml(folder, "plan file")
    assert err.value.problems == [f"{folder}: a directory, not a plan file"]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_config_or_plan_file_too_large_to_be_one_is_refused_before_it_is_read(
    tmp_path: Path, suffix: str
) -> None:
    """A config's or plan's name on a disk image or ``/dev/zero``: refused by its size (or,
    without one, once past the bound), not read whole into a 512 MB Pi's memory."""
    from core.tomlschema import MAX_TEXT_FILE_BYTES
    from firmware.session.plan import load_plan_file

    huge = tmp_path / f"plan{suffix}"
    with huge.open("wb") as f:  # sparse: no disk spent on it
        f.truncate(MAX_TEXT_FILE_BYTES + 1)
    with pytest.raises(ConfigError) as err:
        load_plan_file(huge)
    assert err.value.problems == [
        f"{huge}: 4,000,001 bytes, over the 4,000,000 bytes a plan file may have"
    ]
    endless = Path("/dev/zero")
    with pytest.raises(ConfigError) as err:
        read_toml(endless, "config file")
    assert err.value.problems == [
        f"{endless}: more than the 4,000,000 bytes a config file may have"
    ]


HUGE = "1" + "0" * 400
"""An integer past a float's range and TOML's 64 bits, which :mod:`tomllib` and :mod:`json`
read all the same."""


@pytest.mark.parametrize("command", [["config", "--check"], ["run", "-c"]], ids=str)
@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            f"[safety]\nsample_timeout_s = {HUGE}\n",
            "safety.sample_timeout_s: must be a number from",
        ),
        (f"[mqtt]\nport = {'9' * 5000}\n", "not valid TOML: a number longer than 4,300 digits"),
    ],
    ids=["float-key", "5000-digits"],
)
def test_a_number_too_large_for_toml_is_refused_by_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], text: str, says: str
) -> None:
    """A float key given 1 and 400 zeros stopped ``config --check`` and ``run`` with an
    OverflowError traceback; 5,000 digits with a ValueError from inside tomllib."""
    config = tmp_path / "config.toml"
    config.write_text(text)
    err = _refused([*command, str(config)], capsys)
    assert f"{config}: {says}" in err


@pytest.mark.parametrize(
    "command",
    [
        ["config", "--check", "{toml}"],
        ["run", "-c", "{toml}"],
        ["plan", "--db", "{db}", "set", "{toml}"],
        ["caregiver", "-c", "{toml}", "users"],
    ],
    ids=["config-check", "run", "plan-set", "caregiver-users"],
)
@pytest.mark.parametrize("nesting", ["[" * 5000 + "]" * 5000, "{b = " * 5000 + "1" + "}" * 5000])
def test_toml_nested_past_the_parser_s_depth_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], nesting: str
) -> None:
    """5,000 nested arrays or inline tables (20 kB) ended every TOML reader with a
    RecursionError traceback: tomllib recurses for each level. JSON files said so already."""
    toml = tmp_path / "x.toml"
    toml.write_text(f"a = {nesting}\n")
    db = tmp_path / "device.db"
    err = _refused([a.format(toml=toml, db=db) for a in command], capsys)
    assert f"{toml}: not valid TOML: nested too deeply" in err


def test_an_int_key_past_64_bits_is_refused_by_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mqtt.max_inflight = 2**63`` passed ``config --check``; ``run`` then met it in the
    outbox's ``LIMIT ?``, which SQLite refused at every publish: no alert left the device.
    TOML's integers are 64-bit, and the file is refused as TOML says."""
    config = tmp_path / "config.toml"
    config.write_text("[mqtt]\nmax_inflight = 9223372036854775808\n")
    err = _refused(["config", "--check", str(config)], capsys)
    assert f"{config}: mqtt.max_inflight: must be a number from -9,223,372,036,854,775,808 " in err
    config.write_text("[mqtt]\nmax_inflight = 9223372036854775807\n")
    assert main(["config", "--check", str(config)]) == 0


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_plan_file_with_a_number_too_large_for_a_float_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """``minutes = 1`` and 400 zeros, in either format, ended ``plan set`` with an
    OverflowError traceback (the check for a finite number converted it to a float first)."""
    plan = tmp_path / f"plan{suffix}"
    if suffix == ".toml":
        plan.write_text(f'[[interval]]\ndirection = "backward"\nminutes = {HUGE}\n')
    else:
        plan.write_text(f'{{"interval": [{{"direction": "backward", "minutes": {HUGE}}}]}}')
    db = tmp_path / "device.db"
    err = _refused(["plan", "--db", str(db), "set", str(plan)], capsys)
    assert f"{plan}: interval[0].minutes: too large a number (past 1e308)" in err
    assert not db.exists()


@pytest.mark.parametrize("kind", ["not UTF-8", "a directory"])
@pytest.mark.parametrize(
    "command",
    [
        ["config", "--check", "{toml}"],
        ["run", "-c", "{toml}"],
        ["plan", "--db", "{db}", "set", "{toml}"],
        ["session", "demo", "--plan", "{toml}"],
        ["caregiver", "-c", "{toml}", "users"],
    ],
    ids=["config-check", "run", "plan-set", "session-demo", "caregiver-users"],
)
def test_every_command_reading_toml_refuses_a_bad_file_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, command: list[str]
) -> None:
    toml = tmp_path / "x.toml"
    if kind == "a directory":
        toml.mkdir()
    else:
        toml.write_bytes(NOT_UTF8)
    db = tmp_path / "device.db"
    err = _refused([a.format(toml=toml, db=db) for a in command], capsys)
    assert str(toml.name) in err
    assert ("is not UTF-8" if kind == "not UTF-8" else "a directory, not a") in err
    assert not db.exists()  # plan set read its argument before opening the database


# ------------------------------------------------------------------ caregiver accounts


def _caregiver_config(tmp_path: Path) -> tuple[Path, Path]:
    database = tmp_path / "caregiver.db"
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{database}"\n')
    return config, database


def _caregiver_with_a_device(tmp_path: Path) -> tuple[Path, Path]:
    """A caregiver config whose database has heard from one device, ``DEVICE``."""
    config, database = _caregiver_config(tmp_path)
    store = Store(str(database))
    store.set_telemetry(DEVICE, {}, time.time())
    store.close()
    return config, database


@pytest.mark.parametrize("kind", ["missing", "a directory", "not UTF-8"])
def test_add_user_with_a_password_file_it_cannot_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    config, database = _caregiver_config(tmp_path)
    secret = tmp_path / "pw"
    if kind == "a directory":
        secret.mkdir()
    elif kind == "not UTF-8":
        secret.write_bytes(b"\xff\xfe secret\n")
    argv = ["caregiver", "-c", str(config), "add-user", "ann", "--password-file", str(secret)]
    err = _refused(argv, capsys)
    expected = {
        "missing": "no such file",
        "a directory": "a directory, not a file",
        "not UTF-8": "not a text file in UTF-8",
    }[kind]
    assert f"retroguard caregiver add-user: --password-file {secret}: {expected}" in err
    assert not database.exists()  # nothing opened, nothing created


@pytest.mark.parametrize(
    "name",
    ["bad user/\\n", "bad\nuser", "a b", " ann", ".ann", "ann/..", "ann'", "ännä", "", "a" * 65],
)
def test_add_user_refuses_a_name_outside_the_safe_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    config, database = _caregiver_config(tmp_path)
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\n")
    argv = ["caregiver", "-c", str(config), "add-user", name, "--password-file", str(secret)]
    err = _refused(argv, capsys)
    assert "a user name is 1-64 of the letters a-z and A-Z, the digits and . _ - @" in err
    assert not database.exists()


def test_add_user_takes_the_names_of_the_safe_set_and_warns_of_an_unknown_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, database = _caregiver_with_a_device(tmp_path)  # treadmill-1; treadmill-2 not
    secret = tmp_path / "pw"
    secret.write_text("correct horse battery\n")
    base = ["caregiver", "-c", str(config), "add-user", "--password-file", str(secret)]
    for name in ("ann", "Ann.Smith@clinic.example", "bob_2", "c-3", "x" * 64):
        assert main([*base, name]) == 0
        assert "warning" not in capsys.readouterr().err
    assert main([*base, "ben", "--device", DEVICE]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main([*base, "cat", "--device", "treadmill-2", "--device", DEVICE]) == 0
    err = capsys.readouterr().err
    assert err.count("warning") == 1
    assert "warning: no device 'treadmill-2' has reported to this service yet" in err
    assert main(["caregiver", "-c", str(config), "limit-user", "ben", "treadmill-9"]) == 0
    assert "warning: no device 'treadmill-9'" in capsys.readouterr().err
    store = Store(str(database))
    try:
        users = {u.username: u.devices for u in Accounts(store).users()}
    finally:
        store.close()
    assert users["cat"] == (DEVICE, "treadmill-2")
    assert users["ben"] == ("treadmill-9",)  # kept: the device may come online later


def test_a_report_to_a_path_that_cannot_be_written_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from caregiver.cli import _write

    config, _ = _caregiver_with_a_device(tmp_path)
    base = ["caregiver", "-c", str(config), "report", DEVICE]
    for option in ("--pdf", "--csv"):
        out = tmp_path / "no" / "dir" / "x"
        err = _usage_error([*base, option, str(out)], capsys)
        assert f"argument {option}: {out}: no such directory {out.parent}" in err
        err = _usage_error([*base, option, str(tmp_path)], capsys)
        assert f"argument {option}: {tmp_path}: a directory, not a file" in err
    # a write that fails after the check (here: a full disk) is said, not a traceback
    assert not _write("retroguard caregiver report", Path("/dev/full"), b"x" * 100_000)
    assert "retroguard caregiver report: cannot write /dev/full: " in capsys.readouterr().err


@pytest.mark.parametrize("spelling", ["same text", "relative and absolute", "symlink", "hard link"])
def test_a_report_whose_pdf_and_csv_are_one_file_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    spelling: str,
) -> None:
    """``--pdf r.csv --csv r.csv`` wrote the PDF, then the CSV over it, and said it wrote both:
    refused before the database is opened, whichever way the one file is spelled, and the
    file is left as it was (or not created)."""
    config, _ = _caregiver_with_a_device(tmp_path)
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "r.csv"
    pdf, csv = str(target), str(target)
    if spelling == "relative and absolute":
        pdf = "r.csv"
    elif spelling == "symlink":
        (tmp_path / "link.csv").symlink_to(target)
        target.write_text("kept")
        pdf = str(tmp_path / "link.csv")
    elif spelling == "hard link":
        target.write_text("kept")
        os.link(target, tmp_path / "other.csv")
        pdf = str(tmp_path / "other.csv")
    base = ["caregiver", "-c", str(config), "report", DEVICE]
    err = _refused([*base, "--pdf", pdf, "--csv", csv], capsys)
    assert f"retroguard caregiver report: --pdf {pdf} and --csv {csv} are the same file" in err
    if spelling in ("symlink", "hard link"):
        assert target.read_text() == "kept"
    else:
        assert not target.exists()
    # two files: both written
    assert main([*base, "--pdf", "r.pdf", "--csv", csv]) == 0
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    assert target.read_text().startswith("week,")


def test_a_report_over_the_services_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, database = _caregiver_with_a_device(tmp_path)
    before = database.read_bytes()
    base = ["caregiver", "-c", str(config), "report", DEVICE]
    for option in ("--pdf", "--csv"):
        err = _refused([*base, option, str(database)], capsys)
        assert f"{option} {database} is the service's database ([server] database)" in err
        assert database.read_bytes() == before


# ------------------------------------------------------------------ files written


def test_record_to_a_path_that_cannot_be_written_is_refused_before_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.record import record

    out = tmp_path / "nowhere" / "x.trace"
    err = _usage_error(["record", str(out)], capsys)
    assert f"argument out: {out}: no such directory {out.parent}" in err
    assert record(out, seconds=1.0) == 2  # called directly, past the option's check
    assert f"retroguard record: cannot write {out}: " in capsys.readouterr().err


def test_evaluate_refuses_an_output_file_it_could_not_write_before_evaluating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nowhere" / "figures.json"
    err = _usage_error(["evaluate", str(tmp_path), "--json", str(out)], capsys)
    assert f"argument --json: {out}: no such directory" in err
    err = _usage_error(["evaluate", str(tmp_path), "--per-file", str(out)], capsys)
    assert f"argument --per-file: {out}: no such directory" in err
    err = _usage_error(["evaluate-gait", "--json", str(out)], capsys)
    assert f"argument --json: {out}: no such directory" in err


# ------------------------------------------------------------------ databases


@pytest.mark.parametrize(
    "command",
    [
        ["sessions", "--db", "{db}"],
        ["walker", "list", "--db", "{db}"],
        ["walker", "add", "Bob", "--db", "{db}"],
        ["plan", "show", "--db", "{db}"],
        ["plan", "set", "alternate-2-2", "--db", "{db}"],
        ["plan", "progression", "show", "--db", "{db}"],
        ["plan", "progression", "hold", "--db", "{db}"],
        ["demo", "--no-live", "--db", "{db}"],
    ],
    ids=lambda c: "-".join(c[:2]),
)
def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 not a database\n" * 40)
    before = report.read_bytes()
    err = _refused([a.format(db=report) for a in command], capsys)
    assert f"{report}: not a RetroGuard database (not an SQLite database file at all)" in err
    assert report.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]  # nothing moved aside


@pytest.mark.parametrize(
    "command",
    [
        ["sessions", "--db", "{db}"],
        ["walker", "list", "--db", "{db}"],
        ["walker", "add", "Bob", "--db", "{db}"],
        ["plan", "show", "--db", "{db}"],
        ["plan", "set", "alternate-2-2", "--db", "{db}"],
        ["plan", "progression", "show", "--db", "{db}"],
    ],
    ids=lambda c: "-".join(c[:2]),
)
def test_a_database_whose_write_ahead_log_is_damaged_is_refused_and_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """SQLite ignores a log whose header is wrong: the file looked new, the command wrote its
    schema into it and overwrote the log — every commit since the last checkpoint gone for
    good before the monitor could move the file aside and report it."""
    from tests.storage_support import with_damaged_wal

    db = tmp_path / "events.db"
    damaged = with_damaged_wal(db, tmp_path / "live")
    before = db.read_bytes()

    err = _refused([a.format(db=db) for a in command], capsys)
    assert f"{db}: its write-ahead log is damaged (its header is not a write-ahead log's)" in err
    assert Path(f"{db}-wal").read_bytes() == damaged and db.read_bytes() == before


def test_the_caregiver_refuses_a_database_file_that_is_not_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 not a database\n" * 40)
    config = tmp_path / "caregiver.toml"
    config.write_text(f'[server]\ndatabase = "{report}"\n')
    for command in (["users"], ["report", DEVICE], []):  # [] serves: refused before starting
        err = _refused(["caregiver", "-c", str(config), *command], capsys)
        assert f"[server] database: {report}: not a RetroGuard database" in err


@pytest.mark.parametrize(
    ("command", "name"),
    [(["demo", "--no-live"], "retroguard demo"), (["session", "demo"], "retroguard session demo")],
    ids=lambda c: "-".join(c) if isinstance(c, list) else None,
)
def test_a_demos_database_in_a_folder_that_is_not_there_is_refused_not_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], name: str
) -> None:
    """``demo --db /nonexistent/dir/x.db`` made the folders (as root, anywhere the typo
    pointed) and ran: a demo's database is a file it writes, refused as ``record``'s trace is
    (one line, exit 2, nothing made)."""
    db = tmp_path / "no" / "dir" / "x.db"
    err = _refused([*command, "--db", str(db)], capsys)
    assert err == f"{name}: --db: {db}: no such directory {db.parent}\n"
    assert list(tmp_path.iterdir()) == []


def test_an_empty_or_absent_file_may_become_a_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert database_file_problem(empty) is None  # SQLite starts an empty file as a database
    assert database_file_problem(tmp_path / "absent.db") is None
    conn = connect(tmp_path / "real.db")
    conn.close()
    assert database_file_problem(tmp_path / "real.db") is None
    assert database_file_problem(tmp_path) == f"{tmp_path}: a directory, not a database file"


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["demo", "--no-live"], "--speed"),
        (["record", "{tmp}/x.trace"], "--seconds"),
        (["session", "demo"], "--speed"),
        (["session", "demo"], "--scale"),
        (["calibrate"], "--seconds"),
        (["evaluate", "{tmp}"], "--gyro-scale"),
        (["evaluate", "{tmp}"], "--start-before-onset"),
    ],
    ids=lambda c: c if isinstance(c, str) else c[0],
)
def test_float_options_refuse_values_that_are_not_finite(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    option: str,
    value: str,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    argv = [*(a.format(tmp=tmp_path) for a in command), f"{option}={value}"]  # -inf too
    err = _usage_error(argv, capsys)
    assert f"argument {option}: must be a finite number, not {value!r}" in err
    assert list((tmp_path / "temp").iterdir()) == []  # no demo folder left behind


@pytest.mark.parametrize(
    ("command", "option", "value", "says"),
    [
        (["watch"], "--count", "-1", "must be a whole number, 0 or more, not -1"),
        (["watch"], "--count", "2.5", "must be a whole number, 0 or more, not '2.5'"),
        (["evaluate", "{tmp}"], "-j", "-3", "must be a whole number, 1 or more, not -3"),
        (["evaluate", "{tmp}"], "--jobs", "0", "must be a whole number, 1 or more, not 0"),
    ],
    ids=lambda c: c if isinstance(c, str) else c[0],
)
def test_count_options_refuse_what_counts_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    option: str,
    value: str,
    says: str,
) -> None:
    """``watch --count -1`` watched for ever and ``evaluate -j -3`` was a traceback from the
    process pool once the recordings were found (core.cliargs.whole_number)."""
    (tmp_path / "a.trace").write_text("not read: refused before\n")
    argv = [*(a.format(tmp=tmp_path) for a in command), option, value]
    err = _usage_error(argv, capsys)
    option_named = "-j/--jobs" if option in ("-j", "--jobs") else option
    assert err.splitlines()[-1].endswith(f"error: argument {option_named}: {says}")
    assert "Traceback" not in err


def test_the_demo_refuses_a_speed_that_is_not_a_number_when_called_directly() -> None:
    from launcher.demo import run_demo

    assert run_demo(speed=float("nan"), live=False) == 2


@pytest.mark.parametrize("command", [["demo", "--no-live"], ["session", "demo"]], ids=str)
def test_demos_refuse_a_speed_so_slow_their_clock_overflows_the_hosts(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # --speed 1e-300 was a traceback: a 2 ms wait of the scaled clock overflowed time.sleep
    err = _refused([*command, "--speed", "1e-300"], capsys)
    assert "--speed below 0.1 is too slow to watch" in err


@pytest.mark.parametrize(
    ("command", "option", "value", "says"),
    [
        (["demo", "--no-live"], "--speed", "11", "--speed above 10 outruns the monitor loop"),
        (["session", "demo"], "--speed", "1e300", "--speed above 10 outruns the monitor loop"),
        (["session", "demo"], "--speed", "0.01", "--speed below 0.1 is too slow to watch"),
        (["session", "demo"], "--scale", "1e-300", "--scale must be 1 (the plan in real time)"),
        (["session", "demo"], "--scale", "0.5", "--scale must be 1 (the plan in real time)"),
        (["session", "demo"], "--scale", "1e9", "to 600 (a minute of plan in 0.1 s), not 1e+09"),
        (["session", "demo"], "--scale", "-60", "--scale must be 1 (the plan in real time)"),
    ],
    ids=lambda c: "-".join(c) if isinstance(c, list) else c,
)
def test_demos_refuse_a_speed_or_scale_outside_their_bounds(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    option: str,
    value: str,
    says: str,
) -> None:
    """``session demo`` took any --speed above 0.1 and any --scale above 0 (``--scale 1e-300``
    ran for ever): both demos now refuse values outside the bounds their --help states."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    err = _refused([*command, option, value], capsys)
    name = "session demo" if command[0] == "session" else "demo"
    assert err.startswith(f"retroguard {name}: ") and says in err
    assert list(tmp_path.iterdir()) == []  # refused before the demo's folder is made


@pytest.mark.parametrize("command", [["demo"], ["session"]], ids=str)
def test_demo_help_states_the_bounds(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--speed SPEED " in text and "0.1 to 10 (default 1)" in text
    if command == ["session"]:
        assert "1 (real time) to 600 (default 60: a plan minute a second)" in text


# ------------------------------------------------------------------ plans


@pytest.mark.parametrize("plan", ["nosuchpreset", "{tmp}", "plans/anna"])
def test_plan_set_says_what_the_command_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plan: str
) -> None:
    db = tmp_path / "device.db"
    given = plan.format(tmp=tmp_path)
    err = _refused(["plan", "--db", str(db), "set", given], capsys)
    assert err.startswith(f"retroguard plan set: {given}: ")
    assert "a directory" in err if given == str(tmp_path) else "not a preset or a plan file" in err
    assert (
        "give a preset name (retroguard plan presets lists them) or a plan file ending in "
        ".toml or .json"
    ) in err
    assert "session.plan" not in err  # a command-line argument, not the config key
    assert not db.exists()
    err = _refused(["session", "demo", "--plan", given], capsys)
    assert err.startswith(f"retroguard session demo: --plan: {given}: ")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["progression", "set", "toward-10-minuts"], "toward-10-minuts: not a preset progression"),
        (["progression", "set"], "retroguard plan progression set: name a progression"),
        (["progression", "set", "toward-10-minutes", "--stage", "99"], "--stage must be 1 to"),
        (["progression", "set", "{tmp}/nothere.json"], "not a preset progression"),
        (["progression", "hold"], "hold: no progression is assigned to this device"),
        (["progression", "step-back"], "step-back: no progression is assigned to this device"),
        (["set", "alternate-2-2", "--walker", "anna"], "--walker: no walker 'anna' here (default;"),
        (["show", "--walker", "anna"], "--walker: no walker 'anna' here (default;"),
    ],
    ids=lambda c: "-".join(c).replace("{tmp}/", "") if isinstance(c, list) else "",
)
def test_a_refused_plan_command_creates_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], says: str
) -> None:
    """``plan progression set <typo>`` on a fresh install created the device database, then
    refused the typo: every refusal comes first, and a refused command leaves no file. On a
    database that exists, the same command is refused in the same words."""
    db = tmp_path / "state" / "device.db"
    db.parent.mkdir()
    argv = ["plan", "--db", str(db), *(a.format(tmp=tmp_path) for a in command)]
    err = _refused(argv, capsys)
    assert says in err
    assert list(db.parent.iterdir()) == []
    connect(db).close()
    capsys.readouterr()  # the schema's log line
    assert _refused(argv, capsys) == err


def test_plan_and_progression_show_print_local_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``retroguard sessions`` does: in the system's zone, named as its clock names it then
    ("NZDT", as the dashboard would), not the stored UTC text."""
    monkeypatch.setenv("TZ", "Pacific/Auckland")  # UTC+13 on 2 March (daylight saving)
    db = tmp_path / "device.db"
    conn = connect(db)
    try:
        with conn:
            assign_plan(
                conn,
                PRESETS["alternate-2-2"],
                by="Jo",
                via="cli",
                assigned_wall="2026-03-02T09:00:00.000+00:00",
            )
            start_progression(
                conn,
                PROGRESSIONS["toward-10-minutes"],
                stage=0,
                by="Jo",
                wall="2026-03-02T09:30:00.000+00:00",
            )
    finally:
        conn.close()
    assert main(["plan", "--db", str(db), "show"]) == 0
    shown = capsys.readouterr().out
    assert "Times in NZDT." in shown
    assert "2026-03-02 22:00  alternate-2-2, by Jo via cli" in shown
    assert "T09:00" not in shown
    assert main(["plan", "--db", str(db), "progression", "show"]) == 0
    shown = capsys.readouterr().out
    assert "since 2026-03-02 22:30 NZDT (assigned by Jo)" in shown
    assert "T09:30" not in shown


# ------------------------------------------------------------------ standard output closed


@pytest.mark.parametrize("command", [["config", "--example"], ["plan", "show", "--db", "{db}"]])
def test_a_command_whose_reader_went_away_ends_quietly(tmp_path: Path, command: list[str]) -> None:
    """``retroguard plan show | head``: no BrokenPipeError traceback; the status a shell gives
    a process SIGPIPE ended, as other tools."""
    db = tmp_path / "device.db"
    connect(db).close()
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: every write fails
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from launcher.cli import main; sys.exit(main())"]
            + [a.format(db=db) for a in command],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (READER_GONE, "")


def test_the_local_time_of_a_stored_time_that_is_not_one_is_the_text() -> None:
    from tools.plans import local_time

    assert local_time("2026-03-02T09:00:00.000+00:00", dt.UTC) == "2026-03-02 09:00"
    assert local_time("yesterday", dt.UTC) == "yesterday"


def test_config_check_warns_of_a_storage_database_that_is_no_database_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``storage.database`` naming the config itself passed ``config --check`` with "OK", and
    ``run`` then moved the config aside as a damaged database and made a new database under
    its name: the next start found no config. The check now says what the start would do
    (a warning: a real database whose header an SD card zeroed is still taken that way)."""
    config = tmp_path / "config.toml"
    text = f'[storage]\ndatabase = "{config}"\n'
    config.write_text(text)
    assert main(["config", "--check", str(config)]) == 0
    said = capsys.readouterr()
    assert said.out == f"{config}: OK\n"
    assert said.err == (
        f"warning: {config}: storage.database: {config}: not a RetroGuard database (not an "
        "SQLite database file at all): the monitor's start will move it aside as a damaged "
        "database (config.toml.damaged-<time>) and start a new one there; if the path is a "
        "mistake, name the database file (e.g. /var/lib/retroguard/retroguard.db)\n"
    )
    assert config.read_text() == text
