"""Rows read back as the store's records (:mod:`caregiver.storage.records`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from caregiver.storage.records import Alert, Device, Incident, Role, StoredEvent
from caregiver.storage.sql import _INCIDENT_COLUMNS


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:  # written by a later release: the least it may do
        return Role.CAREGIVER


def _finite_only(value: Any) -> Any:
    """NaN and infinities (which older versions stored from devices) read as null: they are
    not JSON, and one of them made /api/fleet answer 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_only(v) for v in value]
    return value


def _device(r: tuple[Any, ...]) -> Device:
    telemetry: Mapping[str, Any] = _finite_only(json.loads(r[6] or "{}"))
    return {
        "device_id": r[0],
        "availability": r[1],
        "state": r[2],
        "state_reason": r[3],
        "state_worn": r[28],
        "state_fault": r[33],
        "state_time": r[4],
        "last_seen": r[5],
        "telemetry": dict(telemetry),
        "last_event": (
            {
                "id": r[7],
                "type": r[8],
                "severity": r[9],
                "reason": r[10],
                "wall_time": r[11],
                "received_at": r[12],
            }
            if r[7]
            else None
        ),
        "open_alerts": int(r[13]),
        "incident": (
            {
                "id": r[14],
                "kind": r[15],
                "status": r[16],
                "opened_at": r[17],
                "first_event_id": r[18],
                "last_event_at": r[19],
                "closed_at": r[20],
                "closed_by": r[21],
                "closed_via": r[22],
                "answered": bool(r[23]),
                "newest_alert": r[24],
                "walker": r[26],
                "told": bool(r[27]),
                "opened_wall": r[29] or "",
                "opened_unsynced": bool(r[30]),
                "closed_wall": r[31] or "",
                "closed_unsynced": bool(r[32]),
            }
            if r[14]
            else None
        ),
        "newest_other_alert": None if r[25] is None else int(r[25]),
    }


def _event(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        id=row[0],
        device_id=row[1],
        seq=row[2],
        type=row[3],
        severity=row[4],
        state=row[5],
        reason=row[6],
        wall_time=row[7],
        received_at=row[8],
        figures=json.loads(row[9]),
        has_window=bool(row[10]),
        acked_by=row[11],
        acked_at=row[12],
        ack_confirmed=bool(row[13]),
        incident=row[14],
        wall_unsynced=bool(row[15]),
    )


def _paged_order(contact: int | str) -> tuple[bool, str]:
    """Places (an alert paged before schema 17) first, then ids: a list may hold both."""
    return isinstance(contact, str), str(contact)


def _alert(row: tuple[Any, ...]) -> Alert:
    return Alert(
        id=row[0],
        kind=row[1],
        device_id=row[2],
        event_id=row[3],
        status=row[4],
        created_at=row[5],
        next_at=row[6],
        contact=row[7],
        sends=row[8],
        paged=json.loads(row[9]),
        closed_by=row[10],
        incident=row[11],
        reached=row[12],
    )


def _incident(r: tuple[Any, ...]) -> Incident:
    if len(r) > _INCIDENT_FIELDS:  # read with _INCIDENT_READ: answered, opened_unsynced
        unsynced = len(r) > _INCIDENT_FIELDS + 1 and bool(r[_INCIDENT_FIELDS + 1])
        # with _INCIDENT_LISTED: told
        told = bool(r[_INCIDENT_FIELDS + 2]) if len(r) > _INCIDENT_FIELDS + 2 else None
        fields: tuple[Any, ...] = (
            *r[:_INCIDENT_FIELDS], bool(r[_INCIDENT_FIELDS]), unsynced, told,
        )  # fmt: skip
        return Incident(*fields)
    return Incident(*r)


_INCIDENT_FIELDS = len(_INCIDENT_COLUMNS.split(","))
