"""``retroguard evaluate``: same detector as the monitor, figures, JSON, bad files."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import pytest

import firmware.app
from core.errors import ConfigError
from core.samples import ImuSample
from core.trace import write_trace
from firmware.config import load_config
from firmware.detection import DetectorConfig, build_detector
from firmware.detection.factory import build_detector as factory_build
from firmware.detection.factory import detector_class
from sim.scenarios import BackwardFall, Sequence, Standing, Turn, Walking
from tests.sisfall_support import sisfall_file
from tools.datasets import discover
from tools.evaluate import scoring
from tools.evaluate.cli import _config_from_args, configure_parser, main
from tools.evaluate.figures import onset_figures, percentile, summarise
from tools.evaluate.impact import fall_impact_t
from tools.evaluate.result import FileResult
from tools.evaluate.runner import run_files
from tools.evaluate.scoring import detector_for, evaluate_file
from tools.evaluate.transforms import (
    ROTATION_PRESETS,
    apply_rotation,
    gyro_scaled,
    parse_rotation,
    time_reversed,
)

RATE = 200.0


def write_scenario(path: Path, seq: Sequence, rate: float, subject: str) -> Path:
    header = seq.trace_header(rate)
    header.subject = subject
    n = int(seq.duration * rate)
    write_trace(path, header, (ImuSample(i / rate, *seq.at(i / rate)) for i in range(n)))
    return path


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two subjects (one per half), each with a backward fall and a walk with turns,
    at 100 Hz (so evaluate must resample), plus one broken file."""
    d = tmp_path_factory.mktemp("traces")
    for subject, seed in (("P01", 0), ("P02", 1)):
        fall = Sequence([Standing(2.0), Walking(4.0), BackwardFall(lie_s=4.0)], seed=seed)
        walk = Sequence([Standing(2.0), Walking(4.0), Turn(), Walking(4.0)], seed=seed)
        write_scenario(d / f"fall_{subject}.csv", fall, 100.0, subject)
        write_scenario(d / f"walk_{subject}.csv", walk, 100.0, subject)
    (d / "broken.csv").write_text("# format: retroguard-trace/1\n# sample_rate_hz: 200\n")
    return d


def test_evaluate_builds_the_detector_like_the_monitor() -> None:
    """One factory: the monitor (firmware.app) and evaluate call the same function."""
    assert scoring.build_detector is factory_build
    assert firmware.app.build_detector is factory_build
    config = DetectorConfig(stumble_velocity_mps=0.7)
    det = detector_for(config, RATE, None, use_mounting=True)
    assert isinstance(det, detector_class())  # compiled or pure FallDetector
    assert det.config is config
    assert det.sample_rate_hz == RATE


def test_evaluate_takes_detector_and_rate_from_the_monitor_config(tmp_path: Path) -> None:
    cfg = tmp_path / "retroguard.toml"
    cfg.write_text("[imu]\nsample_rate_hz = 100\n\n[detector]\nrotation_gain_deg = 14.0\n")
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args([str(tmp_path), "--config", str(cfg)])
    detector, rate = _config_from_args(args)
    monitor = load_config(cfg)
    assert detector == monitor.detector
    assert detector.rotation_gain_deg == 14.0
    assert rate == monitor.imu.sample_rate_hz == 100.0


def test_evaluate_file_matches_a_plain_detector_run(trace_dir: Path) -> None:
    path = trace_dir / "fall_P01.csv"
    res = evaluate_file(str(path), RATE, DetectorConfig())
    assert res.error is None
    assert (res.label, res.subject, res.tuning) == ("fall", "P01", True)
    assert res.impact_t is not None and res.first_trip_t is not None
    assert res.lead_ms is not None and res.lead_ms > 200
    assert res.first_trip_kind == "stumble"
    assert res.first_fall_t is not None


