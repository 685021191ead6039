"""The ``[session]`` section of the monitor's config (guided sessions)."""

from __future__ import annotations

from dataclasses import dataclass

SPEECH_RATE_MIN_WPM = 80
"""espeak-ng's slowest rate (espeakRATE_MINIMUM): it speaks a lower ``-s`` at 80 words a minute
all the same (the same WAV, byte for byte, with espeak-ng 1.51), so a lower setting is not what
is heard."""
SPEECH_RATE_MAX_WPM = 450
"""The top of espeak-ng's rate range (espeakRATE_MAXIMUM in its API, speak_lib.h): faster,
it time-compresses the rendered speech instead (a cue at 1000 is about 6 times shorter than
at the 175 default), which a walker on a moving belt, listening over its noise, cannot follow;
a cue not understood is no cue."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    plan: str = "alternate-2-2"
    """The session plan: a preset name ("alternate-2-2", "progression-week-1" ... "-9", see
    docs/sessions.md) or a plan file ending in .toml or .json (relative to this file)."""
    voice: str = "auto"
    """Spoken prompts: "auto" speaks on the real GPIO backend where sound can play (espeak-ng,
    aplay and a sound card), beeps otherwise; "off" beeps only; an espeak-ng voice name (e.g.
    "en-gb") speaks with that voice. The buzzer cues sound either way."""
    language: str = "en"
    """Language of the spoken prompts: firmware/session/prompts/<language>.toml."""
    prompt_cache: str = ""
    """Directory of the prompts rendered to WAV ("" = prompts/ beside the event store; relative
    to this file's folder; never under /etc: refused, the service cannot write there)."""
    speech_rate_wpm: int = 150
    """Speaking rate of the spoken prompts (words per minute): 80 to 450, espeak-ng's range
    (slower is spoken at 80 all the same; faster is time-compressed past what a walker on a
    belt can follow)."""
    one_minute_warning: bool = True
    """Cue "one minute left" before the end of intervals longer than two minutes and of the
    session."""
    max_pause_s: float = 900.0
    """A session paused (by the walker or by a trip) for this long ends as "abandoned"."""
    double_press_gap_s: float = 0.6
    """Button: most time between letting go and pressing again that makes a double press (and
    one sequence of presses: help too); 0.3-0.6 s, so a call for help and a double press cannot
    be taken for each other (docs/safety.md, "Button press patterns")."""
    long_press_s: float = 2.0
    """Button: holding at least this long is a long press (stop the session); at least 2 s,
    the help window, so no press of a call for help stops the session, and at most 10 s, a hold
    a person still makes on purpose (longer, the session cannot be stopped from the button)."""
    balance_check: bool = True
    """Start each session begun in STANDBY with a 30 s standing balance check (feet together,
    eyes open), guided by cues; arming with the reset button skips it. Never while armed."""
    balance_eyes_closed: bool = False
    """After the eyes-open check, a second 30 s with the eyes closed (harder; only where a
    therapist asks for it)."""
    measure_gait: bool = True
    """Measure gait per interval and the balance check's sway on a background thread
    (docs/gait.md); false: steps and cadence only."""
    control_socket: str = ""
    """Unix socket of `retroguard session start|pause|resume|stop|status` ("" = session.sock
    in the runtime directory: $RUNTIME_DIRECTORY, else /run/retroguard; relative to this file's
    folder; never under /etc: refused, the service cannot write there)."""
