"""``retroguard config --example``: a fully commented config, generated from the schema.

The comments are the field docstrings of the config dataclasses, read from
their source with :mod:`ast`, so the example can never fall out of step with
what the loader accepts (a test loads it back and compares with the defaults).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
import typing
from typing import Any

from firmware.config import Config

_HEADER = """\
# RetroGuard monitor configuration (TOML).
# Every key is optional: the value shown is the default (a key commented out is unset by
# default, and its comment says what that means). Check a file with
#   retroguard config --check FILE
# Relative paths are relative to this file's directory.
"""

_SECTION_NOTES = {
    "device": "Who this monitor is.",
    "imu": 'Belt IMU. backend = "mpu6050" for the real chip on I2C, "simulated" for the '
    "register-level simulation.",
    "gpio": 'Relay, buzzer and reset button. backend = "gpiozero" on a Pi (pin_factory "lgpio" on '
    'every board, the Pi 5 included: docs/deployment.md), "simulated" for the demo and tests.\n'
    'relay_drive = "heartbeat" needs the retriggerable hold circuit of wiring/README.md; '
    '"static" drives a plain relay driver.',
    "gpio.pins": "BCM GPIO numbers (see the pin table in wiring/README.md).",
    "safety": "When the monitor stops trusting its sensor.",
    "detector": "Fall and stumble detector thresholds (docs/detector.md explains each).",
    "storage": "Local event store.",
    "mqtt": 'Caregiver reporting over MQTT (docs/mqtt.md). host = "" stores events locally only; '
    "every event is queued in the store's outbox until the broker acknowledges it.",
    "session": "Guided retro-walking sessions (docs/sessions.md): the plan, spoken prompts, "
    "button press patterns.",
    "logging": 'level: "debug", "info", "warning" or "error".',
}


def _field_docs(cls: type[Any]) -> dict[str, str]:
    """Map field name → the string literal that follows it in the class body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, following in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _toml_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "address" and isinstance(value, int):
        return f"0x{value:02x}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(name, v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _comment(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines():
        wrapped = textwrap.wrap(paragraph, 96) or [""]
        lines.extend(f"# {line}".rstrip() for line in wrapped)
    return lines


def _section(name: str, obj: Any, out: list[str]) -> None:
    out.append("")
    out.extend(_comment(_SECTION_NOTES.get(name, "")))
    out.append(f"[{name}]")
    docs = _field_docs(type(obj))
    nested: list[tuple[str, Any]] = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            nested.append((f"{name}.{f.name}", value))
            continue
        if f.name in docs:
            out.extend(_comment(docs[f.name]))
        if value is None:  # TOML has no "unset": the key is shown, commented out
            out.append(f"# {f.name} = (unset by default)")
            continue
        out.append(f"{f.name} = {_toml_value(f.name, value)}")
    for nested_name, nested_value in nested:
        _section(nested_name, nested_value, out)


def example_config_text(config: Config | None = None) -> str:
    config = config or Config()
    out = [_HEADER.rstrip("\n")]
    for f in dataclasses.fields(config):
        _section(f.name, getattr(config, f.name), out)
    return "\n".join(out) + "\n"
