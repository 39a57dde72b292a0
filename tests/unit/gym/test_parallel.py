"""gym/parallel.py: a process pool and Ray give the serial run's scores, and broken cases stay
failed scores. The real simulator and pipeline run on three smoke cases."""

from __future__ import annotations

import hashlib
import sys

import pytest

from warroom.errors import InputError
from warroom.gym.bench import HARD_KNOBS, GymBench, compare_planners, run_suite, suites
from warroom.gym.case import GymCase, GymTruth
from warroom.gym.parallel import (
    CaseRunner,
    ProcessRunner,
    RayRunner,
    SerialRunner,
    import_ray,
    make_runner,
)
from warroom.gym.scoring import CaseScore
from warroom.gym.simulator import Knobs, generate
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

FAULTS = ("cpu-hog", "network-delay", "none")
LABELS = [f"shop/{fault}/1" for fault in FAULTS]


def _cases() -> list[tuple[str, str, Knobs]]:
    return [case for case in suites()["smoke"] if case[1] in FAULTS]


def _run(runner: CaseRunner) -> tuple[GymBench, list[str]]:
    seen: list[str] = []
    return run_suite("smoke", 1, 1, seen.append, cases=_cases(), runner=runner), seen


def _comparable(scores: tuple[CaseScore, ...]) -> list[tuple[object, ...]]:
    """What a case scored, without the seconds (they depend on the machine's load) and the
    indicator names: the log expert breaks ties between templates in set order, which
    changes with each process's string hashing (PYTHONHASHSEED), a worker's as well."""
    return [
        (
            s.case_id,
            [service for service, _, _ in s.top],
            s.rank,
            s.confidence,
            s.raw_confidence,
            s.fault_type_ok,
            s.path_ok,
            s.false_alarm,
            s.error,
        )
        for s in scores
    ]


@pytest.fixture(scope="module")
def serial() -> GymBench:
    """The three cases run one after another in this process."""
    result, seen = _run(SerialRunner())
    assert seen == LABELS
    assert not [s for s in result.scores if s.error], result.scores
    return result


def _square(x: int) -> int:
    return x * x


def test_serial_runner_yields_in_item_order() -> None:
    assert list(SerialRunner().map(_square, [3, 1, 2])) == [(0, 9), (1, 1), (2, 4)]


def test_make_runner_picks_serial_process_or_ray() -> None:
    assert isinstance(make_runner(1), SerialRunner)
    pool = make_runner(3)
    assert isinstance(pool, ProcessRunner) and pool.workers == 3
    assert isinstance(make_runner(2, ray=True), RayRunner)
    cluster = make_runner(1, address="auto")
    assert isinstance(cluster, RayRunner) and cluster.address == "auto"
    with pytest.raises(ValueError, match="workers"):
        make_runner(0)


def test_a_missing_ray_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(InputError, match=r"pip install 'warroom\[ray\]'"):
        import_ray()
    with pytest.raises(InputError, match="warroom"):
        list(RayRunner().map(_square, [1]))


@pytest.mark.slow
def test_process_runner_gives_the_serial_scores(serial: GymBench) -> None:
    parallel, seen = _run(ProcessRunner(workers=2))
    assert sorted(seen) == sorted(LABELS)  # one progress call per finished case, any order
    assert _comparable(parallel.scores) == _comparable(serial.scores)
    assert parallel.skipped == serial.skipped
    for key in ("AC@1", "Avg@5", "fault_type", "path", "false_alarm"):
        assert parallel.summary[key] == serial.summary[key], key


def telemetry_digest(case: tuple[str, str, int, Knobs]) -> str:
    """A hash of one generated case's telemetry, incident and truth (module level: pickles)."""
    generated = generate(*case)
    digest = hashlib.sha256(repr((generated.incident, generated.truth)).encode())
    try:
        for table in ("metrics", "logs", "spans", "events"):  # DuckDB's hash is not salted
            rows = generated.store.rows(f"SELECT count(*), sum(hash(t)::HUGEINT) FROM {table} t")
            digest.update(repr(rows).encode())
    finally:
        generated.store.close()
    return digest.hexdigest()


@pytest.mark.slow
def test_a_worker_generates_the_same_telemetry_from_the_same_seed() -> None:
    # Workers rebuild their case from the seed; a spawned one also hashes strings differently.
    case = ("shop", "network-delay", 7, Knobs(**HARD_KNOBS))
    [(_, there)] = list(ProcessRunner(workers=1).map(telemetry_digest, [case]))
    assert there == telemetry_digest(case)


def flaky_generate(topology: str, fault: str, seed: int, knobs: Knobs) -> GymCase:
    """'boom' raises, 'reject' is a rejected combination, anything else an empty quiet case.

    Module level, so a spawned worker can import it by name."""
    if fault == "boom":
        raise RuntimeError(f"simulator exploded on seed {seed}")
    if fault == "reject":
        raise ValueError(f"{topology} has no place for {fault}")
    window = TimeRange(1200.0, 1800.0)
    incident = Incident(f"{topology}/{fault}/{seed}", window, 1500.0, "frontend")
    truth = GymTruth(None, fault, "none", 0.0, ())
    store = TelemetryStore()
    return GymCase(incident.id, topology, fault, seed, incident, TimeRange(0, 1200), truth, store)


def test_broken_cases_in_workers_are_failed_scores_and_a_rejection_is_skipped_once() -> None:
    cases = [("shop", "boom", Knobs()), ("shop", "reject", Knobs()), ("shop", "quiet", Knobs())]
    # 'nope' is not a planner: the investigation itself raises, inside the worker.
    runner = ProcessRunner(workers=2)
    result = compare_planners("custom", 2, 0, ("nope",), None, flaky_generate, cases, runner)
    bench = result["nope"]
    assert [(s.fault, s.seed) for s in bench.scores] == [
        ("boom", 0),
        ("boom", 1),
        ("quiet", 0),
        ("quiet", 1),
    ]
    assert bench.scores[1].error == "RuntimeError: simulator exploded on seed 1"
    assert (bench.scores[2].error or "").startswith("InputError: unknown planner 'nope'")
    assert [(s.fault, s.reason) for s in bench.skipped] == [
        ("reject", "shop has no place for reject")
    ]
    assert bench.summary["failed"] == 4 and bench.summary["skipped"] == 1


@pytest.mark.slow
def test_ray_runner_gives_the_serial_scores(serial: GymBench) -> None:
    try:
        ray = import_ray()
    except InputError:
        pytest.skip("ray is not installed (pip install 'warroom[ray]')")
    parallel, seen = _run(RayRunner(workers=2))
    assert sorted(seen) == sorted(LABELS)
    assert _comparable(parallel.scores) == _comparable(serial.scores)
    assert not ray.is_initialized(), "the instance the runner started is shut down"


def test_a_worker_that_dies_is_a_clear_error_not_a_hang() -> None:
    import os

    from warroom.gym.parallel import WorkerDied

    with pytest.raises(WorkerDied, match="worker process died"):
        list(ProcessRunner(workers=1).map(os._exit, [3]))
