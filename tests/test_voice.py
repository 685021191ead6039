"""Spoken prompts: the sentences, the WAV cache, the non-blocking player, when voice is on.

No sound card is needed: rendering uses espeak-ng when it is installed (the test
command installs it; skipped with the reason otherwise), and the player runs a
fake command in place of ``aplay`` that records what it was given.
"""

from __future__ import annotations

import os
import shutil
import sys
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.clock import SimClock
from core.errors import ConfigError
from core.protocol.walker import Walker
from firmware.detection.base import Detection
from firmware.safety import (
    LET_GO_REASON,
    NOT_UPRIGHT_REASON,
    FaultClass,
    SafetyState,
    Transition,
)
from firmware.session.cues import PATTERN, TEXT, Cue, wav_figures
from firmware.session.plan import Interval, Plan, resolve_plan
from firmware.session.runner import SessionRunner, SessionState
from firmware.session.voice import (
    PromptCache,
    PromptPlayer,
    Prompts,
    SoundOutput,
    all_sound_cards,
    languages,
    load_prompts,
    open_player,
    sound_cards,
    voice_wanted,
)
from hal.buzzer_patterns import PATTERNS, walker_pattern_name
from hal.gpio import GpioBuzzer
from sim.pins import ClockedMockFactory
from tests.app_support import Heard

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)
TURN = "Slow the belt and hold the rail before you turn."
AHEAD = "Get ready to turn. Slow the belt and hold the rail."
"""Said 15 s (plan time) before an interval that turns the walker round."""
RESTART_BACKWARD = "Start the belt slowly, holding the rail, then walk backward."
"""A backward interval resumed after a trip: the relay stopped the belt."""


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts.for_language("en")


def recorder(log: Path) -> list[str]:
    """A stand-in for ``aplay -q``: appends the WAV path it is given to ``log``."""
    script = f"import sys; open({str(log)!r}, 'a').write(sys.argv[1] + '\\n')"
    return [sys.executable, "-c", script]


WAIT = 60.0
"""Upper bound for the player's worker to finish what it was given: a net against hangs, not a
timing (``close``'s own 2 s, a monitor's stop, is one: on a loaded machine three Python
players took longer, and the test read a half-played queue)."""


def drain(player: PromptPlayer, timeout: float = WAIT) -> None:
    """Close ``player`` once every queued prompt has played (and its plans are rendered)."""
    player.close(timeout=timeout, drain=True)
    assert not player._thread.is_alive(), "the player's worker did not finish"


def fake_wav(path: Path) -> None:
    """A short silent WAV, so the player needs no speech engine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(b"\0\0" * 2205)


# ------------------------------------------------------------------ the sentences


def test_english_ships_and_every_other_language_file_is_complete() -> None:
    assert "en" in languages()
    for language in languages():
        assert load_prompts(language).voice


def test_interval_prompts_say_number_length_time_left_and_the_turn(prompts: Prompts) -> None:
    plan = resolve_plan("alternate-2-2")
    assert prompts.interval(plan, 0) == (
        "Interval 1 of 15. Walk backward for 2 minutes. 30 minutes to go."
    )
    assert prompts.interval(plan, 1) == (
        f"{TURN} Interval 2 of 15. Walk forward for 2 minutes. 28 minutes to go."
    )
    last = prompts.interval(plan, 14)
    assert last.endswith("Interval 15 of 15. Walk forward for 2 minutes. Last interval.")
    assert (
        prompts.for_cue(Cue.DONE, plan, 14)
        == "Session done. Slow the belt to a stop, holding the rail. Well walked."
    )
    assert prompts.for_cue(Cue.ONE_MINUTE, plan, 3) == "One minute left."
    assert prompts.for_cue(Cue.ONE_MINUTE, plan, 14) == "One minute left in the session."


def test_a_rest_and_the_sessions_end_say_to_stop_the_belt_first(prompts: Prompts) -> None:
    """A rest interval and the session's end come while ARMED, the belt still running (the
    monitor never sets its speed). The rest said "Stop walking and rest": a walker on a moving
    belt who does is carried to its end. Now each says to slow the belt to a stop, holding the
    rail, before resting; nothing the session can say tells the walker to stop walking."""
    plan = Plan(
        "custom",
        (
            Interval.of_seconds("backward", 120.0),
            Interval.of_seconds("rest", 60.0),
            Interval.of_seconds("backward", 120.0),
        ),
    )
    rest = prompts.interval(plan, 1)
    done = prompts.for_cue(Cue.DONE, plan, 2)
    for words in (rest, done):
        assert "Slow the belt to a stop, holding the rail" in words
    assert rest.index("Slow the belt to a stop") < rest.index("rest for 1 minute")
    assert "belt" in TEXT[Cue.REST]
    said = [*prompts.all_for_plan(plan), *TEXT.values()]
    assert not [s for s in said if "stop walking" in s.lower()]


def test_the_turn_is_said_only_before_a_change_of_walking_direction(prompts: Prompts) -> None:
    plan = Plan(
        "custom",
        (
            Interval.of_seconds("forward", 90.0),
            Interval.of_seconds("forward", 60.0),
            Interval.of_seconds("backward", 150.0),
            Interval.of_seconds("rest", 30.0),
            Interval.of_seconds("forward", 45.0),
        ),
    )
    said = [prompts.interval(plan, i) for i in range(5)]
    assert [s.startswith(TURN) for s in said] == [False, False, True, False, False]
    assert "Walk forward for 1 minute 30 seconds. 6 minutes 15 seconds to go." in said[0]
    assert "Walk backward for 2 minutes 30 seconds." in said[2]
    assert "Slow the belt to a stop, holding the rail, then rest for 30 seconds." in said[3]
    assert said[4].endswith("Walk forward for 45 seconds. Last interval.")


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (1.0, "1 second"),
        (59.0, "59 seconds"),
        (60.0, "1 minute"),
        (61.0, "1 minute 1 second"),
        (62.0, "1 minute 2 seconds"),
        (120.0, "2 minutes"),
        (181.0, "3 minutes 1 second"),
        (195.0, "3 minutes 15 seconds"),
    ],
)
def test_a_length_is_said_in_the_singular_where_english_says_it(
    prompts: Prompts, seconds: float, said: str
) -> None:
    """One second is "1 second" (the prompts said "1 minute 1 seconds")."""
    assert prompts.length(seconds) == said


def test_every_sentence_of_a_plan_is_known_before_the_walk(prompts: Prompts) -> None:
    plan = resolve_plan("alternate-2-2")
    ahead = prompts.all_for_plan(plan)
    assert len(ahead) == len(set(ahead))
    for cue in Cue:
        for index in range(len(plan.intervals)):
            assert prompts.for_cue(cue, plan, index) in ahead


def test_a_translation_missing_a_key_or_with_a_wrong_placeholder_is_refused(
    tmp_path: Path,
) -> None:
    english = Path(load_prompts.__code__.co_filename).parent / "prompts" / "en.toml"
    text = english.read_text().replace('last = "Last interval."\n', "")
    text = text.replace("{number} of {count}. Walk backward", "{nummer} of {count}. Walk backward")
    broken = tmp_path / "xx.toml"
    broken.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_prompts(path=broken)
    assert exc.value.problems == [
        f"{broken}: prompts.backward: bad placeholder 'nummer'",
        f"{broken}: prompts.last: missing",
    ]


# ------------------------------------------------------------------ rendering


@needs_espeak
@dataclass(frozen=True)
class RenderedPlan:
    """``retroguard prompts`` run on alternate-2-2 into an empty cache."""

    folder: Path
    """Its config's folder: the cache is ``prompts`` in it."""
    printed: str


@pytest.fixture(scope="module")
def plan_rendered(tmp_path_factory: pytest.TempPathFactory) -> RenderedPlan:
    """The plan's 100 prompts rendered once (by :meth:`PromptCache.render_all`, as the command
    does), for the command's tests and the cache's: each rendering took 100 runs of espeak-ng.
    None of them renders or removes a prompt of it (the assigned plans' test copies them)."""
    import contextlib
    import io

    from launcher.cli import main

    folder = tmp_path_factory.mktemp("plan-rendered")
    config = folder / "config.toml"
    config.write_text('[storage]\ndatabase = "events.db"\n[session]\nplan = "alternate-2-2"\n')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["prompts", "-c", str(config)]) == 0
    return RenderedPlan(folder, out.getvalue())


