"""Gym suites: generate many incidents, investigate each, score it, and sum up.

This is an edge (the gym runner): each case runs under `except Exception`, so one broken case
is recorded as failed with its message and the suite goes on. A (topology, fault) combination
the generator rejects with a ValueError is recorded once as skipped.

    bench = run_suite("smoke", seeds=3)
    print(bench.summary["AC@1"], bench.summary["by_fault"]["cpu-hog"])
    bench = run_suite("standard", seeds=3, runner=ProcessRunner(workers=4))  # same scores

A runner (gym/parallel.py) gets one CaseJob per (case, seed): names and numbers only. The
worker generates the case from its seed, investigates and scores it, and closes the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from warroom.gym.case import GymCase
from warroom.gym.parallel import CaseRunner, SerialRunner
from warroom.gym.scoring import TOP_K, CaseScore, failed_score, score_case, summarize
from warroom.model import Report, iso
from warroom.pipeline import SLO_PREFIX
from warroom.planner import DEFAULT as DEFAULT_PLANNER
from warroom.planner import investigate

if TYPE_CHECKING:
    from warroom.gym.simulator import Knobs
    from warroom.topology.iac.model import IacGraph

SUITE_NAMES = ("smoke", "standard", "hard")
SMOKE_FAULTS = ("cpu-hog", "memory-leak", "network-delay", "bad-deploy", "none")
STANDARD_TOPOLOGIES = ("shop", "shared-db", "pipeline")
HARD_KNOBS: dict[str, Any] = {
    "red_herring": True,
    "drop_traces": 0.5,
    "drop_logs": 0.3,
    "clock_skew_s": 2.0,
    "untraced_stores": True,  # since the eighth session (the live gym's datastores)
}
# Extra no-fault controls for "hard": each nuisance alone must not raise an alarm either.
HARD_CONTROLS: tuple[dict[str, Any], ...] = (
    {"red_herring": True},
    {"clock_skew_s": 2.0},
    {"drop_traces": 0.5, "drop_logs": 0.3},
)

SuiteCase = tuple[str, str, "Knobs"]
Progress = Callable[[str], None]


class Generate(Protocol):
    """The simulator's entry point (warroom.gym.simulator.generate) or a test double."""

    def __call__(self, topology: str, fault: str, seed: int, knobs: Knobs) -> GymCase:
        """One generated incident with its telemetry and truth."""
        ...


Record = Callable[[GymCase, Report, CaseScore], None]


@dataclass(frozen=True)
class Skipped:
    """A combination the generator rejected (e.g. a fault the topology has no place for)."""

    topology: str
    fault: str
    variant: str
    reason: str


@dataclass(frozen=True)
class GymBench:
    """One suite run: every case's score, the totals, and what was skipped."""

    suite: str
    seeds: int
    seed_offset: int
    scores: tuple[CaseScore, ...]
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "suite": self.suite,
            "seeds": self.seeds,
            "seed_offset": self.seed_offset,
            "summary": self.summary,
            "skipped": [asdict(s) for s in self.skipped],
            "cases": [asdict(s) for s in self.scores],
        }


def build_suites(faults: Iterable[str], knobs: Callable[..., Knobs]) -> dict[str, list[SuiteCase]]:
    """The suites over a fault catalogue; `knobs` builds a Knobs from keyword arguments."""
    names = list(faults)
    plain, hard = knobs(), knobs(**HARD_KNOBS)
    return {
        "smoke": [("shop", f, plain) for f in SMOKE_FAULTS],
        "standard": [(t, f, plain) for t in STANDARD_TOPOLOGIES for f in names],
        "hard": [(t, f, hard) for t in STANDARD_TOPOLOGIES for f in names]
        + [(t, "none", knobs(**extra)) for t in STANDARD_TOPOLOGIES for extra in HARD_CONTROLS],
    }


@cache
def suites() -> dict[str, list[SuiteCase]]:
    """The suites over the simulator's catalogue (imported on first use)."""
    from warroom.gym.simulator import FAULTS, Knobs

    return build_suites(FAULTS, Knobs)


