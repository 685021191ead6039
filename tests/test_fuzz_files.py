"""Properties: the files people give the monitor (its config, plan files, IMU traces) are
read or refused with the file and the key or line, never a crash (safety rule 6), and what
``config --check`` accepts, ``run`` runs. Hypothesis draws them (``tests/fuzz_support.py``);
none of these found a crash (``tests/test_input_fuzz.py``'s seeded mutations had found and
fixed the earlier ones), so each is kept small: they guard the readers against a change.
"""

from __future__ import annotations

import contextlib
import io
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from core.clock import SimClock
from core.errors import ConfigError
from core.protocol.plan import PlanInvalid, plan_from_json
from firmware.app import build_app
from firmware.config import parse_config
from firmware.preflight import check_or_raise
from firmware.session.plan import parse_plan
from firmware.session.runner import attach_session, detach_session
from sim.backends import simulated_hardware
from tests.app_support import run_monitor
from tests.fuzz_support import as_json, fuzz, scalars
from tools.config_example import example_config_text
from tools.replay import replay

# ------------------------------------------------------------------------------- config

EXAMPLE = tomllib.loads(example_config_text())
FIXED = {"storage": {"database"}, "session": {"voice", "control_socket", "prompt_cache"}}
"""Left as the test sets them: a database in a temporary folder, no speech, no socket."""

