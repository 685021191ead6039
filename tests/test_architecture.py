"""The tree shows the architecture: each package imports only downward (import-linter).

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); these tests
run them on the project, and on a small tree of the same package names with
one forbidden import each, so a contract that stopped biting would fail here.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("core", "hal", "sim", "firmware", "tools", "caregiver", "launcher")


def _lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _contracts() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    section: dict[str, object] = data["tool"]["importlinter"]
    return section


def _evaluate_modules() -> list[str]:
    """The modules of tools.evaluate that its layers contract names."""
    contracts = _contracts()["contracts"]
    assert isinstance(contracts, list)
    layers = next(c for c in contracts if c.get("containers") == ["tools.evaluate"])["layers"]
    return [name.strip() for layer in layers for name in layer.split("|")]


def test_the_layers_are_the_ones_the_readme_draws() -> None:
    contracts = _contracts()["contracts"]
    assert isinstance(contracts, list)
    layers = next(c for c in contracts if c["type"] == "layers")
    assert layers["layers"] == ["launcher", "tools | caregiver", "firmware | sim", "hal", "core"]
    caregiver = next(c for c in contracts if c.get("source_modules") == ["caregiver"])
    assert set(caregiver["forbidden_modules"]) == {"firmware", "hal", "sim", "tools", "launcher"}
    lean = next(c for c in contracts if "numpy" in c.get("forbidden_modules", []))
    assert set(lean["source_modules"]) == {"core", "hal", "firmware"}


def test_the_project_keeps_every_import_contract() -> None:
    result = _lint(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imports", "complaint"),
    [
        ("firmware/loop.py", "import sim.chip", "firmware is not allowed to import sim"),
        ("hal/factory.py", "import sim.chip", "hal is not allowed to import sim"),
        ("firmware/cli.py", "import tools.evaluate", "firmware is not allowed to import tools"),
        ("firmware/app.py", "import caregiver.web", "firmware is not allowed to import caregiver"),
        ("caregiver/ingest.py", "import firmware.loop", "caregiver is not allowed to import"),
        ("caregiver/web.py", "import hal.factory", "caregiver is not allowed to import"),
        ("core/protocol.py", "import firmware.loop", "core is not allowed to import firmware"),
        ("firmware/batch.py", "import numpy", "firmware is not allowed to import numpy"),
        (
            "caregiver/alerts.py",
            "import sqlite3",
            "caregiver.alerts is not allowed to import sqlite3",
        ),
        (
            "caregiver/routes/api.py",
            "import caregiver.service",
            "caregiver.routes is not allowed to import caregiver.service",
        ),
        (
            "tools/evaluate/figures.py",
            "import tools.evaluate.report",
            "tools.evaluate.figures is not allowed to import tools.evaluate.report",
        ),
        (
            "tools/evaluate/figures.py",
            "import tools.evaluate.scoring",
            "tools.evaluate.figures is not allowed to import tools.evaluate.scoring",
        ),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, imports: str, complaint: str
) -> None:
    for package in (*PACKAGES, "caregiver/routes", "caregiver/storage", "tools/evaluate"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name in ("sim/chip.py", "caregiver/web.py", "firmware/loop.py"):
        (tmp_path / name).write_text("")
    for name in _evaluate_modules():
        (tmp_path / f"tools/evaluate/{name}.py").write_text("")
    for name in ("service", "ingest", "notify"):  # what the web layer must not import
        (tmp_path / f"caregiver/{name}.py").write_text("")
    (tmp_path / "hal/factory.py").write_text("")
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy/__init__.py").write_text("")
    (tmp_path / module).write_text(f"def lazily() -> None:\n    {imports}\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    result = _lint(tmp_path, tmp_path)
    assert result.returncode != 0
    assert complaint in result.stdout, result.stdout


def test_the_readme_draws_every_package_of_the_tree_in_layer_order() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    drawn = [
        line.split()[0].rstrip("/")
        for line in readme.split("Packages import only downward", 1)[1].split("```")[1].splitlines()
        if line.strip() and line.startswith(" ") and line.split()[0].endswith("/")
    ]
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert set(drawn) == packages == set(_contracts()["root_packages"])  # type: ignore[arg-type]
    layers = [
        name
        for layer in ("launcher", "tools | caregiver", "firmware | sim", "hal", "core")
        for name in layer.split(" | ")
    ]
    assert drawn == layers
