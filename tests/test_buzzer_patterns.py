"""Buzzer patterns as data, and the priority rules of the pure player."""

from __future__ import annotations

import pytest

from hal.buzzer_patterns import PATTERNS, Pattern, PatternPlayer, get_pattern
from hal.led_patterns import LED_PATTERNS

# Binary fractions keep every boundary exact in floating point.
SQUARE = Pattern("square", ((0.25, 0.25),), repeat=True, priority=5)
TWO_BEEPS = Pattern("two", ((0.125, 0.125), (0.125, 0.0)), repeat=False, priority=5)


def test_documented_patterns_exist_with_safety_ordering() -> None:
    chirp, fault, alarm = PATTERNS["chirp"], PATTERNS["fault"], PATTERNS["alarm"]
    assert chirp.segments == ((0.04, 0.04), (0.04, 0.0))  # 2 x 40 ms
    assert not chirp.repeat
    assert alarm.repeat and fault.repeat
    assert alarm.priority > fault.priority > chirp.priority
    assert alarm.priority == max(p.priority for p in PATTERNS.values())
    # "fast continuous" alarm vs "slow distinct" fault
    assert alarm.period < fault.period


def test_unknown_pattern_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"alarm, chirp, cue_backward, .*, fault"):
        get_pattern("siren")


def test_walking_cues_sit_in_their_band_below_fault_and_alarm() -> None:
    cues = [p for name, p in PATTERNS.items() if name.startswith("cue_")]
    assert {p.name for p in cues} == {
        "cue_backward",
        "cue_forward",
        "cue_rest",
        "cue_one_minute",
        "cue_turn_ahead",
        "cue_done",
    }
    for cue in cues:
        assert 20 <= cue.priority <= 49
        assert not cue.repeat and cue.period < 2.0
        assert cue.priority < PATTERNS["fault"].priority < PATTERNS["alarm"].priority
    # Distinct rhythms: no two cues share a timeline.
    assert len({p.segments for p in cues}) == len(cues)


def test_a_cue_never_masks_the_alarm() -> None:
    player = PatternPlayer()
    assert player.play(PATTERNS["alarm"], 0.0)
    for cue in (p for p in PATTERNS if p.startswith("cue_")):
        assert not player.play(PATTERNS[cue], 0.05)
        assert player.pattern is PATTERNS["alarm"]
    # The alarm replaces a cue that is playing.
    player.stop()
    assert player.play(PATTERNS["cue_done"], 1.0)
    assert player.play(PATTERNS["alarm"], 1.1)
    assert player.pattern is PATTERNS["alarm"]


@pytest.mark.parametrize(
    "segments",
    [(), ((0.0, 0.0),), ((-0.1, 0.1),)],
)
def test_invalid_patterns_are_refused(segments: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError):
        Pattern("bad", segments, repeat=True, priority=0)


def test_level_at_half_open_segments() -> None:
    assert TWO_BEEPS.level_at(0.0) is True
    assert TWO_BEEPS.level_at(0.124) is True
    assert TWO_BEEPS.level_at(0.125) is False  # off from exactly on_s
    assert TWO_BEEPS.level_at(0.25) is True
    assert TWO_BEEPS.level_at(0.374) is True
    assert TWO_BEEPS.level_at(0.375) is None  # finished
    assert TWO_BEEPS.level_at(-1.0) is True  # before the start counts as the start


def test_repeating_level_wraps() -> None:
    assert SQUARE.level_at(0.5) is True
    assert SQUARE.level_at(0.75) is False
    assert SQUARE.level_at(100.0 + 0.125) is True


def test_edges_timeline() -> None:
    assert TWO_BEEPS.edges(start=1.0) == [(1.0, True), (1.125, False), (1.25, True), (1.375, False)]
    assert SQUARE.edges(until=1.0) == [(0.0, True), (0.25, False), (0.5, True), (0.75, False)]
    with pytest.raises(ValueError):
        SQUARE.edges()


def test_player_lower_priority_does_not_replace_higher() -> None:
    low = Pattern("low", ((0.25, 0.25),), repeat=True, priority=1)
    player = PatternPlayer()
    assert player.play(SQUARE, 0.0)
    assert not player.play(low, 0.1)
    assert player.pattern is SQUARE
    assert player.play(low, 0.1, force=True)
    assert player.pattern is low


def test_player_same_pattern_keeps_phase() -> None:
    player = PatternPlayer()
    player.play(SQUARE, 0.0)
    assert player.play(SQUARE, 0.375)  # already playing: accepted, not restarted
    assert player.level(0.375) is False  # a restart would be "on" here


def test_player_equal_priority_replaces() -> None:
    player = PatternPlayer()
    player.play(SQUARE, 0.0)
    assert player.play(TWO_BEEPS, 0.3)
    assert player.pattern is TWO_BEEPS
    assert player.level(0.3) is True


def test_finished_pattern_does_not_block_lower_priority() -> None:
    high = Pattern("high", ((0.125, 0.0),), repeat=False, priority=9)
    low = Pattern("low", ((0.25, 0.25),), repeat=True, priority=1)
    player = PatternPlayer()
    player.play(high, 0.0)
    # No level() call in between: play() itself must notice that "high" ended.
    assert player.play(low, 0.5)
    assert player.level(0.5) is True


def test_player_falls_silent_after_finite_pattern_and_on_stop() -> None:
    player = PatternPlayer()
    player.play(TWO_BEEPS, 0.0)
    assert player.level(0.4) is False
    assert player.pattern is None
    player.play(SQUARE, 1.0)
    player.stop()
    assert player.level(1.0) is False
    assert player.pattern is None


@pytest.mark.parametrize(
    "pattern",
    [*PATTERNS.values(), *LED_PATTERNS.values()],
    ids=lambda p: p.name,
)
def test_the_level_holds_until_the_span_ends(pattern: Pattern) -> None:
    """What the status LED relies on to skip its steps: from any time to the end of its span
    the level is the same, and at the end it changes (or the pattern ends or starts over)."""
    for step in range(int(3 * pattern.period / 0.01) + 2):
        elapsed = step * 0.01
        level = pattern.level_at(elapsed)
        end = pattern.span_end(elapsed)
        assert end > elapsed - 1e-9  # (at a span's very end it may round onto it: no skip)
        if end == float("inf"):
            assert level is None
            continue
        for t in (elapsed + (end - elapsed) * f for f in (0.0, 0.25, 0.5, 0.999)):
            if t < end:  # (a span of one float step rounds the later ones onto its end)
                assert pattern.level_at(t) == level
        after = pattern.level_at(end + 1e-9)
        assert (
            after != level
            or end % pattern.period < 1e-6
            or pattern.period - end % pattern.period < 1e-6
        )


def test_the_player_says_until_when_its_level_holds() -> None:
    player = PatternPlayer()
    assert player.level_until(5.0) == (False, float("inf"))
    player.play(LED_PATTERNS["standby"], 10.0)  # 0.1 s on, 1.9 s off, repeating
    assert player.level_until(10.05) == (True, pytest.approx(10.1))
    assert player.level_until(10.5) == (False, pytest.approx(12.0))
    player.play(Pattern("once", ((0.1, 0.1),), repeat=False, priority=0), 20.0, force=True)
    assert player.level_until(20.15) == (False, pytest.approx(20.2))
    assert player.level_until(20.25) == (False, float("inf"))
    assert player.pattern is None  # ended, as level() would have said
