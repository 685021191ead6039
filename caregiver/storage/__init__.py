"""The caregiver service's database, and the only code that knows its SQL.

The service calls named operations (``store.event(...)``, ``tx.record_event(...)``,
``tx.open_alerts_due(...)``) and gets records back; :mod:`.sqlite` runs them on
SQLite and :mod:`.sqlite_schema` owns the tables and their versioned migrations.
Another database would be another module offering the same operations.
"""

from caregiver.storage.faults import StorageFault
from caregiver.storage.records import (
    OPEN_STATUSES,
    WALK_FIELDS,
    Account,
    Alert,
    CardIncident,
    Device,
    DeviceStatus,
    Incident,
    LastEvent,
    LoginSession,
    NewEvent,
    PendingNotification,
    StoredEvent,
    Urgency,
    WalkOutcome,
    WalkSession,
    worse,
)
from caregiver.storage.sqlite import Pruned, Store, Transaction
from caregiver.storage.sqlite_schema import SCHEMA_VERSION, SchemaError, SchemaUpgrade

__all__ = [
    "OPEN_STATUSES",
    "SCHEMA_VERSION",
    "WALK_FIELDS",
    "Account",
    "Alert",
    "CardIncident",
    "Device",
    "DeviceStatus",
    "Incident",
    "LastEvent",
    "LoginSession",
    "NewEvent",
    "PendingNotification",
    "Pruned",
    "SchemaError",
    "SchemaUpgrade",
    "StorageFault",
    "Store",
    "StoredEvent",
    "Transaction",
    "Urgency",
    "WalkOutcome",
    "WalkSession",
    "worse",
]
