"""Who walks: a walker profile as data, on the device, on the wire and in the caregivers' store.

A clinic treadmill is shared: sessions, progress, plans and incidents
belong to a walker *and* a treadmill. A :class:`Walker` is an id (stable,
short, safe in a URL and a file name) and the name the device speaks when
the walker picks their profile with the button, and the dashboard shows.

Every device has the default walker (:data:`DEFAULT_WALKER`): a device used
by one person never has to know about profiles, and everything recorded
before profiles existed (sessions, plans, progressions, incidents) is
theirs. It cannot be removed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from msgspec import Meta, Struct

WALKER_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$(?!\n)"
r"""Python's ``$`` also matches before a final newline ("anna\n"); ``(?!\n)`` refuses it and
means nothing to the JSON schemas' (ECMA-262) ``$``, so both read the same pattern."""
MAX_NAME = 40
MAX_WALKERS = 8
"""Profiles on one device: the button cycles through them, so a handful (a clinic treadmill
shared by five patients fits); the beep pattern counts up to this many."""

WalkerId = Annotated[str, Meta(pattern=WALKER_ID_PATTERN)]
WalkerName = Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]

DEFAULT_WALKER_ID = "default"

_WALKER_ID = re.compile(WALKER_ID_PATTERN)


class Walker(Struct, frozen=True, forbid_unknown_fields=True):
    """A walker profile: the stable id records carry, and the name people hear and read."""

    id: WalkerId
    name: WalkerName


DEFAULT_WALKER = Walker(DEFAULT_WALKER_ID, "Default walker")


class WalkerInvalid(ValueError):
    """A walker id or name that breaks the contract; the text says which and why."""


def is_walker_id(value: object) -> bool:
    return isinstance(value, str) and _WALKER_ID.match(value) is not None


def check_walker_id(value: str) -> str:
    if not is_walker_id(value):
        raise WalkerInvalid(
            f"walker id {value!r}: use 1-32 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_walker_name(value: str) -> str:
    """The name, trimmed; :class:`WalkerInvalid` when blank, too long or not printable
    (it is spoken by the speech engine and shown on the dashboard)."""
    name = " ".join(value.split())
    if not name:
        raise WalkerInvalid("walker name: must not be blank")
    if len(name) > MAX_NAME:
        raise WalkerInvalid(f"walker name: at most {MAX_NAME} characters, not {len(name)}")
    if not name.isprintable():
        raise WalkerInvalid("walker name: must be printable text")
    return name


def walker_id_for(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """An id made from ``name`` ("Anna B." -> ``anna-b``), not one of ``taken``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:28] or "walker"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return check_walker_id(candidate)
