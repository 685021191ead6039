"""The caregiver database's schema and its migrations, one path for both engines.

The version is SQLite's ``PRAGMA user_version``, or PostgreSQL's one-row
``retroguard_schema`` table; the statements are written once, in SQLite's types,
and :meth:`caregiver.storage.engines.Database.ddl` spells them for PostgreSQL.

Every change to the tables is a new :class:`Migration` at the end of
:data:`MIGRATIONS`, never an edit of an old one: a database says which version
it is at, and opening it applies the ones after that, all in one transaction
(both engines' DDL is transactional, the version included; PostgreSQL's under an
advisory lock, SQLite's under its write lock), so a failed upgrade
leaves the file as it was. A database at a version this code does not know (a
later release wrote it) is refused rather than guessed at.

Version 1 is the schema the service had before versions were recorded. Those
databases say 0 but have the tables: their tables are first checked against
version 1's columns (a file from an earlier development build or from another
program is refused instead of failing on its first insert), then version 1's
``CREATE ... IF NOT EXISTS`` statements adopt them as they are and create what
the file lacks (all of it, for a new file).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from caregiver.storage.engines import Database, SqliteDatabase, passing

log = logging.getLogger(__name__)


class SchemaError(Exception):
    """The database cannot be used by this version of the service (the message says why)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    """The ``user_version`` the database has after this migration."""
    why: str
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SchemaUpgrade:
    """What opening the database did: ``before == after`` when it was already current."""

    before: int
    after: int