def test_every_prompt_of_a_plan_renders_once_as_speech(
    plan_rendered: RenderedPlan, prompts: Prompts
) -> None:
    """Every prompt of the plan rendered into the cache as speech of its length, none left
    half-written; asked again, all come from the cache. The first rendering's figures (100
    rendered of 100) are read in test_the_prompts_command_renders_the_plan_into_the_cache."""
    texts = prompts.all_for_plan(resolve_plan("alternate-2-2"))
    cache = PromptCache(plan_rendered.folder / "prompts", "en", 150)
    for text in texts:
        path = cache.cached(text)
        assert path is not None
        figures = wav_figures(path)
        words = len(text.split())
        assert 0.2 * words <= figures.duration_s <= 0.8 * words + 1.5
        assert figures.voiced_s >= 0.5 * figures.duration_s  # speech, not silence
    assert not list(cache.directory.glob(".*"))  # no partial files left behind
    again = cache.render_all(texts)
    assert (again.prompts, again.rendered) == (len(texts), 0)  # all from the cache
    assert again.wav_bytes == sum(cache.path_for(text).stat().st_size for text in texts)
    print(f"\n{again}; {again.wav_bytes / len(texts) / 1024:.0f} KiB a prompt")


def test_the_cache_key_is_voice_rate_and_text(tmp_path: Path) -> None:
    a = PromptCache(tmp_path, "en", 150)
    assert a.path_for("x") == PromptCache(tmp_path, "en", 150).path_for("x")
    assert a.path_for("x") != a.path_for("y")
    assert a.path_for("x") != PromptCache(tmp_path, "en", 160).path_for("x")
    assert a.path_for("x") != PromptCache(tmp_path, "de", 150).path_for("x")


# ------------------------------------------------------------------ the player


def test_the_player_plays_each_prompt_in_order_with_its_wav(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path / "prompts")
    texts = ["Interval 1 of 3.", "One minute left.", "Session done."]
    for text in texts:
        fake_wav(cache.path_for(text))
    log = tmp_path / "played.log"
    player = PromptPlayer(cache, command=recorder(log))
    for text in texts:
        player.say(text)
    drain(player)
    assert player.played == texts
    assert log.read_text().splitlines() == [str(cache.path_for(t)) for t in texts]


def test_say_never_waits_for_the_sound_card(tmp_path: Path) -> None:
    """The fake player blocks until the test lets it go: say() still returns at once."""
    cache = PromptCache(tmp_path / "prompts")
    gates = {}
    for text in ("first", "second"):
        wav = cache.path_for(text)
        fake_wav(wav)
        gates[text] = Path(f"{wav}.gate")
        os.mkfifo(gates[text])
    # Each prompt "plays" until a line arrives on its own FIFO, <wav>.gate.
    player = PromptPlayer(cache, command=["sh", "-c", 'read line < "$1.gate"', "player"])
    player.say("first")
    player.say("second")  # returned although the first is still "playing"
    assert player.played == []
    for text in ("first", "second"):
        with gates[text].open("w") as gate:  # opens once the player is waiting on it
            gate.write("go\n")
    drain(player)
    assert player.played == ["first", "second"]


def test_a_failing_player_is_logged_once_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = PromptCache(tmp_path / "prompts")
    fake_wav(cache.path_for("a"))
    player = PromptPlayer(cache, command=["false"])
    for _ in range(3):
        player.say("a")
    drain(player)
    assert player.failures == 3 and player.played == []
    assert caplog.text.count("a spoken prompt failed") == 1


@needs_espeak
def test_the_player_renders_the_plan_before_it_plays(tmp_path: Path, prompts: Prompts) -> None:
    plan = Plan(
        "short", (Interval.of_seconds("backward", 60.0), Interval.of_seconds("forward", 60.0))
    )
    ahead = prompts.all_for_plan(plan)
    cache = PromptCache(tmp_path / "prompts", "en", 150)
    log = tmp_path / "played.log"
    player = PromptPlayer(cache, command=recorder(log), prerender=ahead)
    player.say(prompts.interval(plan, 1))
    drain(player, timeout=120.0)
    assert player.figures is not None and player.figures.rendered == len(ahead)
    assert all(cache.cached(t) is not None for t in ahead)
    assert log.read_text().splitlines() == [str(cache.path_for(prompts.interval(plan, 1)))]


# ------------------------------------------------------------------ when voice is on


SOUND = SoundOutput(espeak=True, aplay=True, cards=("0 [Headphones]: bcm2835",))
SILENT = SoundOutput(espeak=True, aplay=True, cards=())


def test_voice_is_on_by_default_where_audio_exists() -> None:
    assert voice_wanted("auto", real_hardware=True, sound=SOUND)
    assert not voice_wanted("auto", real_hardware=True, sound=SILENT)  # beeps otherwise
    assert not voice_wanted("auto", real_hardware=False, sound=SOUND)  # the sim prints them
    assert not voice_wanted("off", real_hardware=True, sound=SOUND)
    assert voice_wanted("en-gb", real_hardware=False, sound=SILENT)  # asked for by name
    assert "no sound card" in SILENT.missing() and "USB speaker" in SILENT.missing()
    assert (
        SoundOutput(False, False, ())
        .missing()
        .startswith("espeak-ng is not installed; aplay (alsa-utils) is not installed")
    )


def test_open_player_gives_beeps_on_a_board_without_audio(tmp_path: Path) -> None:
    plan = resolve_plan("alternate-2-2")
    no_engine = SoundOutput(espeak=False, aplay=True, cards=())
    player, prompts = open_player(
        "auto", "en", 150, tmp_path, plan, real_hardware=True, sound=no_engine
    )
    assert player is None and prompts.interval(plan, 0).startswith("Interval 1 of 15.")
    player, _ = open_player("auto", "en", 150, tmp_path, plan, real_hardware=False, sound=SOUND)
    assert player is None  # the simulated rig prints its prompts


USB_CARD = " 1 [Device         ]: USB-Audio - USB Audio Device\n"
SHORT = Plan(
    "short",
    (
        Interval.of_seconds("backward", 60.0),
        Interval.of_seconds("forward", 60.0),
        Interval.of_seconds("backward", 60.0),
    ),
)


def _watched_player(tmp_path: Path, cards: Path, prompts: Prompts) -> tuple[PromptPlayer, Path]:
    """``open_player`` as the monitor calls it with voice "auto" on the real board, espeak-ng
    and aplay there, the cards read from ``cards`` (absent: none yet); the plan's prompts are
    in the cache already (no speech engine needed) and the timer never fires by itself
    (:meth:`PromptPlayer.recheck` reads the cards when the test says)."""
    cache = PromptCache(tmp_path / "prompts", "en", 150)
    for text in prompts.all_for_plan(SHORT):
        fake_wav(cache.path_for(text))
    log = tmp_path / "played.log"
    log.touch()
    player, _ = open_player(
        "auto",
        "en",
        150,
        cache.directory,
        SHORT,
        real_hardware=True,
        sound=SoundOutput(espeak=True, aplay=True, cards=tuple(sound_cards(cards))),
        command=recorder(log),
        cards=lambda: sound_cards(cards),
        probe_every_s=1e6,
    )
    assert player is not None
    return player, log


def _seen(player: PromptPlayer) -> None:
    """Once this returns, the worker has done everything asked of it before (its queue is
    first in, first out) and read the cards."""
    assert player.recheck().wait(WAIT), "the player's worker did not answer"


def test_a_sound_card_that_appears_later_turns_the_spoken_prompts_on(
    tmp_path: Path, prompts: Prompts, caplog: pytest.LogCaptureFixture
) -> None:
    """The monitor starts early at boot; a USB speaker enumerates later, or is plugged in or
    out while it runs: the voice follows the card, no restart."""
    caplog.set_level("INFO", "firmware.session.voice")
    cards = tmp_path / "cards"  # absent: no card listed yet
    player, log = _watched_player(tmp_path, cards, prompts)
    first, second = prompts.interval(SHORT, 0), prompts.interval(SHORT, 1)
    try:
        assert not player.audible
        assert "cues are beeps until a sound card appears" in caplog.text
        player.say(first)  # asked for as the card went: nothing to play it on
        _seen(player)
        assert log.read_text() == "" and not player.audible
        cards.write_text(USB_CARD)
        _seen(player)
        assert player.audible
        assert "spoken prompts on: sound card 1 [Device" in caplog.text
        player.say(second)
        _seen(player)
        assert log.read_text().splitlines() == [str(player.cache.path_for(second))]
        cards.write_text("--- no soundcards ---\n")
        _seen(player)
        assert not player.audible and "spoken prompts off: no sound card any more" in caplog.text
    finally:
        drain(player)
    assert caplog.text.count("spoken prompts on: sound card") == 1


