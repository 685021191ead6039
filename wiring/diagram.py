#!/usr/bin/env python3
"""Generate ``wiring/diagram.svg`` from ``wiring/diagram.toml``.

Why a small stdlib script rather than a drawing tool or ``schemdraw``: the
diagram has to be *checked*, not just drawn. Its pins must equal the config
defaults (``hal.config.PinConfig``) and the pin table in the wiring guide,
and the committed SVG must be what the source produces. A TOML source that a
test can read and a deterministic renderer (same input, byte-identical SVG)
make both checks one-liners, run on any machine with Python 3.11, with no
dependency that could change the output under us.

The drawing is a connection diagram, not a full schematic: the Pi's header
pins in use on the left, each circuit block on the right with its parts
listed inside (values and part numbers in ``wiring/README.md``), signal wires
routed in their own lanes, power as net labels.

Usage::

    python wiring/diagram.py            # write wiring/diagram.svg
    python wiring/diagram.py --check    # exit 1 if the SVG is out of date
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "diagram.toml"
OUTPUT = HERE / "diagram.svg"

# The Raspberry Pi 40-pin header (all models since the B+, Pi 3, 4, 5, Zero 2 W).
GPIO_AT_PHYSICAL = {
    3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24,
    19: 10, 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12,
    33: 13, 35: 19, 36: 16, 37: 26, 38: 20, 40: 21,
}  # fmt: skip
POWER_AT_PHYSICAL = {
    1: "3V3", 17: "3V3", 2: "5V", 4: "5V",
    6: "GND", 9: "GND", 14: "GND", 20: "GND", 25: "GND", 30: "GND", 34: "GND", 39: "GND",
}  # fmt: skip

# Layout (px).
MARGIN = 20
HEADER_X, HEADER_W, ROW_H = MARGIN, 250, 26
LANE_X0, LANE_STEP = HEADER_X + HEADER_W + 18, 20
BLOCK_X, BLOCK_W = 470, 560
LABEL_ROOM = 64
"""Space between the last signal lane and the blocks' terminal dots: the power net labels
("GND [6]") are drawn there, and a lane any closer runs over them, or over the dots."""
TERM_H, BLOCK_HEAD, BLOCK_GAP = 19, 26, 16
RIGHT_GAP = 22
FONT = "font-family:DejaVu Sans,Arial,sans-serif"


class SourceError(ValueError):
    """The diagram source is inconsistent (a bad pin number, a dangling reference)."""


def load_source(path: Path = SOURCE) -> dict[str, Any]:
    """Read and validate the TOML source."""
    with path.open("rb") as fh:
        source = tomllib.load(fh)
    validate(source)
    return source


def validate(source: dict[str, Any]) -> None:
    """Check pins against the header map and every reference against the blocks."""
    terminals = {
        f"{block['id']}.{name}" for block in source["block"] for name in block["terminals"]
    }
    for pin in source["pin"]:
        phys = pin["physical"]
        if "config" in pin:
            if GPIO_AT_PHYSICAL.get(phys) != pin["bcm"]:
                raise SourceError(f"pin {pin['config']}: physical {phys} is not GPIO{pin['bcm']}")
        elif POWER_AT_PHYSICAL.get(phys) != pin["name"]:
            raise SourceError(f"power pin {pin['name']}: physical {phys} is not {pin['name']}")
        for ref in pin["to"]:
            if ref not in terminals:
                raise SourceError(f"pin {pin.get('config', pin.get('name'))}: no terminal {ref}")
    for link in source.get("link", []):
        for ref in (link["from"], link["to"]):
            if ref not in terminals:
                raise SourceError(f"link: no terminal {ref}")
    # A terminal drawn with nothing on it reads as "leave it open" (the help button's COM
    # once was, while the guide wires it to GND).
    connected = {ref for pin in source["pin"] for ref in pin["to"]} | {
        ref for link in source.get("link", []) for ref in (link["from"], link["to"])
    }
    for ref in sorted(terminals - connected):
        raise SourceError(f"terminal {ref} is connected to nothing")


def pins_by_config(source: dict[str, Any]) -> dict[str, int]:
    """``{PinConfig field: BCM number}`` for the signal pins in the source."""
    return {pin["config"]: pin["bcm"] for pin in source["pin"] if "config" in pin}


def _text(x: float, y: float, text: str, *, size: int = 12, extra: str = "") -> str:
    return f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}"{extra}>{escape(text)}</text>'


def render(source: dict[str, Any]) -> str:
    """The SVG for ``source``, deterministic to the byte."""
    out: list[str] = []
    pins = sorted(source["pin"], key=lambda p: p["physical"])
    signal_pins = [p for p in pins if "config" in p]
    power_net = {ref: p for p in pins if "config" not in p for ref in p["to"]}

    # Blocks: terminal y positions.
    term_y: dict[str, float] = {}
    block_boxes: list[tuple[dict[str, Any], float, float]] = []
    y = 70.0
    for block in source["block"]:
        rows = max(len(block["terminals"]), len(block["notes"]))
        height = BLOCK_HEAD + rows * TERM_H + 8
        block_boxes.append((block, y, height))
        for i, name in enumerate(block["terminals"]):
            term_y[f"{block['id']}.{name}"] = y + BLOCK_HEAD + i * TERM_H + TERM_H / 2
        y += height + BLOCK_GAP
    total_h = max(y, 70 + len(pins) * ROW_H + 60) + 24
    links = source.get("link", [])
    linked = {ref for link in links for ref in (link["from"], link["to"])}
    # The blocks stand right of the last signal lane and its labels' room, however many pins.
    block_x = max(BLOCK_X, LANE_X0 + (len(signal_pins) - 1) * LANE_STEP + LABEL_ROOM)
    right_lane0 = block_x + BLOCK_W + RIGHT_GAP
    total_w = right_lane0 + len(links) * LANE_STEP + MARGIN

    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{total_h:.0f}" '
        f'viewBox="0 0 {total_w:.0f} {total_h:.0f}" style="{FONT}">'
    )
    out.append(f'<rect width="{total_w:.0f}" height="{total_h:.0f}" fill="white"/>')
    out.append(_text(MARGIN, 28, source["title"], size=17, extra=' font-weight="bold"'))
    out.append(_text(MARGIN, 48, source["subtitle"], size=12, extra=' fill="#444"'))

    # Header.
    top = 70.0
    out.append(
        f'<rect x="{HEADER_X}" y="{top:.0f}" width="{HEADER_W}" height="{len(pins) * ROW_H + 30}" '
        'fill="#eef6ee" stroke="#2a6a2a" stroke-width="1.5" rx="4"/>'
    )
    bold = ' font-weight="bold"'
    out.append(_text(HEADER_X + 8, top + 18, "Raspberry Pi 40-pin header", extra=bold))
    pin_y: dict[int, float] = {}
    for i, pin in enumerate(pins):
        py = top + 30 + i * ROW_H + ROW_H / 2
        pin_y[pin["physical"]] = py
        if "config" in pin:
            label = f"[{pin['physical']}] GPIO{pin['bcm']}  {pin['config']}"
        else:
            label = f"[{pin['physical']}] {pin['name']}  (power net)"
        out.append(_text(HEADER_X + 10, py + 4, label))
        out.append(f'<circle cx="{HEADER_X + HEADER_W:.0f}" cy="{py:.0f}" r="3.5" fill="#2a6a2a"/>')

    # Blocks.
    for block, by, height in block_boxes:
        out.append(
            f'<rect x="{block_x}" y="{by:.0f}" width="{BLOCK_W}" height="{height:.0f}" '
            'fill="#f4f6fb" stroke="#33507a" stroke-width="1.5" rx="4"/>'
        )
        out.append(_text(block_x + 8, by + 17, block["title"], size=13, extra=bold))
        for name in block["terminals"]:
            ref = f"{block['id']}.{name}"
            if ref in linked:
                continue  # drawn on the right edge with its link
            ty = term_y[ref]
            out.append(f'<circle cx="{block_x}" cy="{ty:.0f}" r="3.5" fill="#33507a"/>')
            out.append(_text(block_x + 8, ty + 4, name, size=11, extra=' fill="#33507a"'))
            if ref in power_net:
                net = power_net[ref]
                flag = f"{net['name']} [{net['physical']}]"
                flag_style = ' text-anchor="end" fill="#8a3b00"'
                out.append(_text(block_x - 8, ty + 4, flag, size=11, extra=flag_style))
        for i, note in enumerate(block["notes"]):
            ny = by + BLOCK_HEAD + i * TERM_H + TERM_H / 2 + 4
            out.append(_text(block_x + 62, ny, note, size=11))

    # Signal wires, one lane each, in header order.
    for lane, pin in enumerate(signal_pins):
        x0 = HEADER_X + HEADER_W
        y0 = pin_y[pin["physical"]]
        lx = LANE_X0 + lane * LANE_STEP
        for ref in pin["to"]:
            ty = term_y[ref]
            out.append(
                f'<polyline points="{x0:.0f},{y0:.0f} {lx:.0f},{y0:.0f} {lx:.0f},{ty:.0f} '
                f'{block_x:.0f},{ty:.0f}" fill="none" stroke="#b01c1c" stroke-width="1.6"/>'
            )

    # Links between blocks, on the right.
    for lane, link in enumerate(links):
        y1, y2 = term_y[link["from"]], term_y[link["to"]]
        rx = right_lane0 + lane * LANE_STEP
        xr = block_x + BLOCK_W
        for ty in (y1, y2):
            out.append(f'<circle cx="{xr}" cy="{ty:.0f}" r="3.5" fill="#33507a"/>')
        out.append(
            f'<polyline points="{xr},{y1:.0f} {rx:.0f},{y1:.0f} {rx:.0f},{y2:.0f} {xr},{y2:.0f}" '
            'fill="none" stroke="#1c5bb0" stroke-width="1.6"/>'
        )
        # Terminal name again on the right edge, so a link's ends can be read.
        for ref, ty in ((link["from"], y1), (link["to"], y2)):
            name = ref.split(".", 1)[1]
            out.append(
                _text(xr - 6, ty + 4, name, size=11, extra=' text-anchor="end" fill="#1c5bb0"')
            )

    legend_y = total_h - 12
    out.append(
        _text(
            MARGIN,
            legend_y,
            "red: Pi signal wires · blue: links between blocks · brown: power net labels "
            "· generated by wiring/diagram.py from wiring/diagram.toml",
            size=11,
            extra=' fill="#444"',
        )
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if diagram.svg is stale")
    args = parser.parse_args(argv)
    svg = render(load_source())
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != svg:
            print(f"{OUTPUT} is out of date: run python wiring/diagram.py", file=sys.stderr)
            return 1
        print(f"{OUTPUT}: up to date")
        return 0
    OUTPUT.write_text(svg, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