def __getattr__(name: str) -> Any:
    # SUITES needs the simulator's catalogue; building it lazily keeps this module importable
    # (and testable with a fake generator) on its own.
    if name == "SUITES":
        return suites()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def knobs_label(knobs: object) -> str:
    """The knobs that differ from their defaults, e.g. 'red_herring=True drop_logs=0.3'."""
    if not is_dataclass(knobs):
        return ""
    changed = [
        f"{f.name}={getattr(knobs, f.name)}"
        for f in fields(knobs)
        if getattr(knobs, f.name) != f.default
    ]
    return " ".join(changed)


def run_suite(
    suite: str,
    seeds: int,
    seed_offset: int = 0,
    progress: Progress | None = None,
    generate: Generate | None = None,
    cases: Sequence[SuiteCase] | None = None,
    planner: str = DEFAULT_PLANNER,
    runner: CaseRunner | None = None,
) -> GymBench:
    """Every case of a suite for seeds seed_offset .. seed_offset+seeds-1, scored and summed.

    `cases` replaces the suite's (topology, fault, knobs) list (tests, ad-hoc runs); `runner`
    spreads the cases over processes or a Ray cluster (default: one after another, here).
    """
    return compare_planners(
        suite, seeds, seed_offset, (planner,), progress, generate, cases, runner
    )[planner]


def compare_planners(
    suite: str,
    seeds: int,
    seed_offset: int,
    planners: Sequence[str],
    progress: Progress | None = None,
    generate: Generate | None = None,
    cases: Sequence[SuiteCase] | None = None,
    runner: CaseRunner | None = None,
    iac_graph: bool = False,
) -> dict[str, GymBench]:
    """An ablation on identical cases: each case is generated once and investigated by every
    planner (each from scratch, so its seconds are its own). `iac_graph`: each case's declared
    graph is the one its topology's Kubernetes manifests give (gym/manifests.py, read_iac)."""
    plan = _plan(suite, seeds, cases)
    jobs = _jobs(plan, seeds, seed_offset, planners, generate, iac_graph)
    scored, skipped = _collect(_outcomes(jobs, runner or SerialRunner(), progress), seeds)
    out = {}
    for column, planner in enumerate(planners):
        items = tuple(scores[column] for scores in scored)
        summary = summarize(items)
        summary["skipped"] = len(skipped)
        summary["planner"] = planner
        summary["declared_graph"] = "manifests" if iac_graph else "simulator"
        out[planner] = GymBench(suite, seeds, seed_offset, items, summary, tuple(skipped))
    return out


def export_jsonl(
    path: Path,
    suite: str,
    seeds: int,
    seed_offset: int,
    generate: Generate | None = None,
    cases: Sequence[SuiteCase] | None = None,
    progress: Progress | None = None,
    planner: str = DEFAULT_PLANNER,
) -> int:
    """Write one JSON line per investigated case (context, expected answer, rewards).

    Skipped and failed cases have no report to learn from and are left out. Returns the number
    of lines written. Runs here, one case after another: the lines are written as cases finish.
    """
    jobs = _jobs(_plan(suite, seeds, cases), seeds, seed_offset, (planner,), generate)
    written = 0
    with path.open("w", encoding="utf-8") as sink:

        def record(case: GymCase, report: Report, score: CaseScore) -> None:
            nonlocal written
            sink.write(json.dumps(export_record(case, report, score)) + "\n")
            written += 1

        _outcomes(jobs, SerialRunner(), progress, partial(run_job, record=record))
    return written


def check_seed_offset(seed_offset: int) -> int:
    """The first seed, or ValueError: the simulator's seeds are never negative, and a suite
    whose every case the generator refused would look like one that skipped them all."""
    if seed_offset < 0:
        raise ValueError(f"the seed offset must be 0 or more, not {seed_offset}")
    return seed_offset


def _plan(suite: str, seeds: int, cases: Sequence[SuiteCase] | None) -> list[SuiteCase]:
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if cases is not None:
        return list(cases)
    if suite not in SUITE_NAMES:
        raise ValueError(f"unknown suite {suite!r} (known: {', '.join(SUITE_NAMES)})")
    return suites()[suite]


@dataclass(frozen=True)
class CaseJob:
    """One (case, seed) for a worker, which generates the case itself from the seed (the
    simulator is deterministic), so only names and numbers travel, never a DuckDB store.

    `generate` None means the simulator; anything else must pickle for a process or Ray runner.
    """

    topology: str
    fault: str
    seed: int
    knobs: Knobs
    planners: tuple[str, ...]
    generate: Generate | None = None
    # Investigate with the graph and kinds read back from the topology's Kubernetes manifests
    # (gym/manifests.py through topology/iac) instead of the graph the simulator ships.
    iac_graph: bool = False

    @property
    def label(self) -> str:
        """'topology/fault/seed', as progress shows it."""
        return f"{self.topology}/{self.fault}/{self.seed}"