def test_an_unplugged_speaker_is_noticed_at_its_first_failed_prompt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """aplay fails once the USB speaker is gone: the cards are read at once, not at the next
    timer, so the walker's cues are beeps from the runner's next tick."""
    cards = tmp_path / "cards"
    cards.write_text(USB_CARD)
    cache = PromptCache(tmp_path / "prompts")
    fake_wav(cache.path_for("a"))
    player = PromptPlayer(
        cache, command=["false"], cards=lambda: sound_cards(cards), probe_every_s=1e6
    )
    assert player.audible
    cards.write_text("")  # unplugged
    player.say("a")
    drain(player)  # no card read but the one after the failure
    assert player.failures == 1 and not player.audible
    assert "spoken prompts off: no sound card any more" in caplog.text


@dataclass
class Press:
    """A reset button whose edges the test hands over (:class:`hal.interfaces.PressEdges`)."""

    edges: list[tuple[float, bool]]

    def take_edges(self) -> list[tuple[float, bool]]:
        edges, self.edges = self.edges, []
        return edges


def _double_press(runner: SessionRunner, button: Press, t: float) -> float:
    """A double press in STANDBY, ticked until the recogniser has decided; the clock after."""
    button.edges = [(t, True), (t + 0.1, False), (t + 0.3, True), (t + 0.4, False)]
    for _ in range(12):
        t += 0.25
        runner.tick(t)
    return t


def test_the_walker_gets_beeps_or_words_for_every_cue_as_the_card_comes_and_goes(
    tmp_path: Path, prompts: Prompts
) -> None:
    cards = tmp_path / "cards"
    player, log = _watched_player(tmp_path, cards, prompts)
    buzzer = QuietBuzzer()
    safety = Armed(SafetyState.STANDBY, since=0.0)
    button = Press([])
    runner = SessionRunner(
        SHORT,
        safety=safety,
        buzzer=buzzer,
        device_id="t",
        button=button,
        speaker=player,
        prompts=prompts,
    )
    runner.walkers = (Walker("anna", "Anna"), Walker("ben", "Ben"))
    runner.walker = runner.walkers[0]
    try:
        # No card: the walker's number is beeped (no chirp, no words).
        t = _double_press(runner, button, 1.0)
        assert [c.pattern for c in runner.walker_choices] == [walker_pattern_name(2)]
        assert runner.walker_choices[-1].spoken == ""
        safety.state, safety.since = SafetyState.ARMED, t
        runner.start(t)
        runner.tick(t + 0.25)
        _seen(player)
        assert runner.cues[-1].played and buzzer.pattern == PATTERN[Cue.BACKWARD]
        assert log.read_text() == ""  # the beeps were the cue

        # A USB speaker enumerates: the next interval's cue is spoken too.
        cards.write_text(USB_CARD)
        _seen(player)
        t = _tick_to(runner, 60.0, t + 0.25)
        assert runner.cues[-1].cue is Cue.FORWARD and runner.cues[-1].played
        _seen(player)
        assert log.read_text().splitlines() == [
            str(player.cache.path_for(prompts.interval(SHORT, 1)))
        ]

        # Unplugged: beeps again, and nothing more for the player.
        cards.write_text("")
        _seen(player)
        t = _tick_to(runner, 120.0, t)
        assert runner.cues[-1].cue is Cue.BACKWARD and runner.cues[-1].played
        _seen(player)
        assert len(log.read_text().splitlines()) == 1
    finally:
        drain(player)


@needs_espeak
def test_open_player_with_sound_renders_into_the_cache_and_plays(tmp_path: Path) -> None:
    """The sound card the player watches (voice "auto") is the one ``sound`` lists. Left to
    read this host's ``/proc/asound/cards`` (none on a CI runner), the watch's first look,
    ``firmware.session.voice.CARD_PROBE_S`` (5 s) after the start, found no card: on a loaded
    machine rendering the plan's prompts took longer than that, the player went quiet before
    it reached the prompt asked for, and the test failed with nothing played."""
    plan = Plan("one", (Interval.of_seconds("backward", 60.0),))
    log = tmp_path / "played.log"
    player, prompts = open_player(
        "auto",
        "en",
        150,
        tmp_path / "c",
        plan,
        real_hardware=True,
        sound=SOUND,
        command=recorder(log),
        cards=lambda: SOUND.cards,
    )
    assert player is not None
    assert player.cache.voice == "en" and player.cache.directory == tmp_path / "c"
    first = prompts.interval(plan, 0)
    player.say(first)
    drain(player, timeout=120.0)
    assert log.read_text().splitlines() == [str(player.cache.path_for(first))]
    assert len(list((tmp_path / "c").glob("*.wav"))) == len(prompts.all_for_plan(plan))


