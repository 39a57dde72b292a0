"""The repository on SQLite in a temporary data dir: the shared behaviours, then what only a
SQLite file (or a bad URL) can show."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from warroom.errors import BackendError, InputError
from warroom.server.repository import Repository, default_url
from warroom.server.repository_schema import MIGRATIONS, Migration, migrate

from .repository_behaviours import BEHAVIOURS, alert, opened


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite database in a data dir that does not exist yet."""
    return default_url(tmp_path / "data")


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
def test_behaviour(url: str, behaviour: Callable[[str], None]) -> None:
    behaviour(url)


def test_the_constructor_touches_nothing(tmp_path: Path) -> None:
    repo = Repository(default_url(tmp_path / "data"))
    assert not (tmp_path / "data").exists()
    with pytest.raises(RuntimeError, match="open"):
        repo.queue_depth()
    repo.open()
    assert (tmp_path / "data" / "warroom.db").is_file()
    repo.close()


def test_wal_mode_and_a_busy_timeout(url: str) -> None:
    with opened(url, busy_timeout_s=2.5) as repo:
        engine = repo._opened()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_join_needs_a_stored_notification(url: str) -> None:
    with opened(url) as repo, pytest.raises(BackendError, match="join or create"):
        repo.join_or_create(alert(), "never-recorded", 1.0)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("not a url", "is not a URL"),
        ("mysql://u:hunter2@db/warroom", "unsupported database 'mysql'"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "names no file"),
    ],
)
def test_a_bad_url_is_an_input_error(bad: str, words: str) -> None:
    with pytest.raises(InputError, match=words) as caught:
        Repository(bad)
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_postgresql_names_it_without_the_password() -> None:
    # port 1 on loopback: nothing listens, the refusal is immediate
    repo = Repository("postgresql://warroom:hunter2@127.0.0.1:1/warroom", busy_timeout_s=1)
    with pytest.raises(BackendError) as caught:
        repo.open()
    message = str(caught.value)
    assert message.startswith("database postgresql+psycopg://warroom:***@127.0.0.1:1/warroom:")
    assert "open failed" in message and "\n" not in message and "hunter2" not in message


def test_a_locked_sqlite_file_is_a_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "warroom.db"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE held (x)")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(BackendError, match="locked") as caught:
            Repository(f"sqlite:///{path}", busy_timeout_s=0.2).open()
        assert str(path) in str(caught.value)
    finally:
        holder.close()


def test_a_corrupt_sqlite_file_is_a_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "warroom.db"
    path.write_bytes(b"this is not a database " * 200)
    with pytest.raises(BackendError, match="not a database") as caught:
        Repository(f"sqlite:///{path}").open()
    assert str(path) in str(caught.value)


def test_a_data_dir_that_cannot_be_made_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot create its folder"):
        Repository(default_url(tmp_path / "file" / "data")).open()


def test_migration_steps_must_be_in_order(tmp_path: Path) -> None:
    shuffled = (Migration(2, "two", lambda conn: None), *MIGRATIONS)
    engine = create_engine(f"sqlite:///{tmp_path / 'warroom.db'}")
    try:
        with engine.begin() as conn, pytest.raises(ValueError, match="in order"):
            migrate(conn, "test", shuffled)
    finally:
        engine.dispose()


def test_a_failed_step_leaves_the_old_version(url: str) -> None:
    def broken(conn: object) -> None:
        raise RuntimeError("step 2 broke")

    with opened(url):
        pass
    with pytest.raises(RuntimeError, match="step 2 broke"):
        Repository(url, migrations=(*MIGRATIONS, Migration(2, "broken", broken))).open()
    engine = create_engine(Repository(url).url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar_one() == 1
    finally:
        engine.dispose()
