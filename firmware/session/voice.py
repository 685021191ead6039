"""Spoken prompts that work as installed: localised text, rendered ahead of time, played aside.

Three parts, each with one job:

* :class:`Prompts` turns a cue and the plan into a sentence, from one TOML file
  per language (``firmware/session/prompts/<language>.toml``; English ships).
  Every sentence a plan can need is known before the walk
  (:meth:`Prompts.all_for_plan`): the interval's number, its length, the time
  left in the session, "slow the belt and hold the rail before you turn"
  before a turn, and the end.
* :class:`PromptCache` renders a sentence to a WAV file with ``espeak-ng``
  once, into a cache directory (beside the event store by default), keyed by
  voice, rate and text; a file is written under a temporary name and renamed,
  so a half-written prompt is never played. A plan's prompts take about
  6.6 MiB, and every plan a physio sends (or a progression's next stage) adds
  its own, so the cache is pruned (:meth:`PromptCache.prune`): when the plans
  are known, of every prompt none of them uses (the config's plan, the
  session's, the next session's); at start, before they are, down to
  :data:`CACHE_MAX_BYTES`, least recently used first.
* :class:`PromptPlayer` (a :class:`~firmware.session.cues.Speaker`) owns one
  worker thread: it first renders every prompt of the plan, then plays what
  the loop asks for with ``aplay``, and renders a newly assigned plan's
  prompts ahead (:meth:`PromptPlayer.prepare`). :meth:`PromptPlayer.say` and
  :meth:`PromptPlayer.prepare` are non-blocking puts: the loop never renders,
  never starts a process, never deletes a file, never waits for a sound card.
  A failing ``aplay`` or ``espeak-ng`` is logged once; the buzzer cues go on
  regardless.

Voice is on by default where audio exists (``session.voice = "auto"``: on the
real GPIO backend, with ``espeak-ng``, ``aplay`` and a sound card); the
simulated rig (demo, tests) prints its prompts instead; ``"off"`` keeps beeps.
With "auto" the player watches the sound cards (:attr:`PromptPlayer.audible`): a USB
speaker enumerates after the monitor's early start, or is unplugged mid-session, and
the cues follow — spoken while a card is listed, beeps only (the walker's number, not a
chirp) while none is — without a restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.digest import sha256
from core.errors import ConfigError
from core.realtime import LoopHelperThread
from core.tomlschema import build, read_toml
from firmware.session.cues import ESPEAK, Cue, render_wav, turns_at
from firmware.session.plan import Plan

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).parent / "prompts"
"""One ``<language>.toml`` per language."""

APLAY = "aplay"
PLAY_COMMAND: tuple[str, ...] = (APLAY, "-q")
"""How a rendered prompt is played: ALSA's player, quiet (the WAV path is appended)."""
PLAY_TIMEOUT_S = 60.0
RENDER_TIMEOUT_S = 30.0
SOUND_CARDS = Path("/proc/asound/cards")
HDMI = "hdmi"
"""In a card's line of :data:`SOUND_CARDS` (its id or driver, any case): an HDMI output."""
CARD_PROBE_S = 5.0
"""How often a player with ``session.voice = "auto"`` reads :data:`SOUND_CARDS` again (on its
own thread): a USB speaker plugged in (or enumerating late at boot) speaks within this."""

CACHE_MAX_BYTES = 48 * 1024 * 1024
"""The prompt cache's bound before the plans are known (about seven plans' prompts)."""
_CACHED_WAV = re.compile(r"^[0-9a-f]{20}\.wav$")
"""A rendered prompt's file name (:meth:`PromptCache.path_for`): nothing else is pruned."""

VOICE_AUTO = "auto"
VOICE_OFF = ("", "off")


