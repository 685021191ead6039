"""A transaction's operations on devices: availability, state, telemetry, locks.

One of the parts :class:`caregiver.storage.store.Transaction` is made of (one per area of
the schema); it holds no state of its own.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from caregiver.storage.records import Device, DeviceStatus
from caregiver.storage.rows import _device, _finite_only
from caregiver.storage.sql import _DEVICE_SELECT, _chunks
from caregiver.storage.tx_base import _TxBase
from core.protocol.messages import FaultSaid, WornSaid


class TxDevices(_TxBase):
    """A transaction's operations on devices: availability, state, telemetry, locks."""

    def set_availability(self, device_id: str, availability: str, now: float) -> DeviceStatus:
        """Record the device's availability; return its status from before.

        "online" is the device speaking (its birth message): it is seen ``now``. "offline" is
        the broker's word for it (its will, or the retained copy replayed to this service at
        every start), never a sign of life: the device keeps the time it was last heard, and
        one first known by its "offline" has none."""
        if availability == "offline":
            self._db.execute(
                "INSERT INTO devices (device_id, last_seen) VALUES (?, NULL) "
                "ON CONFLICT (device_id) DO NOTHING",
                (device_id,),
            )
        else:
            self._touch(device_id, now)
        before, state = self._db.execute(
            "SELECT availability, state FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        self._db.execute(
            "UPDATE devices SET availability = ? WHERE device_id = ?", (availability, device_id)
        )
        return DeviceStatus(before, state)

    def set_state(
        self,
        device_id: str,
        state: str,
        reason: str,
        wall_time: str,
        now: float | None,
        worn: WornSaid | None = None,
        fault: FaultSaid | None = None,
    ) -> None:
        """One statement (no transaction around it needed: one round trip on PostgreSQL).
        ``worn``: what the reason says of the sensor-worn check (:func:`worn_said`);
        ``fault``: what kind of FAULT (the message's ``fault``; None outside FAULT).
        ``now`` None: a copy the broker kept (retained), which keeps the device's last seen."""
        self._db.execute(
            "INSERT INTO devices (device_id, last_seen, state, state_reason, state_worn, "
            "state_fault, state_time) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO "
            "UPDATE SET last_seen = COALESCE(excluded.last_seen, devices.last_seen), "
            "state = excluded.state, "
            "state_reason = excluded.state_reason, state_worn = excluded.state_worn, "
            "state_fault = excluded.state_fault, state_time = excluded.state_time",
            (
                device_id,
                now,
                state,
                reason,
                "" if worn is None else worn.value,
                "" if fault is None else fault.value,
                wall_time,
            ),
        )

    def set_telemetry(self, device_id: str, telemetry: Mapping[str, Any], now: float) -> None:
        """One statement, as :meth:`set_state`: telemetry is most of a fleet's messages."""
        self._db.execute(
            "INSERT INTO devices (device_id, last_seen, telemetry) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, "
            "telemetry = excluded.telemetry",
            (device_id, now, json.dumps(_finite_only(telemetry))),
        )

    def lock_devices(
        self, device_ids: Collection[str], now: float, unheard: Collection[str] = ()
    ) -> None:
        """Take these devices' rows (made if new) for the rest of the transaction, in device
        id order; each is seen ``now``, but for those in ``unheard`` (whose only messages are
        the broker's word that they are offline: :meth:`set_availability`).

        Every write of a device's messages (its events, incidents, alerts, replies) is done
        under its row's lock. A batch that takes all of its devices' locks first, in one
        order every instance shares, waits for another instance's batch at its first
        common device instead of holding one device the other needs while it waits for
        another the other holds: two instances' batches cannot deadlock over devices.
        """
        ordered = sorted(set(device_ids))
        if not ordered:
            return
        quiet = set(unheard)
        source, params = self._db.rows(
            (("device_id", "TEXT"), ("last_seen", "REAL")),
            [(d, None if d in quiet else now) for d in ordered],
        )
        # an unheard device's row is still updated (to its own time): the update is its lock
        self._db.execute(
            f"INSERT INTO devices (device_id, last_seen) {source} "
            "ON CONFLICT (device_id) DO UPDATE "
            "SET last_seen = COALESCE(excluded.last_seen, devices.last_seen)",
            params,
        )

    def hold_devices(self, device_ids: Collection[str]) -> None:
        """Take these devices' rows (those that exist) for the rest of the transaction, in id
        order, without changing them: a transaction that writes a device's events, incidents
        or alerts outside ingest (an acknowledgement) queues behind a batch of that device's
        messages, as :meth:`lock_devices` makes batches queue behind each other, instead of
        holding one of its rows while the batch holds another."""
        if not self._db.row_locks:
            return
        for ids in _chunks(device_ids):
            where, params = self._db.one_of("device_id", ids)
            self._db.execute(
                f"SELECT device_id FROM devices WHERE {where} ORDER BY device_id"
                + self._db.row_locks,
                params,
            ).fetchall()

    def set_telemetries(self, telemetry: Mapping[str, tuple[Mapping[str, Any], float]]) -> None:
        """The latest telemetry of several devices (device id → (telemetry, received at)) in
        one statement, in device id order: a batch's telemetry costs one round trip."""
        ordered = sorted(telemetry.items())
        if not ordered:
            return
        source, params = self._db.rows(
            (("device_id", "TEXT"), ("last_seen", "REAL"), ("telemetry", "TEXT")),
            [
                (device_id, now, json.dumps(_finite_only(values)))
                for device_id, (values, now) in ordered
            ],
        )
        self._db.execute(
            f"INSERT INTO devices (device_id, last_seen, telemetry) {source} "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, "
            "telemetry = excluded.telemetry",
            params,
        )

    def device(self, device_id: str) -> Device | None:
        row = self._db.execute(_DEVICE_SELECT + " WHERE d.device_id = ?", (device_id,)).fetchone()
        return _device(row) if row else None

    def devices(self) -> list[Device]:
        rows = self._db.execute(_DEVICE_SELECT + " ORDER BY d.device_id").fetchall()
        return [_device(r) for r in rows]

    def devices_by_id(self, device_ids: Collection[str]) -> dict[str, Device]:
        return self._by_id(_DEVICE_SELECT, "d.device_id", device_ids, _device)