V1_TABLES = (
    """CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    availability TEXT NOT NULL DEFAULT 'unknown',
    state TEXT NOT NULL DEFAULT 'UNKNOWN',
    state_reason TEXT NOT NULL DEFAULT '',
    state_time TEXT NOT NULL DEFAULT '',
    last_event_id TEXT,
    last_seen REAL,
    telemetry TEXT NOT NULL DEFAULT '{}'
)""",
    """CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    seq INTEGER,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    wall_time TEXT NOT NULL,
    received_at REAL NOT NULL,
    figures TEXT NOT NULL DEFAULT '{}',
    has_window INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL DEFAULT '{}',  -- the event as received (the IMU window is read from it)
    acked_by TEXT,
    acked_at REAL,
    ack_request_id TEXT,
    ack_confirmed INTEGER NOT NULL DEFAULT 0
)""",
    "CREATE INDEX IF NOT EXISTS events_by_device ON events (device_id, received_at)",
    """CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,            -- an event type, or 'offline'
    device_id TEXT NOT NULL,
    event_id TEXT,
    status TEXT NOT NULL,          -- held, paging, acknowledged, resolved, logged
    created_at REAL NOT NULL,
    next_at REAL,                  -- when the escalator looks at it next
    contact INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0,
    paged TEXT NOT NULL DEFAULT '[]',   -- contact indexes already paged
    closed_by TEXT,
    closed_at REAL
)""",
    "CREATE INDEX IF NOT EXISTS alerts_open ON alerts (status, next_at)",
    "CREATE INDEX IF NOT EXISTS alerts_by_device ON alerts (device_id, status)",
    """CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER,
    contact TEXT NOT NULL,
    contact_index INTEGER NOT NULL,
    url_index INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',   -- pending, sent, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_at)",
    """CREATE TABLE IF NOT EXISTS walk_sessions (   -- guided-session summaries, one row per session id
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    started_wall TEXT NOT NULL,    -- ISO 8601, UTC
    ended_wall TEXT NOT NULL,
    planned_s REAL NOT NULL,
    done_s REAL NOT NULL,
    backward_s REAL NOT NULL,
    longest_backward_s REAL NOT NULL,
    steps INTEGER NOT NULL,
    walking_s REAL NOT NULL,
    cadence_spm REAL NOT NULL,
    trips INTEGER NOT NULL,
    stumbles INTEGER NOT NULL,
    received_at REAL NOT NULL,
    payload TEXT NOT NULL
)""",  # noqa: E501 - the text as the first releases wrote it
    "CREATE INDEX IF NOT EXISTS walk_sessions_by_device ON walk_sessions (device_id, started_wall)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "the tables of the releases before schema versions (those databases say 0: adopted as "
        "they are)",
        V1_TABLES,
    ),
    Migration(
        2,
        "incidents (docs/incidents.md): every event of one bad moment on the belt grouped, "
        "one alert per incident, closed once; IMU recordings stored once, compactly",
        (
            "ALTER TABLE events ADD COLUMN incident TEXT",
            "CREATE INDEX events_by_incident ON events (incident)",
            """CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    severity TEXT NOT NULL,        -- the worst event type so far: stumble, fault, fall, help, ...
    status TEXT NOT NULL,          -- open, closed
    opened_at REAL NOT NULL,
    opened_wall TEXT NOT NULL,
    first_event_id TEXT NOT NULL,
    last_event_at REAL NOT NULL,
    closed_at REAL,
    closed_by TEXT,
    closed_via TEXT,               -- walker, dashboard, home-assistant, notification, ...
    closed_severity TEXT           -- the severity when it was closed: a worse event reopens it
)""",
            "CREATE INDEX incidents_by_device ON incidents (device_id, opened_at)",
            "CREATE INDEX incidents_by_time ON incidents (opened_at)",
            "ALTER TABLE alerts ADD COLUMN incident TEXT",
            "CREATE INDEX alerts_by_incident ON alerts (incident)",
            """CREATE TABLE recordings (
    trip_event_id TEXT PRIMARY KEY,
    window_event_id TEXT NOT NULL,
    recording BLOB NOT NULL        -- core.protocol.messages.ImuRecording, msgpack (int16, zlib)
)""",
        ),
    ),
    Migration(
        3,
        "caregivers limited to some devices (no rows: the account sees every device)",
        (
            """CREATE TABLE user_devices (
    username TEXT NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (username, device_id)
) WITHOUT ROWID""",
        ),
    ),
    Migration(
        4,
        "each queued notification's urgency (its Apprise type and priority); older rows: normal",
        ("ALTER TABLE notifications ADD COLUMN urgency TEXT NOT NULL DEFAULT 'normal'",),
    ),
    Migration(
        5,
        "leases (docs/provider.md): which of several instances on one database runs the "
        "escalation timers and sends the notifications, until when",
        (
            """CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,          -- the instance that holds it
    expires_at REAL NOT NULL       -- unless renewed by then, another instance may take it
)""",
        ),
    ),
    Migration(
        6,
        "account roles (caregiver: plans read-only; physio: sets plans and progressions); "
        "accounts from before roles become physios, as every account could set plans then",
        (
            # the default is the lesser role: a row written without one never gains plan rights
            "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'caregiver'"
            " CHECK (role IN ('caregiver', 'physio'))",
            "UPDATE users SET role = 'physio'",
        ),
    ),
    Migration(
        7,
        "plan and progression commands sent to devices, and each device's answer (accepted, "
        "or refused with the reason), shown on the plan page",
        (
            """CREATE TABLE device_commands (
    request_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    command TEXT NOT NULL,         -- plan, progression
    summary TEXT NOT NULL,         -- what was sent, as the plan page says it
    sent_by TEXT NOT NULL,
    sent_at REAL NOT NULL,
    status TEXT NOT NULL,          -- pending, accepted, refused (no answer: pending too long)
    answered_at REAL,
    answer TEXT                    -- accepted: what the device says it did; refused: why
)""",
            "CREATE INDEX device_commands_by_device ON device_commands (device_id, sent_at)",
        ),
    ),
    Migration(
        8,
        "the sessions a week each device's progression prescribes (from its retained progress "
        "message): adherence counts against them instead of three",
        (
            """CREATE TABLE prescribed_weeks (
    device_id TEXT NOT NULL,
    week TEXT NOT NULL,            -- ISO week in the device's zone, "2026-W49"
    sessions INTEGER NOT NULL,
    PRIMARY KEY (device_id, week)
)""",
        ),
    ),
    Migration(
        9,
        "walker profiles: each guided session names its walker (a clinic treadmill is shared); "
        "sessions from before are the device's default walker's; the sessions each walker's "
        "progression prescribes (prescribed_weeks stays the default walker's)",
        (
            "ALTER TABLE walk_sessions ADD COLUMN walker TEXT NOT NULL DEFAULT 'default'",
            "ALTER TABLE walk_sessions ADD COLUMN walker_name TEXT NOT NULL "
            "DEFAULT 'Default walker'",
            "CREATE INDEX walk_sessions_by_walker ON walk_sessions "
            "(device_id, walker, started_wall)",
            """CREATE TABLE walker_prescribed_weeks (  -- prescribed_weeks of the other walkers
    device_id TEXT NOT NULL,
    walker TEXT NOT NULL,
    week TEXT NOT NULL,            -- ISO week in the device's zone, "2026-W49"
    sessions INTEGER NOT NULL,
    PRIMARY KEY (device_id, walker, week)
)""",
        ),
    ),
    Migration(
        10,
        "each incident names its walker (the event's walker on the wire, absent: the default "
        "walker); incidents from before are unknown (NULL): a walker's report counts those "
        "opened during their sessions, as before",
        ("ALTER TABLE incidents ADD COLUMN walker TEXT",),
    ),
    Migration(
        11,
        "each treadmill's walker profiles as it publishes them (retained walkers message): the "
        "plan page offers a walker who has not walked yet, with their name",
        (
            """CREATE TABLE device_walkers (   -- the device's word: none added from here
    device_id TEXT NOT NULL,
    walker TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,     -- the button's order on the treadmill, from 0
    PRIMARY KEY (device_id, walker)
)""",
        ),
    ),
    Migration(
        12,
        "each incident's newest critical event when it was last closed, kept when a later "
        "event reopens it: a dashboard catching up alarms only for critical events after the "
        "close (closed incidents get theirs now; one reopened before has none: it alarms)",
        (
            "ALTER TABLE incidents ADD COLUMN closed_critical TEXT",
            "UPDATE incidents SET closed_critical = (SELECT e.id FROM events e "
            "WHERE (e.incident = incidents.id OR (e.id = incidents.id AND e.incident IS NULL)) "
            "AND e.severity = 'critical' "
            "ORDER BY e.seq DESC NULLS LAST, e.received_at DESC, e.id DESC LIMIT 1) "
            "WHERE status = 'closed'",
        ),
    ),
    Migration(
        13,
        "incidents reopened before schema 12 get the critical event they were closed with: "
        "the newest numbered below the incident's last closing event (the walker's I'm OK, a "
        "close the device relayed, a re-arm), else the one its answered alert was about — "
        "a dashboard catching up does not alarm again for a fall answered before the upgrade "
        "(none found: it alarms, as before)",
        (
            "UPDATE incidents SET closed_critical = COALESCE((SELECT e.id FROM events e "
            "WHERE e.incident = incidents.id AND e.severity = 'critical' AND e.seq < ("
            "SELECT MAX(c.seq) FROM events c WHERE c.incident = incidents.id "
            "AND c.type IN ('ok', 'closed', 'reset')) "
            "ORDER BY e.seq DESC, e.received_at DESC, e.id DESC LIMIT 1), "
            "(SELECT a.event_id FROM alerts a JOIN events e ON e.id = a.event_id "
            "WHERE a.incident = incidents.id AND a.status IN ('acknowledged', 'resolved', "
            "'logged') AND e.severity = 'critical' ORDER BY a.id DESC LIMIT 1)) "
            "WHERE status = 'open' AND closed_severity IS NOT NULL AND closed_critical IS NULL",
        ),
    ),
    Migration(
        14,
        "each guided session's falls (a trip confirmed as a fall, also after the stumble that "
        "tripped) and the falls with no recovery; sessions stored before: falls = trips - "
        "stumbles (what every summary kept true), no recovery unknown (0)",
        (
            "ALTER TABLE walk_sessions ADD COLUMN falls INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE walk_sessions ADD COLUMN no_recovery INTEGER NOT NULL DEFAULT 0",
            "UPDATE walk_sessions SET falls = trips - stumbles",
        ),
    ),
    Migration(
        15,
        "each guided session's amendments: how often the device changed its record after the "
        "session ended (a fall confirmed after it in the incident of its trip), so a summary "
        "replaces the stored one only when it is newer (more amended); sessions stored before: 0",
        ("ALTER TABLE walk_sessions ADD COLUMN amended INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        16,
        "each guided session's clock flag: the device's wall clock was never synchronised while "
        "it was recorded, so its date and week may be wrong (the progress page says so); "
        "sessions stored before: 0 (not flagged, as their devices did not know)",
        ("ALTER TABLE walk_sessions ADD COLUMN wall_unsynced INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        17,
        "each queued notification's address by the contact's name and the URL's hash "
        "(caregiver.outbox.addressee), not by their places in the config's lists, which a "
        "reordered config gave to someone else; rows queued before keep no keys (NULL) and are "
        "found by the contact name they recorded. Each alert's contact reached by its "
        "caregiver.outbox.contact_id (paged: ids too); alerts from before keep NULL and "
        "escalate by place, as they did",
        (
            "ALTER TABLE notifications ADD COLUMN contact_key TEXT",
            "ALTER TABLE notifications ADD COLUMN url_key TEXT",
            "ALTER TABLE alerts ADD COLUMN reached TEXT",
        ),
    ),
    Migration(
        18,
        "each event's clock flag: the device's wall clock was not synchronised when it stamped "
        "the event (a Pi after a power cut, before NTP), so its wall_time may be hours or days "
        "off and the dashboard and the pages say when it was received instead; and each "
        "incident's, of the event that opened it (its opened_wall is that event's time); "
        "events and incidents stored before: 0 (not flagged, as their devices did not say)",
        (
            "ALTER TABLE events ADD COLUMN wall_unsynced INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE incidents ADD COLUMN opened_unsynced INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        19,
        "each guided session's restart flag: the monitor stopped (power cut, crash, kill) "
        "before it recorded the session's end and the next start closed it with what its "
        "records prove (the summary's interrupted), so the progress page says the treadmill "
        "restarted before the end was recorded; sessions stored before: 0 (not interrupted, "
        "as read before this column)",
        ("ALTER TABLE walk_sessions ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        20,
        "each treadmill's newest self-test asked for from the dashboard and its newest answer "
        "(passed, failed with the checks that failed, or refused unrun), shown on its page; "
        "one row a device, none before its first check",
        (
            """CREATE TABLE self_tests (
    device_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,      -- the newest check asked for
    asked_by TEXT NOT NULL,
    asked_at REAL NOT NULL,
    answered_request_id TEXT,      -- the check the answer is to (request_id: answered)
    answered_at REAL,
    outcome TEXT CHECK (outcome IN ('passed', 'failed', 'refused')),
    reason TEXT NOT NULL DEFAULT '',  -- refused: why it was not run
    checks TEXT NOT NULL DEFAULT '[]'  -- JSON [[name, ok, detail], ...], the device's order
)""",
        ),
    ),
    Migration(
        21,
        "each treadmill's state says, typed, what its reason says of the sensor-worn check "
        "(the state message's worn: not_worn, measuring, or '' for neither), so the card tells "
        "a press refused while the check still measures from a sensor off the body (both "
        "reasons begin 'sensor not worn'); states stored before: read from their reason's "
        "prefix, as a message from a release before the field is",
        (
            "ALTER TABLE devices ADD COLUMN state_worn TEXT NOT NULL DEFAULT ''",
            "UPDATE devices SET state_worn = CASE "
            "WHEN state_reason LIKE 'sensor not worn: still measuring%' THEN 'measuring' "
            "WHEN state_reason LIKE 'sensor not worn%' THEN 'not_worn' ELSE '' END",
        ),
    ),
    Migration(
        22,
        "each treadmill's time zone as its progress message names it (the zone its weeks and "
        "its progression's weeks are counted in): the dashboard counts a walker's weeks in it, "
        "not in [server] timezone; devices heard before, or whose zone has no name: '' (the "
        "service's zone, as before)",
        ("ALTER TABLE devices ADD COLUMN zone TEXT NOT NULL DEFAULT ''",),
    ),
    Migration(
        23,
        "each plan or progression command's walker: the plan page shows the walker a physio "
        "chose their progression as the treadmill last answered it; commands sent before: "
        "NULL (whose is unknown: they are listed, never shown as a walker's progression)",
        ("ALTER TABLE device_commands ADD COLUMN walker TEXT",),
    ),
    Migration(
        24,
        "each walker's progression as the device publishes it (retained stage/<walker>): the "
        "plan and progress pages show every walker's stage and prescribed sessions from the "
        "device's word, not from the answer to the last command sent from here (a stage the "
        "device moved on by itself for a walker not chosen at the treadmill was not seen); "
        "none before a device's first (older devices never send one: the pages say what they "
        "said before)",
        (
            """CREATE TABLE walker_stages (   -- the device's word; one row a walker
    device_id TEXT NOT NULL,
    walker TEXT NOT NULL,
    message TEXT NOT NULL,         -- the stage message as received (JSON)
    wall_time TEXT NOT NULL,       -- when the device computed it
    received_at REAL NOT NULL,
    PRIMARY KEY (device_id, walker)
)""",
        ),
    ),
    Migration(
        25,
        "each open alert's timers say the wall clock they were written in (the instance that "
        "measured it and its wall-minus-boot offset then): a step of the clock moves a timer "
        "by the steps since it was written, not one written in the second between the step "
        "and the escalation ticker's look, already in the new clock (stepped forward an hour, "
        "a stumble's grace or a fall's reminder came an hour late); alerts stored before: "
        "NULL, moved by the ticker's measured step as before",
        (
            "ALTER TABLE alerts ADD COLUMN frame_of TEXT",
            "ALTER TABLE alerts ADD COLUMN frame_offset REAL",
        ),
    ),
    Migration(
        26,
        "each notification's retry says the wall clock it was written in, as an alert's timers "
        "do (schema 25: the machine's boot and its wall-minus-boot offset then): a step of the "
        "clock while the service was stopped moves a retry written before it in the same boot "
        "(before, the notifier measured steps only from its own first look: the retry of a "
        "failed page came at once or an hour late after a restart across an hour's step); "
        "rows stored before: NULL, moved by the notifier's measured step as before",
        (
            "ALTER TABLE notifications ADD COLUMN frame_of TEXT",
            "ALTER TABLE notifications ADD COLUMN frame_offset REAL",
        ),
    ),
    Migration(
        27,
        "each lease counts its renewals: another instance takes a lease over once it has seen "
        "the count stand still for the lease's length on its own monotonic clock, not when the "
        "wall time in expires_at has passed (a holder that died without a clean stop kept the "
        "lease for an hour more after NTP stepped the clock back an hour, and nobody was "
        "paged meanwhile); expires_at is still written, for people and for an instance of an "
        "earlier release during a rolling upgrade; leases held before: 0",
        ("ALTER TABLE leases ADD COLUMN renewals INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        28,
        "a recording event says when the recording it carried could not be stored (the "
        "recordings table refused it, and the event and its alert were stored without it, "
        "rather than held with the broker): the fall's pages say so; events stored before: 0",
        ("ALTER TABLE events ADD COLUMN recording_unstored INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        29,
        "the fleet's cards find each treadmill's incident through an index (its open one, else "
        "the one that ended last): every read of the cards sorted all the incidents a "
        "treadmill ever had (about 0.3 s a read at 8 treadmills with 20,000 incidents each, "
        "on both engines; benchmarks/fleet_cards.py); the open ones have a small index of "
        "their own, which also serves ingest's look for a treadmill's open incident",
        (
            "CREATE INDEX incidents_by_device_last ON incidents (device_id, last_event_at)",
            "CREATE INDEX incidents_open_by_device ON incidents (device_id, last_event_at) "
            "WHERE status = 'open'",
        ),
    ),
    Migration(
        30,
        "the alerts open now (held or paging) have a small index of their own: once the "
        "service keeps the query planner's statistics (PRAGMA optimize), SQLite read that "
        "each status holds a large share of the alerts (nearly all are acknowledged) and "
        "planned the escalation ticker's look for due alerts (every second), its timers' shift "
        "and the dashboard's still-open list as a scan of every alert ever stored "
        "(benchmarks/caregiver_history.py --statistics); the queries name exactly this "
        "index's condition (caregiver.storage.sql._OPEN), so both engines can use it",
        (
            "CREATE INDEX alerts_open_now ON alerts (status, next_at) "
            "WHERE status IN ('held', 'paging')",
        ),
    ),
    Migration(
        31,
        "the notifications still to send have a small index of their own: after a full "
        "ANALYZE (someone's by hand, or a connection's PRAGMA optimize without an "
        "analysis_limit) SQLite read that each status holds a third of the notifications and "
        "planned the notifier's look for what is due (every round) as a scan of every "
        "notification ever sent, 6.1 ms instead of 0.12 on 100,000 of them, growing with the "
        "history; the notifier's and the store's queries name exactly this index's condition "
        "(caregiver.outbox: status = 'pending'), so both engines can use it",
        (
            "CREATE INDEX notifications_pending ON notifications (status, next_at) "
            "WHERE status = 'pending'",
        ),
    ),
    Migration(
        32,
        "each treadmill's state says, typed, what kind of FAULT holds its belt (the state "
        "message's fault: stall, not_worn, sensor, contact, monitor, or '' for none), so the "
        "card says who must act: a stall clears by itself, a relay contact that disagrees may "
        "not stop the belt; states stored before, and a FAULT from a release before the field: "
        "'' (the card says the reason alone, as before)",
        ("ALTER TABLE devices ADD COLUMN state_fault TEXT NOT NULL DEFAULT ''",),
    ),
)
"""Every schema change in order; ``MIGRATIONS[i]`` takes a database from version i to i + 1."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The version this code reads and writes."""