def test_sound_cards_are_read_from_the_kernel_list(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.write_text(
        " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"
        "                      bcm2835 Headphones\n"
        " 1 [Device         ]: USB-Audio - USB Audio Device\n"
    )
    assert sound_cards(cards) == [
        "0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones",
        "1 [Device         ]: USB-Audio - USB Audio Device",
    ]
    assert sound_cards(tmp_path / "absent") == []


def test_hdmi_audio_is_no_speaker_for_auto(tmp_path: Path) -> None:
    """A Pi 5 lists two HDMI cards, a Pi Zero 2 W one, with nothing plugged in: counted as a
    speaker, "auto" spoke to nobody and the cues never fell back to beeps. A USB speaker
    plugged in beside them is the one card that counts."""
    cards = tmp_path / "cards"
    cards.write_text(
        " 0 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0\n"
        "                      vc4-hdmi-0\n"
        " 1 [vc4hdmi1       ]: vc4-hdmi - vc4-hdmi-1\n"
        "                      vc4-hdmi-1\n"
    )
    assert sound_cards(cards) == []
    assert len(all_sound_cards(cards)) == 2  # what a voice name set by hand speaks on
    sound = SoundOutput(espeak=True, aplay=True, cards=tuple(sound_cards(cards)))
    assert not sound.ok and "no sound card" in sound.missing()
    assert not voice_wanted("auto", real_hardware=True, sound=sound)
    cards.write_text(" 0 [vc4hdmi        ]: vc4-hdmi - vc4-hdmi\n                      vc4-hdmi\n")
    assert sound_cards(cards) == []  # a Pi Zero 2 W
    cards.write_text(
        " 0 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0\n"
        " 1 [vc4hdmi1       ]: vc4-hdmi - vc4-hdmi-1\n"
        " 2 [Device         ]: USB-Audio - USB Audio Device\n"
        "                      Generic USB Audio Device at usb-xhci-hcd.0-1, full speed\n"
    )
    assert sound_cards(cards) == ["2 [Device         ]: USB-Audio - USB Audio Device"]
    cards.write_text(" 1 [b1             ]: bcm2835_hdmi - bcm2835 HDMI 1\n")
    assert sound_cards(cards) == []  # the firmware's HDMI audio on a Pi 4 (no KMS)


# ------------------------------------------------------------------ the runner


@dataclass
class Armed:
    state: SafetyState = SafetyState.ARMED
    since: float = 0.0
    transitions: Sequence[Transition] = ()
    reason: str = "armed by local reset from STANDBY"
    last_detection: Detection | None = None
    incident: str | None = None
    help_waiting: bool = False
    fault_class: FaultClass | None = None
    measuring: bool = False


@dataclass
class QuietBuzzer:
    pattern: str | None = None

    def play(self, pattern: str, now: float) -> None:
        self.pattern = pattern

    def update(self, now: float) -> None: ...

    def stop(self) -> None:
        self.pattern = None

    def close(self) -> None: ...


def test_a_session_speaks_interval_time_left_turn_and_end() -> None:
    plan = Plan(
        "short",
        (
            Interval.of_seconds("backward", 180.0),
            Interval.of_seconds("forward", 60.0),
            Interval.of_seconds("backward", 120.0),
        ),
    )
    heard = Heard()
    runner = SessionRunner(plan, safety=Armed(), buzzer=QuietBuzzer(), device_id="t", speaker=heard)
    runner.start(1.0)
    t = 1.0
    while runner.state is SessionState.RUNNING:
        t += 0.5
        runner.tick(t)
    assert heard.said == [
        "Interval 1 of 3. Walk backward for 3 minutes. 6 minutes to go.",
        "One minute left.",
        AHEAD,
        f"{TURN} Interval 2 of 3. Walk forward for 1 minute. 3 minutes to go.",
        AHEAD,
        f"{TURN} Interval 3 of 3. Walk backward for 2 minutes. Last interval.",
        "One minute left in the session.",
        "Session done. Slow the belt to a stop, holding the rail. Well walked.",
    ]
    assert [c.spoken for c in runner.cues] == heard.said


def test_the_walker_is_told_to_get_ready_15_s_before_each_turn_and_only_then() -> None:
    """The turn's own words ("Slow the belt and hold the rail before you turn") and its beeps
    came only as the turn was due: a walker going by the beeps turned on a belt still running,
    and getting ready took time from the turn. Now 15 s (plan time) before every interval that
    turns the walker round: ``cue_turn_ahead`` and "Get ready to turn. Slow the belt and hold
    the rail." Not before a rest (no turn: its cue says to stop the belt), nor before an
    interval going the same way, nor in an interval under 30 s (its own words still playing)."""
    plan = Plan(
        "turns",
        (
            Interval.of_seconds("backward", 60.0),  # then a turn: warned at 45
            Interval.of_seconds("forward", 45.0),  # then a rest: no turn
            Interval.of_seconds("rest", 30.0),  # then backward: no turn after a rest
            Interval.of_seconds("backward", 40.0),  # then the same way: no turn
            Interval.of_seconds("backward", 40.0),  # then a turn: warned at 200
            Interval.of_seconds("forward", 20.0),  # then a turn, but under 30 s: not warned
            Interval.of_seconds("backward", 30.0),
        ),
    )
    heard = Heard()
    buzzer = QuietBuzzer()
    runner = SessionRunner(plan, safety=Armed(), buzzer=buzzer, device_id="t", speaker=heard)
    runner.start(1.0)
    t = 1.0
    while runner.state is SessionState.RUNNING:
        t += 0.25
        buzzer.stop()  # each cue played out: none refused or late
        runner.tick(t)
    ahead = [c for c in runner.cues if c.cue is Cue.TURN_AHEAD]
    assert [(c.interval, c.plan_t) for c in ahead] == [
        (0, pytest.approx(45.0, abs=0.25)),
        (4, pytest.approx(200.0, abs=0.25)),
    ]
    assert all(c.played and c.spoken == AHEAD for c in ahead)
    turns = [c for c in runner.cues if c.turn and c.cue in (Cue.BACKWARD, Cue.FORWARD)]
    assert [c.interval for c in turns] == [1, 5, 6]
    for warned in ahead:  # the next cue is its turn, 15 s later, and says to turn
        after = runner.cues[runner.cues.index(warned) + 1]
        assert after.interval == warned.interval + 1 and after.turn
        assert after.plan_t - warned.plan_t == pytest.approx(15.0, abs=0.25)
        assert after.spoken.startswith(TURN)
    assert heard.said.count(AHEAD) == 2
    assert AHEAD in runner.prompts.all_for_plan(plan)  # rendered ahead, as every prompt


def test_a_refused_arming_or_a_sensor_that_fell_off_is_said_once() -> None:
    heard = Heard()
    safety = Armed(SafetyState.STANDBY, reason="sensor not worn: no body movement (0.01 deg/s)")
    buzzer = QuietBuzzer()
    runner = SessionRunner(
        resolve_plan("alternate-2-2"), safety=safety, buzzer=buzzer, device_id="t", speaker=heard
    )
    runner.tick(1.0)
    assert heard.said == []  # lying on the console with nobody there: nothing to say
    buzzer.play("not_worn", 2.0)  # the walker pressed reset and was refused
    for t in (2.0, 2.5, 3.0):
        runner.tick(t)
    not_worn = "The sensor is not on your body. Clip it on your belt, then press reset."
    assert heard.said == [not_worn]
    buzzer.stop()
    runner.tick(4.0)
    safety.state, safety.reason = SafetyState.FAULT, "sensor not worn: no body movement for 20 s"
    runner.tick(5.0)
    runner.tick(6.0)
    assert heard.said == [not_worn, not_worn]


def test_a_call_for_help_and_its_answer_are_said_in_words_not_only_beeped() -> None:
    """Three quick presses play ``help_sent`` (two groups of four beeps), a caregiver's answer
    ``help_answered``: a walker on the floor cannot be expected to remember which is which,
    so each is said as it starts, once; a call repeated after its pattern ended is said again."""
    heard = Heard()
    buzzer = QuietBuzzer()
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=Armed(SafetyState.TRIPPED),
        buzzer=buzzer,
        device_id="t",
        speaker=heard,
    )
    buzzer.play("alarm", 1.0)  # the trip's alarm says nothing new
    runner.tick(1.0)
    runner.tick(1.5)
    assert heard.said == []
    buzzer.play("help_sent", 2.0)  # the safety controller plays it on the walker's call
    for t in (2.0, 2.5, 3.0):
        runner.tick(t)
    sent = "Help called. Your caregivers are being told."
    assert heard.said == [sent]
    buzzer.stop()
    runner.tick(4.0)  # quiet after the trip: what to do next (its own test, below)
    buzzer.play("help_sent", 5.0)  # called again after the pattern ended: confirmed again
    runner.tick(5.0)
    buzzer.play("help_answered", 6.0)  # a caregiver acknowledged the incident
    runner.tick(6.0)
    runner.tick(6.5)
    answered = "A caregiver has answered your call for help."
    assert heard.said == [sent, TRIPPED_PROMPT, sent, answered]
    assert {"help_sent", "help_answered"} <= set(PATTERNS)  # the names the controller plays
    assert sent in runner.prompts.all_for_plan(runner.plan)  # rendered ahead, never pruned


HOLD_PROMPT = "Not armed. Press and hold reset until the chirp."

TRIPPED_PROMPT = (
    "The belt is stopped. When you are standing and ready, press and hold reset until the"
    " chirp. To call for help, press reset three times quickly."
)


def _armed_runner_with_a_voice() -> tuple[Heard, Armed, QuietBuzzer, SessionRunner]:
    """A runner of the 2/2 plan with a speaker, ticked once while the belt is armed."""
    heard = Heard()
    safety = Armed(SafetyState.ARMED)
    buzzer = QuietBuzzer()
    runner = SessionRunner(
        resolve_plan("alternate-2-2"), safety=safety, buzzer=buzzer, device_id="t", speaker=heard
    )
    runner.tick(1.0)
    return heard, safety, buzzer, runner


def test_after_a_trip_the_walker_is_told_what_to_do_once_the_alarm_ends() -> None:
    """A trip opens the relay and the buzzer sounds ``alarm`` until a press or a caregiver's
    silence ends it; then nothing told the walker what to do next. With a speaker, once the
    buzzer is quiet (never over the alarm, nor over a pattern with words of its own), the
    walker hears the button's real gestures, once a trip: hold reset until the chirp to
    re-arm, three quick presses to call for help."""
    heard, safety, buzzer, runner = _armed_runner_with_a_voice()
    safety.state, safety.since = SafetyState.TRIPPED, 2.0  # a stumble: the relay opened
    buzzer.play("alarm", 2.0)
    for t in (2.0, 2.5, 3.0):
        runner.tick(t)
    assert heard.said == []  # not over the alarm
    buzzer.stop()  # a caregiver's silence
    for t in (4.0, 4.5, 5.0):
        runner.tick(t)
    assert heard.said == [TRIPPED_PROMPT]
    buzzer.play("alarm", 6.0)  # not getting up: the alarm again, the same trip
    runner.tick(6.0)
    safety.reason = LET_GO_REASON
    buzzer.play("refused", 7.0)  # a reset press let go before the chirp: its own words
    runner.tick(7.0)
    buzzer.stop()
    runner.tick(8.0)
    assert heard.said == [TRIPPED_PROMPT, HOLD_PROMPT]  # the trip's words once a trip
    safety.state, safety.since = SafetyState.ARMED, 9.0  # held until the chirp: re-armed
    buzzer.play("chirp", 9.0)
    runner.tick(9.0)
    buzzer.stop()
    runner.tick(9.5)
    safety.state, safety.since = SafetyState.TRIPPED, 10.0  # a second trip
    buzzer.play("alarm", 10.0)
    runner.tick(10.0)
    safety.state, safety.since = SafetyState.ARMED, 11.0  # re-armed while the alarm sounded
    buzzer.stop()
    buzzer.play("chirp", 11.0)
    runner.tick(11.0)
    buzzer.stop()
    runner.tick(11.5)
    assert heard.said == [TRIPPED_PROMPT, HOLD_PROMPT]  # nothing more: the walker went on
    safety.state, safety.since = SafetyState.TRIPPED, 12.0  # a third trip
    buzzer.play("alarm", 12.0)
    runner.tick(12.0)
    buzzer.play("help_sent", 13.0)  # three quick presses end the alarm
    runner.tick(13.0)
    buzzer.stop()
    runner.tick(14.0)
    sent = "Help called. Your caregivers are being told."
    assert heard.said == [TRIPPED_PROMPT, HOLD_PROMPT, sent, TRIPPED_PROMPT]
    assert not runner.cues  # words only: the runner played no pattern
    assert TRIPPED_PROMPT in runner.prompts.all_for_plan(runner.plan)  # rendered ahead


