"""The gym simulator: deterministic, each fault leaves its mark where it should, truth is right."""

from __future__ import annotations

import pytest

from warroom.gym.faults import FAULTS
from warroom.gym.simulator import Knobs, generate
from warroom.gym.topologies import build
from warroom.model import TimeRange

ALL = TimeRange(0, 2e9)


def _series(case, service: str, name: str):  # type: ignore[no-untyped-def]
    return case.store.metric_series(ALL, service=service, name=name)[0]


def test_same_seed_same_telemetry() -> None:
    a, b = generate("shop", "cpu-hog", 3), generate("shop", "cpu-hog", 3)
    assert a.truth == b.truth
    for table in ("metrics", "logs", "spans"):
        assert a.store.count(table) == b.store.count(table) > 0
    assert a.store.rows("SELECT sum(end_ts - start_ts) FROM spans") == b.store.rows(
        "SELECT sum(end_ts - start_ts) FROM spans"
    )


def test_cpu_hog_burns_cpu_on_the_culprit_only_after_onset() -> None:
    case = generate("shop", "cpu-hog", 1)
    cpu = _series(case, case.truth.service, "container_cpu_usage_percent")
    before = cpu.values[cpu.times < case.truth.onset]
    after = cpu.values[cpu.times > case.truth.onset + 20]
    assert before.mean() < 20 < after.mean() - 50


def test_network_delay_shows_on_the_call_edge_not_inside_the_callee() -> None:
    case = generate("shop", "network-delay", 1)
    target, onset = case.truth.service, case.truth.onset
    rows = case.store.rows(
        "SELECT avg((p.end_ts - p.start_ts) - (c.end_ts - c.start_ts)) FROM spans c "
        "JOIN spans p ON c.parent_id = p.span_id AND c.trace_id = p.trace_id "
        "WHERE c.service = ? AND c.start_ts > ?",
        [target, onset + 5],
    )
    assert rows[0][0] > 0.2  # ~250 ms on the wire per call into the culprit


def test_bad_deploy_logs_a_stack_trace_and_a_deploy_event() -> None:
    case = generate("shop", "bad-deploy", 2)
    target = case.truth.service
    errors = case.store.rows(
        "SELECT message FROM logs WHERE service = ? AND level = 'ERROR' "
        "AND message LIKE '%Exception%'",
        [target],
    )
    assert errors and "\n\tat " in errors[0][0] and ".java:" in errors[0][0]
    deploys = case.store.rows("SELECT kind FROM events WHERE service = ?", [target])
    assert ("deploy",) in deploys


def test_memory_leak_ends_in_oom_kills() -> None:
    case = generate("shop", "memory-leak", 1)
    memory = _series(case, case.truth.service, "container_memory_working_set_mib")
    assert memory.values.max() > 600
    kills = case.store.rows("SELECT count(*) FROM events WHERE kind = 'restart'")
    assert kills[0][0] >= 1


def test_no_fault_case_has_no_culprit_and_no_errors() -> None:
    case = generate("shop", "none", 1)
    assert case.truth.service is None and case.truth.path == ()
    assert case.store.rows("SELECT count(*) FROM spans WHERE error")[0][0] == 0


def test_truth_path_runs_from_culprit_to_entry_along_calls() -> None:
    case = generate("shop", "bad-deploy", 1)
    path = case.truth.path
    topology = build("shop")
    assert path[0] == case.truth.service and path[-1] == topology.entry
    edges = set(topology.edges())
    assert all(
        (callee_caller[1], callee_caller[0]) in edges
        for callee_caller in zip(path, path[1:], strict=False)
    )


def test_window_and_baseline_do_not_overlap_and_the_alert_follows_the_onset() -> None:
    case = generate("pipeline", "cpu-hog", 4)
    assert case.baseline.end <= case.incident.window.start
    assert case.truth.onset < case.incident.alert_time
    assert case.incident.window.contains(case.truth.onset)


def test_knobs_drop_traces_and_skew_the_log_clock() -> None:
    plain = generate("shop", "cpu-hog", 5)
    hard = generate("shop", "cpu-hog", 5, Knobs(drop_traces=0.5, clock_skew_s=3.0))
    services_with_spans = {r[0] for r in hard.store.rows("SELECT DISTINCT service FROM spans")}
    assert len(services_with_spans) < len(
        {r[0] for r in plain.store.rows("SELECT DISTINCT service FROM spans")}
    )
    first_plain = plain.store.rows("SELECT min(ts) FROM logs")[0][0]
    first_hard = hard.store.rows("SELECT min(ts) FROM logs")[0][0]
    assert first_hard == pytest.approx(first_plain + 3.0)


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known"):
        generate("nope", "cpu-hog", 1)
    with pytest.raises(ValueError, match="cpu-hog"):
        generate("shop", "nope", 1)
    with pytest.raises(ValueError, match="no service"):
        generate("pipeline", "cache-down", 1)


