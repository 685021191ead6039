"""JSON payloads, one builder per topic; the JSON Schemas in ``docs/mqtt/schemas`` describe them.

Keys only ever grow (``schema`` says which version a consumer reads), so an
old dashboard keeps working against a newer device. Payloads are compact
JSON (no spaces) because the IMU window of a fall is a few thousand numbers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from core.protocol.events import Event

SCHEMA_VERSION = 1

ONLINE = "online"
OFFLINE = "offline"


def wall_now() -> str:
    """ISO 8601 UTC wall-clock time, for display only."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def event_payload(event: Event, seq: int) -> str:
    """The ``/event`` payload: the event record plus its per-device sequence number."""
    data = event.to_dict()
    data["seq"] = seq
    return dumps(data)


def state_payload(device_id: str, state: str, reason: str, wall_time: str | None = None) -> str:
    return dumps(
        {
            "schema": SCHEMA_VERSION,
            "device_id": device_id,
            "state": state,
            "reason": reason,
            "wall_time": wall_time or wall_now(),
        }
    )


def telemetry_payload(device_id: str, outbox_depth: int, extra: Mapping[str, Any]) -> str:
    """Periodic health: the provider's figures plus what only the reporter knows."""
    data: dict[str, Any] = {str(k): v for k, v in extra.items()}
    data.update(
        {
            "schema": SCHEMA_VERSION,
            "device_id": device_id,
            "wall_time": wall_now(),
            "outbox_depth": outbox_depth,
        }
    )
    return dumps(data)


def reply_payload(
    device_id: str,
    command: str,
    request_id: str | None,
    ok: bool,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> str:
    data: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "device_id": device_id,
        "command": command,
        "request_id": request_id,
        "ok": ok,
        "wall_time": wall_now(),
    }
    if ok:
        data["result"] = dict(result or {})
    else:
        data["error"] = error or "error"
    return dumps(data)
