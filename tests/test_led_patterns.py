"""The status LED's words are its patterns': what ``looks`` says is what the LED does.

``hal.led_patterns.LEDS`` holds each pattern with what it looks like and means; the demo
prints those words and docs/sessions.md's Status LED table repeats them. Each ``looks`` is
read here against its pattern's timeline (how many flashes or dark blips a period has, how
short they are, the blink's rate, the period), and the docs' table against ``LEDS``: a
pattern changed without its words, or words changed in one place only, fails.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest

from core.protocol.messages import SENSOR_NOT_WORN, Direction
from firmware.safety import STILL_MEASURING_REASON, SafetyState
from firmware.status_light import StatusLight, safety_pattern
from hal.buzzer_patterns import Pattern
from hal.led_patterns import LED_PATTERNS, LEDS, LOOKS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sessions.md"

SHORT_S = 0.25
"""A "short" flash or dark blip: at most this long."""

LONG_S = 2 * SHORT_S
"""A dark gap given in seconds ("on, dark 0.6 s every 2 s") is at least this long: twice a
short blip's longest, so the two are not taken for each other."""

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
    elif m := re.fullmatch(r"on, dark ([\d.]+) s every ([\d.]+) s", looks):
        check(pattern.repeat and close(pattern.period, float(m[2])), f"every {m[2]} s")
        check(lit_share(pattern) > 0.5, "mostly lit")
        check(len(dark) == 1 and close(dark[0], float(m[1])), f"dark {m[1]} s")
        check(float(m[1]) >= LONG_S, "a long dark gap, not a blip")
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
        ("on, dark 0.6 s every 2 s", _repeating((1.0, 1.0))),  # half dark
        ("on, dark 0.6 s every 2 s", _repeating((1.5, 0.5))),
        ("on, dark 0.2 s every 2 s", _repeating((1.8, 0.2))),  # a short blip: say so
        ("on, dark 0.6 s every 2 s", _repeating((0.7, 0.3), (0.7, 0.3))),
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


@dataclass
class _Safety:
    state: SafetyState
    reason: str
    measuring: bool


class _NoLed:
    def show(self, pattern: Pattern, now: float) -> None:
        pass


def shown_in() -> dict[str, set[SafetyState]]:
    """Each pattern with the safety states it shows in, as the status light picks them: every
    state, with and without a not-worn or still-measuring reason, a measuring check, and each
    session interval, as it begins (the flash) and once it runs."""
    reasons = ("IMU healthy", f"{SENSOR_NOT_WORN}: no body", STILL_MEASURING_REASON)
    out: dict[str, set[SafetyState]] = {}
    for state, reason, measuring in itertools.product(SafetyState, reasons, (False, True)):
        intervals: list[tuple[int, Direction] | None] = [None]
        intervals += list(enumerate(get_args(Direction)))
        for interval in intervals:
            light = StatusLight(_NoLed(), _Safety(state, reason, measuring))
            light.interval_now = lambda interval=interval: interval
            for now in (0.0, light.flash_s + 1.0):  # an interval's flash, then the interval
                out.setdefault(light.choose(now), set()).add(state)
    return out


def test_every_pattern_shows_in_some_state() -> None:
    assert set(shown_in()) == set(LEDS)


def test_lit_means_protected() -> None:
    """The walker's rule (docs/sessions.md, Status LED): a pattern shown while ARMED is lit at
    least two thirds of the time, every other at most half, so a lit LED at a glance means the
    belt is protected. ``rest`` (ARMED: the belt protected while the walker rests) was an even
    1 s on, 1 s off blink: half dark, and read as the ``starting`` blink at half speed."""
    for name, states in shown_in().items():
        share = lit_share(LED_PATTERNS[name])
        if states == {SafetyState.ARMED}:
            assert share >= 2 / 3 - 1e-9, name
        else:
            assert SafetyState.ARMED not in states, name
            assert share <= 0.5 + 1e-9, name


ALIKE = 2.0
"""Two flashes (or dark gaps) are told apart at a glance only when one is more than twice the
other: a blink at half speed reads as the same blink."""


def confusable(a: Pattern, b: Pattern) -> bool:
    """Whether a person glancing at the LED could take one pattern for the other: the same
    rhythm (as many flashes and dark gaps a period) with each flash and gap within
    :data:`ALIKE` of its counterpart's, or the same share lit in a period of the same family
    (one at most :data:`ALIKE` times the other)."""
    sa, sb = spans(a), spans(b)
    lit_a = sorted(length for lit, length in sa if lit)
    lit_b = sorted(length for lit, length in sb if lit)
    dark_a = sorted(length for lit, length in sa if not lit)
    dark_b = sorted(length for lit, length in sb if not lit)
    if len(lit_a) != len(lit_b) or len(dark_a) != len(dark_b):
        return False

    def near(x: float, y: float) -> bool:
        return max(x, y) / min(x, y) <= ALIKE + 1e-9

    spans_alike = all(near(x, y) for x, y in zip(lit_a + dark_a, lit_b + dark_b, strict=True))
    same_duty = abs(lit_share(a) - lit_share(b)) < 0.1
    return spans_alike or (same_duty and near(a.period, b.period))


def test_no_two_patterns_are_confusable() -> None:
    """Every pair of patterns, whatever the states they show in: the walker reads the state off
    the LED alone, with nothing beside it to compare (``rest``, an even 0.5 Hz blink, was
    ``starting``'s 1 Hz blink at half speed)."""
    names = sorted(LED_PATTERNS)
    alike = [
        (a, b)
        for a, b in itertools.combinations(names, 2)
        if confusable(LED_PATTERNS[a], LED_PATTERNS[b])
    ]
    assert alike == []


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (_repeating((1.0, 1.0)), _repeating((0.5, 0.5))),  # the same blink at half speed
        (_repeating((1.8, 0.2)), _repeating((1.7, 0.3))),  # a dark blip a little longer
        (_repeating((0.1, 0.1)), _repeating((0.15, 0.15))),
        (_repeating((0.2, 0.2), (0.2, 1.4)), _repeating((0.2, 0.3), (0.3, 1.2))),
    ],
)
def test_confusable_patterns_are_caught(a: Pattern, b: Pattern) -> None:
    assert confusable(a, b) and confusable(b, a)
