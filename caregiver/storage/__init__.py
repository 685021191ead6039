"""The caregiver service's database, and the only code that knows its SQL.

The service calls named operations (``store.event(...)``, ``tx.record_event(...)``,
``tx.open_alerts_due(...)``) and gets records back; :mod:`.store` runs them on
SQLite (a file, the single-machine default) or PostgreSQL (a ``postgresql://``
URL, for providers running several instances), through :mod:`.engines`;
:mod:`.schema` owns the tables and their versioned migrations, one path for both.
"""

from caregiver.storage.engines import Listener, database_problem, engine_of, redacted
from caregiver.storage.faults import StorageFault
from caregiver.storage.pg_timeouts import STATEMENT_TIMEOUTS, StatementTimeouts
from caregiver.storage.records import (
    CLOSED_HERE,
    OPEN_STATUSES,
    WALK_FIELDS,
    Account,
    Alert,
    CardIncident,
    ClockFrame,
    CommandStatus,
    Device,
    DeviceStatus,
    Incident,
    LastEvent,
    LeaseSeen,
    LoginSession,
    NewEvent,
    PendingNotification,
    Role,
    SelfTestOutcome,
    SelfTestRecord,
    SentCommand,
    StoredEvent,
    Urgency,
    WalkOutcome,
    WalkSession,
)
from caregiver.storage.schema import SCHEMA_VERSION, SchemaError, SchemaUpgrade
from caregiver.storage.side_faults import (
    Part,
    SideFault,
    SideFaults,
    Table,
    Use,
    prescribed_table,
    still_stored,
)
from caregiver.storage.sql import STAGE_AHEAD_S
from caregiver.storage.store import OPTIMIZE_EVERY_S, SIDE_PROBE_EVERY_S, Store, Transaction
from caregiver.storage.tx_retention import Pruned

__all__ = [
    "CLOSED_HERE",
    "OPEN_STATUSES",
    "OPTIMIZE_EVERY_S",
    "SCHEMA_VERSION",
    "SIDE_PROBE_EVERY_S",
    "STAGE_AHEAD_S",
    "STATEMENT_TIMEOUTS",
    "WALK_FIELDS",
    "Account",
    "Alert",
    "CardIncident",
    "ClockFrame",
    "CommandStatus",
    "Device",
    "DeviceStatus",
    "Incident",
    "LastEvent",
    "LeaseSeen",
    "Listener",
    "LoginSession",
    "NewEvent",
    "Part",
    "PendingNotification",
    "Pruned",
    "Role",
    "SchemaError",
    "SchemaUpgrade",
    "SelfTestOutcome",
    "SelfTestRecord",
    "SentCommand",
    "SideFault",
    "SideFaults",
    "StatementTimeouts",
    "StorageFault",
    "Store",
    "StoredEvent",
    "Table",
    "Transaction",
    "Urgency",
    "Use",
    "WalkOutcome",
    "WalkSession",
    "database_problem",
    "engine_of",
    "prescribed_table",
    "redacted",
    "still_stored",
]
