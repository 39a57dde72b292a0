"""What every Repository backend must do, as plain functions of a database URL.

tests/unit/server/test_repository.py runs them on SQLite, tests/integration/
test_repository_postgres.py on a real PostgreSQL: one body per behaviour, two databases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, func, select, text

from warroom.errors import InputError
from warroom.server.model import AlertRequest, Status
from warroom.server.repository import Repository
from warroom.server.repository_schema import MIGRATIONS, Migration, notification_links

THREADS = 8
JOIN_S = 60.0  # a bound on every thread of a race, far above what it takes
T = TypeVar("T")


@contextmanager
def opened(url: str, **options: Any) -> Iterator[Repository]:
    """A Repository on `url`, open for the block."""
    with Repository(url, **options) as repo:
        yield repo


def alert(key: str = "g1/fp1/t1", service: str | None = "checkout", **changes: Any) -> AlertRequest:
    """An AlertRequest with a ten-minute window."""
    values: dict[str, Any] = {"start": 1000.0, "end": 1600.0, "alert_time": 1500.0}
    values.update(changes)
    return AlertRequest(key=key, service=service, **values)


def new(repo: Repository, key: str, now: float, service: str | None = "checkout") -> str:
    """Create an investigation for `key` through a fresh notification; its id."""
    record, created = repo.join_or_create(alert(key, service), note(repo, now), now)
    assert created and record is not None
    return record.id


def note(repo: Repository, now: float) -> str:
    """A stored notification's id."""
    return repo.record_notification(b'{"version":"4"}', "application/json", now)