# One score per planner, or the generator's rejection.
Outcome = tuple[CaseScore, ...] | Skipped


def run_job(job: CaseJob, record: Record | None = None) -> Outcome:
    """Generate one case, investigate and score it with each planner, close its store.

    Never raises: the gym runner is an edge, so a broken case is a failed score and the suite
    goes on. `record` sees each report while the store is open (export; this process only).
    """
    variant = knobs_label(job.knobs)
    started = time.perf_counter()
    try:
        case = (job.generate or _simulator())(job.topology, job.fault, job.seed, job.knobs)
    except ValueError as err:
        return Skipped(job.topology, job.fault, variant, str(err))
    except Exception as err:
        seconds = time.perf_counter() - started
        failed = failed_score(job.topology, job.fault, job.seed, err, seconds, variant)
        return (failed,) * len(job.planners)
    try:
        if not job.iac_graph:
            return tuple(_scored(case, variant, planner, record) for planner in job.planners)
        return _scored_with_iac(case, job, variant, record, started)
    finally:
        case.store.close()


def _scored_with_iac(
    case: GymCase, job: CaseJob, variant: str, record: Record | None, started: float
) -> Outcome:
    """The planners' scores with the manifests' graph and kinds (a topology the exporter
    cannot write is a failed case, as any other broken case)."""
    from warroom.agents.domains import declared_kinds

    try:
        case, kinds = _with_iac_graph(case)
    except Exception as err:  # the gym runner is an edge: one broken case must not end the suite
        seconds = time.perf_counter() - started
        failed = failed_score(job.topology, job.fault, job.seed, err, seconds, variant)
        return (failed,) * len(job.planners)
    with declared_kinds(kinds):
        return tuple(_scored(case, variant, planner, record) for planner in job.planners)


def _with_iac_graph(case: GymCase) -> tuple[GymCase, dict[str, str]]:
    """The case with its declared graph swapped for the one its topology's manifests give, and
    the kinds they declare (names matched to the case's telemetry as `investigate --iac` does)."""
    from warroom.topology.iac.names import declared_edges, declared_kinds, match_names

    graph = _manifest_graph(case.topology, case.seed)
    names = match_names(graph, case.store.services())
    edges = tuple(declared_edges(graph, names))
    return replace(case, graph_edges=edges), dict(declared_kinds(graph, names))


def _manifest_graph(topology: str, seed: int) -> IacGraph:
    """read_iac of the topology written out as manifests (once per topology and process)."""
    key = (topology, seed if topology.startswith("random-") else 0)
    if key not in _MANIFEST_GRAPHS:
        import tempfile

        from warroom.gym.manifests import write_manifests
        from warroom.gym.topologies import build
        from warroom.topology.iac.load import read_iac

        with tempfile.TemporaryDirectory(prefix="warroom-gym-k8s-") as folder:
            write_manifests(build(topology, seed), Path(folder))
            _MANIFEST_GRAPHS[key] = read_iac(Path(folder))
    return _MANIFEST_GRAPHS[key]


_MANIFEST_GRAPHS: dict[tuple[str, int], IacGraph] = {}


def _simulator() -> Generate:
    from warroom.gym.simulator import generate as simulate

    return simulate


def _jobs(
    plan: Sequence[SuiteCase],
    seeds: int,
    seed_offset: int,
    planners: Sequence[str],
    generate: Generate | None,
    iac_graph: bool = False,
) -> list[CaseJob]:
    """Every (case, seed) of the plan, seeds of one combination next to each other."""
    check_seed_offset(seed_offset)
    if not planners:
        raise ValueError("no planner given")
    return [
        CaseJob(topology, fault, seed, knobs, tuple(planners), generate, iac_graph)
        for topology, fault, knobs in plan
        for seed in range(seed_offset, seed_offset + seeds)
    ]


