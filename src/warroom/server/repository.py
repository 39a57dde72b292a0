"""Where `warroom serve` keeps what it must not lose: every webhook delivery as received, one
investigation per incident key with its state and reports, and which delivery named which.

    repo = Repository(default_url(data_dir))      # or "postgresql+psycopg://warroom@db/warroom"
    repo.open()                                    # connects, migrates
    nid = repo.record_notification(body, "application/json", now)   # committed before the 2xx
    record, created = repo.join_or_create(request, nid, now)
    record = repo.claim_next("host:1234:worker-0", now)             # a worker's next one

SQLite (a file under the data dir, WAL, busy timeout) is the embedded default; PostgreSQL is the
same code by URL. Races are settled by the database, not by locks in this process: the unique
key hash with INSERT ... ON CONFLICT DO NOTHING for joins, one UPDATE ... WHERE seq = (SELECT ...
FOR UPDATE SKIP LOCKED) for claims (on SQLite the write lock, taken by BEGIN IMMEDIATE, makes
the same statement atomic), so two server processes on one PostgreSQL never run one twice.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from warroom.errors import BackendError, InputError
from warroom.server.model import (
    FINAL,
    AlertRequest,
    InvestigationRecord,
    Status,
    StoredNotification,
)
from warroom.server.repository_schema import (
    MIGRATIONS,
    Migration,
    by_id,
    display_name,
    filters,
    investigations,
    key_hash,
    make_engine,
    migrate,
    new_row,
    notification_links,
    notifications,
    parse_url,
    sqlite_file,
    to_record,
)

DB_FILE = "warroom.db"
MAX_ATTEMPTS = 3  # a run the server died in this often is failed, not re-queued forever


def default_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the server's data dir."""
    return f"sqlite:///{Path(data_dir).resolve() / DB_FILE}"