@dataclass(frozen=True, slots=True)
class PromptTexts:
    """The ``[prompts]`` table: one template per prompt ("" = missing from the file)."""

    backward: str = ""
    forward: str = ""
    rest: str = ""
    turn: str = ""
    turn_ahead: str = ""
    """Some seconds before an interval that turns the walker round: slow the belt, hold the
    rail (the runner's ``TURN_AHEAD_S``)."""
    resume_backward: str = ""
    resume_forward: str = ""
    resume_rest: str = ""
    """The interval resumed after a trip or a pause: {number} of {count}, no turn."""
    restart_backward: str = ""
    restart_forward: str = ""
    """The interval resumed with the belt stopped (the monitor left ARMED since the pause began:
    a trip, a fault): start the belt, holding the rail, then walk; {number} of {count}."""
    left: str = ""
    last: str = ""
    one_minute: str = ""
    one_minute_session: str = ""
    done: str = ""
    paused: str = ""
    """The walker's pause was taken (a double press while running): how to go on."""
    balance: str = ""
    balance_eyes_closed: str = ""
    balance_done: str = ""
    not_worn: str = ""
    refused_hold: str = ""
    """A reset press let go before the chirp was refused."""
    refused_twice: str = ""
    """Two presses in STANDBY or TRIPPED were refused (a tap then a hold, a double press)."""
    refused_measuring: str = ""
    """A reset press in the first seconds after a start or a fault was refused: the sensor-worn
    check has no verdict yet (not that the sensor is off)."""
    refused_lying: str = ""
    """A reset press was refused: the sensor reads the walker lying."""
    refused: str = ""
    """A reset press was refused for another reason (alerts cannot be stored)."""
    not_started_walkers: str = ""
    """A double press to start a session was refused: the walker profiles have not reached the
    monitor from its courier yet, so it cannot tell whose session it would be."""
    fault_sensor: str = ""
    """A press in FAULT, the sensor's (lost, silent, frozen, impossible data): the belt cannot
    run, how to call for help."""
    fault_contact: str = ""
    """A press in FAULT, the relay's (its contact disagrees): it may not stop the belt."""
    fault_monitor: str = ""
    """A press in FAULT, the monitor's own (a detector error, a bug): how to call for help."""
    fault_stall: str = ""
    """A press in FAULT after the loop or the IMU paused longer than the relay's hold: the belt
    stopped, and a reset arms again once the data has been healthy for a few seconds."""
    help_sent: str = ""
    """The walker's call for help went out (three quick presses, or the help button)."""
    help_answered: str = ""
    """A caregiver closed the incident the walker called for help in."""
    tripped: str = ""
    """The belt stopped after a trip and the alarm is over: how to re-arm or call for help."""
    tripped_help_called: str = ""
    """The same once the walker called for help in that trip, until a caregiver answers:
    that help was called, not how to call it."""
    test: str = ""
    walker: str = ""
    """The walker profile the button chose: {name}."""
    no_caregiver: str = ""
    """Armed while a caregiver service is expected and not there: nobody would be paged."""


@dataclass(frozen=True, slots=True)
class DurationWords:
    """The ``[durations]`` table: how a length is said ({n} minutes, {s} seconds)."""

    minute: str = ""
    minutes: str = ""
    minute_seconds: str = ""
    minutes_seconds: str = ""
    minute_second: str = ""
    minutes_second: str = ""
    seconds: str = ""
    second: str = ""
    """The singular forms are their own templates ("1 minute 1 second"): a language's plural
    is not always a suffix, and English said "1 minute 1 seconds" with one template."""


@dataclass(frozen=True, slots=True)
class PromptFile:
    language: str = ""
    voice: str = ""
    """The espeak-ng voice that speaks this language."""
    prompts: PromptTexts = PromptTexts()
    durations: DurationWords = DurationWords()


_SAMPLE = {"number": 1, "count": 2, "length": "x", "left": "y", "n": 2, "s": 30, "name": "z"}


def prompt_file_path(language: str) -> Path:
    return PROMPTS_DIR / f"{language}.toml"


def languages() -> list[str]:
    """The languages shipped (names of the prompt files)."""
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.toml"))


def check_language(value: str) -> str | None:
    """Config check of ``session.language``: a prompt file must exist for it. The name is
    looked up among the files shipped, not opened as a path: a name with a '/' in it or too
    long for the file system is simply not one of them."""
    if value in languages():
        return None
    return "no prompt file for this language (shipped: " + ", ".join(languages()) + ")"


VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+/-]{0,39}")
"""The shape of an espeak-ng voice name: "en-gb", "en+f3" (a variant), "gmw/en-GB-x-rp" (a
voice file), "mb-en1" (an MBROLA voice). Which voices there are is the machine's espeak-ng's
(MBROLA's come in packages of their own): :func:`voice_unknown` asks it."""


