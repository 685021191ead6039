"""One line per check: the record every doctor check returns, and how it prints."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    """Not run: not configured (no broker), not applicable, or a check it needs failed."""
    WARN = "WARN"
    """Works, but a person must know (a bench rig whose relay a hung loop does not drop)."""


NAME_WIDTH = 16
"""Check names are padded to this, so the details line up in a terminal."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check.

    ``detail`` says what was seen, in words a technician can act on;
    ``fix`` (failures only) says what to do about it. Both are plain text
    with no timing noise, so tests can compare whole lines.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def line(self) -> str:
        """``PASS  name           detail`` or ``FAIL  name           detail; fix: ...``."""
        text = f"{self.status.value}  {self.name:<{NAME_WIDTH}} {self.detail}"
        if self.fix:
            text += f"; fix: {self.fix}"
        return text


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.PASS, detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, detail, fix)


def warned(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.WARN, detail)


def skipped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, detail)


def blocked(name: str, by: str) -> CheckResult:
    """A check that cannot run because check ``by`` failed (the cause is reported there)."""
    return skipped(name, f"not run: needs {by}")
