"""``retroguard evaluate-gait``: its statistics on numbers with a known answer, its KFall reader,
the whole command on a small KFall-shaped directory of synthesised walks and stands, and on
two subjects' SisFall walks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from launcher.cli import main as retroguard
from sim.gait_motion import SteppedWalking, SwayingStance, Wave, step_times
from sim.motion import MotionSource
from tests.sisfall_support import sisfall_file
from tools.datasets import DatasetFormatError
from tools.gait_evaluate import read_kfall, repeatability


def test_repeatability_is_the_one_way_anova_of_the_trials() -> None:
    # Two subjects, each trial ±1 around their own mean: within-subject SD exactly
    # sqrt((1+1+0)/(3-1)) per subject = 1, whatever the subjects' means.
    r = repeatability([[9.0, 10.0, 11.0], [19.0, 20.0, 21.0], [5.0]])
    assert r is not None
    assert r.subjects == 2 and r.trials == 6  # the one-trial subject says nothing of noise
    assert r.mean == pytest.approx(15.0)
    assert r.within_sd == pytest.approx(1.0)
    assert r.mdc95 == pytest.approx(1.96 * math.sqrt(2.0))
    # MSB = 3 * 2 * 25 / 1 = 150, MSW = 1: ICC(1,1) = 149 / (150 + 2)
    assert r.icc == pytest.approx(149.0 / 152.0)
    assert repeatability([[1.0, 2.0], [3.0]]) is None


def _write_kfall(path: Path, source: MotionSource, rate: float = 100.0) -> None:
    lines = ["TimeStamp(s),FrameCounter,AccX,AccY,AccZ,GyrX,GyrY,GyrZ,EulerX,EulerY,EulerZ"]
    for i in range(int(source.duration * rate)):
        t = (i + 1) / rate
        v = source.at(t)
        lines.append(f"{t},{i + 1}," + ",".join(f"{x:.5f}" for x in v) + ",0,0,0")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_a_kfall_file_is_read_and_a_bad_line_is_named(tmp_path: Path) -> None:
    good = tmp_path / "S06T01R01.csv"
    _write_kfall(good, SwayingStance(1.0, [Wave(0.05, 0.3)], []))
    samples = read_kfall(good)
    assert len(samples) == 100
    assert samples[0].t == pytest.approx(0.01)
    assert samples[0].ay == pytest.approx(-1.0, abs=0.01)  # y points down, as KFall's
    bad = tmp_path / "S06T01R02.csv"
    bad.write_text(good.read_text().replace("\n0.5,", "\nhalf,", 1))
    with pytest.raises(DatasetFormatError, match=r"R02\.csv:51: non-numeric column"):
        read_kfall(bad)


def test_the_command_reports_steps_and_repeatability_on_kfall_shaped_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the directory it is given: not the whole SisFall subset the test command exports
    # (half a minute; two subjects of it are measured in the test below).
    monkeypatch.delenv("RETROGUARD_SISFALL", raising=False)
    root = tmp_path / "KFall"
    for subject, mean_s in (("06", 0.55), ("07", 0.62)):
        for trial in (1, 2):
            walk = SteppedWalking(
                step_times(40, mean_s, jitter_sd_s=0.01, seed=10 * trial, start_s=2.0),
                yaw_dps=0.0,
            )
            _write_kfall(
                root / "sensor_data" / f"SA{subject}" / f"S{subject}T06R0{trial}.csv", walk
            )
        stance = SwayingStance(30.0, [Wave(0.05, 0.3)], [Wave(0.02, 0.25)], noise_g=0.002)
        _write_kfall(root / "sensor_data" / f"SA{subject}" / f"S{subject}T01R01.csv", stance)
    out = tmp_path / "gait.json"
    assert (
        retroguard(["evaluate-gait", "--kfall", str(root), "--json", str(out), "--no-progress"])
        == 0
    )
    report = capsys.readouterr().out
    assert "KFall T06 walk + turn" in report and "KFall T01 stand 30 s" in report
    doc = json.loads(out.read_text())
    steps = doc["steps"]["KFall T06 walk + turn"]["all"]
    assert steps["recordings"] == 4
    assert steps["matched_steps"] >= 0.95 * steps["reference_steps"] >= 0.95 * 4 * 38
    assert steps["cadence_abs_error_spm_max"] < 1.0
    cadence = doc["repeatability"]["KFall T06 walk + turn"]["all"]["cadence_spm"]
    assert cadence["subjects"] == 2
    assert cadence["mean"] == pytest.approx(60.0 / 0.585, rel=0.02)
    # Two subjects 12 steps/min apart, trials within about one: almost all variance is between.
    assert cadence["icc"] > 0.9
    sway = doc["repeatability"]["KFall T01 stand 30 s"]["all"]["rms_ap"]
    assert sway["mean"] == pytest.approx(0.05 / math.sqrt(2.0), rel=0.1)
    assert doc["standing"]["noise_floor"] > 0.0


def test_the_command_reports_steps_and_repeatability_on_sisfall_walks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two subjects' slow and quick walks (one held-out, one tuning), each 100 s walk's two
    halves its trials."""
    monkeypatch.delenv("RETROGUARD_KFALL", raising=False)
    root = tmp_path / "SisFall_dataset"
    for subject in ("SA01", "SA02"):
        (root / subject).mkdir(parents=True)
        for code in ("D01", "D02"):
            name = f"{code}_{subject}_R01.txt"
            (root / subject / name).symlink_to(sisfall_file(name))
    out = tmp_path / "gait.json"
    assert (
        retroguard(["evaluate-gait", "--sisfall", str(root), "--json", str(out), "--no-progress"])
        == 0
    )
    report = capsys.readouterr().out
    assert "SisFall D01 walk slowly" in report and "SisFall D02 walk quickly" in report
    doc = json.loads(out.read_text())
    for group in ("SisFall D01 walk slowly", "SisFall D02 walk quickly"):
        steps = doc["steps"][group]["all"]
        assert steps["recordings"] == 2
        assert steps["matched_steps"] >= 0.95 * steps["reference_steps"] > 0
        assert steps["unknown_mounting_learned"] == 2
        cadence = doc["repeatability"][group]["all"]["cadence_spm"]
        assert (cadence["subjects"], cadence["trials"]) == (2, 4)
    assert "KFall" not in report