def check_voice(value: str) -> str | None:
    """Config check of ``session.voice``: "auto", "off" (or ""), or a name of an espeak-ng
    voice's shape (:data:`VOICE_NAME`). Whether this machine's espeak-ng has it is not the
    config's to know (``config --check`` may run elsewhere): the preflight asks it, as a
    warning, and the doctor's audio line renders with it."""
    if value in VOICE_OFF or value == VOICE_AUTO or VOICE_NAME.fullmatch(value):
        return None
    return (
        '"auto", "off", or an espeak-ng voice\'s name (letters, digits, "-", "_", "+" and '
        '"/", at most 40, such as "en-gb" or "en+f3": espeak-ng --voices lists them), not '
        f"{value[:60]!r}"
    )


def voice_unknown(voice: str) -> str | None:
    """What this machine's espeak-ng says when it has no voice ``voice`` (None: it has it, or
    it could not be asked: not installed, or no answer within :data:`VOICE_ASK_S`). It speaks
    nothing: ``-q`` quiet, no text."""
    try:
        answer = subprocess.run(
            [ESPEAK, "-q", "-v", voice, "--", ""],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=VOICE_ASK_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if answer.returncode == 0:
        return None
    said = (answer.stderr or answer.stdout).strip().splitlines()
    return said[-1].removeprefix("Error: ") if said else f"exit status {answer.returncode}"


VOICE_ASK_S = 10.0
"""The longest :func:`voice_unknown` waits for espeak-ng (it answers in milliseconds)."""


def load_prompts(language: str = "en", path: Path | None = None) -> PromptFile:
    """Read and check a prompt file; :class:`ConfigError` names every missing key and every
    unknown placeholder, so a translator fixes the file in one pass."""
    path = path or prompt_file_path(language)
    problems: list[str] = []
    file: PromptFile = build(PromptFile, read_toml(path, "prompt file"), problems)
    for table in ("prompts", "durations"):
        for field in dataclasses.fields(getattr(file, table)):
            template = getattr(getattr(file, table), field.name)
            if not template:
                problems.append(f"{table}.{field.name}: missing")
                continue
            try:
                template.format(**_SAMPLE)
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"{table}.{field.name}: bad placeholder {exc}")
    if not file.voice:
        problems.append("voice: missing (an espeak-ng voice, e.g. en)")
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return file