def links(url: str, investigation_id: str) -> int:
    """How many notifications are linked to an investigation, read beside the repository."""
    engine = create_engine(Repository(url).url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(
                notification_links.c.investigation_id == investigation_id
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def run_threads(target: Callable[[int], T]) -> list[T]:
    """Run target(0..THREADS-1) at once (a barrier lines them up); their results."""
    barrier = threading.Barrier(THREADS)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait(JOIN_S)
            results[index] = target(index)
        except BaseException as err:  # reported below, with the thread's failure
            errors.append(err)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_S)
    assert not any(t.is_alive() for t in threads), "a thread did not finish in time"
    assert not errors, errors
    return [results[i] for i in range(THREADS)]


# -- behaviours ------------------------------------------------------------------------------


def stores_notifications_as_received(url: str) -> None:
    """Bodies come back byte for byte, counted, and unprocessed until marked."""
    raw = b'\xff\x00{"not": "utf-8"}'
    with opened(url) as repo:
        first = repo.record_notification(raw, "application/json; charset=latin-1", 10.0)
        second = repo.record_notification(b"{}", "application/json", 11.0)
        assert first != second
        assert repo.notifications_count() == 2
        pending = repo.unprocessed_notifications()
        assert [(n.id, n.body, n.content_type, n.received_at) for n in pending] == [
            (first, raw, "application/json; charset=latin-1", 10.0),
            (second, b"{}", "application/json", 11.0),
        ]
        repo.mark_processed(first, 12.0)
        assert [n.id for n in repo.unprocessed_notifications()] == [second]


def repeats_join_the_investigation(url: str) -> None:
    """One investigation per key; each distinct delivery counts once and is linked."""
    with opened(url) as repo:
        n1, n2 = note(repo, 1.0), note(repo, 2.0)
        request = alert("g/fp/t", labels=(("alertname", "HighLatency"), ("team", "pay")))
        first, created = repo.join_or_create(request, n1, 1.0)
        again, created_again = repo.join_or_create(request, n2, 2.0)
        same, _ = repo.join_or_create(request, n2, 3.0)  # a delivery processed twice
        other, other_created = repo.join_or_create(alert("g/fp/t2"), n2, 2.0)
    assert first is not None and again is not None and same is not None and other is not None
    assert (created, created_again, other_created) == (True, False, True)
    assert again.id == first.id != other.id
    assert (first.notifications, again.notifications, same.notifications) == (1, 2, 2)
    assert first.status is Status.queued and first.request == request
    assert (first.created_at, again.updated_at) == (1.0, 2.0)
    assert links(url, first.id) == 2


def resolved_marks_without_creating(url: str) -> None:
    """A resolved alert marks its investigation; for an unknown key it creates nothing."""
    with opened(url) as repo:
        record, created = repo.join_or_create(alert("gone", resolved=True), note(repo, 1.0), 1.0)
        assert (record, created) == (None, False)
        assert repo.count() == 0
        iid = new(repo, "k", 2.0)
        marked, created = repo.join_or_create(alert("k", resolved=True), note(repo, 3.0), 3.0)
        assert marked is not None and not created
        assert (marked.id, marked.resolved, marked.status, marked.notifications) == (
            iid,
            True,
            Status.queued,
            2,
        )
        assert repo.queue_depth() == 1  # resolving does not take it off the queue


def claims_oldest_first(url: str) -> None:
    """Claims go by created_at, then by insertion; each one once; finished ones never."""
    with opened(url) as repo:
        late, early, tie_a, tie_b = (
            new(repo, k, t) for k, t in [("a", 30.0), ("b", 10.0), ("c", 20.0), ("d", 20.0)]
        )
        repo.finish(early, Status.done, "", None, None, None, None, 31.0)
        claimed = [repo.claim_next("w1", 40.0 + i) for i in range(5)]
    assert [c.id if c else None for c in claimed] == [tie_a, tie_b, late, None, None]
    first = claimed[0]
    assert first is not None and first.status is Status.running and first.updated_at == 40.0


def finishes_and_fails(url: str) -> None:
    """finish keeps the reports and verdict; fail keeps the reason; both are final."""
    with opened(url) as repo:
        done, failed = new(repo, "a", 1.0), new(repo, "b", 2.0)
        repo.finish(
            done, Status.inconclusive, "no culprit above 0.5", '{"r": 1}', "<html>", "db", 0.4, 5.0
        )
        repo.fail(failed, "prometheus: connection refused", 6.0)
        with pytest.raises(ValueError, match="final"):
            repo.finish(done, Status.running, "", None, None, None, None, 7.0)
        a, b = repo.get(done), repo.get(failed)
        assert repo.get("no-such-id") is None
        assert repo.queue_depth() == 0 and repo.claim_next("w", 8.0) is None
    assert a is not None and b is not None
    assert (a.status, a.reason, a.report_json, a.report_html, a.culprit, a.confidence) == (
        Status.inconclusive,
        "no culprit above 0.5",
        '{"r": 1}',
        "<html>",
        "db",
        0.4,
    )
    assert (a.updated_at, b.status, b.reason, b.updated_at) == (
        5.0,
        Status.failed,
        "prometheus: connection refused",
        6.0,
    )


def requeues_after_a_crash(url: str) -> None:
    """Running ones of a server that died go back to the queue of the next one, in order."""
    with opened(url) as repo:
        ids = [new(repo, k, t) for k, t in [("a", 1.0), ("b", 2.0), ("c", 3.0)]]
        kept = repo.claim_next("host1:10:w0", 4.0)
        other = repo.claim_next("host2:20:w0", 4.0)
        assert kept is not None and other is not None
        repo.set_cache_path(kept.id, "/data/cache/a.duckdb", 4.5)
        # the server dies here: nothing finishes, the repository is simply dropped
    with opened(url) as restarted:
        assert restarted.requeue_unfinished(5.0, worker_prefix="host1:") == 1
        still = restarted.get(other.id)
        assert still is not None and still.status is Status.running  # another server's
        assert restarted.requeue_unfinished(5.0) == 1
        again = [restarted.claim_next("host1:11:w0", 6.0) for _ in range(3)]
        assert [r.id if r else None for r in again] == ids
        assert again[0] is not None and again[0].cache_path == "/data/cache/a.duckdb"
        assert restarted.requeue_unfinished(7.0) == 3


def fails_what_keeps_killing_the_server(url: str) -> None:
    """An investigation started max_attempts times without finishing is failed, not re-queued."""
    with opened(url) as repo:
        iid = new(repo, "poison", 1.0)
        for attempt in range(3):
            assert repo.claim_next("w", 2.0 + attempt) is not None
            assert repo.requeue_unfinished(3.0 + attempt, max_attempts=3) == (
                1 if attempt < 2 else 0
            )
        record = repo.get(iid)
    assert record is not None and record.status is Status.failed
    assert "3 times" in record.reason


def lists_pages_and_filters(url: str) -> None:
    """Newest first; pages neither overlap nor skip; filters combine; counts agree."""
    with opened(url) as repo:
        ids = [new(repo, f"k{i}", float(i), "checkout" if i % 2 else "cart") for i in range(7)]
        repo.fail(ids[3], "x", 10.0)
        newest_first = list(reversed(ids))
        assert [r.id for r in repo.list()] == newest_first
        pages = [repo.list(limit=3, offset=o) for o in (0, 3, 6, 9)]
        assert [[r.id for r in p] for p in pages] == [
            newest_first[:3],
            newest_first[3:6],
            newest_first[6:],
            [],
        ]
        assert [r.id for r in repo.list(service="checkout")] == [ids[5], ids[3], ids[1]]
        assert [r.id for r in repo.list(status=Status.failed)] == [ids[3]]
        assert [r.id for r in repo.list(service="cart", status=Status.queued)] == [
            ids[6],
            ids[4],
            ids[2],
            ids[0],
        ]
        assert [r.id for r in repo.list(since=2.0, until=5.0)] == [ids[4], ids[3], ids[2]]
        assert repo.count() == 7 and repo.count(service="checkout") == 3
        assert repo.count(service="cart", since=1.0) == 3 and repo.count(service="nobody") == 0
        assert repo.queue_depth() == 6


def keeps_everything_across_reopening(url: str) -> None:
    """A second open of the same database sees what the first wrote (nothing lives in memory)."""
    with opened(url) as repo:
        iid = new(repo, "k", 1.0)
        repo.set_cache_path(iid, "/var/lib/warroom/cache/k.duckdb", 2.0)
        before = repo.get(iid)
    with opened(url) as again:
        assert again.get(iid) == before
        assert again.notifications_count() == 1
        assert before is not None and before.cache_path == "/var/lib/warroom/cache/k.duckdb"


def concurrent_claims_never_repeat(url: str) -> None:
    """8 threads draining one queue: every investigation claimed exactly once."""
    with opened(url) as repo:
        ids = {new(repo, f"k{i}", float(i)) for i in range(40)}

        def drain(index: int) -> list[str]:
            got = []
            while (record := repo.claim_next(f"w{index}", 100.0)) is not None:
                got.append(record.id)
            return got

        claimed = [i for got in run_threads(drain) for i in got]
        assert sorted(claimed) == sorted(ids)
        assert repo.queue_depth() == 0


def concurrent_joins_create_one(url: str) -> None:
    """8 threads delivering the same alert at once: one investigation, 8 notifications."""
    with opened(url) as repo:

        def deliver(index: int) -> tuple[str, bool]:
            nid = note(repo, float(index))
            record, created = repo.join_or_create(alert("storm"), nid, float(index))
            assert record is not None
            return record.id, created

        results = run_threads(deliver)
        assert len({r[0] for r in results}) == 1
        assert sum(bool(r[1]) for r in results) == 1
        record = repo.get(results[0][0])
        assert record is not None and record.notifications == THREADS
        assert links(url, record.id) == THREADS and repo.count() == 1

        def repeat(index: int) -> None:
            # resolved joins read before they write: on SQLite only a write lock taken at
            # BEGIN keeps the other threads' commits from failing them with "locked"
            for turn in range(5):
                nid = note(repo, 10.0 + turn)
                repo.join_or_create(alert("storm", resolved=bool(turn % 2)), nid, 10.0 + turn)

        run_threads(repeat)
        after = repo.get(record.id)
        assert after is not None and after.resolved and after.notifications == THREADS * 6


def two_repositories_race(url: str) -> None:
    """Two Repository objects on one database (as two servers): joins and claims stay exact."""
    with opened(url, pool_size=4) as one, opened(url, pool_size=4) as two:
        repos = (one, two)

        def deliver(index: int) -> bool:
            repo = repos[index % 2]
            nid = note(repo, 1.0)
            return repo.join_or_create(alert(f"k{index % 4}"), nid, 1.0)[1]

        assert sum(bool(c) for c in run_threads(deliver)) == 4

        def drain(index: int) -> list[str]:
            repo, got = repos[index % 2], []
            while (record := repo.claim_next(f"server{index % 2}:w{index}", 2.0)) is not None:
                got.append(record.id)
            return got

        claimed = [i for got in run_threads(drain) for i in got]
        assert len(claimed) == len(set(claimed)) == 4
        assert sum(r.notifications for r in one.list()) == THREADS


def _add_note_column(conn: Any) -> None:
    conn.execute(text("ALTER TABLE investigations ADD COLUMN note TEXT"))


VERSION_2 = MIGRATIONS + (Migration(2, "a note column (test only)", _add_note_column),)


def migrates_an_older_database(url: str) -> None:
    """A version-1 database gains version 2's step once, keeping its rows."""
    with opened(url) as repo:
        iid = new(repo, "k", 1.0)
    with opened(url, migrations=VERSION_2) as upgraded:
        assert upgraded.get(iid) is not None
    with opened(url, migrations=VERSION_2) as again:  # the step is not applied a second time
        assert again.count() == 1
    assert schema_version(url) == 2


def refuses_a_newer_database(url: str) -> None:
    """A database written by a newer warroom is refused, naming it; it is left unchanged."""
    with opened(url, migrations=VERSION_2):
        pass
    repo = Repository(url)
    with pytest.raises(InputError, match="newer") as caught:
        repo.open()
    assert repo.name in str(caught.value) and "version 2" in str(caught.value)
    assert schema_version(url) == 2


def schema_version(url: str) -> int:
    """The version recorded in the database."""
    engine = create_engine(Repository(url).url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT version FROM schema_version")).scalar_one())
    finally:
        engine.dispose()


BEHAVIOURS: tuple[Callable[[str], None], ...] = (
    stores_notifications_as_received,
    repeats_join_the_investigation,
    resolved_marks_without_creating,
    claims_oldest_first,
    finishes_and_fails,
    requeues_after_a_crash,
    fails_what_keeps_killing_the_server,
    lists_pages_and_filters,
    keeps_everything_across_reopening,
    concurrent_claims_never_repeat,
    concurrent_joins_create_one,
    two_repositories_race,
    migrates_an_older_database,
    refuses_a_newer_database,
)