def _outcomes(
    jobs: Sequence[CaseJob],
    runner: CaseRunner,
    progress: Progress | None,
    work: Callable[[CaseJob], Outcome] = run_job,
) -> list[Outcome]:
    """Each job's outcome in job order, whatever order the runner finishes them in."""
    done: dict[int, Outcome] = {}
    for index, outcome in runner.map(work, jobs):
        done[index] = outcome
        if progress:
            progress(jobs[index].label)
    return [done[index] for index in range(len(jobs))]


def _collect(
    outcomes: Sequence[Outcome], seeds: int
) -> tuple[list[tuple[CaseScore, ...]], list[Skipped]]:
    """Scores in plan order; a rejected combination is skipped once and its later seeds are
    dropped, as in a run that stops generating it at the first rejection."""
    scored: list[tuple[CaseScore, ...]] = []
    skipped: list[Skipped] = []
    for start in range(0, len(outcomes), seeds):
        for outcome in outcomes[start : start + seeds]:
            if isinstance(outcome, Skipped):
                skipped.append(outcome)
                break
            scored.append(outcome)
    return scored, skipped


def _scored(case: GymCase, variant: str, planner: str, record: Record | None) -> CaseScore:
    started = time.perf_counter()
    try:
        return _investigate(case, variant, record, planner)
    except Exception as err:  # the gym runner is an edge: one broken case must not end the suite
        elapsed = time.perf_counter() - started
        return failed_score(case.topology, case.fault, case.seed, err, elapsed, variant)


def _investigate(
    case: GymCase, variant: str, record: Record | None, planner: str = DEFAULT_PLANNER
) -> CaseScore:
    """Investigate and score one case; seconds count the investigation, not the generation."""
    started = time.perf_counter()
    inv = investigate(
        case.incident, case.store, case.baseline, case.graph_edges, TOP_K, planner=planner
    )
    score = score_case(case, inv.report, time.perf_counter() - started)
    if variant:
        score = replace(score, variant=variant)
    if record is not None:
        record(case, inv.report, score)
    return score


def export_record(case: GymCase, report: Report, score: CaseScore) -> dict[str, Any]:
    """One training/evaluation line: what an investigator sees, the answer, and the rewards.

    The context leaves out the incident id and labels, which a generator may derive from the
    fault; everything in it is what a responder would have.
    """
    incident, truth = case.incident, case.truth
    return {
        "id": case.id,
        "topology": case.topology,
        "fault": case.fault,
        "seed": case.seed,
        "variant": score.variant,
        "context": {
            "incident": {
                "window": {"start": iso(incident.window.start), "end": iso(incident.window.end)},
                "window_ts": [incident.window.start, incident.window.end],
                "alert_time": iso(incident.alert_time),
                "symptom_service": incident.symptom_service,
                "symptom_metric": incident.symptom_metric,
            },
            "services": [s for s in case.store.services() if not s.startswith(SLO_PREFIX)],
            "findings": _findings_summary(report),
        },
        "expected": {
            "service": truth.service,
            "fault": truth.fault,
            "fault_type": truth.fault_type,
            "onset": truth.onset,
            "path": list(truth.path),
            "code_location": truth.code_location,
        },
        "rewards": _rewards(report, score),
    }


def _findings_summary(report: Report) -> dict[str, Any]:
    return {
        "confidence": report.confidence,
        "missing_evidence": list(report.missing),
        "candidates": [
            {
                "service": c.service,
                "indicator": c.indicator,
                "fault_type": c.fault_type,
                "score": c.score,
                "onset": c.onset,
                "path": list(c.path),
                "evidence": [e.statement for e in c.evidence],
            }
            for c in report.candidates[:TOP_K]
        ],
    }


def _rewards(report: Report, score: CaseScore) -> dict[str, Any]:
    """Per-case and per-candidate rewards; on a control, silence (no false alarm) is the hit."""
    steps = [
        {"candidate": c.service, "reward": int(c.service == score.truth_service)}
        for c in report.candidates[:TOP_K]
    ]
    if score.is_control:
        silent = int(not score.false_alarm)
        return {
            "rank": None,
            "ac1": silent,
            "fault_type": None,
            "path": None,
            "false_alarm": int(bool(score.false_alarm)),
            "steps": steps,
        }
    return {
        "rank": score.rank,
        "ac1": int(score.rank == 1),
        "fault_type": int(score.fault_type_ok),
        "path": int(score.path_ok),
        "false_alarm": None,
        "steps": steps,
    }
