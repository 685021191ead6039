"""A program run by a test in a process of its own, its log (stderr) collected line by line to
wait on: the end-to-end tests of ``retroguard run`` and ``retroguard caregiver``."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.app_support import WAIT


class LoggedProcess:
    """``args`` started at once; :attr:`lines` grows as the process logs."""

    def __init__(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait_log(self, text: str) -> bool:
        """Until a line holding ``text`` was logged (False: the process ended first, or
        :data:`WAIT` passed)."""

        def logged() -> bool:
            return any(text in line for line in self.lines)

        with self._cond:
            return (
                self._cond.wait_for(lambda: logged() or not self._reader.is_alive(), WAIT)
                and logged()
            )

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status once the process has ended and its log is read; None if it has not
        ended within ``timeout``."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(WAIT)
        return code

    def kill(self) -> None:
        """SIGKILL (a crash, or what is left at a test's end), and its log read to the end."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        self._reader.join(WAIT)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it; SIGKILL if it has not ended within :data:`WAIT`."""
        if self.proc.poll() is None:
            self.proc.terminate()
            if self.wait_exit(WAIT) is None:
                self.kill()


def python_env(root: Path, **extra: str) -> dict[str, str]:
    """This environment with ``root`` on the import path (and ``extra``)."""
    return {**os.environ, "PYTHONPATH": str(root), **extra}