toml_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=20),
    st.datetimes(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
"""What a TOML value can be (tomllib reads nan, inf and dates too)."""


def _near(default: Any) -> st.SearchStrategy[Any]:
    """Values of the default's type around it: in range, at the edges, past them."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(-1, max(3, 3 * default)) | st.sampled_from(
            (0, 1, 2, 4, 8, 16, 44, 94, 100, 200, 250, 1000, 2000, 2**63 - 1)
        )
    if isinstance(default, float):
        return st.floats(0.0, max(1.0, 3 * default)) | st.sampled_from(
            (0.0, 5e-324, 1e-300, 1.0, default / 2, default * 2, 1e308)
        )
    if isinstance(default, list):
        return st.lists(st.floats(-50, 50), min_size=3, max_size=3)
    return st.just(default)


def _table(name: str, table: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys: dict[str, st.SearchStrategy[Any]] = {}
    for key, default in table.items():
        if key in FIXED.get(name, ()):
            continue
        if isinstance(default, dict):
            keys[key] = _table(f"{name}.{key}", default)
        else:
            keys[key] = _near(default) | _near(default) | toml_values
    return st.fixed_dictionaries({}, optional=keys)


changes = st.fixed_dictionaries(
    {}, optional={name: _table(name, t) for name, t in EXAMPLE.items() if isinstance(t, dict)}
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@fuzz(60)
@given(changes)
def test_what_the_check_accepts_the_monitor_runs_and_it_refuses_by_key(
    folder: Path, changes: dict[str, dict[str, Any]]
) -> None:
    """``config --check`` and ``run`` read a file with the same :func:`load_config` and
    :func:`check_or_raise` (launcher/cli.py); ``run`` then builds the monitor and its guided
    session. So: anything refused is a :class:`ConfigError` naming the file and a key, and
    anything accepted builds and runs (the simulated hardware the example config names)."""
    data: dict[str, Any] = {name: dict(table) for name, table in EXAMPLE.items()}
    data["storage"]["database"] = str(folder / "events.db")
    data["session"]["voice"] = "off"
    for name, table in changes.items():
        for key, value in table.items():
            merge = isinstance(value, dict) and isinstance(data[name].get(key), dict)
            data[name][key] = {**data[name][key], **value} if merge else value
    try:
        config = parse_config(data, "fuzz.toml")
        check_or_raise(config, "fuzz.toml")
    except ConfigError as refused:
        assert refused.problems
        assert all(p.startswith("fuzz.toml: ") for p in refused.problems), refused.problems
        event("refused")
        return
    event("accepted")
    clock = SimClock()
    hardware = simulated_hardware(config.imu, config.gpio, clock)
    app = build_app(config, clock, imu=hardware.imu_rig.imu, gpio=hardware.gpio, courier=None)
    try:
        runner = attach_session(app, control_socket=None, record=False)
        app.start()
        run_monitor(app.monitor, clock, 0.5)
        detach_session(app, runner)
        assert app.controller.state.value in ("STARTING", "STANDBY"), app.controller.transitions
    finally:
        app.close()


# -------------------------------------------------------------------------------- plans

numbers = st.one_of(st.floats(), st.integers(), st.sampled_from((10**400, 0.16, 60.0001, 1e-300)))
notes = st.text(max_size=50) | st.sampled_from(("0 mph", "0.0km/h", "-1", "\u0660 mph", ".0"))
intervals = st.fixed_dictionaries(
    {},
    optional={
        "direction": st.sampled_from(("backward", "forward", "rest")) | scalars,
        "minutes": numbers | scalars,
        "seconds": numbers,
        "speed": notes | scalars,
        "pace": scalars,
    },
)
plans = st.fixed_dictionaries(
    {},
    optional={
        "name": notes | scalars,
        "speed": notes | scalars,
        "interval": st.lists(intervals, max_size=4) | scalars,
        "intervals": st.lists(intervals, max_size=62) | scalars,
        "length": scalars,
    },
)


@fuzz(150)
@given(plans)
def test_a_plan_file_or_command_is_a_plan_or_refused_naming_the_field(plan: dict[str, Any]) -> None:
    """A plan file (TOML or JSON: :func:`parse_plan`) and the JSON of ``cmd/plan`` and the
    dashboard (:func:`plan_from_json`)."""
    with contextlib.suppress(ConfigError):
        parse_plan(plan, "plan.toml")
    try:
        plan_from_json(as_json(plan))
    except PlanInvalid as refused:
        assert all(p.split(":")[0] for p in refused.problems), refused.problems


# ------------------------------------------------------------------------------- traces

HEADER = (
    "# format: retroguard-trace/1",
    "# sample_rate_hz: 200",
    "# units: t=s accel=g gyro=deg/s",
    "# sensor: MPU-6050",
    "# mounting: x=right y=down z=forward",
    "# label: fall",
)
COLUMNS = ("t,ax,ay,az,gx,gy,gz", "t,ax,ay,az,gx,gy", "t,ax,ay,az,gx,gy,gz,x")
cells = st.one_of(
    st.floats(-40, 40).map(lambda x: f"{x:.6f}"),
    st.sampled_from(("nan", "inf", "1e999", "", " ", "1_0", "0x10", "+1", "-0")),
    st.text(max_size=5),
)


@st.composite
def trace_files(draw: st.DrawFn) -> bytes:
    """A trace as written, then damaged: header lines dropped or added, columns wrong, rows
    of odd cells, times that stand still or jump, line ends mixed, cut short, bytes added."""
    lines = list(HEADER)
    for _ in range(draw(st.sampled_from((0, 0, 1, 2)))):
        at = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            del lines[at]
        else:
            key = draw(st.sampled_from(("sample_rate_hz", "impact_t", "mounting", "label", "x")))
            lines.insert(at, f"# {key}: {draw(cells)}")
    lines.append(draw(st.sampled_from(COLUMNS[:1] * 4 + COLUMNS[1:])))
    step = draw(st.sampled_from((0.005, 0.005, 0.005, 0.0, 1e-7, 61.0)))
    for row in range(draw(st.integers(0, 25))):
        width = draw(st.sampled_from((7,) * 20 + (6, 8)))
        odd = draw(st.integers(0, 29)) == 17  # one row in 30 (the simplest draw is clean)
        rest = [draw(cells) if odd else "0.100000" for _ in range(width - 1)]
        lines.append(",".join([f"{row * step:.6f}", *rest]))
    data = draw(st.sampled_from(("\n", "\r\n"))).join(lines).encode() + b"\n"
    damage = draw(st.integers(0, 5))  # 0-3: none (the simplest draw is a whole file)
    if damage == 4:
        data = data[: len(data) - draw(st.integers(1, 80))]  # a copy cut short
    elif damage == 5:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


@fuzz(60)
@given(trace_files())
def test_a_damaged_trace_is_replayed_or_refused_with_its_line(folder: Path, data: bytes) -> None:
    """``retroguard replay`` (the reader ``evaluate`` uses too): exit 0, or 2 with
    ``path:line: what`` (docs/trace-format.md)."""
    path = folder / "walk.csv"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = replay(path)
    assert status in (0, 2)
    event(f"exit status {status}")
    if status == 2:
        assert err.getvalue().startswith(f"retroguard replay: {path}:"), err.getvalue()