def test_summary_follows_the_documented_schema(trace_dir: Path) -> None:
    results = run_files(discover(trace_dir), RATE, DetectorConfig(), jobs=1)
    doc = summarise(results, "all")
    assert doc["files"]["read"] == 4
    assert doc["files"]["skipped"] == 1
    assert "broken.csv" in doc["files"]["errors"][0]
    assert doc["fall"]["sensitivity"] == 1.0
    assert doc["fall"]["specificity"] == 1.0
    trip = doc["trip"]
    assert trip["walking_falls_tripped_before_impact"] == 1.0
    assert trip["lead_time_ms_median"] > 200
    assert trip["lead_time_ms_p10"] <= trip["lead_time_ms_median"]
    assert trip["walking_jogging_trips"] == 0
    assert set(doc["splits"]) == {"held-out", "tuning", "all"}
    assert doc["splits"]["tuning"]["files"] == 2
    assert doc["splits"]["held-out"]["files"] == 2
    assert set(doc["per_code"]) == {r.code for r in results if r.error is None}


def test_command_prints_the_table_and_writes_json(
    trace_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out1 = tmp_path / "one.json"
    out2 = tmp_path / "two.json"
    assert main([str(trace_dir), "--json", str(out1), "-j", "1", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "fall sensitivity" in table and "held-out" in table
    assert "skipped 1" in table
    assert main([str(trace_dir), "--json", str(out2), "-j", "2"]) == 0
    capsys.readouterr()
    one, two = json.loads(out1.read_text()), json.loads(out2.read_text())
    assert one == two, "parallel and serial runs must give the same figures"
    assert 0.0 <= one["fall"]["sensitivity"] <= 1.0
    assert one["files"] == {"read": 4, "skipped": 1, "errors": one["files"]["errors"]}


def test_the_per_file_table_says_which_rule_tripped_each_recording(
    trace_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row per recording with the first trip's reason as the monitor reports it, so
    a per-file table says why a recording tripped without replaying it; blank where
    nothing tripped."""
    out = tmp_path / "per-file.csv"
    assert main([str(trace_dir), "--per-file", str(out), "-j", "1", "--no-progress"]) == 0
    capsys.readouterr()
    with out.open(newline="") as f:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(f)}
    fall = rows["fall_P01.csv"]
    direct = evaluate_file(str(trace_dir / "fall_P01.csv"), RATE, DetectorConfig())
    assert direct.first_trip_reason
    assert fall["first_trip_reason"] == direct.first_trip_reason
    assert fall["first_trip_kind"] == "stumble"
    assert rows["walk_P01.csv"]["first_trip_reason"] == ""
    assert rows["walk_P01.csv"]["first_trip_t"] == ""


def test_missing_path_is_an_error_not_a_crash(tmp_path: Path) -> None:
    assert main([str(tmp_path / "nope"), "--no-progress"]) == 2
    assert main([str(tmp_path), "--no-progress"]) == 2


def test_a_set_detector_value_of_the_wrong_type_is_refused_as_the_config_refuses_it(
    trace_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--set impact_g=abc` was a ValueError traceback: it is refused with the words
    `config --check` uses for `[detector] impact_g = 'abc'`."""
    recording = str(trace_dir / "walk_P01.csv")
    assert main([recording, "--set", "impact_g=abc", "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("--set impact_g=abc: detector.impact_g: ")
    config = tmp_path / "config.toml"
    config.write_text("[detector]\nimpact_g = 'abc'\n")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    words = refused.value.problems[0].removeprefix(f"{config}: ")
    assert err[0].removeprefix("--set impact_g=abc: ") == words


@pytest.mark.parametrize(
    ("value", "says"),
    [("9" * 5000, "a number longer than 4,300 digits"), ("[" * 5000, "nested too deeply")],
    ids=["5000-digits", "5000-brackets"],
)
def test_a_set_value_tomllib_cannot_read_is_refused_not_a_traceback(
    trace_dir: Path, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    """tomllib lets a ValueError (Python's int digit limit) and a RecursionError out besides
    its TOMLDecodeError: either ended evaluate with a traceback."""
    recording = str(trace_dir / "walk_P01.csv")
    assert main([recording, "--set", f"impact_g={value}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"--set impact_g: {says}" in err


@pytest.mark.parametrize("value", ["-1", "100"])
def test_a_set_value_a_monitor_may_not_run_is_taken_with_the_config_s_warning(
    value: str, trace_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`=-1` and `=100` were taken without a word: they are taken for exploring (the
    ablations in docs/detector.md switch rules off with such values), each with a warning
    in the words `config --check` refuses it with."""
    recording = str(trace_dir / "walk_P01.csv")
    assert main([recording, "--set", f"impact_g={value}", "--no-progress"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    config = tmp_path / "config.toml"
    config.write_text(f"[detector]\nimpact_g = {value}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    words = refused.value.problems[0].removeprefix(f"{config}: ")
    assert f"warning: --set impact_g={value}: {words} (taken" in warnings[0]


def test_a_set_value_the_detector_cannot_run_with_is_an_error_not_a_traceback(
    trace_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A time constant of 0 is taken with a warning, then divided by (from review)."""
    recording = str(trace_dir / "walk_P01.csv")
    assert main([recording, "--set", "velocity_tau_s=0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--set velocity_tau_s=0: the detector cannot run with these settings" in err
    assert "Traceback" not in err


def test_the_ablations_in_the_detector_docs_can_be_run() -> None:
    args = argparse.Namespace(
        config=None, rate=None, set=["lying_rise_deg=0", "hard_descent_mps=-100"]
    )
    detector, _ = _config_from_args(args)
    assert (detector.lying_rise_deg, detector.hard_descent_mps) == (0.0, -100.0)


def test_settings_that_pass_the_config_check_are_taken(tmp_path: Path) -> None:
    args = argparse.Namespace(
        config=None, rate=50.0, set=["impact_g=3", "soft_impact_g=2.5", "worn_check=true"]
    )
    with pytest.raises(ConfigError, match="worn_check: unknown key"):
        _config_from_args(args)
    args.set = args.set[:2]
    detector, rate = _config_from_args(args)
    assert (detector.impact_g, detector.soft_impact_g, rate) == (3.0, 2.5, 50.0)


@pytest.mark.parametrize("rate", ["0", "-5", "nan", "5000"])
def test_a_sample_rate_evaluate_cannot_resample_to_is_refused(
    rate: str, trace_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = str(trace_dir / "walk_P01.csv")
    assert main([recording, "--rate", rate, "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"evaluate: --rate {float(rate):g}: must be between 20 and 1000 Hz")


def test_a_path_without_recordings_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate Readme.txt` printed a table of dashes and exited 0."""
    readme = tmp_path / "Readme.txt"
    readme.write_text("SisFall\n")
    assert main([str(readme), "--no-progress"]) == 2
    assert f"evaluate: no recordings found in {readme}" in capsys.readouterr().err
    broken = tmp_path / "broken.csv"
    broken.write_text("# format: retroguard-trace/1\n# sample_rate_hz: 200\n")
    assert main([str(broken), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert f"evaluate: no recording in {broken} could be read (1 skipped; first: " in captured.err
    assert captured.out == ""


def test_a_walk_of_one_sample_is_evaluated_not_divided_by_its_zero_hours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SisFall walking recording of one row (a file cut short) lasts 0 s: the walking and
    jogging trips per hour divided by those 0 hours, a ZeroDivisionError traceback after the
    whole evaluation. None per hour, as jogging's own figure says for no jogging."""
    walk = tmp_path / "D01_SA01_R01.txt"
    walk.write_text("0,-255,0,0,0,0,0,-980,0;\n")
    out = tmp_path / "figures.json"
    assert main([str(walk), "--json", str(out), "--no-progress"]) == 0
    assert "walking/jogging trips" in capsys.readouterr().out
    trip = json.loads(out.read_text())["trip"]
    assert (trip["walking_jogging_hours"], trip["walking_jogging_trips_per_hour"]) == (0.0, None)


def test_the_help_names_kfall_in_plain_words(capsys: pytest.CaptureFixture[str]) -> None:
    from launcher.cli import main

    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "KFall" in text and "``" not in text


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([100.0, 200.0, 300.0, 400.0], 50) == 250.0
    assert percentile([100.0, 200.0], 10) == pytest.approx(110.0)


def test_real_backward_slip_and_walk_through_the_evaluate_path() -> None:
    fall = evaluate_file(str(sisfall_file("F02_SA05_R01.txt")), RATE, DetectorConfig())
    assert fall.lead_ms is not None and fall.lead_ms > 0
    walk = evaluate_file(str(sisfall_file("D01_SA01_R01.txt")), RATE, DetectorConfig())
    assert walk.trips == 0
    assert walk.first_fall_t is None
    assert walk.duration_s > 90


def test_same_detector_object_type_from_both_entry_points() -> None:
    assert type(build_detector(DetectorConfig(), RATE)) is type(
        detector_for(DetectorConfig(), RATE, None, use_mounting=False)
    )


def test_rotation_presets_are_proper_rotations() -> None:
    """Every ``--rotate`` mounting is orthonormal with determinant +1 (a real
    sensor can be turned into it), and ``upside-down`` turns SisFall's up
    (-y) into +y."""
    for spec in [*ROTATION_PRESETS, "x10,z-35"]:
        m = parse_rotation(spec)
        for i in range(3):
            for j in range(3):
                dot = sum(m[i][k] * m[j][k] for k in range(3))
                assert dot == pytest.approx(1.0 if i == j else 0.0, abs=1e-12)
        det = (
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        )
        assert det == pytest.approx(1.0)
    up = apply_rotation(parse_rotation("upside-down"), (0.0, -1.0, 0.0))
    assert up == pytest.approx((0.0, 1.0, 0.0), abs=1e-12)
    with pytest.raises(ValueError, match="rotation"):
        parse_rotation("q30")


ROBUSTNESS = [
    (rate, rot, mounting)
    for rate in (200.0, 50.0)
    for rot in ("upside-down", "hip", "tilted-30")
    for mounting in (True, False)
]


@pytest.mark.parametrize(("rate", "rotate", "use_mounting"), ROBUSTNESS)
def test_backward_slip_trips_before_impact_in_other_mountings_and_rates(
    rate: float, rotate: str, use_mounting: bool
) -> None:
    """F02 (backward slip while walking), its axes rotated into another mounting
    and resampled by the streaming loader: still tripped before the impact peak
    of the original 200 Hz recording, and confirmed as a fall."""
    path = str(sisfall_file("F02_SA05_R01.txt"))
    rotation = parse_rotation(rotate)
    reference = evaluate_file(path, RATE, DetectorConfig())
    res = evaluate_file(path, rate, DetectorConfig(), use_mounting, rotation)
    assert res.error is None
    assert res.first_trip_t is not None and reference.impact_t is not None
    assert res.first_trip_t < reference.impact_t
    assert res.first_fall_t is not None


@pytest.mark.parametrize(("rate", "rotate", "use_mounting"), ROBUSTNESS)
@pytest.mark.parametrize("name", ["D01_SA01_R01.txt", "D03_SA01_R01.txt"])
def test_walk_and_jog_never_trip_in_other_mountings_and_rates(
    name: str, rate: float, rotate: str, use_mounting: bool
) -> None:
    """D01 (walking) and D03 (jogging), rotated and resampled: no trip at all."""
    rotation = parse_rotation(rotate)
    res = evaluate_file(str(sisfall_file(name)), rate, DetectorConfig(), use_mounting, rotation)
    assert res.error is None
    assert res.trips == 0
    assert res.first_fall_t is None


def test_the_other_sisfall_accelerometer_gives_the_same_verdicts() -> None:
    """Another sensor on the same board (MMA8451Q, +-8 g): the backward slip
    still trips before its impact and the walk still never trips."""
    path = str(sisfall_file("F02_SA05_R01.txt"))
    fall = evaluate_file(path, RATE, DetectorConfig(), sisfall_accelerometer="mma8451q")
    default = evaluate_file(path, RATE, DetectorConfig())
    assert fall.lead_ms is not None and fall.first_fall_t is not None
    assert fall.impact_t != default.impact_t or fall.first_trip_t != default.first_trip_t, (
        "the option must really read other columns"
    )
    walk = evaluate_file(
        str(sisfall_file("D01_SA01_R01.txt")),
        RATE,
        DetectorConfig(),
        sisfall_accelerometer="mma8451q",
    )
    assert walk.trips == 0


def test_gyro_scale_multiplies_every_gyro_reading_and_nothing_else() -> None:
    sample = ImuSample(1.5, 0.1, -0.2, 0.98, 10.0, -20.0, 30.0)
    (out,) = gyro_scaled([sample], 1.5)
    assert out == ImuSample(1.5, 0.1, -0.2, 0.98, 15.0, -30.0, 45.0)


def test_verdicts_hold_with_the_datasheet_gyro_factor() -> None:
    """SisFall's readme converts the ITG3200 at 4000/65536 deg/s per count, its
    datasheet at 1/14.375, 14 % more: with that factor the backward slip
    still trips before its impact and the walk still never trips."""
    fall = evaluate_file(
        str(sisfall_file("F02_SA05_R01.txt")), RATE, DetectorConfig(), gyro_scale=1.1428
    )
    assert fall.lead_ms is not None and fall.first_fall_t is not None
    walk = evaluate_file(
        str(sisfall_file("D01_SA01_R01.txt")), RATE, DetectorConfig(), gyro_scale=1.1428
    )
    assert walk.trips == 0


def test_a_nonsense_gyro_scale_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(sisfall_file("D01_SA01_R01.txt")), "--gyro-scale", "0"]) == 2
    assert "--gyro-scale" in capsys.readouterr().err


def test_fast_jogging_with_the_datasheet_gyro_factor_does_not_trip() -> None:
    """D04 (jogging quickly, tuning subject) read with the ITG3200 datasheet's
    gyro factor: the trunk estimate reaches 30 deg while the bounce moves it
    down at ~1 m/s, which the descent-with-tilt rule at 30 deg took for a
    fall; its 33 deg keeps the margin."""
    path = str(sisfall_file("D04_SA07_R01.txt"))
    old = evaluate_file(path, RATE, DetectorConfig(stumble_tilt_deg=30.0), gyro_scale=1.1428)
    assert old.trips > 0, "the old threshold's jogging trip"
    assert evaluate_file(path, RATE, DetectorConfig(), gyro_scale=1.1428).trips == 0


# --- onset-labelled falls -----------------------------------------------------------


def test_a_fall_with_a_known_onset_is_scored_between_onset_and_impact(trace_dir: Path) -> None:
    """The synthesised backward fall carries its onset and impact in the trace
    header: the trip comes between them, and lead and delay add up to the
    labelled fall's duration."""
    res = evaluate_file(str(trace_dir / "fall_P01.csv"), RATE, DetectorConfig())
    assert res.onset_t is not None and res.impact_t is not None
    assert res.trips_before_onset == 0
    assert res.tripped_in_fall
    lead, delay = res.onset_lead_ms, res.onset_delay_ms
    assert lead is not None and delay is not None
    assert lead + delay == pytest.approx((res.impact_t - res.onset_t) * 1000.0)
    assert lead == pytest.approx(res.lead_ms)
    doc = summarise([res], "all")
    onset = doc["onset"]["all_falls"]
    assert onset["falls"] == 1
    assert onset["tripped_between_onset_and_impact"] == 1.0
    assert onset["tripped_before_onset"] == 0.0


def test_a_recording_started_just_before_its_onset_still_has_its_fall(trace_dir: Path) -> None:
    """``--start-before-onset``: the synthesised fall played from 0.2 s before
    its labelled onset (the walk before it dropped, so the detector's
    warm-up meets the fall): it starts there, and the fall is still
    confirmed; recordings without an onset are played whole."""
    path = str(trace_dir / "fall_P01.csv")
    whole = evaluate_file(path, RATE, DetectorConfig())
    cut = evaluate_file(path, RATE, DetectorConfig(), start_before_onset=0.2)
    assert whole.onset_t is not None and cut.onset_t == whole.onset_t
    assert cut.duration_s == pytest.approx(whole.duration_s - (whole.onset_t - 0.2), abs=0.01)
    assert cut.first_fall_t is not None and cut.first_fall_t > cut.impact_t
    walk = str(trace_dir / "walk_P01.csv")
    assert (
        evaluate_file(walk, RATE, DetectorConfig(), start_before_onset=0.2).duration_s
        == evaluate_file(walk, RATE, DetectorConfig()).duration_s
    )


def test_start_before_onset_says_once_when_a_dataset_has_no_onsets(
    trace_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SisFall has no onset labels: `--start-before-onset` on it did nothing, silently."""
    sisfall = [str(sisfall_file(n)) for n in ("D01_SA01_R01.txt", "F02_SA01_R01.txt")]
    assert main([*sisfall, "--start-before-onset", "0.5", "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "evaluate: --start-before-onset: SisFall recordings have no labelled onset: "
        "they are played whole"
    ]
    assert main([str(trace_dir), "--start-before-onset", "0.5", "--no-progress"]) == 0
    assert "no labelled onset" not in capsys.readouterr().err


def test_a_negative_start_before_onset_is_refused(
    trace_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(trace_dir), "--start-before-onset", "-1", "--no-progress"]) == 2
    assert "--start-before-onset" in capsys.readouterr().err


def _fall_result(onset: float, impact: float, trips: list[float]) -> FileResult:
    before = [t for t in trips if t < onset]
    after = [t for t in trips if t >= onset]
    return FileResult(
        path="x",
        code="F15",
        subject="SA06",
        label="fall",
        tuning=False,
        duration_s=8.0,
        impact_t=impact,
        first_trip_t=trips[0] if trips else None,
        first_trip_kind="stumble" if trips else None,
        first_fall_t=None,
        trips=len(trips),
        no_recovery=False,
        dataset="kfall",
        group="walking fall",
        backward=True,
        onset_t=onset,
        trips_before_onset=len(before),
        first_trip_after_onset_t=after[0] if after else None,
    )


def test_onset_scoring_counts_early_late_and_missed_trips_apart() -> None:
    """Four falls, onset at 3.0 s and impact at 3.6 s: one tripped at 3.2 s,
    one before its onset (and again in time), one only after its impact, one
    never: the shares and the lead/delay figures follow the literature's rule."""
    results = [
        _fall_result(3.0, 3.6, [3.2]),
        _fall_result(3.0, 3.6, [2.5, 3.1]),
        _fall_result(3.0, 3.6, [5.0]),
        _fall_result(3.0, 3.6, []),
    ]
    figures = onset_figures(results)
    assert figures["falls"] == 4
    assert figures["tripped_between_onset_and_impact"] == 0.5
    assert figures["tripped_before_onset"] == 0.25
    assert figures["tripped_only_after_impact"] == 0.25
    assert figures["never_tripped_after_onset"] == 0.25
    assert figures["lead_to_impact_ms_median"] == pytest.approx(450.0)
    assert figures["delay_after_onset_ms_median"] == pytest.approx(150.0)


def test_a_trip_just_before_the_video_onset_counts_in_the_tolerant_figure_only() -> None:
    """Onset 3.0 s, impact 3.6 s: a trip 50 ms before the label (and none
    again until after the impact) is the same fall seen early, a trip 0.5 s
    before it is not; neither counts in the strict figure."""
    just_before = _fall_result(3.0, 3.6, [2.95, 5.0])
    long_before = _fall_result(3.0, 3.6, [2.5, 5.0])
    in_time = _fall_result(3.0, 3.6, [3.2])
    assert just_before.tripped_near_onset and not just_before.tripped_in_fall
    assert not long_before.tripped_near_onset
    figures = onset_figures([just_before, long_before, in_time])
    assert figures["tripped_between_onset_and_impact"] == pytest.approx(1 / 3)
    assert figures["tripped_near_onset"] == pytest.approx(2 / 3)
    assert figures["tripped_before_onset"] == pytest.approx(2 / 3)


# --- played backward in time ------------------------------------------------------------


def test_time_reversal_keeps_acceleration_and_negates_angular_rate() -> None:
    samples = [
        ImuSample(0.01 * i, 0.1 * i, -1.0, 0.02 * i, 10.0 + i, -5.0 * i, 0.5) for i in range(1, 6)
    ]
    out = list(time_reversed(samples))
    assert [s.t for s in out] == pytest.approx([0.01 * i for i in range(1, 6)])
    for s, r in zip(out, reversed(samples), strict=True):
        assert (s.ax, s.ay, s.az) == (r.ax, r.ay, r.az)
        assert (s.gx, s.gy, s.gz) == (-r.gx, -r.gy, -r.gz)


def test_reversed_walks_do_not_trip_and_falls_are_left_out(
    trace_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    walk = evaluate_file(str(trace_dir / "walk_P01.csv"), RATE, DetectorConfig(), reverse=True)
    assert walk.error is None and walk.trips == 0
    out = tmp_path / "reversed.json"
    assert main([str(trace_dir), "--reverse", "--json", str(out), "-j", "1"]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    assert doc["time_reversed"] is True
    assert doc["splits"]["all"]["fall"]["falls"] == 0
    assert doc["files"]["read"] == 2


def test_two_datasets_are_reported_side_by_side(
    trace_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Traces and a KFall tree in one run: each dataset has its own halves, and
    codes are qualified (SisFall's D01 is not KFall's D01)."""
    from tests.test_kfall import kfall_tree

    kfall = kfall_tree(tmp_path)
    out = tmp_path / "both.json"
    assert main([str(trace_dir), str(kfall), "--json", str(out), "-j", "1"]) == 0
    table = capsys.readouterr().out
    assert "KFall held-out" in table and "traces tuning" in table
    doc = json.loads(out.read_text())
    assert set(doc["datasets"]) == {"kfall", "trace"}
    assert doc["datasets"]["kfall"]["held-out"]["files"] == 2
    assert "kfall:F15" in doc["per_code"] or "kfall:F15" in doc["splits"]["all"]["per_code"]


def _posture_path(
    legs: list[tuple[float, float]], contacts: dict[float, float], rate: float = 200.0
) -> list[tuple[float, float, float, float]]:
    """``(t, ax, ay, az)`` of a sensor whose z axis points up when upright:
    the trunk's tilt follows ``legs`` (``(t_end, tilt_deg_end)``, linear from
    0 deg at 0 s), and at each ``contacts`` time a 20 ms contact of that peak
    |a| (g) along gravity."""
    out: list[tuple[float, float, float, float]] = []
    t0, th0 = 0.0, 0.0
    for t1, th1 in legs:
        for i in range(round((t1 - t0) * rate)):
            t = t0 + i / rate
            th = math.radians(th0 + (th1 - th0) * (t - t0) / (t1 - t0))
            g = 1.0
            for tc, peak in contacts.items():
                if abs(t - tc) < 0.01:
                    g = peak
            out.append((t, 0.0, g * math.sin(th), g * math.cos(th)))
        t0, th0 = t1, th1
    return out


def test_the_impact_of_an_unlabelled_fall_is_the_landing_the_trunk_lies_after() -> None:
    """A 2.0 g heel strike with the trunk upright at 2 s, then the trunk goes
    down (2.5-3.0 s) and lands at 1.8 g at 3.0 s, lying from then on: the
    impact is the landing, not the harder step (the whole recording's peak,
    the old rule: an elderly subject's step before her soft landing). A
    buttocks-first landing at 8 g with the trunk still upright (5.0 s), the
    trunk lying back 0.3 s later and the back meeting the floor at 3 g: the
    impact is the first, upright contact. A fall that ends seated (never
    lying) keeps the whole recording's peak."""
    up = (0.0, 0.0, 1.0)
    step_then_landing = _posture_path([(2.5, 0.0), (3.0, 85.0), (6.0, 85.0)], {2.0: 2.0, 3.0: 1.8})
    assert fall_impact_t(step_then_landing, up) == pytest.approx(3.0, abs=0.011)
    assert fall_impact_t(step_then_landing, None) == pytest.approx(3.0, abs=0.011)
    buttocks_first = _posture_path([(5.0, 5.0), (5.4, 85.0), (8.0, 85.0)], {5.0: 8.0, 5.4: 3.0})
    assert fall_impact_t(buttocks_first, up) == pytest.approx(5.0, abs=0.011)
    seated = _posture_path([(5.0, 5.0), (5.4, 30.0), (8.0, 30.0)], {4.0: 2.5, 5.0: 2.0})
    assert fall_impact_t(seated, up) == pytest.approx(4.0, abs=0.011)
    # A body dropping reads far less than 1 g, in no telling direction: 0.4 s
    # at 0.3 g pointing sideways before a seated landing is not lying.
    dropping = [
        (t, 0.3, 0.0, 0.0) if 4.5 <= t < 4.9 else (t, ax, ay, az)
        for t, ax, ay, az in _posture_path([(8.0, 10.0)], {3.0: 1.8, 4.9: 6.0})
    ]
    assert fall_impact_t(dropping, up) == pytest.approx(4.9, abs=0.011)
