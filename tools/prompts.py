"""``retroguard prompts``: render the spoken prompts of the plans in use now, and say so.

The monitor renders them itself at its first start (on the prompt player's
thread, never on the loop); this command does the same ahead of time — after
installing, after changing ``session.plan`` or ``session.language`` — for the
configured plan and the plan a physio assigned (stored in the event store),
and prints what it did: how many prompts, how many were rendered now, how long
it took and how much WAV they take. It then deletes every other rendered
prompt (older plans', another voice's or rate's: about 6.6 MiB a plan) and
says how much it freed. ``--list`` prints each sentence with its length and
file size. Run it as the service user (``sudo -u retroguard
/opt/retroguard/venv/bin/retroguard prompts -c /etc/retroguard/config.toml``) or as root: what
root renders into the service's state directory is given to the directory's owner
(:func:`core.writable.created_as_folder_owner`), so the service can still add and prune prompts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from core.cliargs import unreachable

DEFAULT_CONFIG = Path("/etc/retroguard/config.toml")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prompts",
        help="render the spoken prompts of the configured plan to WAV now",
        description=(
            "Render every spoken prompt of the configured session plan with espeak-ng into "
            "the prompt cache (the monitor does it at its first start otherwise); print the "
            "figures. Exit 1 when espeak-ng is missing or fails."
        ),
    )
    parser.add_argument("-c", "--config", type=Path, default=None, help="TOML config file")
    parser.add_argument("--list", action="store_true", help="print each prompt and its WAV")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import subprocess

    from core.writable import created_as_folder_owner
    from firmware.config import Config, load_config
    from firmware.session.cues import ESPEAK
    from firmware.session.plan import resolve_plan
    from firmware.session.runner import prompt_cache_dir
    from firmware.session.voice import VOICE_AUTO, VOICE_OFF, PromptCache, Prompts

    source: Path | None = args.config
    if source is None and DEFAULT_CONFIG.exists():
        source = DEFAULT_CONFIG
    config = load_config(source) if source is not None else Config()
    session = config.session
    prompts = Prompts.for_language(session.language)
    voice = prompts.file.voice if session.voice in (VOICE_AUTO, *VOICE_OFF) else session.voice
    cache = PromptCache(prompt_cache_dir(config), voice, session.speech_rate_wpm)
    plans = [resolve_plan(session.plan), *_assigned_plan(Path(config.storage.database))]
    texts = list(dict.fromkeys(t for plan in plans for t in prompts.all_for_plan(plan)))
    unwritable = _unwritable(cache.directory)
    if unwritable is not None:
        print(f"retroguard prompts: session.prompt_cache: {unwritable}", file=sys.stderr)
        return 2
    try:
        with created_as_folder_owner(cache.directory, companions=(), contents=True):
            figures = cache.render_all(texts)  # as root: the service's, which adds and prunes
    except (OSError, subprocess.SubprocessError) as exc:
        where = exc.filename if isinstance(exc, OSError) else None
        if isinstance(exc, OSError) and where and Path(where).is_relative_to(cache.directory):
            # the cache, not espeak-ng (a full disk): said so, not as espeak-ng's failure
            print(
                f"retroguard prompts: cannot write the prompt cache (session.prompt_cache): "
                f"{where}: {exc.strerror}",
                file=sys.stderr,
            )
            return 1
        print(f"retroguard prompts: {ESPEAK} failed: {exc}", file=sys.stderr)
        return 1
    names = " and ".join(dict.fromkeys([session.plan, *(p.name for p in plans[1:])]))
    print(
        f"{names} in {prompts.file.language} (voice {voice}, "
        f"{session.speech_rate_wpm} words/min): {figures}; in {cache.directory}"
    )
    pruned = cache.prune(texts)
    if pruned.removed:
        print(f"no plan in use needs the others: {pruned}")
    if args.list:
        import wave

        for text in texts:
            path = cache.path_for(text)
            with wave.open(str(path), "rb") as wav:  # its header: no need to read the speech
                length = wav.getnframes() / wav.getframerate()
            print(f"  {length:4.1f} s {path.stat().st_size / 1024:5.0f} KiB  {text}")
    if session.voice in VOICE_OFF:
        print('note: session.voice = "off": the monitor will not play them')
    return 0


def _unwritable(directory: Path) -> str | None:
    """Why this user cannot write the prompt cache ``directory`` (or make it), or None. Asked
    before espeak-ng runs: told to write into a folder it may not, espeak-ng says nothing and
    exits 0, and the command then failed on the WAV that was never written, blaming
    espeak-ng ("No such file or directory")."""
    reach = unreachable(directory)
    if reach is not None:
        return reach
    folder = directory
    while not folder.exists() and folder != folder.parent:  # the one it would be made in
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a directory, so {directory} cannot be made"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"{folder}: cannot write in it (permission denied: run the command as the "
            "service's user, or as root)"
        )
    return None


def _assigned_plan(database: Path) -> list[Any]:
    """The plan a physio assigned to this device (stored in the event store), if any."""
    from core.dbfile import database_file_problem
    from core.errors import ConfigError
    from firmware.storage.database import connect
    from firmware.storage.plans import current_plan

    problem = database_file_problem(database)  # first: exists() raises for one unreachable
    if problem is not None:
        raise ConfigError([f"storage.database: {problem}"])
    if not database.exists():
        return []
    conn = connect(database)
    try:
        assigned = current_plan(conn)
    finally:
        conn.close()
    return [] if assigned is None or assigned.plan is None else [assigned.plan]