def test_the_command_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only what the command line names: not the datasets the test command exports.
    monkeypatch.delenv("RETROGUARD_SISFALL", raising=False)
    monkeypatch.delenv("RETROGUARD_KFALL", raising=False)
    assert retroguard(["evaluate-gait", "--kfall", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert retroguard(["evaluate-gait", "--kfall", str(tmp_path)]) == 2
    assert "no walking or standing recordings" in capsys.readouterr().err


def test_recordings_that_cannot_be_read_or_measured_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One malformed file (a wrong header), or one too short to measure (its spectrum has no
    bin in the step band; a stand no longer than its settling), ended the run in a traceback
    of DatasetFormatError or NumPy's ValueError. Each is skipped and counted, as evaluate
    skips one, naming the first; with none measured, that line and exit 2."""
    monkeypatch.delenv("RETROGUARD_SISFALL", raising=False)
    root = tmp_path / "KFall" / "sensor_data" / "SA06"
    walk = SteppedWalking(step_times(40, 0.55, jitter_sd_s=0.01, seed=1, start_s=2.0), yaw_dps=0.0)
    _write_kfall(root / "S06T06R01.csv", walk)
    (root / "S06T06R02.csv").write_text("TimeStamp(s),Frame\n0.01,1\n")
    _write_kfall(root / "S06T07R01.csv", SwayingStance(0.2, [Wave(0.05, 0.3)], []))
    _write_kfall(root / "S06T01R01.csv", SwayingStance(2.0, [Wave(0.05, 0.3)], []))
    out = tmp_path / "gait.json"
    argv = ["evaluate-gait", "--kfall", str(tmp_path / "KFall"), "--no-progress"]
    assert retroguard([*argv, "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert (
        "evaluate-gait: 1 of 4 recordings measured (3 skipped; first: "
        f"{root / 'S06T06R02.csv'}:1: not a KFall sensor file header: "
    ) in err
    assert json.loads(out.read_text())["steps"]["KFall T06 walk + turn"]["all"]["recordings"] == 1
    (root / "S06T06R01.csv").unlink()
    assert retroguard(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("evaluate-gait: none of the 3 recordings measured (3 skipped")
    assert len(captured.err.splitlines()) == 1 and captured.out == ""
