"""Gym suites with a fake generator: the real pipeline runs on a tiny hand-made incident."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from warroom.gym import bench
from warroom.gym.bench import build_suites, export_jsonl, knobs_label, run_suite
from warroom.gym.case import GymCase, GymTruth
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

T0 = 1_700_000_000.0
ONSET = T0 + 1500.0
SERVICES = ("frontend", "checkout", "cart")


@dataclass(frozen=True)
class FakeKnobs:
    """Stands in for simulator.Knobs: same fields and defaults."""

    red_herring: bool = False
    drop_traces: float = 0.0
    drop_logs: float = 0.0
    clock_skew_s: float = 0.0
    untraced_stores: bool = False


def _store(culprit: str | None, seed: int) -> TelemetryStore:
    """Metrics every 10 s for 30 min; the culprit's cpu jumps from ~5 % to ~90 % at ONSET."""
    rng = np.random.default_rng(seed)
    times = T0 + np.arange(0, 1800, 10.0)
    columns: dict[str, list[object]] = {"service": [], "name": [], "ts": [], "value": []}
    for service in SERVICES:
        cpu = 5.0 + rng.normal(0, 0.3, times.size)
        if service == culprit:
            cpu[times >= ONSET] += 85.0
        columns["service"] += [service] * times.size
        columns["name"] += ["container_cpu_usage_percent"] * times.size
        columns["ts"] += times.tolist()
        columns["value"] += cpu.tolist()
    store = TelemetryStore()
    store.insert_columns("metrics", columns)
    return store


def fake_generate(topology: str, fault: str, seed: int, knobs: object = None) -> GymCase:
    """cpu-hog on checkout, or a quiet control; any other fault is a rejected combination."""
    if fault not in ("cpu-hog", "none"):
        raise ValueError(f"topology {topology} has no place for {fault}")
    culprit = "checkout" if fault == "cpu-hog" else None
    window = TimeRange(T0 + 1200.0, T0 + 1800.0)
    path = ("checkout", "frontend") if culprit else ()
    return GymCase(
        id=f"{topology}/{fault}/{seed}",
        topology=topology,
        fault=fault,
        seed=seed,
        incident=Incident(f"{topology}/{fault}/{seed}", window, ONSET + 60, "frontend"),
        baseline=TimeRange(T0, T0 + 1200.0),
        truth=GymTruth(culprit, fault, "cpu" if culprit else "none", ONSET, path),
        store=_store(culprit, seed),
        graph_edges=(("frontend", "checkout"), ("frontend", "cart")),
    )


CASES = [
    ("shop", "cpu-hog", FakeKnobs()),
    ("pipeline", "cpu-hog", FakeKnobs()),
    ("shop", "none", FakeKnobs()),
    ("shop", "memory-leak", FakeKnobs()),
]


def test_run_suite_scores_every_case_with_the_real_pipeline() -> None:
    seen: list[str] = []
    result = run_suite("custom", 2, 5, seen.append, fake_generate, CASES)
    assert result.seeds == 2 and result.seed_offset == 5
    # memory-leak is rejected: recorded once, and its other seed never generated.
    assert [(s.topology, s.fault) for s in result.skipped] == [("shop", "memory-leak")]
    assert "no place for memory-leak" in result.skipped[0].reason
    assert len(result.scores) == 6
    assert {s.seed for s in result.scores} == {5, 6}
    assert seen[0] == "shop/cpu-hog/5" and len(seen) == 8
    summary = result.summary
    assert summary["skipped"] == 1 and summary["failed"] == 0
    assert summary["fault_cases"] == 4 and summary["control_cases"] == 2
    assert summary["AC@1"] == 1.0 and summary["Avg@5"] == 1.0
    assert summary["fault_type"] == 1.0
    assert summary["false_alarm"] == 0.0
    assert summary["by_fault"]["cpu-hog"]["AC@1"] == 1.0
    assert summary["by_fault"]["none"]["false_alarm"] == 0.0
    assert summary["by_topology"]["pipeline"]["cases"] == 2
    top = result.scores[0].top[0]
    assert top[0] == "checkout" and top[2] == "cpu"


def test_stores_are_closed_after_each_case() -> None:
    made: list[GymCase] = []

    def tracking(topology: str, fault: str, seed: int, knobs: object = None) -> GymCase:
        made.append(fake_generate(topology, fault, seed, knobs))
        return made[-1]

    run_suite("custom", 1, 0, None, tracking, CASES[:1])
    with pytest.raises(Exception, match="closed"):
        made[0].store.count("metrics")


