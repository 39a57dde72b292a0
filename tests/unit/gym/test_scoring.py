"""Scoring gym cases: rank, fault type, path, false alarms, and the totals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from warroom.gym.case import GymCase, GymTruth
from warroom.gym.scoring import CaseScore, failed_score, same_route, score_case, summarize
from warroom.model import Incident, Report, RootCause, TimeRange
from warroom.telemetry.store import TelemetryStore

WINDOW = TimeRange(1000.0, 1600.0)
INCIDENT = Incident("case", WINDOW, 1300.0, symptom_service="frontend")


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    s = TelemetryStore()
    yield s
    s.close()


def _case(store: TelemetryStore, truth: GymTruth, fault: str = "cpu-hog") -> GymCase:
    return GymCase(
        id=f"shop/{fault}/0",
        topology="shop",
        fault=fault,
        seed=0,
        incident=INCIDENT,
        baseline=TimeRange(0.0, 900.0),
        truth=truth,
        store=store,
    )


def _candidate(service: str, fault_type: str = "cpu", path: tuple[str, ...] = ()) -> RootCause:
    return RootCause(service, "cpu_percent", fault_type, 10.0, 1200.0, path or (service,), 1.0)


def _report(*candidates: RootCause, confidence: float = 0.6) -> Report:
    return Report(INCIDENT, tuple(candidates), confidence)


CPU = GymTruth("checkout", "cpu-hog", "cpu", 1200.0, ("checkout", "frontend"))
NONE = GymTruth(None, "none", "none", 1200.0, ())


def test_top1_hit_with_right_type_and_path(store: TelemetryStore) -> None:
    report = _report(_candidate("checkout", "cpu", ("checkout", "frontend")), _candidate("cart"))
    score = score_case(_case(store, CPU), report, 1.23456)
    assert score.rank == 1
    assert score.fault_type_ok and score.path_ok
    assert score.false_alarm is None
    assert score.top[0] == ("checkout", "cpu_percent", "cpu")
    assert score.seconds == 1.235


def test_lower_rank_counts_distinct_services(store: TelemetryStore) -> None:
    report = _report(_candidate("cart"), _candidate("cart"), _candidate("checkout"))
    score = score_case(_case(store, CPU), report, 0.1)
    assert score.rank == 2
    # Fault type and path are judged on the top-1 candidate, which is not the culprit.
    assert not score.fault_type_ok
    assert not score.path_ok


def test_right_culprit_wrong_type_or_path(store: TelemetryStore) -> None:
    report = _report(_candidate("checkout", "memory", ("checkout", "cart", "frontend")))
    score = score_case(_case(store, CPU), report, 0.1)
    assert score.rank == 1
    assert not score.fault_type_ok
    assert not score.path_ok


def test_missed_culprit_has_no_rank(store: TelemetryStore) -> None:
    score = score_case(_case(store, CPU), _report(_candidate("cart")), 0.1)
    assert score.rank is None


@pytest.mark.parametrize(
    ("candidates", "confidence", "alarm"),
    [
        ((), 0.0, False),  # nothing named
        (("cart",), 0.49, False),  # named, but inconclusive (more likely wrong than right)
        (("cart",), 0.5, True),  # named with confidence at the threshold
        (("cart",), 0.9, True),
    ],
)
def test_false_alarm_only_on_controls(
    store: TelemetryStore, candidates: tuple[str, ...], confidence: float, alarm: bool
) -> None:
    report = _report(*(_candidate(s) for s in candidates), confidence=confidence)
    score = score_case(_case(store, NONE, "none"), report, 0.1)
    assert score.false_alarm is alarm
    assert score.rank is None
    assert score.is_control


def _score(
    topology: str,
    fault: str,
    rank: int | None,
    *,
    type_ok: bool = False,
    path_ok: bool = False,
    seconds: float = 1.0,
) -> CaseScore:
    return CaseScore(
        f"{topology}/{fault}", topology, fault, 0, "svc", (), rank, type_ok, path_ok, None, seconds
    )


def _control(topology: str, alarm: bool) -> CaseScore:
    return CaseScore(
        f"{topology}/none", topology, "none", 0, None, (), None, False, False, alarm, 2.0
    )


def test_summary_pooled_measures() -> None:
    scores = [
        _score("shop", "cpu-hog", 1, type_ok=True, path_ok=True),
        _score("shop", "memory-leak", 2),
        _score("pipeline", "cpu-hog", 4, type_ok=False, path_ok=False, seconds=3.0),
        _score("pipeline", "memory-leak", None),
        _control("shop", alarm=True),
        _control("pipeline", alarm=False),
    ]
    summary = summarize(scores)
    assert summary["cases"] == 6
    assert summary["fault_cases"] == 4 and summary["control_cases"] == 2
    assert summary["AC@1"] == 0.25
    assert summary["AC@3"] == 0.5
    assert summary["AC@5"] == 0.75
    # mean of AC@1..AC@5 = (0.25 + 0.5 + 0.5 + 0.75 + 0.75) / 5
    assert summary["Avg@5"] == 0.55
    assert summary["fault_type"] == 0.25
    assert summary["path"] == 0.25
    assert summary["false_alarm"] == 0.5
    assert summary["max_seconds"] == 3.0
    assert summary["mean_seconds"] == round(10.0 / 6, 3)


def test_summary_per_topology_and_fault() -> None:
    scores = [
        _score("shop", "cpu-hog", 1),
        _score("pipeline", "cpu-hog", 3),
        _score("pipeline", "memory-leak", None),
        _control("pipeline", alarm=True),
    ]
    summary = summarize(scores)
    assert set(summary["by_topology"]) == {"shop", "pipeline"}
    assert summary["by_topology"]["shop"]["AC@1"] == 1.0
    assert summary["by_topology"]["pipeline"]["AC@3"] == 0.5
    assert summary["by_topology"]["pipeline"]["false_alarm"] == 1.0
    assert summary["by_fault"]["cpu-hog"]["AC@1"] == 0.5
    assert summary["by_fault"]["cpu-hog"]["false_alarm"] is None  # no controls in the group
    assert summary["by_fault"]["none"]["AC@1"] is None  # no fault cases in the group
    assert summary["by_fault"]["none"]["false_alarm"] == 1.0


def test_failed_cases_are_counted_but_not_measured() -> None:
    failed = failed_score("shop", "cpu-hog", 3, RuntimeError("boom"), 0.5)
    summary = summarize([_score("shop", "cpu-hog", 1), failed])
    assert failed.error == "RuntimeError: boom"
    assert summary["failed"] == 1
    assert summary["AC@1"] == 1.0
    assert summary["fault_cases"] == 1


def test_empty_summary_has_no_measures() -> None:
    summary = summarize([])
    assert summary["cases"] == 0
    assert summary["AC@1"] is None
    assert summary["mean_seconds"] is None
    assert summary["by_fault"] == {}


def test_reliability_bins_count_a_named_control_culprit_as_wrong() -> None:
    from warroom.gym.scoring import reliability

    def score(rank: int | None, confidence: float, control: bool = False) -> CaseScore:
        return CaseScore(
            case_id="c",
            topology="shop",
            fault="none" if control else "cpu-hog",
            seed=1,
            truth_service=None if control else "a",
            top=(("a", "cpu", "cpu"),),
            rank=rank,
            fault_type_ok=False,
            path_ok=False,
            false_alarm=(confidence >= 0.5) if control else None,
            seconds=1.0,
            confidence=confidence,
        )

    rows = reliability([score(1, 0.9), score(2, 0.95), score(None, 0.1, True), score(1, 0.6)])
    by_bin = {r["confidence"]: r for r in rows}
    assert by_bin["[0.85, 1]"]["reports"] == 2 and by_bin["[0.85, 1]"]["culprit_right"] == 0.5
    assert by_bin["[0, 0.5)"]["culprit_right"] == 0.0
    assert by_bin["[0.5, 0.7)"]["culprit_right"] == 1.0
    assert by_bin["[0.7, 0.85)"]["reports"] == 0 and by_bin["[0.7, 0.85)"]["culprit_right"] is None


def test_a_path_as_short_along_the_calls_is_as_true_as_the_listed_one() -> None:
    edges = [("web", "api-a"), ("web", "api-b"), ("api-a", "db"), ("api-b", "db"), ("web", "db")]
    truth = ("db", "api-a", "web")
    assert same_route(("db", "api-a", "web"), truth, edges)
    assert same_route(("db", "api-b", "web"), truth, edges)  # the other caller, as near
    assert not same_route(("db", "cache", "web"), truth, edges)  # no such calls
    assert not same_route(("db", "api-b", "api-a", "web"), truth, edges)  # longer
    assert not same_route(("api-b", "api-a", "web"), truth, edges)  # another culprit
