"""JSON from people and the network, read strictly: a key given twice is refused, not resolved.

Python's ``json`` (and ``msgspec``) keep the *last* value of a key written twice, silently: a
plan file with two ``"intervals"`` ran the second and showed no sign of the first, and a
command with two ``"minutes"`` did whichever came last. TOML refuses a duplicate key; the
JSON that people write (plan and progression files) or that arrives as a command is refused
the same way here, naming the key. ``NaN``, ``Infinity`` and ``-Infinity``, which ``json``
takes although JSON has no such values, are refused too.

JSON the product writes and reads back itself (its database, its own messages) is not read
here: its producer cannot write a key twice.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    """An object in the text has the same key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} appears twice in one object (which one was meant?)")
        self.key = key


class NotANumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's ``json`` takes them, JSON has no such
    values, and no field of ours means one."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not a JSON number")
        self.name = name


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey(key)
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise NotANumber(name)


def loads(text: str | bytes) -> Any:
    """The value of ``text``, or one of:

    * :class:`DuplicateKey` (a :class:`ValueError`): a key given twice in one object;
    * :class:`NotANumber` (a :class:`ValueError`): ``NaN``, ``Infinity`` or ``-Infinity``;
    * another :class:`ValueError`: malformed text (:class:`json.JSONDecodeError`), bytes that
      are not UTF-8 (:class:`UnicodeDecodeError`) or a number too long to read;
    * :class:`RecursionError`: nested deeper than Python's stack."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    return json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
