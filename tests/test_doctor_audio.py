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


PI5_LISTING = (
    "**** List of PLAYBACK Hardware Devices ****\n"
    "card 0: vc4hdmi0 [vc4-hdmi-0], device 0: MAI PCM i2s-hifi-0 [MAI PCM i2s-hifi-0]\n"
    "card 1: vc4hdmi1 [vc4-hdmi-1], device 0: MAI PCM i2s-hifi-0 [MAI PCM i2s-hifi-0]\n"
    "card 2: Device [USB Audio Device], device 0: USB Audio [USB Audio]\n"
)
"""A Pi 5 with a USB speaker: its two HDMI outputs come first, and aplay plays on card 0."""


@needs_espeak
def test_with_several_cards_the_doctor_says_aplay_plays_on_the_default_one(
    tmp_path: Path,
) -> None:
    """On a Pi 5 or Zero 2 W the USB speaker is listed after the HDMI outputs, and aplay plays
    on ALSA's default card, an HDMI one until /etc/asound.conf says otherwise. The line said
    it played on the first card listed, and a failure told a technician whose speaker was
    plugged in only to plug one in; both now send them to the guide's default-card step."""
    cards = tuple(line for line in PI5_LISTING.splitlines() if line.startswith("card "))
    sound = SoundOutput(espeak=True, aplay=True, cards=cards)
    fails = [sys.executable, "-c", "import sys; sys.exit('aplay: main:831: audio open error')"]
    bench = AudioBench(
        sound=sound,
        list_command=printer(PI5_LISTING),
        play_command=fails,
        real_hardware=True,
        work_dir=tmp_path / "failed",
    )
    failed = check_audio(config(), bench)
    assert failed.fix == (
        "plug in a USB speaker or wire an I2S DAC if there is none, then make the speaker's "
        "card ALSA's default: defaults.pcm.card and defaults.ctl.card in /etc/asound.conf "
        "(wiring/README.md, section 11)"
    )
    bench = dataclasses.replace(
        bench, play_command=recorder(tmp_path / "played.log"), work_dir=tmp_path / "played"
    )
    played = check_audio(config(), bench)
    assert played.line() == (
        'PASS  audio            played "RetroGuard speaker test." on ALSA\'s default card, one '
        "of 3 listed (if the speaker stayed silent, make the speaker's card ALSA's default: "
        "defaults.pcm.card and defaults.ctl.card in /etc/asound.conf (wiring/README.md, "
        'section 11)); spoken prompts on (session.voice = "auto", language en)'
    )
    # the section it names is the one that says how
    guide = (Path(__file__).resolve().parent.parent / "wiring" / "README.md").read_text()
    section = guide.split("\n## 11. ", 1)[1].split("\n## ", 1)[0]
    assert "defaults.pcm.card" in section and "defaults.ctl.card" in section


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


@needs_espeak
def test_a_zero_2_w_s_two_cards_send_the_technician_to_the_default_card_step(
    tmp_path: Path,
) -> None:
    """A Pi Zero 2 W lists one HDMI output, then the USB speaker: two cards, and aplay plays
    on the first. A failure or a silent speaker there is the default card's as much as on a
    Pi 5's three. (Mutation, mut37: said so only from three cards on.)"""
    listing = (
        "**** List of PLAYBACK Hardware Devices ****\n"
        "card 0: vc4hdmi [vc4-hdmi], device 0: MAI PCM i2s-hifi-0 [MAI PCM i2s-hifi-0]\n"
        "card 1: Device [USB Audio Device], device 0: USB Audio [USB Audio]\n"
    )
    cards = tuple(line for line in listing.splitlines() if line.startswith("card "))
    fails = [sys.executable, "-c", "import sys; sys.exit('aplay: main:831: audio open error')"]
    bench = AudioBench(
        sound=SoundOutput(espeak=True, aplay=True, cards=cards),
        list_command=printer(listing),
        play_command=fails,
        real_hardware=True,
        work_dir=tmp_path / "failed",
    )
    assert check_audio(config(), bench).fix.startswith(
        "plug in a USB speaker or wire an I2S DAC if there is none, then make the speaker's "
        "card ALSA's default"
    )
    bench = dataclasses.replace(
        bench, play_command=recorder(tmp_path / "played.log"), work_dir=tmp_path / "played"
    )
    assert "on ALSA's default card, one of 2 listed" in check_audio(config(), bench).line()