@pytest.mark.parametrize(
    "fault", [f for f in FAULTS if f not in ("cache-down", "queue-consumer-lag")]
)
def test_every_fault_generates_on_the_shared_db_topology(fault: str) -> None:
    case = generate("shared-db", fault, 1)
    assert case.store.count("spans") > 1000


def test_dns_failure_never_reaches_the_callee_only_its_clients_see_it() -> None:
    case = generate("shop", "dns-failure", 2)
    target, onset = case.truth.service, case.truth.onset
    served_after = case.store.rows(
        "SELECT count(*) FROM spans WHERE service = ? AND start_ts > ?", [target, onset + 5]
    )[0][0]
    failed_clients = case.store.rows(
        "SELECT count(*) FROM spans WHERE peer = ? AND error AND start_ts > ?", [target, onset]
    )[0][0]
    assert served_after == 0 and failed_clients > 20
    assert case.store.rows(
        "SELECT count(*) FROM logs WHERE message LIKE '%UnknownHostException: ' || ? || '%'",
        [target],
    )[0][0]


def test_a_third_party_has_no_telemetry_of_its_own() -> None:
    case = generate("shop", "third-party-outage", 1)
    assert case.truth.service == "payment-gateway"
    assert "payment-gateway" not in case.store.services()
    assert ("payment", "payment-gateway") in case.graph_edges
    errors = case.store.rows(
        "SELECT count(*) FROM spans WHERE peer = 'payment-gateway' AND error AND start_ts > ?",
        [case.truth.onset],
    )[0][0]
    assert errors > 5


def test_disk_fills_then_writes_fail() -> None:
    case = generate("shop", "disk-full", 1)
    disk = _series(case, case.truth.service, "container_filesystem_usage_percent")
    assert disk.values[disk.times < case.truth.onset].max() < 70
    assert disk.values[-1] == 100.0
    assert case.store.rows(
        "SELECT count(*) FROM logs WHERE service = ? AND message LIKE '%No space left%'",
        [case.truth.service],
    )[0][0]


def test_a_bad_config_push_comes_with_its_config_event() -> None:
    case = generate("shop", "bad-config-push", 1)
    events = case.store.events(ALL)
    assert [e.kind for e in events if e.service == case.truth.service] == ["config"]


def test_consumer_lag_grows_only_after_onset_on_the_stalled_consumer() -> None:
    case = generate("pipeline", "queue-consumer-lag", 1)
    lag = _series(case, case.truth.service, "kafka_consumer_records_lag_max")
    assert lag.values[lag.times < case.truth.onset].max() <= 3
    assert lag.values[-1] > 50
    # The broker delivers asynchronously: the entry does not wait for the consumers.
    entry_p90 = _series(case, "ingest-api", "http_server_latency_p90_ms")
    assert entry_p90.values[entry_p90.times > case.truth.onset].max() < 100


def test_an_alert_storm_adds_the_culprits_caller_and_an_unaffected_service() -> None:
    case = generate("shop", "db-pool-exhaustion", 1, Knobs(alert_storm=True))
    caller, flapping = case.incident.also_alerting
    assert caller == case.truth.path[1]
    assert flapping not in case.truth.path
    plain = generate("shop", "db-pool-exhaustion", 1)
    assert plain.incident.also_alerting == ()


def test_a_bad_config_push_also_breaks_calls_to_a_third_party() -> None:
    case = generate("pipeline", "bad-config-push", 700)  # the target's only callee is external
    assert case.truth.service == "geo-lookup"
    timeouts = case.store.rows(
        "SELECT count(*) FROM spans WHERE service = 'geo-lookup' AND peer = 'geoip-provider' "
        "AND error AND start_ts > ?",
        [case.truth.onset],
    )[0][0]
    assert timeouts > 20


def test_untraced_stores_leave_only_their_clients_spans_and_their_metrics() -> None:
    case = generate("shop", "db-pool-exhaustion", 3, Knobs(untraced_stores=True))
    everything = ALL
    stores = {s.name for s in build("shop", 3).services if s.kind in ("db", "cache")}
    spans, logs = case.store.spans(everything), case.store.logs(everything)
    assert stores and not {s.service for s in spans} & stores
    assert not {r.service for r in logs} & stores
    assert stores <= {s.peer for s in spans}  # their callers still name them
    assert stores <= set(case.store.services())  # and their metrics are there
