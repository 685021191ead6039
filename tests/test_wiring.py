"""The wiring guide, its diagram and the config defaults describe the same pins."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from hal.config import GpioConfig, PinConfig

ROOT = Path(__file__).resolve().parent.parent
WIRING = ROOT / "wiring"


def load_diagram_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wiring_diagram", WIRING / "diagram.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


diagram = load_diagram_module()
DEFAULT_PINS = dataclasses.asdict(PinConfig())


def readme_pin_table() -> dict[str, tuple[int, int]]:
    """``{PinConfig field: (BCM, physical)}`` from the pin table in wiring/README.md."""
    rows = re.findall(
        r"^\|[^|]*\| `gpio\.pins\.(\w+)` \| GPIO(\d+) \| (\d+) \|",
        (WIRING / "README.md").read_text(),
        flags=re.M,
    )
    return {name: (int(bcm), int(phys)) for name, bcm, phys in rows}


def test_committed_svg_is_what_the_source_generates() -> None:
    svg = diagram.render(diagram.load_source())
    committed = (WIRING / "diagram.svg").read_text(encoding="utf-8")
    assert svg == committed, "wiring/diagram.svg is stale: run python wiring/diagram.py"


def test_render_is_deterministic() -> None:
    source = diagram.load_source()
    assert diagram.render(source) == diagram.render(source)


def test_diagram_pins_equal_config_defaults() -> None:
    assert diagram.pins_by_config(diagram.load_source()) == DEFAULT_PINS


def test_readme_pin_table_equals_config_defaults() -> None:
    table = readme_pin_table()
    assert {name: bcm for name, (bcm, _) in table.items()} == DEFAULT_PINS


def test_physical_pins_agree_everywhere() -> None:
    source = diagram.load_source()
    in_diagram = {p["config"]: p["physical"] for p in source["pin"] if "config" in p}
    in_readme = {name: phys for name, (_, phys) in readme_pin_table().items()}
    assert in_diagram == in_readme
    for name, phys in in_readme.items():
        assert diagram.GPIO_AT_PHYSICAL[phys] == DEFAULT_PINS[name], name


def test_bad_source_is_rejected() -> None:
    source = diagram.load_source()
    source["pin"] = [dict(p) for p in source["pin"]]
    relay = next(p for p in source["pin"] if p.get("config") == "relay")
    relay["physical"] = 12
    with pytest.raises(diagram.SourceError, match="physical 12 is not GPIO17"):
        diagram.validate(source)
    relay["physical"] = 11
    relay["to"] = ["hold.NOPE"]
    with pytest.raises(diagram.SourceError, match=r"no terminal hold\.NOPE"):
        diagram.validate(source)


def test_every_terminal_of_the_diagram_is_wired() -> None:
    """A terminal drawn with no wire reads as "leave it open": the help button's COM was,
    while the guide (section 6) wires S2 to GND."""
    source = diagram.load_source()
    gnd = next(p for p in source["pin"] if p.get("name") == "GND")
    assert "help.COM" in gnd["to"]
    source["pin"] = [dict(p) for p in source["pin"]]
    gnd = next(p for p in source["pin"] if p.get("name") == "GND")
    gnd["to"] = [ref for ref in gnd["to"] if ref != "help.COM"]
    with pytest.raises(diagram.SourceError, match=r"terminal help\.COM is connected to nothing"):
        diagram.validate(source)


def guide_sections() -> dict[int, str]:
    """``{N: text}`` of each numbered ``## N.`` section of wiring/README.md."""
    parts = re.split(r"^## (\d+)\. ", (WIRING / "README.md").read_text(), flags=re.M)
    return {int(number): text for number, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_config_s_references_to_the_guide_name_the_right_section() -> None:
    """The commented config a technician edits (``retroguard config --example``, written by
    scripts/install-pi.sh) points into the guide: each key that names a section of it must be
    named in that section (help_button_wired pointed at section 7, the coil drivers)."""
    from tools.config_example import example_config_text

    sections = guide_sections()
    comment: list[str] = []
    checked = []
    for line in example_config_text().splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# "))
            continue
        key = line.partition("=")[0].strip()
        text = " ".join(comment)
        comment = []
        for number in re.findall(r"wiring/README\.md, section (\d+)", text):
            checked.append(key)
            assert key in sections[int(number)], f"{key}: section {number} does not name it"
    assert {"help_button_wired", "relay_sense_wired", "pacing"} <= set(checked)


def test_the_static_drive_section_says_it_needs_bench_rig() -> None:
    """Without gpio.bench_rig = true a static drive is refused at start (firmware/preflight.py):
    a technician following section 10 alone got a monitor that would not start."""
    assert "gpio.bench_rig = true" in guide_sections()[10]


def test_the_guide_says_what_a_reset_let_go_before_the_chirp_does() -> None:
    """Such a press is refused, no fault (firmware/safety.py; tests/test_safety.py has the
    behaviour): section 6 used to say the latch stayed open and the monitor faulted, as it
    did before the refusal, so a technician expected a FAULT and heard the refusal instead."""
    from firmware.presses import ARM_HOLD_S
    from firmware.safety import LET_GO_REASON

    section = " ".join(guide_sections()[6].split())
    assert f'"{LET_GO_REASON}"' in section
    assert f"{ARM_HOLD_S:g} s" in section


def test_heartbeat_hold_time_matches_the_guide() -> None:
    """The guide's hold time (≈ 50 ms) is the one the simulation models by default."""
    assert GpioConfig().heartbeat_hold_s == pytest.approx(0.05)
    assert "gpio.heartbeat_hold_s = 0.05" in (WIRING / "README.md").read_text()


STUB_LGPIO = """
import os
# lgpio 0.2: importing it opens its notification FIFO, "%s/.lgd-nfy%d" in lguGetWorkDir():
# getenv("LG_WD"), else getcwd() (lgNotify.c, lgUtil.c).
_fifo = os.path.join(os.environ.get("LG_WD") or os.getcwd(), ".lgd-nfy0")
os.mkfifo(_fifo)
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(_fifo + "\\n")
"""
STUB_GPIOZERO = """
class DigitalOutputDevice:
    toggles = 0

    def __init__(self, pin, initial_value=False, pin_factory=None):
        pass

    def toggle(self):
        DigitalOutputDevice.toggles += 1
        if DigitalOutputDevice.toggles == 3:
            raise KeyboardInterrupt  # the technician's Ctrl-C
"""


def test_the_heartbeat_test_script_leaves_no_lgpio_fifo_behind(tmp_path: Path) -> None:
    """Section 5's multimeter script, run as the guide says, with lgpio and gpiozero stood in
    for (the stand-in lgpio makes its FIFO where the real one does): before, every run left a
    root-owned ``.lgd-nfy0`` in the folder it was run from."""
    section = guide_sections()[5]
    match = re.search(r"python - <<'EOF'\n(.*?)\n *EOF\n", section, flags=re.S)
    assert match is not None, "section 5 no longer runs its script through a here-document"
    script = textwrap.dedent(match.group(1))
    stubs = tmp_path / "stubs"
    (stubs / "gpiozero" / "pins").mkdir(parents=True)
    (stubs / "lgpio.py").write_text(STUB_LGPIO)
    (stubs / "gpiozero" / "__init__.py").write_text(STUB_GPIOZERO)
    (stubs / "gpiozero" / "pins" / "__init__.py").write_text("")
    (stubs / "gpiozero" / "pins" / "lgpio.py").write_text(
        "import lgpio\n\n\nclass LGPIOFactory:\n    pass\n"
    )
    here = tmp_path / "here"  # where the technician runs it
    here.mkdir()
    log = tmp_path / "fifos.log"
    env = {k: v for k, v in os.environ.items() if k != "LG_WD"}
    env.update(PYTHONPATH=str(stubs), STUB_LOG=str(log))
    result = subprocess.run(
        [sys.executable, "-"],
        input=script,
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "KeyboardInterrupt" in result.stderr, result.stderr  # it ran until the Ctrl-C
    fifos = log.read_text().splitlines()
    assert len(fifos) == 1  # lgpio was imported once, and made its FIFO
    assert list(here.iterdir()) == []
    assert not Path(fifos[0]).exists() and not Path(fifos[0]).parent.exists()


SVG_NS = "{http://www.w3.org/2000/svg}"
LABEL_CHAR_W = 7.0
"""A generous width per character of the 11 px power labels (DejaVu Sans: about 6.5 px)."""


def test_no_pi_wire_runs_over_a_terminal_or_a_label_it_does_not_belong_to() -> None:
    """A red wire from the header drawn through a block's terminal dot reads as connected to
    it. The tenth signal pin (the help button's GPIO25) got the lane 2 px left of the blocks'
    edge, so its wire ran down through the dots of the coil driver's +5V and GND, the sense's
    OUT, +5V, 3V3 and GND and the reset button's S1b and COM: GPIO25 "wired" to 5 V. The lane
    before it ran through the power labels ("5V [2]")."""
    import xml.etree.ElementTree as ET

    svg = ET.fromstring(diagram.render(diagram.load_source()))
    dots = [
        (float(c.get("cx", 0)), float(c.get("cy", 0)), float(c.get("r", 0)))
        for c in svg.iter(f"{SVG_NS}circle")
        if c.get("fill") == "#33507a"
    ]
    labels = []
    for t in svg.iter(f"{SVG_NS}text"):
        if t.get("fill") == "#8a3b00":  # power net labels, drawn right-aligned at x
            x, y, width = float(t.get("x", 0)), float(t.get("y", 0)), len(t.text or "")
            labels.append((x - LABEL_CHAR_W * width, x, y - 11, y + 2, t.text))
    crossings = []
    wires = [p for p in svg.iter(f"{SVG_NS}polyline") if p.get("stroke") == "#b01c1c"]
    assert len(wires) == sum(len(p["to"]) for p in diagram.load_source()["pin"] if "config" in p)
    for wire in wires:
        points = [tuple(map(float, xy.split(","))) for xy in wire.get("points", "").split()]
        (_, y0), (lane, _), (_, y1), (end_x, end_y) = points
        top, bottom = min(y0, y1), max(y0, y1)
        for cx, cy, r in dots:
            if (cx, cy) != (end_x, end_y) and abs(cx - lane) <= r + 2 and top <= cy <= bottom:
                crossings.append(f"wire to y={end_y:.0f} over the terminal at y={cy:.0f}")
        for left, right, label_top, label_bottom, text in labels:
            if left <= lane <= right and label_top <= bottom and top <= label_bottom:
                crossings.append(f"wire to y={end_y:.0f} through the label {text!r}")
    assert crossings == []


def test_the_guide_s_prose_pins_are_the_header_s_and_the_defaults() -> None:
    """The pin table is checked above; the prose names pins too, and a technician follows it as
    closely: every "GPIOn (physical m)" is that header pin, and section 5's multimeter script
    toggles the default relay pin with the default enable pin high (a script left on old pins
    would leave K1 open whatever the hold circuit does)."""
    text = " ".join((WIRING / "README.md").read_text().split())
    pairs = re.findall(r"GPIO(\d+) \((?:physical|header pin) (\d+)", text)
    assert len(pairs) >= 5
    for bcm, physical in pairs:
        assert diagram.GPIO_AT_PHYSICAL[int(physical)] == int(bcm), (bcm, physical)
    script = guide_sections()[5]
    enable = re.search(r"enable = DigitalOutputDevice\((\d+), initial_value=True", script)
    trig = re.search(r"trig = DigitalOutputDevice\((\d+)", script)
    assert enable and trig
    assert (int(enable.group(1)), int(trig.group(1))) == (
        PinConfig().relay_enable,
        PinConfig().relay,
    )