class Prompts:
    """The sentences of one language, filled in from the plan."""

    def __init__(self, file: PromptFile) -> None:
        self.file = file

    @classmethod
    def for_language(cls, language: str = "en") -> Prompts:
        return cls(load_prompts(language))

    def length(self, seconds: float) -> str:
        """A duration in words: whole minutes, minutes and seconds, or seconds."""
        words = self.file.durations
        total = round(seconds)
        n, s = divmod(total, 60)
        if n == 1 and s == 1:
            return words.minute_second.format(n=n, s=s)
        if n == 1 and s:
            return words.minute_seconds.format(n=n, s=s)
        if n and s == 1:
            return words.minutes_second.format(n=n, s=s)
        if n and s:
            return words.minutes_seconds.format(n=n, s=s)
        if n == 1:
            return words.minute.format(n=n, s=s)
        if n:
            return words.minutes.format(n=n, s=s)
        if s == 1:
            return words.second.format(n=n, s=s)
        return words.seconds.format(n=n, s=s)

    def interval(self, plan: Plan, index: int) -> str:
        """What the walker hears as interval ``index`` begins (or resumes)."""
        texts = self.file.prompts
        intervals = plan.intervals
        interval = intervals[index]
        parts = []
        if turns_at(plan, index):
            parts.append(texts.turn)
        template = getattr(texts, interval.direction)
        parts.append(
            template.format(
                number=index + 1, count=len(intervals), length=self.length(interval.duration_s)
            )
        )
        if index + 1 < len(intervals):
            left = plan.duration_s - plan.starts()[index]
            parts.append(texts.left.format(left=self.length(left)))
        else:
            parts.append(texts.last)
        return " ".join(parts)

    def resume(
        self, plan: Plan, index: int, left_s: float, *, belt_stopped: bool = False
    ) -> tuple[str, str]:
        """What the walker hears as the session resumes interval ``index`` with ``left_s``
        seconds of the plan to go, as two prompts played one after the other: to carry on
        the way they were going (no turn) in the interval, then the time left in whole
        minutes, rounded up (or "Last interval."). Two, so that every one is rendered
        ahead with few files (:meth:`resume_all`): one a plan's interval, one a minute.
        ``belt_stopped``: the relay stopped the belt since (a trip, a fault) and the
        treadmill waits for its start button: to start it, holding the rail, then walk."""
        texts = self.file.prompts
        intervals = plan.intervals
        index = min(index, len(intervals) - 1)
        direction = intervals[index].direction
        kind = "restart" if belt_stopped and direction != "rest" else "resume"
        template = getattr(texts, f"{kind}_{direction}")
        head = template.format(number=index + 1, count=len(intervals))
        if index + 1 >= len(intervals):
            return head, texts.last
        minutes = max(1, math.ceil(left_s / 60.0 - 1e-9))
        return head, texts.left.format(left=self.length(minutes * 60.0))

    def resume_all(self, plan: Plan) -> list[str]:
        """Every prompt :meth:`resume` can say in a session of ``plan``: each interval's,
        and the time left in each whole minute up to the plan's length."""
        sentences = [
            self.resume(plan, i, 0.0, belt_stopped=stopped)[0]
            for i in range(len(plan.intervals))
            for stopped in (False, True)
        ]
        longest = max(1, math.ceil(plan.duration_s / 60.0 - 1e-9))
        sentences += [self.file.prompts.left.format(left=self.length(m * 60.0))
                      for m in range(1, longest + 1)]  # fmt: skip
        return list(dict.fromkeys([*sentences, self.file.prompts.last]))

    def for_cue(self, cue: Cue, plan: Plan, index: int) -> str:
        """The sentence for ``cue`` played in interval ``index`` of ``plan``."""
        texts = self.file.prompts
        if cue in (Cue.BACKWARD, Cue.FORWARD, Cue.REST):
            return self.interval(plan, min(index, len(plan.intervals) - 1))
        if cue is Cue.ONE_MINUTE:
            last = index >= len(plan.intervals) - 1
            return texts.one_minute_session if last else texts.one_minute
        return str(getattr(texts, cue.value))

    def walker(self, name: str) -> str:
        """What the walker hears when the button chooses their profile."""
        return self.file.prompts.walker.format(name=name)

    def all_for_plan(self, plan: Plan) -> list[str]:
        """Every sentence a session of ``plan`` can speak, each once: what is rendered ahead."""
        texts = self.file.prompts
        sentences = [self.interval(plan, i) for i in range(len(plan.intervals))]
        sentences += self.resume_all(plan)
        sentences += [
            texts.one_minute,
            texts.one_minute_session,
            texts.turn_ahead,
            texts.done,
            texts.paused,
            texts.balance,
            texts.balance_eyes_closed,
            texts.balance_done,
            texts.not_worn,
            texts.refused_hold,
            texts.refused_twice,
            texts.refused_measuring,
            texts.refused_lying,
            texts.refused,
            texts.not_started_walkers,
            texts.fault_sensor,
            texts.fault_contact,
            texts.fault_monitor,
            texts.fault_stall,
            texts.help_sent,
            texts.help_answered,
            texts.tripped,
            texts.tripped_help_called,
            texts.no_caregiver,
        ]
        return list(dict.fromkeys(sentences))


@dataclass(frozen=True, slots=True)
class RenderFigures:
    """What :meth:`PromptCache.render_all` did: for the log, the doctor and the report."""

    prompts: int
    rendered: int
    """Of which rendered now (the rest were in the cache already)."""
    seconds: float
    """Wall time spent rendering."""
    wav_bytes: int
    """Total size of the prompts' WAV files."""

    def __str__(self) -> str:
        return (
            f"{self.prompts} prompts ({self.rendered} rendered in {self.seconds:.1f} s), "
            f"{self.wav_bytes / 1024:.0f} KiB of WAV"
        )