def test_a_raising_generator_is_a_failed_case_not_a_crash() -> None:
    def broken(topology: str, fault: str, seed: int, knobs: object = None) -> GymCase:
        if seed == 1:
            raise RuntimeError("simulator exploded")
        return fake_generate(topology, fault, seed, knobs)

    result = run_suite("custom", 2, 0, None, broken, CASES[:1])
    assert len(result.scores) == 2
    failed = [s for s in result.scores if s.error]
    assert len(failed) == 1
    assert failed[0].error == "RuntimeError: simulator exploded"
    assert result.summary["failed"] == 1
    assert result.summary["AC@1"] == 1.0  # measured over the case that ran
    json.dumps(result.to_json())  # plain data all the way down


def test_a_raising_investigation_is_a_failed_case(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("bad math")

    monkeypatch.setattr(bench, "investigate", boom)
    result = run_suite("custom", 1, 0, None, fake_generate, CASES[:1])
    assert result.scores[0].error == "ZeroDivisionError: bad math"


def test_unknown_suite_and_bad_seeds_are_value_errors() -> None:
    with pytest.raises(ValueError, match="known: smoke, standard, hard"):
        run_suite("nope", 1, generate=fake_generate)
    with pytest.raises(ValueError, match="seeds"):
        run_suite("smoke", 0, generate=fake_generate)


def test_build_suites_covers_the_catalogue() -> None:
    faults = ("cpu-hog", "cache-down", "none")
    suites = build_suites(faults, FakeKnobs)
    assert [f for _, f, _ in suites["smoke"]] == [
        "cpu-hog",
        "memory-leak",
        "network-delay",
        "bad-deploy",
        "none",
    ]
    assert {t for t, _, _ in suites["smoke"]} == {"shop"}
    assert len(suites["standard"]) == 3 * len(faults)
    assert all(k == FakeKnobs() for _, _, k in suites["standard"])
    hard = suites["hard"]
    assert (
        "pipeline",
        "cache-down",
        FakeKnobs(
            red_herring=True,
            drop_traces=0.5,
            drop_logs=0.3,
            clock_skew_s=2.0,
            untraced_stores=True,
        ),
    ) in hard
    controls = [k for _, f, k in hard if f == "none"]
    assert len(controls) > 3  # the catalogue's none per topology plus the extra controls


def test_knobs_label_names_what_differs_from_the_defaults() -> None:
    assert knobs_label(FakeKnobs()) == ""
    assert knobs_label(FakeKnobs(red_herring=True, drop_logs=0.3)) == (
        "red_herring=True drop_logs=0.3"
    )


def test_export_jsonl_lines_carry_context_truth_and_rewards(tmp_path: Path) -> None:
    out = tmp_path / "gym.jsonl"
    written = export_jsonl(out, "custom", 1, 0, fake_generate, CASES)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == len(lines) == 3  # the rejected combination has no line
    hit = lines[0]
    assert hit["id"] == "shop/cpu-hog/0"
    assert hit["expected"]["service"] == "checkout"
    assert hit["expected"]["path"] == ["checkout", "frontend"]
    assert set(hit["context"]["services"]) == set(SERVICES)
    assert hit["context"]["incident"]["symptom_service"] == "frontend"
    assert "id" not in hit["context"]["incident"]  # ids may name the fault
    candidates = hit["context"]["findings"]["candidates"]
    assert candidates[0]["service"] == "checkout"
    assert candidates[0]["evidence"] and isinstance(candidates[0]["evidence"][0], str)
    rewards = hit["rewards"]
    assert rewards["rank"] == 1 and rewards["ac1"] == 1
    assert rewards["fault_type"] == 1
    assert rewards["steps"][0] == {"candidate": "checkout", "reward": 1}
    assert all(s["reward"] == 0 for s in rewards["steps"][1:])
    control = lines[2]
    assert control["expected"]["service"] is None
    assert control["rewards"]["false_alarm"] == 0 and control["rewards"]["ac1"] == 1


def test_suites_attribute_uses_the_simulator_catalogue() -> None:
    simulator = pytest.importorskip("warroom.gym.simulator")
    suites = bench.SUITES
    assert set(suites) == {"smoke", "standard", "hard"}
    assert {f for _, f, _ in suites["standard"]} == set(simulator.FAULTS)
    assert all(isinstance(k, simulator.Knobs) for _, _, k in suites["hard"])


def test_compare_planners_runs_each_planner_on_the_same_generated_cases() -> None:
    generated: list[tuple[str, str, int]] = []

    def tracking(topology: str, fault: str, seed: int, knobs: object = None) -> GymCase:
        generated.append((topology, fault, seed))
        return fake_generate(topology, fault, seed, knobs)

    results = bench.compare_planners(
        "custom", 1, 0, ["ranking", "director"], generate=tracking, cases=CASES
    )
    assert set(results) == {"ranking", "director"}
    assert len(generated) == 4  # once per case (the rejected one included), not per planner
    for name, result in results.items():
        assert result.summary["planner"] == name
        assert len(result.scores) == 3 and result.summary["skipped"] == 1
        assert result.summary["AC@1"] == 1.0 and result.summary["false_alarm"] == 0.0
