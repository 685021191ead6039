"""How hard a notification pushes through to a phone: Apprise's type and each service's priority.

Apprise has no priority of its own: each service takes one as a URL parameter,
with its own words. :func:`prioritised` sets it on a contact's URL for each
message, from the message's :class:`~caregiver.storage.Urgency` — a fall goes
at the service's highest priority (ntfy ``max``, Pushover ``emergency``: it
repeats until acknowledged in the app and sounds through Do Not Disturb), a
follow-up at its normal one. A ``priority`` already in the URL is replaced:
the message decides, not the contact's standing setting. Services without a
priority (Telegram, Signal, e-mail, ...) get the URL unchanged; their type (the
icon, and the colour where the service has one) still differs. docs/caregiver.md
says what each service does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from caregiver.outbox import Urgency

if TYPE_CHECKING:  # Apprise is imported where messages are sent: the notifier's process
    from apprise import NotifyType

__all__ = ["PRIORITIES", "notify_type", "prioritised", "urgency_of"]

_C, _H, _N = Urgency.CRITICAL, Urgency.HIGH, Urgency.NORMAL

_FIVE_STEPS = {_C: "emergency", _H: "high", _N: "normal"}
"""The words of Apprise's services with low..emergency priorities."""

PRIORITIES: dict[str, dict[Urgency, str]] = {
    "ntfy": {_C: "max", _H: "high", _N: "default"},
    "ntfys": {_C: "max", _H: "high", _N: "default"},
    "pover": _FIVE_STEPS,  # Pushover: emergency repeats (interval=, default 15 min) until acked
    "gotify": _FIVE_STEPS,
    "gotifys": _FIVE_STEPS,
    "join": _FIVE_STEPS,
    "prowl": _FIVE_STEPS,
    "opsgenie": _FIVE_STEPS,  # emergency = P1
    "psafer": {_C: "2", _H: "1", _N: "0"},
    "psafers": {_C: "2", _H: "1", _N: "0"},
    "spush": {_C: "5", _H: "4", _N: "3"},
    "simplepush": {_C: "5", _H: "4", _N: "3"},
}
"""URL scheme -> the ``priority`` parameter for each urgency (a test alarm: as critical)."""

_TYPES = {
    Urgency.CRITICAL: "FAILURE",
    Urgency.HIGH: "WARNING",
    Urgency.NORMAL: "INFO",
    Urgency.TEST: "INFO",
}
"""Urgency -> the name of Apprise's ``NotifyType`` member."""


_KINDS = {
    "fall": Urgency.CRITICAL,
    "no_recovery": Urgency.CRITICAL,
    "help": Urgency.CRITICAL,
    "stumble": Urgency.HIGH,
    "fault": Urgency.HIGH,
    "offline": Urgency.HIGH,
    "test": Urgency.TEST,
}


def urgency_of(kind: str) -> Urgency:
    """The urgency of a page about an alert (or incident) of this kind: an event type, or
    "offline". Follow-ups (I'm OK, acknowledged, back online) are :attr:`Urgency.NORMAL`."""
    return _KINDS.get(kind, Urgency.HIGH)


def notify_type(urgency: Urgency) -> NotifyType:
    """Apprise's message type (icon, colour) for ``urgency``."""
    from apprise import NotifyType

    return NotifyType[_TYPES[urgency]]


def prioritised(url: str, urgency: Urgency) -> str:
    """``url`` with its service's priority for ``urgency`` (unchanged for a service without
    one). Only the ``priority`` parameter is touched; the rest of the URL stays byte for byte."""
    scheme = url.partition("://")[0].lower()
    levels = PRIORITIES.get(scheme)
    if levels is None:
        return url
    level = levels[Urgency.CRITICAL if urgency is Urgency.TEST else urgency]
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and p.partition("=")[0].lower() != "priority"]
    return f"{base}?{'&'.join([*kept, f'priority={level}'])}"