class PromptCache:
    """Rendered prompts on disk: one WAV per (voice, rate, text), made once."""

    def __init__(self, directory: Path, voice: str = "en", rate_wpm: int = 150) -> None:
        self.directory = Path(directory)
        self.voice = voice
        self.rate_wpm = rate_wpm

    def path_for(self, text: str) -> Path:
        key = sha256(f"{self.voice}\n{self.rate_wpm}\n{text}".encode()).hexdigest()
        return self.directory / f"{key[:20]}.wav"

    def cached(self, text: str) -> Path | None:
        path = self.path_for(text)
        return path if path.is_file() else None

    def render(self, text: str) -> Path:
        """The prompt's WAV, rendered now if it is not in the cache (seconds: never on the loop).
        A cached one is marked used now (its mtime), for :meth:`prune`'s bound."""
        path = self.path_for(text)
        if path.is_file():
            with contextlib.suppress(OSError):
                os.utime(path)
            return path
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.{os.getpid()}.part.wav")
        try:
            render_wav(text, partial, voice=self.voice, rate_wpm=self.rate_wpm)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    def render_all(
        self, texts: Sequence[str], stop: threading.Event | None = None
    ) -> RenderFigures:
        """Render what is not in the cache yet; ``stop`` set ends it early (a monitor stopping)."""
        started = time.monotonic()
        rendered = 0
        size = 0
        for text in texts:
            if stop is not None and stop.is_set():
                break
            if self.cached(text) is None:
                rendered += 1
            size += self.render(text).stat().st_size
        return RenderFigures(len(texts), rendered, time.monotonic() - started, size)

    def prune(self, keep: Collection[str], max_bytes: int | None = None) -> PruneFigures:
        """Delete rendered prompts whose text is not in ``keep``: all of them (``max_bytes``
        None: the plans in use are known), or the least recently used first until the cache
        holds at most ``max_bytes``. Prompts in ``keep`` are never deleted; neither is any
        file not named as this cache names its WAVs."""
        kept = {self.path_for(text).name for text in keep}
        files: list[tuple[float, int, Path]] = []
        total = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.directory):
                if not _CACHED_WAV.match(entry.name):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    stat = entry.stat()
                    total += stat.st_size
                    if entry.name not in kept:
                        files.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        removed = removed_bytes = 0
        for _, size, path in sorted(files):
            if max_bytes is not None and total - removed_bytes <= max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
                removed_bytes += size
        return PruneFigures(removed, removed_bytes, total - removed_bytes)


@dataclass(frozen=True, slots=True)
class PruneFigures:
    """What :meth:`PromptCache.prune` did."""

    removed: int
    removed_bytes: int
    left_bytes: int

    def __str__(self) -> str:
        return (
            f"{self.removed} unused prompt(s) removed ({self.removed_bytes / 1024:.0f} KiB), "
            f"{self.left_bytes / 1024:.0f} KiB left"
        )


@dataclass(frozen=True, slots=True)
class _Prepare:
    """The worker's job for a newly assigned plan: render the plans' prompts, prune the rest."""

    plans: tuple[Plan, ...]
    extra: tuple[str, ...] = ()
    """Sentences to render and keep besides the plans' (the walker profiles' names)."""


@dataclass(frozen=True, slots=True)
class _Recheck:
    """Read the sound cards now (:meth:`PromptPlayer.recheck`); ``done`` is set once read."""

    done: threading.Event


@dataclass(slots=True)
class _Preparing:
    """A :class:`_Prepare` under way: the prompts still to render, one per turn of the worker
    with nothing to play, and every prompt of the plans in use (kept when pruning)."""

    left: list[str]
    keep: tuple[str, ...]