def migrate(db: Database) -> SchemaUpgrade:
    """Bring the database to :data:`SCHEMA_VERSION` in one transaction, or raise
    :class:`SchemaError` and leave it untouched."""
    name = db.name
    db.lock_schema()  # two processes opening one database upgrade it once
    try:
        before = db.schema_version()
        if before > SCHEMA_VERSION:
            raise SchemaError(
                f"{name}: the caregiver database is at schema version {before}, newer than this "
                f"RetroGuard knows (up to {SCHEMA_VERSION}): a later release wrote it. Run that "
                "release, or restore a backup taken before the upgrade."
            )
        if before == 0:
            _check_adoptable(db, name)
        for migration in MIGRATIONS[before:]:
            _apply(db, migration, name)
        if before != SCHEMA_VERSION:
            db.set_schema_version(SCHEMA_VERSION)
        # In the try: a COMMIT can fail and leave the transaction open (SQLite, unless it
        # rolled back itself), the upgrade half-applied on this connection; rolled back, the
        # file is as it was and the commit's error is the one reported. (PostgreSQL ends it
        # itself.)
        db.commit()
    except BaseException:
        with contextlib.suppress(*db.errors):  # already ended: the first error is reported
            db.rollback()
        raise
    if before != SCHEMA_VERSION:
        log.info("%s: caregiver database schema %d -> %d", name, before, SCHEMA_VERSION)
    return SchemaUpgrade(before, SCHEMA_VERSION)


def _apply(db: Database, migration: Migration, name: str) -> None:
    try:
        for statement in migration.statements:
            db.execute(db.ddl(statement))
    except db.errors as exc:
        if passing(exc):  # the disk or the connection, not the upgrade: the store's StorageFault
            raise
        raise SchemaError(
            f"{name}: upgrading the caregiver database to schema version {migration.version} "
            f"({migration.why}) failed: {exc}. The database is unchanged."
        ) from exc


def _check_adoptable(db: Database, name: str) -> None:
    """Version 1 keeps an unversioned database's tables as they are: each one it has must have
    every column of version 1 (built afresh in memory to compare); missing ones are created."""
    reference = SqliteDatabase(":memory:")
    try:
        _apply(reference, MIGRATIONS[0], ":memory:")
        expected = reference.columns()
    finally:
        reference.close()
    found = db.columns()
    problems = [
        f"table {table} lacks {', '.join(sorted(expected[table] - columns))}"
        for table, columns in sorted(found.items())
        if table in expected and not expected[table] <= columns
    ]
    if problems:
        raise SchemaError(
            f"{name}: not a caregiver database this RetroGuard can adopt ({'; '.join(problems)}): "
            "an early development build or another program wrote it. Point [server] database "
            "at a new file."
        )
