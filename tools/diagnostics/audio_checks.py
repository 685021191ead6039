"""The doctor's audio line: can the spoken prompts play here, as the service will play them?

The same steps the monitor takes (:mod:`firmware.session.voice`): ``espeak-ng``
renders a test prompt to a WAV file, which must be voiced speech; ``aplay -l``
must list a playback device *to this user* (``/proc/asound/cards`` can list a
card that a user outside the ``audio`` group cannot open); ``aplay`` then
plays the test prompt — a person at the treadmill hears "RetroGuard speaker
test". Every command can be replaced (:class:`AudioBench`), so the tests run
it without a sound card.

The outcome follows ``session.voice``: "off" skips; "auto" on simulated pins
skips (the demo and tests print their prompts); "auto" on a board without a
sound card warns (the cues are beeps there, by design); anything missing for
an explicit voice, or a render or a playback that fails, is a failure.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from firmware.config import Config
from firmware.session.cues import wav_figures
from firmware.session.voice import (
    PLAY_COMMAND,
    VOICE_AUTO,
    VOICE_OFF,
    PromptCache,
    Prompts,
    SoundOutput,
    all_sound_cards,
    probe_sound,
    sound_cards,
)
from tools.diagnostics.result import CheckResult, failed, passed, skipped, warned

AUDIO = "audio"
LIST_COMMAND: tuple[str, ...] = ("aplay", "-l")
COMMAND_TIMEOUT_S = 20.0
_INSTALL_FIX = "sudo apt install espeak-ng alsa-utils (scripts/install-pi.sh does)"
_SPEAKER_FIX = (
    "plug in a USB speaker or wire an I2S DAC (wiring/README.md, Audio), or set "
    'session.voice = "off"'
)
_DEFAULT_CARD_FIX = (
    "make the speaker's card ALSA's default: defaults.pcm.card and defaults.ctl.card in "
    "/etc/asound.conf (wiring/README.md, section 11)"
)


@dataclass
class AudioBench:
    """What the audio check runs; the defaults are the real thing."""

    sound: SoundOutput | None = None
    """None probes this machine (espeak-ng and aplay on PATH, /proc/asound/cards)."""
    list_command: Sequence[str] = LIST_COMMAND
    play_command: Sequence[str] = PLAY_COMMAND
    real_hardware: bool | None = None
    """None: the config's GPIO backend decides (gpiozero is the real board)."""
    work_dir: Path | None = None
    """Where the test prompt is rendered (None: a temporary directory, removed after)."""


def playback_devices(listing: str) -> list[str]:
    """The ``card N: ...`` lines of ``aplay -l``."""
    return [line.strip() for line in listing.splitlines() if line.startswith("card ")]


def check_audio(config: Config, bench: AudioBench | None = None) -> CheckResult:
    bench = bench or AudioBench()
    session = config.session
    voice = session.voice
    if voice in VOICE_OFF:
        return skipped(AUDIO, 'session.voice = "off": session cues are beeps')
    real = bench.real_hardware
    if real is None:
        real = config.gpio.backend == "gpiozero"
    if voice == VOICE_AUTO and not real:
        return skipped(
            AUDIO,
            "simulated pins: spoken prompts are printed, not played "
            '(session.voice = "auto" speaks on the board)',
        )
    sound = bench.sound or probe_sound(
        cards=sound_cards if voice == VOICE_AUTO else all_sound_cards
    )
    if not sound.espeak or not sound.aplay:
        return failed(AUDIO, sound.missing(), _INSTALL_FIX)
    if not sound.cards:
        if voice == VOICE_AUTO:
            return warned(AUDIO, f"{sound.missing()}; session cues are beeps")
        return failed(AUDIO, sound.missing(), _SPEAKER_FIX)
    if bench.work_dir is not None:
        return _render_and_play(config, bench, sound, bench.work_dir)
    with tempfile.TemporaryDirectory(prefix="retroguard-doctor-audio-") as tmp:
        return _render_and_play(config, bench, sound, Path(tmp))


def _render_and_play(
    config: Config, bench: AudioBench, sound: SoundOutput, work_dir: Path
) -> CheckResult:
    session = config.session
    prompts = Prompts.for_language(session.language)
    espeak_voice = prompts.file.voice if session.voice == VOICE_AUTO else session.voice
    text = prompts.file.prompts.test
    try:
        wav = PromptCache(work_dir, espeak_voice, session.speech_rate_wpm).render(text)
        figures = wav_figures(wav)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return failed(
            AUDIO,
            f"espeak-ng could not render a prompt (voice {espeak_voice!r}): {_said(exc)}",
            "espeak-ng --voices lists the voices; check session.voice and session.language",
        )
    if figures.voiced_s < 0.5 * figures.duration_s:
        return failed(
            AUDIO,
            f"espeak-ng rendered {figures.duration_s:.1f} s that is mostly silence",
            "reinstall espeak-ng (and espeak-ng-data)",
        )
    try:
        listing = subprocess.run(
            [*bench.list_command],
            check=True,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return failed(AUDIO, f"aplay -l failed: {_said(exc)}", _SPEAKER_FIX)
    devices = playback_devices(listing)
    if not devices:
        return failed(
            AUDIO,
            f"the kernel lists {len(sound.cards)} sound card(s) but aplay finds no "
            "playback device for this user",
            "add the user to the audio group (install-pi.sh does), or check the card with "
            "aplay -l as root",
        )
    try:
        subprocess.run(
            [*bench.play_command, str(wav)],
            check=True,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        # aplay plays on ALSA's default card, the first listed unless /etc/asound.conf says
        # otherwise: on a Pi 5 or Zero 2 W that is an HDMI output, whatever speaker is plugged in
        fix = _SPEAKER_FIX
        if len(devices) > 1:
            fix = "plug in a USB speaker or wire an I2S DAC if there is none, then "
            fix += _DEFAULT_CARD_FIX
        return failed(AUDIO, f"aplay could not play the test prompt: {_said(exc)}", fix)
    where = (
        devices[0]
        if len(devices) == 1
        else f"ALSA's default card, one of {len(devices)} listed (if the speaker stayed silent, "
        f"{_DEFAULT_CARD_FIX})"
    )
    return passed(
        AUDIO,
        f'played "{text}" on {where}; spoken prompts on (session.voice = '
        f'"{session.voice}", language {session.language})',
    )


def _said(exc: BaseException) -> str:
    stderr = getattr(exc, "stderr", None)
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    if isinstance(stderr, str) and stderr.strip():
        return stderr.strip().splitlines()[-1]
    return str(exc) or type(exc).__name__
