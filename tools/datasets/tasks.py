"""What each recorded activity is, per dataset: the task tables.

``evaluate`` scores recordings by what the person was doing, not by a
dataset's code: SisFall's ``D01`` is slow walking, KFall's ``D01`` is
standing still. Each dataset module maps its codes to a :class:`Task` whose
:class:`Activity` group says which figures the recording counts in (walking
and jogging must never trip, lying down must never raise a FALL, a walking
fall must trip before its impact, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Activity(StrEnum):
    """The groups ``evaluate`` reports on."""

    WALKING = "walking"
    """Level walking at any speed, turns included: must never trip."""
    JOGGING = "jogging"
    """Jogging or running: at most one trip per hour."""
    STAIRS = "stairs"
    """Walking up and down stairs (reported; not part of the walking target)."""
    STUMBLE = "stumble"
    """A stumble that does not end in a fall (tripping there is acceptable)."""
    LYING_DOWN = "lying down"
    """Lying down on a bed, lying on it, turning over: must not raise a FALL."""
    OTHER_ADL = "other ADL"
    """Everything else people do: sitting, bending, jumping, getting into a car."""
    WALKING_FALL = "walking fall"
    """A fall that starts while walking or jogging: must trip before its impact."""
    FALL = "fall"
    """Any other fall (from sitting, rising, fainting in a chair...)."""


ADL_GROUPS = frozenset(
    {
        Activity.WALKING,
        Activity.JOGGING,
        Activity.STAIRS,
        Activity.STUMBLE,
        Activity.LYING_DOWN,
        Activity.OTHER_ADL,
    }
)
FALL_GROUPS = frozenset({Activity.WALKING_FALL, Activity.FALL})


@dataclass(frozen=True, slots=True)
class Task:
    """One activity of a dataset's protocol."""

    code: str
    """The dataset's own code (``F02``, ``D18``)."""
    description: str
    """As the dataset's documentation words it."""
    group: Activity
    backward: bool = False
    """A fall whose body goes backward (the direction RetroGuard exists for)."""

    @property
    def is_fall(self) -> bool:
        return self.group in FALL_GROUPS


_WALKING_WORDS = ("walk", "jog", "run")
_JOGGING_WORDS = ("jog", "run")


def task_from_words(code: str | None, label: str) -> Task | None:
    """A trace's ``activity`` read for its group: a fall or an ADL whose name
    mentions walking, jogging or running goes with gait (``walk_with_turns``,
    ``jogging``, ``walking_backward_fall``), a ``backward`` fall is backward.
    None without an activity or a fall/ADL label."""
    if code is None or label not in ("fall", "adl"):
        return None
    words = code.lower()
    walking = words.startswith(_WALKING_WORDS) if label == "adl" else False
    if label == "fall":
        group = Activity.WALKING_FALL if any(w in words for w in _WALKING_WORDS) else Activity.FALL
        return Task(code, code, group, backward="backward" in words)
    if walking:
        group = Activity.JOGGING if words.startswith(_JOGGING_WORDS) else Activity.WALKING
    elif "lie" in words or "lying" in words:
        group = Activity.LYING_DOWN
    else:
        group = Activity.OTHER_ADL
    return Task(code, code, group)
