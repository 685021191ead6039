"""``retroguard evaluate`` on the command line: the arguments, the detector settings (the
config, ``--rate``, ``--set``), the checks that turn bad input into a message and exit
status 2, and the outputs (the table, ``--json``, ``--per-file``).

The launcher registers the subcommand through :func:`add_parser`; ``python -m tools.evaluate``
runs :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from core.cliargs import finite_float, output_file, unreachable, whole_number
from core.errors import ConfigError
from firmware.detection import DetectorConfig
from firmware.detection.factory import build_detector
from hal.config import ImuConfig
from tools.datasets import DatasetFormatError, describe, discover, unlisted
from tools.datasets.resample import MAX_RATE_HZ, MIN_RATE_HZ
from tools.datasets.sisfall import ACCELEROMETERS
from tools.evaluate.figures import SPLITS, summarise
from tools.evaluate.report import DATASET_NAMES, format_report
from tools.evaluate.result import FileResult
from tools.evaluate.runner import Progress, run_files
from tools.evaluate.transforms import ROTATION_PRESETS, parse_rotation

DESCRIPTION = (
    "Score the streaming fall detector on recordings: a SisFall or KFall dataset directory, a "
    "directory of traces, or one file. Every recording is streamed sample by sample through "
    "the detector the monitor builds, at the monitor's sample rate. Held-out subjects (even "
    "numbers) are the figures that count (docs/detector.md)."
)


def add_parser(subparsers: Any) -> None:
    """Add ``evaluate`` to the ``retroguard`` command's subparsers."""
    p = subparsers.add_parser(
        "evaluate",
        help="score the detector on SisFall, KFall or a directory of traces",
        description=DESCRIPTION,
    )
    configure_parser(p)
    p.set_defaults(func=run)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        type=Path,
        nargs="+",
        help="SisFall_dataset or KFall directory, trace directory or a file (several: "
        "reported side by side)",
    )
    p.add_argument(
        "--config", type=Path, default=None, help="TOML config ([detector] and imu rate)"
    )
    p.add_argument(
        "--rate",
        type=float,  # nan and inf too are refused by the range check, naming the range
        default=None,
        help=f"monitor sample rate in Hz, {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} (default: config)",
    )
    p.add_argument(
        "--json", type=output_file, default=None, metavar="FILE", help="write figures as JSON"
    )
    p.add_argument(
        "--per-file",
        type=output_file,
        default=None,
        metavar="FILE",
        help=(
            "write every recording's result as CSV (what the figures are made of; with the"
            " first trip's time, kind and reason: which rule, with its figures)"
        ),
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=whole_number(1),
        default=None,
        help="worker processes, 1 or more (default: cores)",
    )
    p.add_argument(
        "--split", choices=SPLITS, default="held-out", help="which half the JSON headline is"
    )
    p.add_argument(
        "--no-mounting", action="store_true", help="ignore mountings declared by the recordings"
    )
    p.add_argument(
        "--rotate",
        default=None,
        metavar="SPEC",
        help="rotate every sample's axes (another mounting): x30,y90,... degrees about the "
        f"sensor axes, or one of {', '.join(ROTATION_PRESETS)}",
    )
    p.add_argument(
        "--sisfall-accel",
        choices=tuple(ACCELEROMETERS),
        default="adxl345",
        help="which of SisFall's two accelerometers to read (another sensor, same motion)",
    )
    p.add_argument(
        "--gyro-scale",
        type=finite_float,
        default=1.0,
        metavar="K",
        help="multiply every gyro reading by K (another gyro calibration; SisFall's readme "
        "factor against the ITG3200 datasheet's is K = 1.1428)",
    )
    p.add_argument(
        "--reverse",
        action="store_true",
        help="play every ADL recording backward in time (acceleration kept, angular rate "
        "negated: forward walking becomes a backward-walking proxy); falls are left out",
    )
    p.add_argument(
        "--start-before-onset",
        type=finite_float,
        default=None,
        metavar="S",
        help="start every onset-labelled recording S seconds before its labelled fall onset "
        "(a detector started just before the fall: its warm-up meets the fall)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one [detector] setting, checked as the config's are (for exploring; "
        "repeatable)",
    )