class Repository:
    """Notifications and investigations in SQLite or PostgreSQL; safe to share across threads."""

    def __init__(
        self,
        url: str,
        busy_timeout_s: float = 5.0,
        pool_size: int = 8,
        migrations: tuple[Migration, ...] = MIGRATIONS,
    ) -> None:
        self.url = parse_url(url)  # parsing only: a bad URL fails here, nothing is connected
        self.name = display_name(self.url)
        self._busy_timeout_s, self._pool_size = busy_timeout_s, pool_size
        self._migrations = migrations
        self._engine: Engine | None = None

    def open(self) -> Repository:
        """Connect and migrate; the repository itself, so `Repository(url).open()` reads well."""
        path = sqlite_file(self.url)
        if path is not None:
            _make_parent(path, self.name)
        engine = make_engine(self.url, self._busy_timeout_s, self._pool_size)
        try:
            with self._guard("open"), _transaction(engine, write=True) as conn:
                migrate(conn, self.name, self._migrations)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return self

    def close(self) -> None:
        """Close every pooled connection."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Repository:
        return self.open() if self._engine is None else self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- notifications ---------------------------------------------------------------------

    def record_notification(self, raw: bytes, content_type: str, received_at: float) -> str:
        """Persist a webhook body as received (committed on return); its id."""
        nid = uuid.uuid4().hex
        row = {"id": nid, "received_at": received_at, "content_type": content_type, "body": raw}
        with self._write("record a notification") as conn:
            conn.execute(notifications.insert().values(**row))
        return nid

    def mark_processed(self, notification_id: str, now: float) -> None:
        """Note that a notification's investigations are joined or created."""
        with self._write("mark a notification processed") as conn:
            conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(processed_at=now)
            )

    def unprocessed_notifications(self) -> builtins.list[StoredNotification]:
        """Notifications persisted but never processed (the server died between), oldest first."""
        query = (
            select(notifications)
            .where(notifications.c.processed_at.is_(None))
            .order_by(notifications.c.received_at, notifications.c.id)
        )
        with self._read("read unprocessed notifications") as conn:
            rows = conn.execute(query).all()
        return [
            StoredNotification(r.id, bytes(r.body), r.content_type, r.received_at) for r in rows
        ]

    def notifications_count(self) -> int:
        """How many webhook deliveries are stored."""
        with self._read("count notifications") as conn:
            return int(conn.execute(select(func.count()).select_from(notifications)).scalar_one())

    # -- investigations --------------------------------------------------------------------

    def join_or_create(
        self, request: AlertRequest, notification_id: str, now: float
    ) -> tuple[InvestigationRecord | None, bool]:
        """The investigation for `request.key`, created if new (True); a repeat joins it.

        A resolved request marks an existing one resolved and never creates one: for a key
        nobody investigated the answer is (None, False). Delivering the same notification
        twice for one key counts once."""
        digest = key_hash(request.key)
        with self._write("join or create an investigation") as conn:
            created = not request.resolved and self._insert_new(conn, request, now)
            found = conn.execute(
                select(investigations.c.id).where(investigations.c.key_hash == digest)
            ).scalar()
            if found is None:
                return None, False
            linked = self._link(conn, notification_id, found)
            if not created:
                self._join(conn, found, linked, request.resolved, now)
            row = conn.execute(by_id(found)).one()
        return to_record(row), created

    def _insert_new(self, conn: Connection, request: AlertRequest, now: float) -> bool:
        values = new_row(request, now)
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(investigations).values(**values)
        # ON CONFLICT: a concurrent insert of the same key (another thread or server) makes
        # this one do nothing instead of failing; the caller then joins the winner's row.
        statement = statement.on_conflict_do_nothing(index_elements=["key_hash"])
        # RETURNING, not rowcount: psycopg's rowcount for a conflict-skipped insert is unreliable
        return conn.execute(statement.returning(investigations.c.seq)).first() is not None

    def _link(self, conn: Connection, notification_id: str, investigation_id: str) -> bool:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(notification_links).values(
            notification_id=notification_id, investigation_id=investigation_id
        )
        statement = statement.on_conflict_do_nothing().returning(
            notification_links.c.investigation_id
        )
        return conn.execute(statement).first() is not None

    def _join(self, conn: Connection, iid: str, linked: bool, resolved: bool, now: float) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if linked:  # the count is of distinct deliveries; the increment is done by the database
            values["notifications"] = investigations.c.notifications + 1
        if resolved:
            values["resolved"] = True
        conn.execute(update(investigations).where(investigations.c.id == iid).values(**values))

    def claim_next(self, worker: str, now: float) -> InvestigationRecord | None:
        """Move the oldest queued investigation to running for `worker`; None when none waits."""
        oldest = (
            select(investigations.c.seq)
            .where(investigations.c.status == Status.queued.value)
            .order_by(investigations.c.created_at, investigations.c.seq)
            .limit(1)
            # PostgreSQL: a row another claimer has locked is skipped, not waited for; SQLite
            # renders no FOR UPDATE, its write lock already serialises the whole statement.
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(investigations)
            .where(investigations.c.seq == oldest)
            .where(investigations.c.status == Status.queued.value)
            .values(
                status=Status.running.value,
                worker=worker,
                claimed_at=now,
                updated_at=now,
                attempts=investigations.c.attempts + 1,
            )
            .returning(*investigations.c)
        )
        with self._write("claim an investigation") as conn:
            row = conn.execute(claim).first()
        return None if row is None else to_record(row)

    def finish(
        self,
        id: str,  # noqa: A002 (the record's own name)
        status: Status,
        reason: str,
        report_json: str | None,
        report_html: str | None,
        culprit: str | None,
        confidence: float | None,
        now: float,
    ) -> None:
        """Store a finished investigation's final status and reports."""
        if status not in FINAL:
            raise ValueError(f"finish needs a final status, not {status.value!r}")
        values = {
            "status": status.value,
            "reason": reason,
            "report_json": report_json,
            "report_html": report_html,
            "culprit": culprit,
            "confidence": confidence,
            "updated_at": now,
        }
        self._update(id, values, "finish an investigation")

    def fail(self, id: str, reason: str, now: float) -> None:  # noqa: A002
        """Mark an investigation failed, saying why."""
        self._update(
            id, {"status": Status.failed.value, "reason": reason, "updated_at": now}, "fail"
        )

    def set_cache_path(self, id: str, path: str, now: float) -> None:  # noqa: A002
        """Remember the DuckDB fetch cache an investigation uses, so a re-run reads from it."""
        self._update(id, {"cache_path": path, "updated_at": now}, "set the cache path")

    def _update(self, iid: str, values: dict[str, Any], action: str) -> None:
        with self._write(action) as conn:
            conn.execute(update(investigations).where(investigations.c.id == iid).values(**values))

    def requeue_unfinished(
        self, now: float, worker_prefix: str = "", max_attempts: int = MAX_ATTEMPTS
    ) -> int:
        """At start-up: running investigations (the server died during them) go back to queued.

        `worker_prefix` limits it to this server's workers when several servers share one
        PostgreSQL; one that has been started `max_attempts` times is failed instead, so an
        investigation that kills the server does not do so forever. The number re-queued."""
        running = (investigations.c.status == Status.running.value) & (
            investigations.c.worker.startswith(worker_prefix, autoescape=True)
        )
        tried = investigations.c.attempts >= max_attempts
        reason = f"the server stopped during it {max_attempts} times"
        with self._write("requeue unfinished investigations") as conn:
            conn.execute(
                update(investigations)
                .where(running & tried)
                .values(status=Status.failed.value, reason=reason, updated_at=now)
            )
            requeued = conn.execute(
                update(investigations)
                .where(running)
                .values(status=Status.queued.value, worker=None, claimed_at=None, updated_at=now)
            )
        return int(requeued.rowcount)

    # -- reading ---------------------------------------------------------------------------

    def get(self, id: str) -> InvestigationRecord | None:  # noqa: A002
        """One investigation, or None."""
        with self._read("read an investigation") as conn:
            row = conn.execute(by_id(id)).first()
        return None if row is None else to_record(row)

    def list(
        self,
        service: str | None = None,
        status: Status | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[InvestigationRecord]:
        """Investigations created in [since, until), newest first, one page of them."""
        query = (
            select(investigations)
            .where(*filters(service, status, since, until))
            .order_by(investigations.c.created_at.desc(), investigations.c.seq.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._read("list investigations") as conn:
            return [to_record(row) for row in conn.execute(query)]

    def count(
        self,
        service: str | None = None,
        status: Status | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """How many investigations `list` would page through with these filters."""
        query = (
            select(func.count())
            .select_from(investigations)
            .where(*filters(service, status, since, until))
        )
        with self._read("count investigations") as conn:
            return int(conn.execute(query).scalar_one())

    def queue_depth(self) -> int:
        """How many investigations wait for a worker."""
        return self.count(status=Status.queued)

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        with self._guard(action), _transaction(self._opened(), write=True) as conn:
            yield conn

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        with self._guard(action), _transaction(self._opened(), write=False) as conn:
            yield conn

    def _opened(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Repository.open() was not called")
        return self._engine

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """SQLAlchemy's errors as one line naming the database, never its password."""
        try:
            yield
        except SQLAlchemyError as err:
            raise BackendError(f"database {self.name}: {action} failed: {self._why(err)}") from err

    def _why(self, err: SQLAlchemyError) -> str:
        cause = getattr(err, "orig", None) or err
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        why = lines[0] if lines else type(cause).__name__
        password = self.url.password
        return why.replace(str(password), "***") if password else why


@contextmanager
def _transaction(engine: Engine, write: bool) -> Iterator[Connection]:
    with engine.connect() as conn:
        # read by the SQLite begin hook: writes take the write lock at BEGIN
        conn.execution_options(warroom_write=write)
        with conn.begin():
            yield conn


def _make_parent(path: Path, name: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"database {name}: cannot create its folder: {err.strerror}") from None
