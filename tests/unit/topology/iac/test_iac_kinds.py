"""A kind declared in infrastructure code routes a hypothesis to the database / cache actor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from warroom.agents.actors import CaseFacts
from warroom.agents.domains import CacheActor, DatabaseActor, declared_kind, declared_kinds
from warroom.agents.tracing import in_current_context
from warroom.model import RootCause, TimeRange

WINDOW = TimeRange(1000.0, 1600.0)
FACTS = CaseFacts(
    findings=(),
    changes=(),
    symptom_service=None,
    symptom_metric=None,
    symptom_onset=None,
    metric_names=frozenset(),
    window=WINDOW,
)


def _h(service: str, fault_type: str) -> RootCause:
    return RootCause(service, "latency", fault_type, 10.0, 1100.0, (service,), 1.0)


def test_a_declared_database_is_examined_as_one_only_while_declared():
    pool = _h("orders", "pool")  # neither its name nor its (absent) metrics say database
    assert not DatabaseActor().relevant(pool, FACTS)
    with declared_kinds({"orders": "database", "sessions": "cache"}):
        assert DatabaseActor().relevant(pool, FACTS)
        assert CacheActor().relevant(_h("sessions", "cache"), FACTS)
        assert not CacheActor().relevant(_h("orders", "cache"), FACTS)
    assert not DatabaseActor().relevant(pool, FACTS)
    assert declared_kind("orders") is None


def test_a_declared_service_never_hides_what_the_name_says():
    with declared_kinds({"orders-db": "service"}):
        assert DatabaseActor().relevant(_h("orders-db", "pool"), FACTS)


def test_the_kinds_reach_the_actors_threads_through_the_executor_context():
    with declared_kinds({"orders": "database"}), ThreadPoolExecutor(1) as pool:
        inside = pool.submit(in_current_context(declared_kind, "orders")).result()
    assert inside == "database"