def test_each_arming_without_a_caregiver_service_is_said_once_and_only_words() -> None:
    """The courier's word (through the link) is looked at once an arming: the words are
    queued while no caregiver service is there, not while it is, and the runner plays no
    pattern for it (the buzzer is the safety controller's)."""
    away = [True]
    heard, buzzer = Heard(), QuietBuzzer()
    safety = Armed(SafetyState.STANDBY)
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=safety,
        buzzer=buzzer,
        device_id="t",
        speaker=heard,
        caregivers_away=lambda: away[0],
    )
    runner.tick(1.0)
    assert heard.said == []  # not armed: nothing to say
    safety.state, safety.since = SafetyState.ARMED, 2.0
    for t in (2.0, 2.5, 3.0):
        runner.tick(t)
    words = runner.prompts.file.prompts.no_caregiver
    assert words and heard.said == [words]
    safety.state, safety.since = SafetyState.TRIPPED, 4.0
    runner.tick(4.0)
    away[0] = False  # the service came back before the walker re-armed
    safety.state, safety.since = SafetyState.ARMED, 5.0
    runner.tick(5.0)
    assert heard.said.count(words) == 1
    assert buzzer.pattern is None and not runner.cues
    assert words in runner.prompts.all_for_plan(runner.plan)  # rendered ahead


def test_a_service_gone_during_an_arming_is_told_at_the_next_with_no_undecided_to_ask() -> None:
    """A runner given the courier's away and no way to ask whether it is undecided (None:
    never) looks once an arming: a service that goes away later in that arming is said at
    the next arming, not in the middle of the walk."""
    away = [False]
    heard = Heard()
    safety = Armed(SafetyState.ARMED, since=2.0)
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=safety,
        buzzer=QuietBuzzer(),
        device_id="t",
        speaker=heard,
        caregivers_away=lambda: away[0],
    )
    runner.tick(2.0)
    away[0] = True  # the service went away during this arming
    runner.tick(2.5)
    assert heard.said == []
    safety.state, safety.since = SafetyState.TRIPPED, 3.0
    runner.tick(3.0)
    safety.state, safety.since = SafetyState.ARMED, 4.0
    runner.tick(4.0)
    assert heard.said.count(runner.prompts.file.prompts.no_caregiver) == 1


def test_an_arming_the_courier_cannot_say_about_yet_is_told_once_it_can() -> None:
    """An arming while the courier cannot say yet (its broker connection under way) is told
    nothing then; the runner looks again each tick of that arming, and says the words once
    the courier says away — or nothing, once it says the service is there. A trip ends the
    looking; the next arming is looked at afresh."""
    away, undecided = [False], [True]
    heard, buzzer = Heard(), QuietBuzzer()
    safety = Armed(SafetyState.STANDBY)
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=safety,
        buzzer=buzzer,
        device_id="t",
        speaker=heard,
        caregivers_away=lambda: away[0],
        caregivers_undecided=lambda: undecided[0],
    )
    words = runner.prompts.file.prompts.no_caregiver
    safety.state, safety.since = SafetyState.ARMED, 2.0
    runner.tick(2.0)
    runner.tick(2.5)
    assert heard.said == []  # cannot say yet: nothing said
    away[0], undecided[0] = True, False  # the connection attempt failed
    runner.tick(3.0)
    runner.tick(3.5)
    assert heard.said == [words]  # said once, in that same arming
    safety.state, safety.since = SafetyState.TRIPPED, 4.0
    runner.tick(4.0)
    away[0], undecided[0] = False, True  # connecting again
    safety.state, safety.since = SafetyState.ARMED, 5.0
    runner.tick(5.0)
    undecided[0] = False  # heard online: nothing to say
    runner.tick(5.5)
    away[0] = True  # the service went away later in that arming: said at the next one
    runner.tick(6.0)
    assert heard.said.count(words) == 1  # (the trip's own words were said meanwhile)
    safety.state, safety.since = SafetyState.TRIPPED, 7.0
    runner.tick(7.0)
    safety.state, safety.since = SafetyState.ARMED, 8.0
    runner.tick(8.0)
    assert heard.said.count(words) == 2 and heard.said[-1] == words
    assert buzzer.pattern is None and not runner.cues


def test_re_arming_withdraws_the_trip_words_so_the_resumed_cue_is_not_kept_waiting() -> None:
    """The trip's words last about 10 s; a walker who re-armed during them had the resumed
    interval's cue queued behind the rest. Leaving TRIPPED withdraws them (the player drops
    them or cuts them short, :meth:`PromptPlayer.withdraw`) — once, and only when they were
    said."""
    heard, safety, buzzer, runner = _armed_runner_with_a_voice()
    safety.state, safety.since = SafetyState.TRIPPED, 2.0
    runner.tick(2.0)
    assert heard.said == [TRIPPED_PROMPT] and heard.withdrawn == []
    safety.state, safety.since = SafetyState.ARMED, 3.0  # re-armed while they play
    for t in (3.0, 3.5, 4.0):
        runner.tick(t)
    assert heard.withdrawn == [TRIPPED_PROMPT]
    safety.state, safety.since = SafetyState.TRIPPED, 5.0  # a trip, re-armed over the alarm
    buzzer.play("alarm", 5.0)
    runner.tick(5.0)
    safety.state, safety.since = SafetyState.ARMED, 6.0
    runner.tick(6.0)
    assert heard.said == [TRIPPED_PROMPT] and heard.withdrawn == [TRIPPED_PROMPT]


def _gated(cache: PromptCache, text: str, *, forever: bool) -> None:
    """``text`` "plays" (``cat`` of ``<wav>.gate``) at once, or ``forever``: a FIFO nobody
    writes, until the player is cut short."""
    wav = cache.path_for(text)
    fake_wav(wav)
    gate = Path(f"{wav}.gate")
    if forever:
        os.mkfifo(gate)
    else:
        gate.write_text("")


def _until_playing(player: PromptPlayer, text: str) -> None:
    for _ in range(3000):  # until the worker plays it (a state, bounded; not a timing)
        playing = player._now_playing
        if playing is not None and playing[1] == text:
            return
        player._thread.join(0.01)
    raise AssertionError(f"{text!r} never started playing")


def test_a_withdrawn_prompt_playing_is_cut_short_and_the_next_plays(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path / "prompts")
    _gated(cache, "trip words", forever=True)
    _gated(cache, "resume cue", forever=False)
    player = PromptPlayer(cache, command=["sh", "-c", 'exec cat "$1.gate"', "player"])
    player.say("trip words")
    _until_playing(player, "trip words")
    player.withdraw("trip words")
    player.say("resume cue")
    drain(player)
    assert player.played == ["resume cue"]
    assert player.failures == 0  # cut short on purpose: not a failing player


def test_a_withdrawn_prompt_still_queued_is_dropped_and_plays_when_said_again(
    tmp_path: Path,
) -> None:
    cache = PromptCache(tmp_path / "prompts")
    _gated(cache, "help called", forever=True)
    _gated(cache, "trip words", forever=False)
    _gated(cache, "resume cue", forever=False)
    player = PromptPlayer(cache, command=["sh", "-c", 'exec cat "$1.gate"', "player"])
    player.say("help called")
    player.say("trip words")
    player.say("resume cue")
    player.withdraw("trip words")  # queued behind "help called": never played
    player.say("trip words")  # a later trip: its words play
    _until_playing(player, "help called")
    with open(f"{cache.path_for('help called')}.gate", "w") as gate:
        gate.write("done\n")  # "help called" ends as it should
    drain(player)
    assert player.played == ["help called", "resume cue", "trip words"]
    assert player.failures == 0


def test_without_a_voice_a_trip_is_beeps_only() -> None:
    """No speaker: the alarm's end brings no pattern and no cue of the runner's."""
    played: list[str] = []

    class Played(QuietBuzzer):
        def play(self, pattern: str, now: float) -> None:
            played.append(pattern)
            super().play(pattern, now)

    buzzer = Played()
    runner = SessionRunner(
        resolve_plan("alternate-2-2"),
        safety=Armed(SafetyState.TRIPPED, since=2.0),
        buzzer=buzzer,
        device_id="t",
    )
    buzzer.play("alarm", 2.0)
    runner.tick(2.0)
    buzzer.stop()
    runner.tick(3.0)
    runner.tick(4.0)
    assert played == ["alarm"]  # the controller's alarm, nothing of the runner's
    assert not runner.cues