class PromptPlayer:
    """Plays rendered prompts on its own thread; the loop only enqueues (a Speaker).

    The worker renders ``prerender`` first (what a session of the plan can say),
    then plays each prompt the loop asks for, one after another, with
    ``command`` + the WAV's path (``aplay -q`` by default; tests pass a fake).
    A prompt not rendered ahead is rendered on the worker when asked for. A new plan's
    prompts (:meth:`prepare`) are rendered one at a time while nothing is asked for: a
    plan sent mid-session never holds up that session's cues.

    With ``cards`` (``session.voice = "auto"``) the worker also reads the sound cards every
    ``probe_every_s`` and after a prompt fails to play: :attr:`audible` follows whether one is
    listed, so the runner speaks once a USB speaker appears and beeps once it is gone. The
    prompts are rendered either way, so a speaker plugged in later speaks at once.
    """

    def __init__(
        self,
        cache: PromptCache,
        *,
        command: Sequence[str] = PLAY_COMMAND,
        prerender: Sequence[str] = (),
        texts_for: Callable[[Plan], Sequence[str]] | None = None,
        cards: Callable[[], Sequence[str]] | None = None,
        audible: bool = True,
        probe_every_s: float = CARD_PROBE_S,
    ) -> None:
        self.cache = cache
        self.audible = audible
        """Whether prompts can be heard now: a sound card is listed (always True without
        ``cards``). Written by the worker only; the loop reads it (one attribute, atomic under
        the GIL) and beeps in place of words while it is False."""
        self._cards = cards
        self._probe_every_s = probe_every_s
        self._next_probe = time.monotonic() + probe_every_s
        self._texts_for = texts_for
        """A plan's sentences (:meth:`Prompts.all_for_plan`), for :meth:`prepare`."""
        self.command = tuple(command)
        self.played: list[str] = []
        """Texts played so far, in order (read after :meth:`close`)."""
        self.figures: RenderFigures | None = None
        """What the prerendering did, once it is done."""
        self.pruned: PruneFigures | None = None
        """What the last pruning of the cache did."""
        self.failures = 0
        self._prerender = tuple(prerender)
        self._queue: queue.SimpleQueue[tuple[int, str] | _Prepare | _Recheck | None]
        self._queue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._said = 0
        """How many prompts :meth:`say` has queued: each is queued with its number. Written
        by the caller's thread only (the loop)."""
        self._withdrawn: dict[str, int] = {}
        """A text's prompts numbered up to this were withdrawn (:meth:`withdraw`): the worker
        skips them, or cuts the one playing short. One dict store or lookup a call, atomic
        under the GIL: no lock between the loop and the worker."""
        self._now_playing: tuple[int, str, subprocess.Popen[bytes]] | None = None
        """The prompt playing (its number, its text, its player), as one tuple so the loop
        reads all three at once."""
        # One real-time step below the loop when made on the loop's thread (core.realtime): it
        # holds the GIL only briefly; espeak-ng and aplay are children, reset to normal
        # priority by the unit's CPUSchedulingResetOnFork.
        self._thread = LoopHelperThread(self._run, "retroguard-prompts")
        self._thread.start()

    def say(self, text: str) -> None:
        """Ask for ``text`` to be spoken. Never blocks: safe on the real-time thread."""
        self._said += 1
        self._queue.put_nowait((self._said, text))

    def withdraw(self, text: str) -> None:
        """``text``, asked for so far, no longer holds: not played if still queued, cut short
        if playing. Said again later, it plays. Never blocks: safe on the real-time thread.

        Why: a prompt can stop being true before the walker has heard it out. After a trip
        the walker is told how to re-arm or call for help (about 10 s of speech); one who
        re-arms during it has the cue of the resumed interval queued behind the rest of it.
        """
        self._withdrawn[text] = self._said
        playing = self._now_playing
        if playing is not None and playing[1] == text:
            with contextlib.suppress(OSError):  # it ended meanwhile: nothing to cut
                playing[2].terminate()

    def prepare(self, plans: Sequence[Plan], extra: Sequence[str] = ()) -> None:
        """The plans in use now (the session's, the next session's; the first plan's is kept
        too) and ``extra`` sentences (the walkers' names): rendered ahead, then every other
        rendered prompt is deleted, on the worker. Never blocks: safe on the real-time thread."""
        self._queue.put_nowait(_Prepare(tuple(plans), tuple(extra)))

    def recheck(self) -> threading.Event:
        """Read the sound cards on the worker now, as its timer would (tests, to need no
        sleep); the event is set once they were read. Never blocks."""
        done = threading.Event()
        self._queue.put_nowait(_Recheck(done))
        return done

    def close(self, timeout: float = 2.0, *, drain: bool = False) -> None:
        """Stop the worker, waiting at most ``timeout``.

        With ``drain`` every queued prompt plays first (tests). Without it (the
        monitor stopping) the queue is dropped and the prompt playing is cut
        short: a stop never waits for speech (the unit allows the whole stop 5 s).
        """
        if not drain:
            self._stopping.set()
            playing = self._now_playing
            if playing is not None:
                with contextlib.suppress(OSError):
                    playing[2].terminate()
        self._queue.put_nowait(None)
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        if self._prerender:
            try:
                self.figures = self.cache.render_all(self._prerender, stop=self._stopping)
                log.info("spoken prompts ready in %s: %s", self.cache.directory, self.figures)
                # the plans in use are not known yet: only a bound, least recently used first
                self._prune(self._prerender, CACHE_MAX_BYTES)
            except (OSError, subprocess.SubprocessError) as exc:
                self._failed("rendering the spoken prompts failed", exc)
        preparing: _Preparing | None = None
        while True:
            if self._cards is not None and time.monotonic() >= self._next_probe:
                self._probe()
            if preparing is None:
                try:
                    item = self._queue.get(timeout=self._until_probe())
                except queue.Empty:
                    continue  # time to read the sound cards again
            else:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    preparing = self._prepare_one(preparing)
                    continue
            if item is None:  # closing; draining, a preparation under way finishes first
                while preparing is not None and not self._stopping.is_set():
                    preparing = self._prepare_one(preparing)
                return
            if self._stopping.is_set():
                return
            if isinstance(item, _Prepare):
                preparing = self._preparing(item.plans, item.extra)  # a newer one supersedes it
                continue
            if isinstance(item, _Recheck):
                if self._cards is not None:
                    self._probe()
                item.done.set()
                continue
            number, text = item
            if self._was_withdrawn(number, text) or not self.audible:
                continue  # not audible: asked for as the card went; the runner beeps from now
            try:
                self._play(self.cache.render(text), number, text)
                if not self._stopping.is_set() and not self._was_withdrawn(number, text):
                    self.played.append(text)  # else it was cut short
            except (OSError, subprocess.SubprocessError) as exc:
                if not self._was_withdrawn(number, text):
                    self._failed("a spoken prompt failed (buzzer cues go on)", exc)
                if self._cards is not None:
                    self._probe()  # an unplugged speaker: beeps from the next tick, not in 5 s

    def _until_probe(self) -> float | None:
        """How long the worker may wait for work before reading the sound cards (None: no
        watch, wait for work)."""
        if self._cards is None:
            return None
        return max(0.0, self._next_probe - time.monotonic())

    def _probe(self) -> None:
        """Read the sound cards (one small procfs file, on the worker) and follow them:
        :attr:`audible` turns on when one is listed and off when none is, logged once each."""
        assert self._cards is not None
        self._next_probe = time.monotonic() + self._probe_every_s
        cards = self._cards()
        if cards and not self.audible:
            log.info("spoken prompts on: sound card %s appeared", cards[0])
        elif not cards and self.audible:
            log.warning("spoken prompts off: no sound card any more; cues are beeps")
        self.audible = bool(cards)

    def _was_withdrawn(self, number: int, text: str) -> bool:
        return self._withdrawn.get(text, 0) >= number

    def _preparing(self, plans: tuple[Plan, ...], extra: tuple[str, ...] = ()) -> _Preparing | None:
        if self._texts_for is None:
            return None
        texts = tuple(dict.fromkeys([*(t for p in plans for t in self._texts_for(p)), *extra]))
        return _Preparing([t for t in texts if self.cache.cached(t) is None], texts)

    def _prepare_one(self, preparing: _Preparing) -> _Preparing | None:
        """Render the next prompt of the plans in use; once all are, prune every other
        prompt. None when the preparation is over."""
        if preparing.left:
            try:
                self.cache.render(preparing.left.pop(0))
            except (OSError, subprocess.SubprocessError) as exc:
                self._failed("rendering the new plan's spoken prompts failed", exc)
                return None  # nothing deleted: a prompt that failed to render may be needed
            return preparing
        if not self._stopping.is_set():
            self._prune((*self._prerender, *preparing.keep), None)
        return None

    def _prune(self, keep: Sequence[str], max_bytes: int | None) -> None:
        try:
            self.pruned = self.cache.prune(keep, max_bytes)
        except OSError as exc:
            log.warning("pruning the spoken prompt cache %s failed: %s", self.cache.directory, exc)
            return
        if self.pruned.removed:
            log.info("spoken prompt cache %s: %s", self.cache.directory, self.pruned)

    def _play(self, wav: Path, number: int, text: str) -> None:
        with subprocess.Popen(
            [*self.command, str(wav)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ) as process:
            self._now_playing = (number, text, process)
            if self._was_withdrawn(number, text):  # withdrawn as it started: not cut, yet
                process.terminate()
            try:
                _, stderr = process.communicate(timeout=PLAY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise
            finally:
                self._now_playing = None
        if process.returncode != 0 and not self._stopping.is_set():
            raise subprocess.CalledProcessError(process.returncode, process.args, stderr=stderr)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        if self.failures == 1:
            stderr = getattr(exc, "stderr", b"") or b""
            detail = stderr.decode(errors="replace").strip() if isinstance(stderr, bytes) else ""
            log.error("%s: %s%s", what, exc, f" ({detail})" if detail else "")


# ------------------------------------------------------------------ sound output


def sound_cards(path: Path = SOUND_CARDS) -> list[str]:
    """The ALSA sound cards a walker can hear, as the kernel lists them (e.g. "0 [Headphones
    ]: bcm2835 ..."): every card but an HDMI output.

    A Pi 5 or a Pi Zero 2 W lists its HDMI audio (``vc4-hdmi``) whether or not anything with
    a speaker is plugged into the HDMI port — on a treadmill's console nothing is. Counted as
    a speaker, it made "auto" speak to nobody on exactly the boards with no audio out, and the
    cues never fell back to beeps (the walker's number went unheard). A console screen with
    speakers can still be spoken to: ``session.voice`` set to a voice name
    (:func:`all_sound_cards`)."""
    return [card for card in all_sound_cards(path) if HDMI not in card.lower()]


def all_sound_cards(path: Path = SOUND_CARDS) -> list[str]:
    """Every ALSA sound card the kernel lists, HDMI outputs too: what a voice name set in
    ``session.voice`` speaks on (ALSA's default card)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line[:3].strip().isdigit()]


@dataclass(frozen=True, slots=True)
class SoundOutput:
    """Whether spoken prompts can play here, and if not, why not (in words)."""

    espeak: bool
    aplay: bool
    cards: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.espeak and self.aplay and bool(self.cards)

    def missing(self) -> str:
        """What is missing, for a log line or the doctor ("" when nothing is)."""
        gaps = []
        if not self.espeak:
            gaps.append("espeak-ng is not installed")
        if not self.aplay:
            gaps.append("aplay (alsa-utils) is not installed")
        if not self.cards:
            gaps.append(
                "no sound card (a Pi Zero 2 W or Pi 5 has no audio out: add a USB speaker or "
                "an I2S DAC, wiring/README.md)"
            )
        return "; ".join(gaps)


def on_path(command: str) -> str | None:
    """The executable ``command`` is found as on ``PATH`` (None: not there): what
    ``shutil.which`` answers for a bare name on Linux, without importing ``shutil`` (with
    ``bz2`` and ``lzma``, 0.6 MB of the monitor's memory) for this one look-up."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def probe_sound(
    which: Callable[[str], str | None] = on_path,
    cards: Callable[[], Sequence[str]] = sound_cards,
) -> SoundOutput:
    return SoundOutput(which(ESPEAK) is not None, which(APLAY) is not None, tuple(cards()))


def voice_wanted(voice: str, *, real_hardware: bool, sound: SoundOutput) -> bool:
    """Whether ``session.voice`` asks for spoken prompts on this machine now.

    "auto" speaks on the real GPIO backend where sound can play; "off" (or "")
    never; an espeak-ng voice name always (a missing part is logged, beeps go on).
    """
    if voice in VOICE_OFF:
        return False
    if voice == VOICE_AUTO:
        return real_hardware and sound.ok
    return True


def open_player(
    voice: str,
    language: str,
    rate_wpm: int,
    cache_dir: Path,
    plan: Plan,
    *,
    real_hardware: bool,
    sound: SoundOutput | None = None,
    command: Sequence[str] = PLAY_COMMAND,
    cards: Callable[[], Sequence[str]] = sound_cards,
    probe_every_s: float = CARD_PROBE_S,
) -> tuple[PromptPlayer | None, Prompts]:
    """The prompt player the config asks for on this machine (None: beeps only), and the
    prompts' sentences (the session's log and the demo print them either way).

    With "auto" on the real board, espeak-ng and aplay there, the player is made whether or
    not a sound card is listed yet, and watches ``cards`` (:attr:`PromptPlayer.audible`): the
    monitor starts early at boot, before a USB speaker has enumerated, and a speaker can be
    plugged in or out while it runs."""
    prompts = Prompts.for_language(language)
    sound = sound or probe_sound(cards=cards if voice == VOICE_AUTO else all_sound_cards)
    watch = voice == VOICE_AUTO and real_hardware and sound.espeak and sound.aplay
    if not watch and not voice_wanted(voice, real_hardware=real_hardware, sound=sound):
        if voice == VOICE_AUTO and real_hardware:
            log.info("spoken prompts off: %s; cues are beeps", sound.missing())
        return None, prompts
    if watch and not sound.ok:
        log.info(
            "spoken prompts off: %s; cues are beeps until a sound card appears", sound.missing()
        )
    elif not sound.ok:
        log.warning("session.voice = %r but %s: cues are beeps", voice, sound.missing())
        if not sound.espeak:
            return None, prompts
    espeak_voice = prompts.file.voice if voice == VOICE_AUTO else voice
    cache = PromptCache(cache_dir, espeak_voice, rate_wpm)
    player = PromptPlayer(
        cache,
        command=command,
        prerender=prompts.all_for_plan(plan),
        texts_for=prompts.all_for_plan,
        cards=cards if watch else None,
        audible=sound.ok or not watch,
        probe_every_s=probe_every_s,
    )
    return player, prompts