def _config_from_args(args: argparse.Namespace) -> tuple[DetectorConfig, float]:
    """The detector settings and the monitor's sample rate: the config's (or the defaults),
    with ``--rate`` and every ``--set``; :class:`ConfigError` for a value the monitor's config
    would refuse, with the words its check uses."""
    detector = DetectorConfig()
    rate = ImuConfig().sample_rate_hz
    if args.config is not None:
        from firmware.config import load_config

        cfg = load_config(args.config)
        detector = cfg.detector
        rate = cfg.imu.sample_rate_hz
    if args.rate is not None:
        if not MIN_RATE_HZ <= args.rate <= MAX_RATE_HZ:  # also refuses nan
            raise ConfigError(
                [
                    f"evaluate: --rate {args.rate:g}: must be between {MIN_RATE_HZ:g} and "
                    f"{MAX_RATE_HZ:g} Hz (the rates recordings are resampled between)"
                ]
            )
        rate = args.rate
    if args.set:
        detector = _with_settings(detector, args.set)
    return detector, rate


def _with_settings(detector: DetectorConfig, items: Sequence[str]) -> DetectorConfig:
    """``detector`` with ``FIELD=VALUE`` settings (TOML values, a bare word a string),
    checked as a config file's ``[detector]`` table is, with the same words (``--set ...``
    where a file's name would be). An unknown name or a wrong type is refused; a value the
    monitor's config would refuse for its range or against another setting is taken, with a
    warning for each, because ``--set`` is for exploring: the ablations in docs/detector.md
    switch rules off with values no monitor may run (``lying_rise_deg=0``,
    ``hard_descent_mps=-100``)."""
    import tomllib

    from core import tomlschema
    from firmware.config import parse_config

    table: dict[str, Any] = asdict(detector)
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError([f"evaluate: --set {item!r}: expected FIELD=VALUE"])
        try:
            value = tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            value = text  # not a TOML value: the type check names it
        except ValueError:  # int()'s limit, which tomllib lets through (a config says the same)
            raise ConfigError(
                [f"--set {name.strip()}: a number longer than 4,300 digits"]
            ) from None
        except RecursionError:  # tomllib recurses for each nested array or inline table
            raise ConfigError([f"--set {name.strip()}: nested too deeply"]) from None
        table[name.strip()] = value
    source = "--set " + " ".join(items)
    try:
        return parse_config({"detector": table}, source).detector
    except ConfigError as refused:
        problems: list[str] = []
        built: DetectorConfig = tomlschema.build(DetectorConfig, table, problems, None, "detector.")
        if problems:  # names and types: nothing to explore
            raise ConfigError([f"{source}: {p}" for p in problems]) from None
        for line in refused.problems:
            print(
                f"warning: {line} (taken for this evaluation: a monitor's config refuses it)",
                file=sys.stderr,
            )
        return built


