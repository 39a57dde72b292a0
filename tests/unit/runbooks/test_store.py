"""RunbookStore: Markdown that round-trips, clear errors for broken files, similar() ranking."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.model import Incident, TimeRange
from warroom.runbooks import Runbook, RunbookStore, similarity
from warroom.runbooks.markdown import from_markdown, to_markdown

from .conftest import recorded_runbooks

RUNBOOKS = recorded_runbooks()
POOL = RUNBOOKS["shop/db-pool-exhaustion/1"]
SHOP = (
    *("frontend", "checkout", "cart", "catalog", "orders-db", "redis-cart", "shipping"),
    *("email", "currency", "payment", "payment-gateway", "ad", "recommendation"),
)


@pytest.fixture
def book(tmp_path: Path) -> RunbookStore:
    return RunbookStore(tmp_path / "runbooks")


@pytest.mark.parametrize("key", sorted(RUNBOOKS))
def test_markdown_round_trips(key: str) -> None:
    runbook = RUNBOOKS[key]
    assert from_markdown(to_markdown(runbook), "x.md") == runbook


def test_save_load_list(book: RunbookStore) -> None:
    assert book.list() == []  # no folder yet: nothing stored, nothing created
    assert not book.root.exists()
    paths = [book.save(r) for r in RUNBOOKS.values()]
    assert all(p.suffix == ".md" and p.parent == book.root for p in paths)
    assert book.load(POOL.id) == POOL
    assert book.load(POOL.id[:12]) == POOL  # a unique prefix is enough
    assert sorted(r.id for r in book.list()) == sorted(r.id for r in RUNBOOKS.values())
    assert book.save(POOL) == book.path(POOL.id)  # saving again overwrites
    assert len(list(book.root.glob("*.md"))) == len(RUNBOOKS)
    assert not list(book.root.glob(".*"))  # no scratch files left


def test_the_markdown_is_for_people(book: RunbookStore) -> None:
    text = book.save(POOL).read_text()
    assert "# orders-db: connection pool exhausted behind frontend errors" in text
    assert "### orders-db db_pool_connections_in_use up" in text
    assert '```warroom-dsl\nmax(metric("orders-db", "db_pool_connections_in_use"))' in text
    assert "## Remediation\n\n1. See who holds the connections on orders-db" in text


def test_a_hand_edit_of_a_check_is_what_loads(book: RunbookStore) -> None:
    path = book.save(POOL)
    text = path.read_text().replace("> 5 * median", "> 3 * median", 1)
    text = text.replace("# orders-db: connection pool", "# orders-db: pool", 1)
    text += "   continued on an indented line\n"
    path.write_text(text)
    loaded = book.load(POOL.id)
    assert "> 3 * median" in loaded.checks[0].expression
    assert loaded.title.startswith("orders-db: pool exhausted")
    assert loaded.remediation[-1].endswith("max_connections). continued on an indented line")


def test_unknown_and_ambiguous_ids(book: RunbookStore) -> None:
    with pytest.raises(InputError, match="no runbooks in"):
        book.load("orders-db")
    book.save(POOL)
    book.save(RUNBOOKS["shop/disk-full/1"])
    with pytest.raises(InputError, match="ambiguous"):
        book.load("orders-db-")
    with pytest.raises(InputError, match=f"did you mean {POOL.id}"):
        book.load(POOL.id.replace("pool", "poll"))


def _break(text: str) -> list[tuple[str, str]]:
    """(broken text, what the error must say)."""
    bad_dsl = text.replace("> 5 * median", "> 5 * * median", 1)
    return [
        ("# just a title\n", "front matter"),
        (text.replace("---\n\n#", "\n\n#", 1), "no closing '---'"),
        (text.replace('"id"', "id", 1), "not JSON"),
        (text.replace('"warroom-runbook/1"', '"other/9"', 1), "format"),
        (bad_dsl, "check 'orders-db db_pool_connections_in_use up': dsl: unexpected"),
        (text.replace("## Checks", "## Tests", 1), "no '## Checks' section"),
        (text.rsplit("```", 1)[0].replace("## Remediation", ""), "is not closed"),
        (text.replace('"pool"', "3", 1), "signature.fault_type"),
        (text.replace(POOL.id, "Not An Id", 1), "id: String should match"),
        (text.replace("### ", "", 1), "has no '### name'"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_a_malformed_file_is_an_input_error_naming_it(book: RunbookStore, case: int) -> None:
    path = book.save(POOL)
    broken, words = _break(path.read_text())[case]
    path.write_text(broken)
    with pytest.raises(InputError) as caught:
        book.load(POOL.id)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert words in message
    assert "\n" not in message


def test_broken_files_are_skipped_where_one_must_not_stop_the_rest(book: RunbookStore) -> None:
    book.save(POOL)
    (book.root / "junk.md").write_text("not a runbook\n")
    (book.root / "bad-bytes.md").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="bad-bytes.md:1: not UTF-8"):
        book.list()
    runbooks, problems = book.load_all()
    assert [r.id for r in runbooks] == [POOL.id]
    assert len(problems) == 2 and any("bad-bytes.md:1: not UTF-8" in p for p in problems)
    incident = Incident("new", TimeRange(0, 600), 300, "frontend")
    assert [r.id for r, _ in book.similar(incident)] == [POOL.id]


def _incident(symptom: str | None, metric: str | None = None) -> Incident:
    return Incident("new-1", TimeRange(0, 600), 300, symptom, metric)


def _ranked(
    book: RunbookStore, incident: Incident, services: Iterable[str] | None = None
) -> list[tuple[Runbook, float]]:
    return book.similar(incident, services, limit=50)


def test_similar_ranks_the_same_alert_first(book: RunbookStore) -> None:
    for runbook in RUNBOOKS.values():
        book.save(runbook)
    ranked = _ranked(book, _incident("frontend"), services=SHOP)
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(r.signature.symptom_service == "frontend" for r, _ in ranked[:5])
    # The pipeline's runbook names services this system does not have.
    assert all(r.signature.fault_type != "queue" for r, _ in ranked)
    pipeline = _ranked(book, _incident("ingest-api"), services=("ingest-api", "broker"))
    assert pipeline[0][0].signature.culprit_service == "worker-index"


def test_similar_prefers_the_same_metric_family(book: RunbookStore) -> None:
    for key in ("shop/db-pool-exhaustion/1", "shop/network-delay/1", "shop/cpu-hog/1"):
        book.save(RUNBOOKS[key])
    errors = _ranked(book, _incident("frontend", "http_server_error_ratio"))
    assert errors[0][0].signature.symptom_family == "errors"
    latency = _ranked(book, _incident("frontend", "http_server_latency_p90_ms"))
    assert latency[0][0].signature.symptom_family == "latency"


def test_a_neighbour_of_the_alert_scores_below_the_alert_itself() -> None:
    sig = POOL.signature
    same = similarity(sig, _incident("frontend"))
    on_path = similarity(sig, _incident("checkout"))
    next_door = similarity(sig, _incident("catalog"), edges=[("catalog", "orders-db")])
    behind_symptom = similarity(sig, _incident("ad"), edges=[("frontend", "ad")])
    stranger = similarity(sig, _incident("ad"), edges=[("recommendation", "ad")])
    assert same > on_path == next_door == behind_symptom > stranger
    assert stranger == similarity(sig, _incident(None))
    absent = similarity(sig, _incident("frontend"), services=frozenset({"frontend"}))
    assert absent < 0.25 * same + 0.1
