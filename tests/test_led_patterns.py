"""The status LED's words are its patterns': what ``looks`` says is what the LED does.

``hal.led_patterns.LEDS`` holds each pattern with what it looks like and means; the demo
prints those words and docs/sessions.md's Status LED table repeats them. Each ``looks`` is
read here against its pattern's timeline (how many flashes or dark blips a period has, how
short they are, the blink's rate, the period), and the docs' table against ``LEDS``: a
pattern changed without its words, or words changed in one place only, fails.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from firmware.safety import SafetyState
from firmware.status_light import safety_pattern
from hal.buzzer_patterns import Pattern
from hal.led_patterns import LED_PATTERNS, LEDS, LOOKS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sessions.md"

SHORT_S = 0.25
"""A "short" flash or dark blip: at most this long."""

NUMBERS = {"a": 1, "one": 1, "two": 2, "double": 2, "three": 3, "four": 4}


def spans(pattern: Pattern) -> list[tuple[bool, float]]:
    """One pass of the pattern as (lit, seconds) spans, each level's neighbours the other
    level (a repeating pattern's last span joined to its first when they are one)."""
    out: list[tuple[bool, float]] = []
    for on_s, off_s in pattern.segments:
        for lit, length in ((True, on_s), (False, off_s)):
            if length <= 0:
                continue
            if out and out[-1][0] is lit:
                out[-1] = (lit, out[-1][1] + length)
            else:
                out.append((lit, length))
    if pattern.repeat and len(out) > 1 and out[0][0] is out[-1][0]:
        out[0] = (out[0][0], out[0][1] + out.pop()[1])
    return out


def lit_share(pattern: Pattern) -> float:
    return sum(on_s for on_s, _ in pattern.segments) / pattern.period


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, abs_tol=1e-9)


def reads(looks: str, pattern: Pattern) -> list[str]:
    """What in ``looks`` the pattern does not do (empty: it reads true)."""
    wrong: list[str] = []
    levels = spans(pattern)
    lit = [length for level, length in levels if level]
    dark = [length for level, length in levels if not level]

    def check(ok: bool, what: str) -> None:
        if not ok:
            wrong.append(what)

    if looks == "steady on":
        check(pattern.repeat and not dark, "never dark")
    elif m := re.fullmatch(r"(even|fast) ([\d.]+) Hz (blink|flashing)", looks):
        check(pattern.repeat and len(levels) == 2, "one flash a period")
        check(len(lit) == 1 and len(dark) == 1 and close(lit[0], dark[0]), "even")
        check(close(1 / pattern.period, float(m[2])), f"{m[2]} Hz")
    elif m := re.fullmatch(r"slow blink, ([\d.]+) s on, ([\d.]+) s off", looks):
        check(pattern.repeat and len(levels) == 2, "one flash a period")
        check(lit == [float(m[1])] and dark == [float(m[2])], "those times")
    elif m := re.fullmatch(r"(\w+) (?:short )?flash(?:es)? every ([\d.]+) s", looks):
        check(pattern.repeat and close(pattern.period, float(m[2])), f"every {m[2]} s")
        check(lit_share(pattern) < 0.5, "mostly dark")
        check(len(lit) == NUMBERS[m[1]], f"{m[1]} flashes")
        check(all(length <= SHORT_S for length in lit), "short flashes")
    elif m := re.fullmatch(r"on, (\w+) short dark blips? every ([\d.]+) s", looks):
        check(pattern.repeat and close(pattern.period, float(m[2])), f"every {m[2]} s")
        check(lit_share(pattern) > 0.5, "mostly lit")
        check(len(dark) == NUMBERS[m[1]], f"{m[1]} dark blips")
        check(all(length <= SHORT_S for length in dark), "short blips")
    elif m := re.fullmatch(r"on, a short dark blip every ([\d.]+) s, for ([\d.]+) s", looks):
        check(not pattern.repeat and close(pattern.period, float(m[2])), f"for {m[2]} s")
        check(lit_share(pattern) > 0.5, "mostly lit")
        check(all(close(on + off, float(m[1])) for on, off in pattern.segments), "every blip")
        check(all(0 < off <= SHORT_S for _, off in pattern.segments), "short blips")
    else:
        wrong.append("words this test cannot read: say them as the others do")
    return wrong


@pytest.mark.parametrize("name", sorted(LEDS))
def test_each_patterns_words_say_what_it_does(name: str) -> None:
    led = LEDS[name]
    assert led.pattern.name == name and LED_PATTERNS[name] is led.pattern
    assert reads(led.looks, led.pattern) == []
    assert LOOKS[name] == f"{led.looks}: {led.means}"


def _repeating(*segments: tuple[float, float]) -> Pattern:
    return Pattern("x", segments, repeat=True, priority=0)


@pytest.mark.parametrize(
    ("looks", "pattern"),
    [
        ("even 1 Hz blink", _repeating((0.25, 0.25))),
        ("even 1 Hz blink", _repeating((0.4, 0.6))),
        ("one short flash every 2 s", _repeating((0.1, 0.9))),
        ("three short flashes every 2 s", _repeating((0.1, 0.9), (0.1, 0.9))),
        ("on, two short dark blips every 2 s", _repeating((1.8, 0.2))),
        ("steady on", _repeating((1.0, 1.0))),
        ("a slow pulse", _repeating((1.0, 1.0))),
    ],
)
def test_words_that_do_not_match_the_pattern_are_caught(looks: str, pattern: Pattern) -> None:
    assert reads(looks, pattern) != []


def test_the_sessions_docs_led_table_is_the_patterns_words() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Status LED", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    assert {name for name, _ in rows} == set(LEDS)
    for name, looks in rows:
        assert looks.strip() == LEDS[name].looks, name


def test_the_starting_blink_says_wait_as_it_is_shown_while_the_sensor_is_checked() -> None:
    """``starting`` shows in STANDBY while the sensor-worn check has no verdict (a press is
    refused then): its words said "starting" only, read on a monitor long started."""
    assert safety_pattern(SafetyState.STANDBY, "IMU healthy", measuring=True) == "starting"
    means = LEDS["starting"].means
    assert "checking the sensor" in means and "wait" in means
