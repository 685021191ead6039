"""What every part of :class:`caregiver.storage.store.Transaction` stands on: the open
connection, what a batch prepared, and the helpers more than one part uses."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from caregiver.storage.engines import Database
from caregiver.storage.sql import _chunks

_T = TypeVar("_T")


@dataclass(slots=True)
class _Prepared:
    """What a batch wrote or read for all of its messages at once, before their one-by-one
    handling (:meth:`Store.batch`), and what that handling leaves to the batch's end."""

    events: set[str] = field(default_factory=set)
    """Every event id the batch inserted up front (stored now, or found stored before)."""
    new_events: set[str] = field(default_factory=set)
    """The ones that were new and that no message has recorded yet."""
    absent_incidents: set[str] = field(default_factory=set)
    """Incident ids the batch looked up and found missing (none opened since)."""
    latest_events: dict[str, tuple[int, str, float, bool]] = field(default_factory=dict)
    """Each device's newest recorded event (the monitor's order: :func:`_resent`) as its
    sequence, its id, when the batch last recorded one, and whether the batch started its
    sequence again (an event 1 before it, or itself): the row is updated at the end."""
    alert_ids: deque[int] = field(default_factory=deque)
    """Alert ids taken for the batch's pages, in order (where the engine hands them out)."""

    def copy(self) -> _Prepared:
        """What it holds now, to go back to if a message's handling is undone."""
        return _Prepared(
            set(self.events),
            set(self.new_events),
            set(self.absent_incidents),
            dict(self.latest_events),
            deque(self.alert_ids),
        )

    def restore(self, before: _Prepared) -> None:
        self.events, self.new_events = before.events, before.new_events
        self.absent_incidents, self.latest_events = before.absent_incidents, before.latest_events
        self.alert_ids = before.alert_ids


class _TxBase:
    """The connection and a batch's prepared state, set by :class:`Transaction`'s
    ``__init__``; the parts (mixins) declare no state of their own."""

    _db: Database
    _prepared: _Prepared | None

    if TYPE_CHECKING:
        # one part uses another's operation: declared here so each part type-checks alone

        def hold_devices(self, device_ids: Collection[str]) -> None: ...

    def readable(self, table: str) -> None:
        """Read one row of ``table`` (a name of the code's: :attr:`Part.tables`), raising if
        it cannot be read (missing, locked, its first page damaged)."""
        self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()

    def _touch(self, device_id: str, now: float) -> None:
        self._db.execute(
            "INSERT INTO devices (device_id, last_seen) VALUES (?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (device_id, now),
        )

    def _by_id(
        self,
        select: str,
        key: str,
        ids: Collection[str],
        decode: Callable[[tuple[Any, ...]], _T],
    ) -> dict[str, _T]:
        """The rows of ``select`` whose ``key`` is one of ``ids`` (first column: the id),
        decoded, by id, in a statement per :data:`_CHUNK` ids."""
        found: dict[str, _T] = {}
        for chunk in _chunks(ids):
            where, params = self._db.one_of(key, chunk)
            rows = self._db.execute(f"{select} WHERE {where}", params).fetchall()
            found.update((row[0], decode(row)) for row in rows)
        return found