def _runnable(config: DetectorConfig, rate_hz: float, source: str) -> None:
    """:class:`ConfigError` if the detector cannot run with ``config`` at all (a time constant
    of 0 that ``--set`` took with a warning divides by zero): tried on 2 s of standing still,
    here, rather than as a traceback from every worker."""
    from core.samples import ImuSample

    try:
        detector = build_detector(config, rate_hz)
        for n in range(int(2 * rate_hz)):
            detector.update(ImuSample(n / rate_hz, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0))
    except (ArithmeticError, ValueError) as exc:
        raise ConfigError(
            [f"{source}: the detector cannot run with these settings ({exc})"]
        ) from None


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, optionally write JSON; 0 on success, 2 on bad input
    (settings, a path with no recordings, or none that could be read)."""
    try:
        config, rate = _config_from_args(args)
        if args.set:
            _runnable(config, rate, "--set " + " ".join(args.set))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    paths: list[Path] = []
    for root in args.path:
        reach = unreachable(root)
        if reach is not None:
            print(f"evaluate: {reach}", file=sys.stderr)
            return 2
        if not root.exists():
            print(f"evaluate: {root}: no such file or directory", file=sys.stderr)
            return 2
        found = discover(root)
        if not found and (why := unlisted(root)) is not None:
            print(f"evaluate: {why}", file=sys.stderr)
            return 2
        if not found:
            print(
                f"evaluate: no recordings found in {root} (SisFall or KFall files, or traces)",
                file=sys.stderr,
            )
            return 2
        paths.extend(found)
    if not (math.isfinite(args.gyro_scale) and args.gyro_scale > 0):
        print(
            f"evaluate: --gyro-scale {args.gyro_scale}: must be a positive number", file=sys.stderr
        )
        return 2
    try:
        rotation = parse_rotation(args.rotate) if args.rotate else None
    except ValueError as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 2
    if args.start_before_onset is not None and not (
        math.isfinite(args.start_before_onset) and args.start_before_onset >= 0
    ):
        print(
            f"evaluate: --start-before-onset {args.start_before_onset}: must be a number >= 0",
            file=sys.stderr,
        )
        return 2
    if args.reverse:
        paths = [p for p in paths if not _is_fall(p)]
        if not paths:
            print("evaluate: --reverse: no ADL recordings to play backward", file=sys.stderr)
            return 2
    progress = None if args.no_progress else Progress(sys.stderr)
    results = run_files(
        paths,
        rate,
        config,
        use_mounting=not args.no_mounting,
        rotation=rotation,
        sisfall_accelerometer=args.sisfall_accel,
        gyro_scale=args.gyro_scale,
        reverse=args.reverse,
        start_before_onset=args.start_before_onset,
        jobs=args.jobs,
        progress=progress,
    )
    if not any(r.error is None for r in results):
        print(
            f"evaluate: no recording in {', '.join(map(str, args.path))} could be read "
            f"({len(results)} skipped; first: {results[0].error})",
            file=sys.stderr,
        )
        return 2
    if args.start_before_onset is not None:
        unlabelled = sorted(
            {DATASET_NAMES.get(r.dataset, r.dataset) for r in results if r.error is None}
            - {DATASET_NAMES.get(r.dataset, r.dataset) for r in results if r.onset_t is not None}
        )
        if unlabelled:
            print(
                f"evaluate: --start-before-onset: {' and '.join(unlabelled)} recordings have no "
                "labelled onset: they are played whole",
                file=sys.stderr,
            )
    doc = summarise(results, args.split, config)
    doc["sample_rate_hz"] = rate
    if args.rotate:
        doc["rotation"] = {"spec": args.rotate, "matrix": rotation}
    if args.sisfall_accel != "adxl345":
        doc["sisfall_accelerometer"] = args.sisfall_accel
    if args.gyro_scale != 1.0:
        doc["gyro_scale"] = args.gyro_scale
    if args.reverse:
        doc["time_reversed"] = True
    if args.start_before_onset is not None:
        doc["start_before_onset_s"] = args.start_before_onset
    print(format_report(doc))
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    if args.per_file is not None:
        write_per_file(args.per_file, results)
    return 0


def write_per_file(path: Path, results: Sequence[FileResult]) -> None:
    """One CSV row per recording, every :class:`FileResult` field."""
    import csv

    names = [f.name for f in fields(FileResult)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for r in results:
            w.writerow(["" if getattr(r, n) is None else getattr(r, n) for n in names])


def _is_fall(path: Path) -> bool:
    """Whether a recording is a fall (a file that cannot be described is kept:
    evaluate reports it as skipped)."""
    try:
        return describe(path).label == "fall"
    except (DatasetFormatError, OSError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.evaluate PATH`` (the same as ``retroguard evaluate``)."""
    parser = argparse.ArgumentParser(prog="retroguard evaluate", description=DESCRIPTION)
    configure_parser(parser)
    return run(parser.parse_args(argv))