def test_the_prompt_cache_lives_beside_the_event_store_or_where_the_config_says(
    tmp_path: Path,
) -> None:
    from firmware.config import load_config
    from firmware.session.runner import prompt_cache_dir

    plain = tmp_path / "plain.toml"
    plain.write_text('[storage]\ndatabase = "state/events.db"\n')
    assert prompt_cache_dir(load_config(plain)) == tmp_path / "state" / "prompts"
    chosen = tmp_path / "chosen.toml"
    chosen.write_text('[session]\nprompt_cache = "cache"\nlanguage = "en"\nvoice = "off"\n')
    assert prompt_cache_dir(load_config(chosen)) == tmp_path / "cache"
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[session]\nlanguage = "tlh"\n')
    with pytest.raises(ConfigError, match=r"session.language: no prompt file for this language"):
        load_config(wrong)


def test_closing_drops_the_queue_and_cuts_the_prompt_playing(tmp_path: Path) -> None:
    """The monitor stopping never waits for speech: the prompt playing is cut short."""
    cache = PromptCache(tmp_path / "prompts")
    for text in ("long", "queued"):
        fake_wav(cache.path_for(text))
    os.mkfifo(f"{cache.path_for('long')}.gate")  # nobody ever writes it: "plays" forever
    player = PromptPlayer(cache, command=["sh", "-c", 'exec cat "$1.gate"', "player"])
    player.say("long")
    player.say("queued")
    for _ in range(3000):  # until the worker is "playing" (a state, bounded; not a timing)
        if player._now_playing is not None:
            break
        player._thread.join(0.01)
    assert player._now_playing is not None
    player.close(timeout=30.0)
    assert not player._thread.is_alive()
    assert player.played == [] and player.failures == 0


