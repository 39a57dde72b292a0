"""The repository's behaviours against a real PostgreSQL 15 (initdb + pg_ctl on loopback), each
in a fresh database of one server started for this module."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import pytest

from integration.postgres import PostgresServer, postgres_server
from unit.server.repository_behaviours import BEHAVIOURS, alert
from warroom.errors import BackendError
from warroom.server.model import InvestigationRecord
from warroom.server.repository import Repository

_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the module, stopped and removed at its end."""
    with postgres_server() as running:
        yield running


@pytest.fixture
def url(server: PostgresServer) -> str:
    """A fresh database on it."""
    return server.create_database(f"warroom_test_{next(_names)}")


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
def test_behaviour(url: str, behaviour: Callable[[str], None]) -> None:
    behaviour(url)


def test_a_missing_database_names_it(server: PostgresServer) -> None:
    repo = Repository(server.url("no_such_database"))
    with pytest.raises(BackendError, match="no_such_database") as caught:
        repo.open()
    assert str(caught.value).startswith(
        f"database postgresql+psycopg://postgres@127.0.0.1:{server.port}/"
    )
    assert "\n" not in str(caught.value)


def test_claims_skip_a_row_another_server_holds(url: str) -> None:
    # SKIP LOCKED: while one server's transaction holds the oldest queued row, another's claim
    # takes the next one at once instead of waiting for it (run in a thread: a wait is bounded)
    with Repository(url) as repo:
        for i, key in enumerate("ab"):
            repo.join_or_create(alert(key), repo.record_notification(b"{}", "a/j", 1.0), float(i))
        oldest = "SELECT key FROM investigations ORDER BY created_at LIMIT 1 FOR UPDATE"
        with repo._opened().connect() as holder, holder.begin():
            assert holder.exec_driver_sql(oldest).scalar() == "a"
            claimed: list[InvestigationRecord | None] = []
            claimer = threading.Thread(target=lambda: claimed.append(repo.claim_next("s2", 2.0)))
            claimer.start()
            claimer.join(10.0)
            assert claimed and claimed[0] is not None and claimed[0].key == "b"
        claimer.join(10.0)
