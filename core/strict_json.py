"""JSON from people and the network, read strictly: a key given twice is refused, not resolved.

Python's ``json`` (and ``msgspec``) keep the *last* value of a key written twice, silently: a
plan file with two ``"intervals"`` ran the second and showed no sign of the first, and a
command with two ``"minutes"`` did whichever came last. TOML refuses a duplicate key; the
JSON that people write (plan and progression files) or that arrives as a command is refused
the same way here, naming the key. ``NaN``, ``Infinity`` and ``-Infinity``, which ``json``
takes although JSON has no such values, are refused too.

A ``\\ud800``-style escape that stands alone (half of a UTF-16 pair, no character) is refused
as well: ``json`` decodes it to a lone surrogate, which no UTF-8 encoder takes, so it failed
later, far from the input — a ``cmd/plan`` naming one as an interval's direction was answered
"internal error: UnicodeEncodeError" (without its request id), and ``retroguard plan set`` of
a JSON file holding one ended in a traceback.

JSON the product writes and reads back itself (its database, its own messages) is not read
here: its producer cannot write a key twice.
"""

from __future__ import annotations

import json
import re
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


class LoneSurrogate(ValueError):
    """A string escape ``\\ud800``-``\\udfff`` not paired with its other half: no character."""

    def __init__(self) -> None:
        super().__init__(
            "a \\ud800-\\udfff escape without its other half (half of a UTF-16 pair) is not "
            "a character"
        )


_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
"""What a lone surrogate needs in the text: an escape of one, or (text given as ``str``) one
itself. A pair escaped as two (``\\ud83d\\ude00``) matches too; the decoded value tells."""
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    """True if a string in ``value`` (a key too) holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


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
    * :class:`LoneSurrogate` (a :class:`ValueError`): an escape of half a UTF-16 pair;
    * another :class:`ValueError`: malformed text (:class:`json.JSONDecodeError`), bytes that
      are not UTF-8 (:class:`UnicodeDecodeError`) or a number too long to read;
    * :class:`RecursionError`: nested deeper than Python's stack."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    value = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
    # the text is searched first (one pass, no match in nearly every text), the value only then
    if _MAYBE_SURROGATE.search(text) and _has_surrogate(value):
        raise LoneSurrogate
    return value
