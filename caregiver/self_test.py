"""A treadmill's self-test from the dashboard, in words a caregiver reads.

The device page's "Check this treadmill" publishes the device's ``self_test``
command (read-only on the device: it never arms or touches the relay,
firmware/mqtt/commands.py); ingest stores the reply to the newest check asked
for (:meth:`caregiver.storage.Store.self_test_answered`), and the page says the
newest result: passed, which checks failed and what they read, or that it was
not run and why. A check still unanswered :data:`ANSWER_TIMEOUT_S` after it was
asked for says "no answer from the treadmill" — worked out when the page is
read, so no thread waits for a reply that may never come.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec

from caregiver.storage import SelfTestRecord
from core.protocol.messages import ReplyMessage, SelfTestResult

ANSWER_TIMEOUT_S = 30.0
"""A treadmill on line answers within a second or two; after this the page says it did not."""

CHECK_WORDS: dict[str, str] = {
    "imu": "Motion sensor",
    "imu-pacing": "Motion sensor timing",
    "sensor-worn": "Sensor worn",
    "relay-contact": "Relay contact (the belt's stop switch)",
    "loop": "Monitoring",
    "storage": "Storage (memory card)",
    "database": "Alert queue",
    "broker": "Connection to this service",
    "device": "The treadmill's monitor",
}
"""Each check the device runs (firmware/app.py, firmware/courier/service.py,
firmware/mqtt/reporter.py) as a caregiver calls it; a check not listed (a newer device's) is
shown by its own name."""

SelfTestState = Literal["none", "pending", "no answer", "passed", "failed", "refused"]


def check_words(name: str) -> str:
    """A check's name in plain words."""
    return CHECK_WORDS.get(name, name.replace("-", " ").capitalize())


def checks_of(reply: ReplyMessage) -> tuple[tuple[str, bool, str], ...]:
    """Each check of a self-test reply, ``(name, ok, what it read)`` in the device's order;
    none for a refusal or a result that cannot be read."""
    if not reply.ok:
        return ()
    try:
        result = msgspec.convert(reply.result, SelfTestResult)
    except msgspec.ValidationError:
        return ()
    return tuple((name, check.ok, check.detail) for name, check in result.checks.items())


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check as the page lists it."""

    name: str
    """The device's id for it (small print)."""
    words: str
    detail: str


@dataclass(frozen=True, slots=True)
class SelfTestView:
    """What the device page says about the treadmill's self-test (``_self_test.html``)."""

    state: SelfTestState
    """The newest check asked for: none asked, waiting, unanswered for too long, or its
    answer. A check waiting or unanswered still shows the answer before it (``last``)."""
    record: SelfTestRecord | None

    @property
    def last(self) -> SelfTestView | None:
        """While a newer check waits (or went unanswered): the answer before it, if any."""
        record = self.record
        if self.state not in ("pending", "no answer") or record is None:
            return None
        if record.outcome is None or record.answered_request_id is None:
            return None
        return SelfTestView(record.outcome, record)

    @property
    def failures(self) -> list[Failure]:
        if self.record is None or self.state != "failed":
            return []
        return [
            Failure(name, check_words(name), detail)
            for name, ok, detail in self.record.checks
            if not ok
        ]

    @property
    def lead(self) -> str:
        """The result's first words, before its time ("Passed at", "2 checks failed at")."""
        match self.state:
            case "none":
                return "Not checked yet from here."
            case "pending":
                return "Checking the treadmill… asked at"
            case "no answer":
                return "No answer from the treadmill to the check asked at"
            case "passed":
                return "Passed at"
            case "refused":
                return "Not run at"
            case _:
                count = len(self.failures)
                if count == 0:  # a reply that could not be read: the device could not say
                    return "Failed at"
                return f"{count} check{'s' if count != 1 else ''} failed at"

    @property
    def at(self) -> float | None:
        """The time the lead names: when it was asked (waiting), else when it answered."""
        if self.record is None:
            return None
        if self.state in ("pending", "no answer"):
            return self.record.asked_at
        return self.record.answered_at

    @property
    def tail(self) -> str:
        """What follows the time: why it was not run, what to do, or nothing."""
        record = self.record
        match self.state:
            case "pending":
                return "; the answer usually comes within seconds."
            case "no answer":
                return (
                    f" (nothing for {ANSWER_TIMEOUT_S:g} s): it may be switched off or off line. "
                    "Check its power and network, then try again."
                )
            case "passed":
                return ": every check is fine."
            case "refused":
                reason = record.reason if record is not None else ""
                reason = reason.removeprefix("not run: ")  # the lead says it (a flood's refusal)
                return (
                    f": {reason or 'no reason given'}. Nothing is known to be wrong; "
                    "try again in a moment."
                )
            case "failed":
                return ":" if self.failures else ": the treadmill's answer could not be read."
            case _:
                return ""

    @property
    def text(self) -> str:
        """The whole result as one line, its time left out (the page puts it in a ``<time>``
        the browser shows in its own zone): for logs and tests."""
        failures = "; ".join(
            f"{f.words} — {f.detail}" if f.detail else f.words for f in self.failures
        )
        return f"{self.lead}{self.tail} {failures}".strip()


def view_of(record: SelfTestRecord | None, now: float) -> SelfTestView:
    """The device page's self-test: its newest check asked for, as of ``now``."""
    if record is None:
        return SelfTestView("none", None)
    if record.pending:
        waited = now - record.asked_at
        return SelfTestView("pending" if waited < ANSWER_TIMEOUT_S else "no answer", record)
    return SelfTestView(record.outcome or "failed", record)
