"""The repository's tables, its migrator, the engine set-up for SQLite and PostgreSQL, and
the mapping between rows and the server's values.

    schema_version       (version)                       one row: the schema this database has
    notifications        (id, received_at, content_type, body, processed_at)
    investigations       (seq, id, key, key_hash, status, service, window, labels, ..., reports)
    notification_links   (notification_id, investigation_id)   which deliveries named which one

Migrations are a short ordered list applied at open, in one transaction, under a lock (a
PostgreSQL advisory lock; SQLite's write lock), so two servers starting together do not both
create the tables. A database whose version is newer than this code knows is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    Select,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.sql.elements import ColumnElement

from warroom.errors import InputError
from warroom.server.model import AlertRequest, InvestigationRecord, Status

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("content_type", String(200), nullable=False),
    Column("body", LargeBinary, nullable=False),
    # NULL until the server has turned it into investigations: a restart re-reads those
    Column("processed_at", Float, nullable=True),
)

investigations = Table(
    "investigations",
    metadata,
    # seq orders the queue when several share a created_at (an injected clock repeats)
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("key", Text, nullable=False),
    # the unique index is on a hash: a group key can be longer than a PostgreSQL btree row
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("service", Text, nullable=True),
    Column("symptom", Text, nullable=True),
    Column("window_start", Float, nullable=False),
    Column("window_end", Float, nullable=False),
    Column("alert_time", Float, nullable=False),
    Column("labels", Text, nullable=False),  # JSON list of [name, value] pairs
    Column("source", String(32), nullable=False),
    Column("resolved", Boolean, nullable=False),
    Column("notifications", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("worker", Text, nullable=True),
    Column("claimed_at", Float, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("report_json", Text, nullable=True),
    Column("report_html", Text, nullable=True),
    Column("culprit", Text, nullable=True),
    Column("confidence", Float, nullable=True),
    Column("cache_path", Text, nullable=True),  # the DuckDB fetch cache a re-run re-uses
)
Index("ix_investigations_queue", investigations.c.status, investigations.c.created_at)
Index("ix_investigations_created", investigations.c.created_at)
Index("ix_investigations_service", investigations.c.service, investigations.c.created_at)

notification_links = Table(
    "notification_links",
    metadata,
    Column("notification_id", ForeignKey("notifications.id"), primary_key=True),
    Column("investigation_id", ForeignKey("investigations.id"), primary_key=True),
)
Index("ix_links_investigation", notification_links.c.investigation_id)


@dataclass(frozen=True)
class Migration:
    """One step from `version - 1` to `version`; `apply` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_v1(conn: Connection) -> None:
    # The tables above are version 1. The first later step that alters one of them must copy
    # its version-1 shape into here, so an empty database still walks every step.
    metadata.create_all(conn, tables=[notifications, investigations, notification_links])


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "notifications, investigations, notification links", _create_v1),
)

_LOCK_ID = 0x57A5_2001  # the advisory lock two PostgreSQL servers take while migrating


def migrate(conn: Connection, name: str, steps: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the database to the last step's version inside `conn`'s transaction; its version."""
    if [step.version for step in steps] != list(range(1, len(steps) + 1)):
        raise ValueError("migration versions must be 1, 2, ... in order")
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
    if current > len(steps):
        raise InputError(
            f"database {name} has schema version {current}, newer than this warroom knows "
            f"({len(steps)}): it was written by a newer warroom; upgrade warroom to open it"
        )
    for step in steps[current:]:
        step.apply(conn)
    if current == 0:
        conn.execute(insert(schema_version).values(version=len(steps)))
    elif current < len(steps):
        conn.execute(update(schema_version).values(version=len(steps)))
    return len(steps)


def parse_url(url: str) -> URL:
    """The URL as SQLAlchemy reads it, restricted to a SQLite file or PostgreSQL via psycopg."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(
            f"database URL {redact(url)!r} is not a URL: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and driver == "pysqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise InputError(f"database URL {url!r} names no file: use sqlite:///PATH")
        return parsed
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        # psycopg 3 is what the serve extra installs; a bare postgresql:// means it too
        return parsed.set(drivername="postgresql+psycopg")
    raise InputError(
        f"database URL {redact(url)!r}: unsupported database {parsed.drivername!r}; "
        "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
    )


def redact(url: str) -> str:
    """`url` with any password replaced by ***, also when it does not parse."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def display_name(url: URL) -> str:
    """How messages name the database: the SQLite file, or the PostgreSQL URL without password."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def sqlite_file(url: URL) -> Path | None:
    """The SQLite database file, or None for PostgreSQL."""
    return Path(str(url.database)) if url.get_backend_name() == "sqlite" else None


def make_engine(url: URL, busy_timeout_s: float, pool_size: int) -> Engine:
    """An engine for `url`; it connects on first use."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_s, pool_size)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a restarted PostgreSQL leaves dead pooled connections
        connect_args={
            "connect_timeout": max(1, round(busy_timeout_s)),
            "application_name": "warroom",
        },
    )


def _sqlite_engine(url: URL, busy_timeout_s: float, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin() below decide how a transaction starts, not the driver.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a notification acknowledged to Alertmanager survives a power cut, not only a crash
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write takes the write lock up front: a deferred transaction that reads, then
        # writes, fails with SQLITE_BUSY at once when another wrote meanwhile (busy_timeout
        # cannot help there), while BEGIN IMMEDIATE waits its turn.
        write = conn.get_execution_options().get("warroom_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def key_hash(key: str) -> str:
    """The unique index's value for an incident key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_row(request: AlertRequest, now: float) -> dict[str, Any]:
    """The row of a new, queued investigation."""
    return {
        "id": uuid.uuid4().hex,
        "key": request.key,
        "key_hash": key_hash(request.key),
        "status": Status.queued.value,
        "service": request.service,
        "symptom": request.symptom,
        "window_start": request.start,
        "window_end": request.end,
        "alert_time": request.alert_time,
        "labels": json.dumps([list(pair) for pair in request.labels]),
        "source": request.source,
        "resolved": False,
        "notifications": 1,
        "created_at": now,
        "updated_at": now,
        "attempts": 0,
        "reason": "",
    }


def by_id(iid: str) -> Select[Any]:
    """The query for one investigation."""
    return select(investigations).where(investigations.c.id == iid)


def filters(
    service: str | None, status: Status | None, since: float | None, until: float | None
) -> list[ColumnElement[bool]]:
    """The WHERE terms of a listing: created_at in [since, until)."""
    found: list[ColumnElement[bool]] = []
    if service is not None:
        found.append(investigations.c.service == service)
    if status is not None:
        found.append(investigations.c.status == Status(status).value)
    if since is not None:
        found.append(investigations.c.created_at >= since)
    if until is not None:
        found.append(investigations.c.created_at < until)
    return found


def to_record(row: Row[Any]) -> InvestigationRecord:
    """An investigations row as the value the server passes."""
    request = AlertRequest(
        key=row.key,
        service=row.service,
        start=row.window_start,
        end=row.window_end,
        alert_time=row.alert_time,
        symptom=row.symptom,
        labels=tuple((str(k), str(v)) for k, v in json.loads(row.labels)),
        resolved=bool(row.resolved),
        source=row.source,
    )
    return InvestigationRecord(
        id=row.id,
        key=row.key,
        status=Status(row.status),
        request=request,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reason=row.reason,
        resolved=bool(row.resolved),
        notifications=row.notifications,
        report_json=row.report_json,
        report_html=row.report_html,
        culprit=row.culprit,
        confidence=row.confidence,
        cache_path=row.cache_path,
    )
