"""``benchmarks/monitor_cpu.py --before TREE`` runs against checkouts from before issue 15
item 8's changes: the monitor child, imported from the older tree, does without what that tree
lacks (the loop's log writer thread, interrupt pacing) instead of failing to import it."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

OLDER_TREES = {
    "3691377^": "interrupt",
    # the commit before the loop's log records had a thread of their own
    # (core.logsetup.logging_off_this_thread): interrupt pacing, no log writer thread
    "9ea2815^1": "poll",
    # main before the interrupt-pacing merge (branch 'irq'): its config refuses imu.pacing, its
    # simulation has no sim.backends.simulated_imu_rig; its monitor polls, as it shipped
}


def older_tree(commit: str, into: Path) -> Path | None:
    """The project's packages as they were at ``commit`` (None in a clone without it)."""
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
    )
    if known.returncode != 0:
        return None
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "core", "hal", "sim", "firmware", "launcher"],
        capture_output=True,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def benchmark() -> ModuleType:
    """The benchmark, with no warm-up before its window: these tests read what its rows and
    counts are made of, not figures free of start-up work (its 3 s, a sleep, were 12 s of the
    file)."""
    spec = importlib.util.spec_from_file_location(
        "monitor_cpu", ROOT / "benchmarks" / "monitor_cpu.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.WARM_UP_S = 0.0
    return module


BREAKDOWN_WITH = "9ea2815^1"
"""The older tree run side by side with ``--breakdown`` (the other one without): each run's
column for this tree serves a test of the breakdown, or of the default, as well."""


@dataclass(frozen=True)
class Run:
    bench: ModuleType
    tree: Path | None
    """The older tree, None in a clone without its commit (then this tree ran alone)."""
    results: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """``measure(["interrupt:2"], 0.5, False, TREE, breakdown)`` for an older tree, run once
    for the module: each run's arming waits out the sensor-worn check's first block (seconds
    of real time), so the tests of this tree's breakdown and default read its column of the
    runs against the older trees rather than arm monitors of their own (nothing reads a run's
    results twice: each test reads its own counts)."""
    done: dict[str, Run] = {}

    def run(commit: str) -> Run:
        if commit not in done:
            tree = older_tree(commit, tmp_path_factory.mktemp("before"))
            bench = benchmark()
            breakdown = commit == BREAKDOWN_WITH
            done[commit] = Run(
                bench, tree, bench.measure(["interrupt:2"], 0.5, False, tree, breakdown)
            )
        return done[commit]

    return run


@pytest.mark.parametrize(("commit", "paced_by"), OLDER_TREES.items())
def test_monitor_cpu_runs_before_and_after_against_an_older_tree(
    commit: str, paced_by: str, runs: Callable[[str], Run]
) -> None:
    run = runs(commit)
    if run.tree is None:
        pytest.skip(f"{commit} is not in this clone's history (shallow clone?)")
    bench, tree, results = run.bench, run.tree, run.results
    assert set(results) == {"interrupt:2 before", "interrupt:2"}
    before, after = results["interrupt:2 before"], results["interrupt:2"]
    # (A tree with interrupt pacing may fall back to polling on a loaded machine, if the
    # simulated chip's clock thread misses its edges: its mode at the end is not asserted.)
    no_interrupt = f"{tree} has no interrupt pacing: polled the FIFO"
    if paced_by == "poll":
        assert (before["pacing"], before["pacing_check"]) == ("poll", no_interrupt)
    else:
        assert before["pacing_check"] != no_interrupt
    for result in (before, after):  # the table's rows come out of both
        assert bench.rows(result)["paced by"] == result["pacing"]


def test_the_breakdown_times_the_session_runner_apart_from_the_loops_own_hooks(
    runs: Callable[[str], Run],
) -> None:
    """``--breakdown`` wraps every hook, wherever the app put the session runner (it goes
    before the link's poll): each wake calls the runner once, timed as the session's, and the
    link, LED, health and watchdog hooks as the loop's."""
    result = runs(BREAKDOWN_WITH).results["interrupt:2"]
    assert result["breakdown"]
    start, end = result["marks"]["start"], result["marks"]["end"]
    calls = {
        part: end["timed_calls"][part] - start["timed_calls"][part] for part in end["timed_calls"]
    }
    wakes = end["iterations"] - start["iterations"]
    assert wakes > 0
    assert calls["session"] == wakes
    assert calls["hooks"] >= 4 * wakes  # the link's poll, its requests, the LED, the health
    assert end["session_cpu_s"] > start["session_cpu_s"]
    assert end["hooks_cpu_s"] > start["hooks_cpu_s"]


def test_by_default_only_what_the_estimate_subtracts_is_timed(
    runs: Callable[[str], Run],
) -> None:
    """A timed call costs the loop more than the correction takes off, so a part the estimate
    keeps (the decision, the session runner) is timed only with ``--breakdown``: without it,
    its rows say so, and the chip model's bus answers (which the estimate subtracts) are
    still timed."""
    (default,) = (commit for commit in OLDER_TREES if commit != BREAKDOWN_WITH)
    run = runs(default)
    bench, result = run.bench, run.results["interrupt:2"]
    assert not result["breakdown"]
    start, end = result["marks"]["start"], result["marks"]["end"]
    calls = {
        part: end["timed_calls"][part] - start["timed_calls"][part] for part in end["timed_calls"]
    }
    assert calls["decision"] == calls["session"] == 0
    assert calls["chip_bus"] > 0
    table = bench.rows(result)
    assert table["    deciding (safety + detector), %"] == "(--breakdown)"
    assert table["    session runner hook, %"] == "(--breakdown)"
    part = bench.shares(result)
    assert table["firmware estimate (minus all the above), %"] == f"{100 * part['estimate']:.2f}"


@pytest.mark.parametrize("repeat", ["0", "-1", "two"])
def test_a_repeat_that_is_not_a_positive_count_is_refused(
    repeat: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["monitor_cpu.py", "--repeat", repeat])
    with pytest.raises(SystemExit) as exit_:
        benchmark().main()
    assert exit_.value.code == 2
    assert "--repeat" in capsys.readouterr().err