@needs_espeak
def test_the_prompts_command_renders_the_plan_into_the_cache(
    plan_rendered: RenderedPlan, capsys: pytest.CaptureFixture[str]
) -> None:
    from launcher.cli import main

    first = plan_rendered.printed
    assert first.startswith("alternate-2-2 in English (voice en, 150 words/min): 100 prompts (100 ")
    assert len(list((plan_rendered.folder / "prompts").glob("*.wav"))) == 100
    config = plan_rendered.folder / "config.toml"
    assert main(["prompts", "-c", str(config), "--list"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert "100 prompts (0 rendered" in again[0]
    text = "Interval 1 of 15. Walk backward for 2 minutes. 30 minutes to go."
    assert again[1].endswith(text)
    wav = PromptCache(plan_rendered.folder / "prompts", "en", 150).path_for(text)
    assert again[1].startswith(f"  {wav_figures(wav).duration_s:4.1f} s ")  # its length
    assert len(again) == 101  # the first line, then one a prompt


# ------------------------------------------------------------------ pruning the cache


def _plan(name: str, minutes: float) -> Plan:
    return Plan(name, (Interval("backward", minutes), Interval("forward", minutes)))


def test_pruning_keeps_the_plans_in_use_and_removes_only_rendered_prompts(
    tmp_path: Path, prompts: Prompts
) -> None:
    cache = PromptCache(tmp_path / "prompts")
    old, new = prompts.all_for_plan(_plan("old", 3)), prompts.all_for_plan(_plan("new", 4))
    other_voice = PromptCache(cache.directory, "de", 150)
    for text in (*old, *new):
        fake_wav(cache.path_for(text))
    fake_wav(other_voice.path_for(new[0]))
    mine = cache.directory / "notes.wav"
    mine.write_bytes(b"not a prompt")  # nothing the cache did not name is touched
    gone = {cache.path_for(t) for t in old if t not in new} | {other_voice.path_for(new[0])}
    size = (cache.directory / cache.path_for(new[0]).name).stat().st_size
    pruned = cache.prune(new)
    assert (pruned.removed, pruned.removed_bytes) == (len(gone), len(gone) * size)
    assert pruned.left_bytes == len(new) * size
    assert all(cache.cached(t) is not None for t in new) and mine.exists()
    assert not any(path.exists() for path in gone)
    assert str(pruned) == (
        f"{len(gone)} unused prompt(s) removed ({len(gone) * size / 1024:.0f} KiB), "
        f"{len(new) * size / 1024:.0f} KiB left"
    )


def test_a_bound_removes_the_least_recently_used_prompts_first_never_those_kept(
    tmp_path: Path,
) -> None:
    cache = PromptCache(tmp_path / "prompts")
    texts = [f"prompt {n}" for n in range(6)]
    for age, text in enumerate(texts):  # "prompt 0" is the newest
        fake_wav(cache.path_for(text))
        os.utime(cache.path_for(text), (1000.0 - age, 1000.0 - age))
    size = cache.path_for(texts[0]).stat().st_size
    cache.render(texts[5])  # played just now: used, so newest
    pruned = cache.prune(keep=[texts[4]], max_bytes=3 * size)
    assert pruned.removed == 3 and pruned.left_bytes == 3 * size
    left = [t for t in texts if cache.cached(t) is not None]
    assert left == [texts[0], texts[4], texts[5]]  # kept one, the newest, the one used
    assert cache.prune(keep=texts, max_bytes=0).removed == 0  # kept ones stay, over the bound


def test_a_new_plan_is_rendered_ahead_and_the_unused_prompts_go(
    tmp_path: Path, prompts: Prompts
) -> None:
    """The player's worker does it (the loop only puts the plans in the queue)."""
    configured, session, new, old = (
        _plan(n, m) for n, m in (("c", 1), ("s", 2), ("n", 3), ("o", 5))
    )
    cache = PromptCache(tmp_path / "prompts")
    for plan in (configured, session, new, old):
        for text in prompts.all_for_plan(plan):
            fake_wav(cache.path_for(text))  # "rendered" already: no speech engine needed
    player = PromptPlayer(
        cache,
        command=recorder(tmp_path / "played.log"),
        prerender=prompts.all_for_plan(configured),
        texts_for=prompts.all_for_plan,
    )
    player.prepare((session, new))
    drain(player)
    assert player.pruned is not None and player.pruned.removed > 0
    for plan in (configured, session, new):
        assert all(cache.cached(t) is not None for t in prompts.all_for_plan(plan)), plan.name
    in_use = {t for p in (configured, session, new) for t in prompts.all_for_plan(p)}
    assert all(cache.cached(t) is None for t in prompts.all_for_plan(old) if t not in in_use)


@needs_espeak
def test_a_cue_asked_for_plays_before_a_new_plans_prompts_are_rendered(tmp_path: Path) -> None:
    """A plan sent mid-session is rendered while nothing is asked for: the session's cue
    waiting in the queue plays first (rendering every prompt first held it up)."""
    cache = PromptCache(tmp_path / "prompts")
    gates = {}
    for text in ("first", "second"):
        wav = cache.path_for(text)
        fake_wav(wav)
        gates[text] = Path(f"{wav}.gate")
        os.mkfifo(gates[text])
    new_prompts = ["Interval one of four.", "Walk backward for two minutes."]
    player = PromptPlayer(
        cache,
        command=["sh", "-c", 'read line < "$1.gate"', "player"],
        texts_for=lambda plan: new_prompts,
    )
    player.say("first")
    with gates["first"].open("w") as gate:  # opens once "first" is playing
        player.prepare((_plan("new", 2),))
        player.say("second")
        gate.write("go\n")
    with gates["second"].open("w") as gate:  # "second" is playing now
        assert all(cache.cached(t) is None for t in new_prompts)  # not rendered before it
        gate.write("go\n")
    drain(player)
    assert player.played == ["first", "second"]
    assert all(cache.cached(t) is not None for t in new_prompts)  # then rendered


def test_a_plan_assigned_to_the_runner_goes_to_a_speaker_that_prepares() -> None:
    class Preparing:
        def __init__(self) -> None:
            self.prepared: list[tuple[Plan, ...]] = []

        def say(self, text: str) -> None:
            pass

        def withdraw(self, text: str) -> None:
            pass

        def close(self) -> None:
            pass

        def prepare(self, plans: Sequence[Plan]) -> None:
            self.prepared.append(tuple(plans))

    speaker = Preparing()
    first, new = resolve_plan("alternate-2-2"), _plan("new", 3)
    runner = SessionRunner(
        first, safety=Armed(), buzzer=QuietBuzzer(), device_id="t", speaker=speaker
    )
    runner.assign_plan(new)
    runner.assign_plan(None)  # back to the config's
    assert speaker.prepared == [(first, new), (first, runner.configured_plan)]


@needs_espeak
def test_the_prompts_command_renders_the_assigned_plan_and_prunes_the_old_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    prompts: Prompts,
    plan_rendered: RenderedPlan,
) -> None:
    """The configured plan's prompts are in the cache already (copied from
    :func:`plan_rendered`, whose test sees the command render them all): the assigned plans'
    are rendered beside them, and the unassigned one's pruned."""
    from firmware.storage.database import connect
    from firmware.storage.plans import assign_plan
    from launcher.cli import main

    config = tmp_path / "config.toml"
    config.write_text('[storage]\ndatabase = "events.db"\n[session]\nplan = "alternate-2-2"\n')
    cache = PromptCache(tmp_path / "prompts", "en", 150)
    shutil.copytree(plan_rendered.folder / "prompts", cache.directory)
    configured = prompts.all_for_plan(resolve_plan("alternate-2-2"))
    assert all(cache.cached(t) is not None for t in configured)
    first, second = _plan("Anna, week 1", 3), _plan("Anna, week 2", 4)
    for plan in (first, second):
        conn = connect(tmp_path / "events.db")
        assign_plan(conn, plan, by="Jo", via="mqtt", assigned_wall="2026-03-02T09:00:00+00:00")
        conn.commit()
        conn.close()
        assert main(["prompts", "-c", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("alternate-2-2 and Anna, week 1 in English")
    assert out[1].startswith("alternate-2-2 and Anna, week 2 in English")
    in_use = {*configured, *prompts.all_for_plan(second)}
    dropped = [t for t in prompts.all_for_plan(first) if t not in in_use]
    assert dropped and all(cache.cached(t) is None for t in dropped)
    assert all(cache.cached(t) is not None for t in in_use)
    assert out[2].startswith(f"no plan in use needs the others: {len(dropped)} unused prompt(s)")
    assert len(list(cache.directory.glob("*.wav"))) == len(in_use)
    plan_bytes = sum(cache.path_for(t).stat().st_size for t in configured)
    print(f"\n{out[2]}; the 2/2 plan's {len(configured)} prompts: {plan_bytes / 2**20:.1f} MiB")


def test_a_refused_reset_press_is_said_why_not_only_beeped() -> None:
    """The ``refused`` beeps (three quick and a long one) say "not armed", not why. With a
    speaker the walker hears what to do: hold until the chirp (a press let go sooner, the
    commonest), wait until standing (the sensor reads lying: no order to stand up to
    someone who may be hurt), or, for what the walker cannot put right
    at the belt (alerts cannot be stored), to ask the caregiver. Once as the pattern starts."""
    heard, safety, buzzer, runner = _armed_runner_with_a_voice()
    safety.state, safety.since = SafetyState.STANDBY, 2.0
    runner.tick(2.0)
    cases = [
        (LET_GO_REASON, HOLD_PROMPT),
        (
            NOT_UPRIGHT_REASON,
            "Not armed. The sensor reads you lying down. When you are standing and ready, "
            "press and hold reset.",
        ),
        (
            "cannot arm: alerts cannot be stored: the disk is full",
            "Not armed. The monitor cannot protect you now. Ask your caregiver.",
        ),
    ]
    t = 3.0
    for reason, words in cases:
        safety.reason = reason
        buzzer.play("refused", t)
        for dt in (0.0, 0.5, 1.0):
            runner.tick(t + dt)
        buzzer.stop()
        runner.tick(t + 1.5)
        assert heard.said[-1] == words
        assert words in runner.prompts.all_for_plan(runner.plan)  # rendered ahead
        t += 2.0
    assert len(heard.said) == len(cases)
    assert not runner.cues  # words only: the controller played the pattern


def test_a_trip_withdraws_the_interval_prompt_still_playing() -> None:
    """A turn, as the interval's prompt begins, is a likely moment for a stumble ("Slow the belt
    and hold the rail before you turn. Interval 2 of 15. Walk forward for 2 minutes. ...",
    about 8 s). It went on over the alarm, telling a walker on a stopped belt to walk on, and
    the trip's own words waited behind it. The trip withdraws it (and only the cue's words);
    the resumed interval's words, after re-arming, are said as always."""
    heard, safety, buzzer, runner = _armed_runner_with_a_voice()
    runner.start(1.0)
    runner.tick(1.0)
    first = heard.said[-1]
    assert first.startswith("Interval 1 of 15. Walk backward")
    safety.state, safety.since = SafetyState.TRIPPED, 2.0
    buzzer.play("alarm", 2.0)
    runner.tick(2.0)
    assert runner.state is SessionState.PAUSED
    assert heard.withdrawn == [first]
    buzzer.stop()
    runner.tick(3.0)
    assert heard.said[-1] == TRIPPED_PROMPT  # the trip's words are not withdrawn by it
    safety.state, safety.since = SafetyState.ARMED, 4.0
    for t in (4.0, 4.5, 5.0, 5.5):
        runner.tick(t)
    assert heard.said[-2].startswith(f"{RESTART_BACKWARD} Interval 1 of 15.")
    assert heard.withdrawn == [first, TRIPPED_PROMPT]  # re-armed: the trip's words withdrawn


@dataclass
class HeldBuzzer:
    """The buzzer's priorities (:class:`hal.buzzer_patterns.PatternPlayer`'s rules), but a
    pattern sounds until stopped: a test keeps the output busy as long as it likes."""

    pattern: str | None = None

    def play(self, pattern: str, now: float) -> None:
        current = self.pattern
        if current is None or PATTERNS[pattern].priority >= PATTERNS[current].priority:
            self.pattern = pattern

    def update(self, now: float) -> None: ...

    def stop(self) -> None:
        self.pattern = None

    def close(self) -> None: ...


HELP_SENT = "Help called. Your caregivers are being told."


def _tick_to(runner: SessionRunner, plan_t: float, t: float) -> float:
    """Tick every 0.25 s until the session's plan time reaches ``plan_t``; the clock after."""
    while runner.session is not None and runner.session.plan_t < plan_t - 1e-9:
        t += 0.25
        runner.tick(t)
    return t


def test_a_cue_refused_when_due_plays_when_the_buzzer_is_free_unless_stale() -> None:
    """A cue due while a higher-priority pattern holds the buzzer (a call for help's beeps) was
    refused and never asked for again. It is played, with its words, once the buzzer is free:
    an interval's cue as long as its interval runs, "one minute left" while at least 40 s are
    left (later it says something false), the end of the session however late."""
    plan = Plan(
        "two", (Interval.of_seconds("backward", 180.0), Interval.of_seconds("forward", 180.0))
    )
    heard, buzzer = Heard(), HeldBuzzer()
    runner = SessionRunner(plan, safety=Armed(), buzzer=buzzer, device_id="t", speaker=heard)
    runner.start(1.0)
    t = _tick_to(runner, 119.0, 1.0)
    buzzer.play("help_sent", t)  # the walker called for help; one minute left is due at 120 s
    t = _tick_to(runner, 130.0, t)
    assert [(c.cue, c.played) for c in runner.cues][-1] == (Cue.ONE_MINUTE, False)
    assert heard.said[-1] == HELP_SENT
    buzzer.stop()
    t = _tick_to(runner, 130.25, t)
    assert heard.said[-1] == "One minute left."
    late = runner.cues[-1]
    assert (late.cue, late.played, late.late) == (Cue.ONE_MINUTE, True, True)

    buzzer.stop()
    t = _tick_to(runner, 179.0, t)
    buzzer.play("help_sent", t)  # again as the interval ends: its cue is refused
    t = _tick_to(runner, 185.0, t)
    assert [(c.cue, c.played) for c in runner.cues][-1] == (Cue.FORWARD, False)
    buzzer.stop()
    t = _tick_to(runner, 185.25, t)
    assert heard.said[-1] == f"{TURN} Interval 2 of 2. Walk forward for 3 minutes. Last interval."
    assert (runner.cues[-1].cue, runner.cues[-1].late) == (Cue.FORWARD, True)

    buzzer.stop()
    t = _tick_to(runner, 299.0, t)
    buzzer.play("help_sent", t)  # held until 35 s are left: "one minute left" is stale
    t = _tick_to(runner, 325.0, t)
    buzzer.stop()
    said = len(heard.said)
    t = _tick_to(runner, 330.0, t)
    assert heard.said[said:] == []
    assert [(c.cue, c.played) for c in runner.cues][-1] == (Cue.ONE_MINUTE, False)

    t = _tick_to(runner, 359.0, t)
    buzzer.play("help_sent", t)  # the plan ends under it
    t = _tick_to(runner, 360.0, t)
    assert runner.state is SessionState.FINISHED
    for _ in range(120):  # held 30 s: the end of the session is worth saying still
        t += 0.25
        runner.tick(t)
    assert [(c.cue, c.played) for c in runner.cues][-1] == (Cue.DONE, False)
    buzzer.stop()
    runner.tick(t + 0.25)
    assert (runner.cues[-1].cue, runner.cues[-1].late) == (Cue.DONE, True)
    assert heard.said[-1] == "Session done. Slow the belt to a stop, holding the rail. Well walked."
    runner.tick(t + 0.5)
    assert [c.cue for c in runner.cues if c.late] == [Cue.ONE_MINUTE, Cue.FORWARD, Cue.DONE]


def test_a_trip_withdraws_a_refused_cue_still_waiting_and_safety_prompts_win() -> None:
    """A refused cue waits for the buzzer, never for a trip: the trip withdraws it, as it
    withdraws the cue's words already queued, so no "turn around and walk forward" comes
    after the alarm over a stopped belt. The trip's own words play; re-arming resumes with
    the resume cue, not the stale turn."""
    heard, safety = Heard(), Armed(SafetyState.ARMED)
    buzzer = HeldBuzzer()
    runner = SessionRunner(
        resolve_plan("alternate-2-2"), safety=safety, buzzer=buzzer, device_id="t", speaker=heard
    )
    runner.tick(1.0)
    runner.start(1.0)
    t = _tick_to(runner, 119.0, 1.0)
    buzzer.play("help_sent", t)
    t = _tick_to(runner, 121.0, t)
    assert [(c.cue, c.played) for c in runner.cues][-1] == (Cue.FORWARD, False)
    buzzer.stop()  # the help pattern ends: the refused cue plays
    t = _tick_to(runner, 121.25, t)
    assert heard.said[-1].startswith(f"{TURN} Interval 2 of 15.") and runner.cues[-1].late

    buzzer.stop()
    t = _tick_to(runner, 239.0, t)
    buzzer.play("help_sent", t)
    t = _tick_to(runner, 241.0, t)
    assert [(c.cue, c.played) for c in runner.cues][-1] == (Cue.BACKWARD, False)
    cues = len(runner.cues)
    safety.state, safety.since = SafetyState.TRIPPED, t + 0.25  # a stumble under the help beeps
    buzzer.play("alarm", t + 0.25)
    runner.tick(t + 0.25)
    assert runner.state is SessionState.PAUSED
    buzzer.stop()  # the alarm is over
    for n in range(2, 12):
        runner.tick(t + 0.25 * n)
    assert len(runner.cues) == cues  # the turn never played over the stopped belt
    assert heard.said[-1] == TRIPPED_PROMPT
    safety.state, safety.since = SafetyState.ARMED, t + 3.0
    for n in range(12, 24):
        runner.tick(t + 0.25 * n)
    assert [(c.cue, c.resumed, c.late) for c in list(runner.cues)[cues:]] == [
        (Cue.BACKWARD, True, False)
    ]
    assert heard.said[-2].startswith(f"{RESTART_BACKWARD} Interval 3 of 15.")


class _OnTheBuzzer:
    """A runner on the real buzzer (:class:`hal.gpio.GpioBuzzer` on a clocked mock pin) and a
    simulated clock, ticked as the loop does: the buzzer told the time, then the runner."""

    def __init__(self, plan: Plan) -> None:
        self.clock = SimClock(0.0)
        self.factory = ClockedMockFactory(self.clock)
        self.buzzer = GpioBuzzer(18, self.factory)
        self.heard = Heard()
        self.runner = SessionRunner(
            plan, safety=Armed(), buzzer=self.buzzer, device_id="t", speaker=self.heard
        )
        self.tick(1.0)
        self.runner.start(1.0)

    @property
    def t(self) -> float:
        return self.clock.monotonic()

    def tick(self, t: float) -> None:
        self.clock.advance(t - self.clock.monotonic())
        self.buzzer.update(t)
        self.runner.tick(t)

    def run_to_plan(self, plan_t: float, step: float = 0.25) -> None:
        s = self.runner.session
        assert s is not None
        while s.plan_t < plan_t - 1e-9 and self.runner.state is SessionState.RUNNING:
            self.tick(self.t + step)

    def run_for(self, seconds: float, step: float = 0.05) -> None:
        end = self.t + seconds
        while self.t < end - 1e-9:
            self.tick(min(end, self.t + step))

    def close(self) -> None:
        self.buzzer.close()
        self.factory.close()


TURN_FORWARD = f"{TURN} Interval 2 of 2. Walk forward for 1 minute 30 seconds. Last interval."
RESUME_BACKWARD = "Resume walking backward. Interval 1 of 2."


def _paused_and_resumed(rig: _OnTheBuzzer, at_plan_t: float) -> None:
    """The walker pauses at ``at_plan_t`` and resumes 2 s later: the resume cue is due 1 s on."""
    rig.run_to_plan(at_plan_t)
    rig.runner.request("pause")
    rig.run_for(2.0)
    assert rig.runner.state is SessionState.PAUSED
    rig.runner.request("resume")
    rig.tick(rig.t + 0.01)
    assert rig.runner.state is SessionState.RUNNING


def test_a_resume_cue_due_as_its_interval_ends_gives_way_to_the_turn() -> None:
    """Resumed just under a second before the interval's end, the resume cue fell due on the
    same tick as the next interval's: "resume walking backward" played, then at once "turn
    around and walk forward", the beeps of the first cut by the second and its words said in
    full before the turn's. Only the turn plays now. Resumed a little earlier, the resume cue
    plays, and its words still queued or playing as the interval ends are withdrawn: what the
    walker hears last is the turn, alone."""
    plan = Plan(
        "two", (Interval.of_seconds("backward", 120.0), Interval.of_seconds("forward", 90.0))
    )
    rig = _OnTheBuzzer(plan)
    try:
        _paused_and_resumed(rig, 119.2)  # resume at 119.2 s of plan, its cue due 1 s later
        cues = len(rig.runner.cues)
        said = len(rig.heard.said)
        rig.tick(rig.t + 1.0)  # a slow iteration: the cue due and the interval over at once
        assert [(c.cue, c.resumed) for c in list(rig.runner.cues)[cues:]] == [(Cue.FORWARD, False)]
        assert rig.heard.said[said:] == [TURN_FORWARD]
        assert rig.buzzer.pattern == "cue_forward"
    finally:
        rig.close()

    rig = _OnTheBuzzer(plan)
    try:
        _paused_and_resumed(rig, 118.0)
        rig.run_for(1.05)  # the resume cue: its two prompts queued, about 4 s of speech
        assert rig.heard.said[-2:] == [RESUME_BACKWARD, "2 minutes to go."]
        rig.run_to_plan(120.0)  # under a second later the interval ends, the words not said out
        assert rig.heard.said[-1] == TURN_FORWARD
        assert rig.heard.withdrawn[-2:] == [RESUME_BACKWARD, "2 minutes to go."]
    finally:
        rig.close()


def test_an_interval_end_and_one_minute_left_due_at_once_are_heard_turn_first() -> None:
    """A slow iteration (or a compressed demo) can bring the interval's end and the next
    interval's "one minute left" due on the same tick (a last interval of 61 s warns 1 s in).
    The walker hears the turn first, beeps and words; "one minute left" is refused by the
    turn's beeps (priority 30 over 25) and played, beeps and words, as soon as they end,
    still worth saying (60 s left), once."""
    plan = Plan(
        "two", (Interval.of_seconds("backward", 120.0), Interval.of_seconds("forward", 61.0))
    )
    rig = _OnTheBuzzer(plan)
    try:
        rig.run_to_plan(119.0)
        cues = len(rig.runner.cues)
        rig.tick(rig.t + 2.5)  # 121.5 s of plan: the interval over, one minute left due
        due = rig.t
        assert [(c.cue, c.played) for c in list(rig.runner.cues)[cues:]] == [
            (Cue.FORWARD, True),
            (Cue.ONE_MINUTE, False),
        ]
        rig.run_for(3.0, step=0.01)
        late = rig.runner.cues[-1]
        assert (late.cue, late.played, late.late, late.replayed) == (
            Cue.ONE_MINUTE,
            True,
            True,
            False,
        )
        forward_ends = due + PATTERNS["cue_forward"].period
        assert forward_ends <= late.t < forward_ends + 0.011
        turn = f"{TURN} Interval 2 of 2. Walk forward for 1 minute 1 second. Last interval."
        assert rig.heard.said[-2:] == [turn, "One minute left in the session."]
        assert [c.cue for c in rig.runner.cues].count(Cue.ONE_MINUTE) == 2  # refused, played
    finally:
        rig.close()
