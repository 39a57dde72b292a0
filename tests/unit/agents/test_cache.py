"""The content-addressed cache: hits, copy on write, and keys that follow the data."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from warroom.agents import Agent, AgentCache, AgentContext, Failure, NoData, Tracer, call
from warroom.agents.cache import cache_key
from warroom.errors import BackendError, InputError
from warroom.telemetry.store import TelemetryStore

from .helpers import Double, Flaky, Listing, Number, Numbers


def _store(*values: float) -> TelemetryStore:
    store = TelemetryStore()
    n = len(values)
    store.insert_columns(
        "metrics",
        {"service": ["api"] * n, "name": ["cpu"] * n, "ts": list(range(n)), "value": list(values)},
    )
    return store


def test_a_second_call_with_the_same_input_is_a_hit() -> None:
    agent, cache = Double(), AgentCache()
    ctx = AgentContext(_store(1, 2), cache=cache, tracer=Tracer())
    assert call(agent, {"value": 2}, ctx) == call(agent, {"value": 2.0}, ctx) == Number(value=4)
    assert (agent.runs, cache.hits, cache.misses) == (1, 1, 1)
    assert call(agent, {"value": 3}, ctx) == Number(value=6)
    assert agent.runs == 2
    spans = ctx.tracer.finished() if ctx.tracer else []
    assert [s.attribute("warroom.agent.cache_hit") for s in spans] == [False, True, False]
    assert [s.attribute("warroom.agent.attempts") for s in spans] == [1, 0, 1]


def test_callers_cannot_change_what_the_next_caller_gets() -> None:
    agent = Listing()
    ctx = AgentContext(cache=AgentCache())
    first = call(agent, {"value": 1}, ctx)
    assert isinstance(first, Numbers)
    first.values.append(99.0)  # frozen model, but a list inside is still mutable
    second = call(agent, {"value": 1}, ctx)
    assert isinstance(second, Numbers)
    assert second.values == [1.0, 2.0]
    second.values.clear()
    assert call(agent, {"value": 1}, ctx) == Numbers(values=[1.0, 2.0])
    assert agent.runs == 1


def test_the_input_is_copied_before_the_agent_sees_it() -> None:
    class Grabby(Agent[Numbers, Numbers]):
        name, version = "grabby", "1"
        input_model, output_model = Numbers, Numbers

        def run(self, input: Numbers, ctx: AgentContext) -> Numbers:
            input.values.append(-1.0)  # a misbehaving agent mutates its input
            return input

    mine = Numbers(values=[1.0])
    call(Grabby(), mine, AgentContext())
    assert mine.values == [1.0]


def test_new_data_in_a_table_the_agent_reads_invalidates() -> None:
    store, agent, cache = _store(1, 2), Double(), AgentCache()
    ctx = AgentContext(store, cache=cache)
    call(agent, {"value": 1}, ctx)
    store.insert_columns("logs", _log_row())  # Double reads metrics only: still a hit
    call(agent, {"value": 1}, ctx)
    assert agent.runs == 1
    store.insert_columns("metrics", {"service": ["api"], "name": ["cpu"], "ts": [9], "value": [3]})
    call(agent, {"value": 1}, ctx)
    assert agent.runs == 2


def test_fingerprints_follow_content_not_identity() -> None:
    a, b, c = (AgentContext(s) for s in (_store(1, 2), _store(1, 2), _store(1, 5)))
    assert a.fingerprint({"metrics"}) == b.fingerprint({"metrics"})
    assert a.fingerprint({"metrics"}) != c.fingerprint({"metrics"})
    assert a.fingerprint({"logs"}) == c.fingerprint({"logs"})  # both empty
    salted = AgentContext(_store(1, 2), salt="config-v2")
    assert salted.fingerprint({"metrics"}) != a.fingerprint({"metrics"})
    assert AgentContext().fingerprint({"metrics"}) != a.fingerprint({"metrics"})


def test_a_cache_shared_across_stores_serves_only_matching_data() -> None:
    agent, cache = Double(), AgentCache()
    call(agent, {"value": 1}, AgentContext(_store(1, 2), cache=cache))
    call(agent, {"value": 1}, AgentContext(_store(1, 3), cache=cache))
    assert agent.runs == 2
    call(agent, {"value": 1}, AgentContext(_store(1, 2), cache=cache))
    assert agent.runs == 2


def test_version_name_input_and_fingerprint_all_change_the_key() -> None:
    base = cache_key("a", "1", '{"x":1}', "f")
    others = [
        cache_key("b", "1", '{"x":1}', "f"),
        cache_key("a", "2", '{"x":1}', "f"),
        cache_key("a", "1", '{"x":2}', "f"),
        cache_key("a", "1", '{"x":1}', "g"),
        cache_key("a1", "", '{"x":1}', "f"),  # no ambiguity from joining the parts
    ]
    assert len({base, *others}) == 6


def test_no_data_is_cached_but_transient_failures_are_not() -> None:
    ctx = AgentContext(cache=AgentCache())
    empty = Flaky(10, NoData("no metrics"))
    for _ in range(2):
        result = call(empty, {"value": 1}, ctx)
        assert isinstance(result, Failure) and result.kind == "no_data"
    assert empty.runs == 1
    assert isinstance(result, Failure) and result.attempts == 0  # served from the cache
    broken = Flaky(10, BackendError("down"))
    call(broken, {"value": 2}, ctx)  # value 1 is the no_data answer above: same name, key
    call(broken, {"value": 2}, ctx)
    assert broken.runs == 6


def test_the_disk_cache_survives_the_process(tmp_path: Path) -> None:
    store = _store(1, 2)
    call(Listing(), {"value": 1}, AgentContext(store, cache=AgentCache(directory=tmp_path)))
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1
    fresh = Listing()  # a new process: empty memory, same directory
    ctx = AgentContext(store, cache=AgentCache(directory=tmp_path))
    assert call(fresh, {"value": 1}, ctx) == Numbers(values=[1.0, 2.0])
    assert fresh.runs == 0
    files[0].write_text("{not json")
    again = Listing()
    call(again, {"value": 1}, AgentContext(store, cache=AgentCache(directory=tmp_path)))
    assert again.runs == 1  # an unreadable file is a miss


def test_an_unwritable_directory_costs_only_the_disk_copy(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = AgentCache(directory=blocker / "cache")  # cannot mkdir under a file
    assert call(Listing(), {"value": 1}, AgentContext(cache=cache)) == Numbers(values=[1.0, 2.0])
    assert cache.write_errors == 1 and len(cache) == 1


def test_the_memory_cache_evicts_the_least_recently_used() -> None:
    agent, cache = Double(), AgentCache(max_entries=2)
    ctx = AgentContext(cache=cache)
    for value in (1, 2, 1, 3):  # 1 is used again, so 2 is the one evicted
        call(agent, {"value": value}, ctx)
    runs = agent.runs
    call(agent, {"value": 1}, ctx)
    assert agent.runs == runs
    call(agent, {"value": 2}, ctx)
    assert agent.runs == runs + 1


class _Slow(Agent[Number, Number]):
    name, version = "slow", "1"
    input_model, output_model = Number, Number

    def __init__(self) -> None:
        self.runs = 0

    def run(self, input: Number, ctx: AgentContext) -> Number:
        self.runs += 1
        time.sleep(0.2)
        return input


def test_concurrent_identical_calls_compute_once() -> None:
    agent, ctx = _Slow(), AgentContext(cache=AgentCache())
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(call(agent, {"value": 1}, ctx)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert agent.runs == 1
    assert results == [Number(value=1)] * 4


def test_agents_cannot_write_through_the_store_view() -> None:
    ctx = AgentContext(_store(1))
    assert ctx.store is not None
    for sql in ("DELETE FROM metrics", "SELECT 1; DROP TABLE metrics", "insert into logs"):
        with pytest.raises(InputError, match="only read"):
            ctx.store.query(sql)
    assert ctx.store.query("SELECT count(*) FROM metrics") == [(1,)]


def _log_row() -> dict[str, list[object]]:
    return {
        "ts": [1.0],
        "service": ["api"],
        "pod": ["api-0"],
        "level": ["INFO"],
        "message": ["hello"],
        "trace_id": [""],
        "span_id": [""],
    }
