"""`retroguard doctor`'s audio line, without a sound card: fake aplay -l and aplay commands,
the real espeak-ng when it is installed (skipped with the reason otherwise)."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest

from firmware.config import Config
from firmware.session.config import SessionConfig
from firmware.session.voice import SoundOutput
from tools.diagnostics.audio_checks import AudioBench, check_audio, playback_devices

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)

SOUND = SoundOutput(espeak=True, aplay=True, cards=("0 [Headphones]: bcm2835 Headphones",))
LISTING = (
    "**** List of PLAYBACK Hardware Devices ****\n"
    "card 0: Headphones [bcm2835 Headphones], device 0: bcm2835 Headphones [bcm2835 Headphones]\n"
    "  Subdevices: 8/8\n"
)
CARD = "card 0: Headphones [bcm2835 Headphones], device 0: bcm2835 Headphones [bcm2835 Headphones]"


def printer(text: str) -> list[str]:
    """A stand-in for ``aplay -l`` that prints ``text``."""
    return [sys.executable, "-c", f"print({text!r}, end='')"]


def recorder(log: Path) -> list[str]:
    script = f"import sys; open({str(log)!r}, 'a').write(sys.argv[1] + '\\n')"
    return [sys.executable, "-c", script]


def config(voice: str = "auto") -> Config:
    return dataclasses.replace(Config(), session=SessionConfig(voice=voice))


def test_voice_off_skips() -> None:
    assert check_audio(config("off")).line() == (
        'SKIP  audio            session.voice = "off": session cues are beeps'
    )


def test_missing_engine_or_player_fails_with_the_install_fix() -> None:
    bench = AudioBench(sound=SoundOutput(False, False, ()), real_hardware=True)
    assert check_audio(config(), bench).line() == (
        "FAIL  audio            espeak-ng is not installed; aplay (alsa-utils) is not "
        "installed; no sound card (a Pi Zero 2 W or Pi 5 has no audio out: add a USB speaker "
        "or an I2S DAC, wiring/README.md); fix: sudo apt install espeak-ng alsa-utils "
        "(scripts/install-pi.sh does)"
    )


def test_a_board_without_audio_out_warns_in_auto_and_fails_for_a_named_voice() -> None:
    bench = AudioBench(sound=SoundOutput(True, True, ()), real_hardware=True)
    auto = check_audio(config(), bench)
    assert auto.status.value == "WARN" and auto.detail.endswith("session cues are beeps")
    named = check_audio(config("en-gb"), bench)
    assert named.failed and "USB speaker or wire an I2S DAC" in named.fix


@needs_espeak
def test_a_test_prompt_is_rendered_and_played_on_the_listed_card(tmp_path: Path) -> None:
    log = tmp_path / "played.log"
    bench = AudioBench(
        sound=SOUND,
        list_command=printer(LISTING),
        play_command=recorder(log),
        real_hardware=True,
        work_dir=tmp_path / "w",
    )
    assert check_audio(config(), bench).line() == (
        f'PASS  audio            played "RetroGuard speaker test." on {CARD}; spoken prompts '
        'on (session.voice = "auto", language en)'
    )
    played = log.read_text().splitlines()
    assert len(played) == 1 and played[0].endswith(".wav") and Path(played[0]).is_file()


@needs_espeak
def test_a_user_outside_the_audio_group_is_told_so(tmp_path: Path) -> None:
    bench = AudioBench(
        sound=SOUND,
        list_command=printer("aplay: device_list:279: no soundcards found...\n"),
        real_hardware=True,
        work_dir=tmp_path,
    )
    result = check_audio(config(), bench)
    assert result.failed
    assert result.detail == (
        "the kernel lists 1 sound card(s) but aplay finds no playback device for this user"
    )
    assert result.fix.startswith("add the user to the audio group")


@needs_espeak
def test_a_player_that_fails_is_a_failure_with_its_message(tmp_path: Path) -> None:
    fails = [sys.executable, "-c", "import sys; sys.exit('aplay: main:831: audio open error')"]
    bench = AudioBench(
        sound=SOUND,
        list_command=printer(LISTING),
        play_command=fails,
        real_hardware=True,
        work_dir=tmp_path,
    )
    assert check_audio(config(), bench).detail == (
        "aplay could not play the test prompt: aplay: main:831: audio open error"
    )


@needs_espeak
def test_an_unknown_voice_fails_at_the_render(tmp_path: Path) -> None:
    bench = AudioBench(sound=SOUND, real_hardware=True, work_dir=tmp_path)
    result = check_audio(config("xx-nonexistent"), bench)
    assert result.failed and result.detail.startswith(
        "espeak-ng could not render a prompt (voice 'xx-nonexistent')"
    )


def test_playback_devices_are_the_card_lines() -> None:
    assert playback_devices(LISTING) == [CARD]
    assert playback_devices("") == []
