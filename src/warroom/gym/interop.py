"""Gym cases as files other tools read, and case folders in that layout read back.

    <case>/
      incident.json      what an alert hands over: window, alert time, symptom, baseline, graph
      traces.otlp.json   OTLP/JSON ExportTraceServiceRequest (one document on one line)
      logs.otlp.json     OTLP/JSON ExportLogsServiceRequest
      metrics.prom       Prometheus text format 0.0.4: label service, timestamps in ms
      events.json        deploys, restarts: {"events": [{time, service, kind, description}]}
      truth.json         the answer: only scoring reads it, `load_case_dir` never opens it

Times in the JSON files are epoch seconds (UTC). A tool under evaluation gets the folder without
truth.json; any telemetry file may be missing (that modality then has no data).

    write_case(generate("shop", "cpu-hog", 1), Path("cases/shop-1"))
    folder, store = load_case_dir(Path("cases/shop-1"))   # intake/case_dir.py reads them

Reading lives in intake/case_dir.py (the hardened reader of untrusted folders), writing any
store in intake/case_write.py; this module adds what is the gym's: its truth and its suites.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.gym.case import GymCase, GymTruth
from warroom.intake import case_dir
from warroom.intake.case_dir import (
    EVENTS,
    FORMAT,
    INCIDENT,
    LOGS,
    METRICS,
    TRACES,
    TRUTH,
    load_case,
    load_case_dir,
    resolve_case_dir,
)
from warroom.intake.case_write import write_case_folder

if TYPE_CHECKING:
    from warroom.gym.bench import Generate, SuiteCase

__all__ = [
    "EVENTS",
    "INCIDENT",
    "LOGS",
    "METRICS",
    "TRACES",
    "TRUTH",
    "export_cases",
    "load_case",
    "load_case_dir",
    "read_truth",
    "resolve_case_dir",
    "write_case",
]


def write_case(case: GymCase, out_dir: Path, variant: str = "") -> list[Path]:
    """Write one case's folder (created if needed) from its store; returns the files written."""
    return write_case_folder(
        out_dir,
        case.incident,
        case.store,
        case.baseline,
        case.graph_edges,
        truth=_truth_json(case, variant),
    )


def read_truth(folder: Path) -> GymTruth | None:
    """The gym's answer in a case folder's truth.json, or None when the folder has none."""
    answer = case_dir.read_truth(folder)
    return GymTruth(**answer.model_dump()) if answer is not None else None


def export_cases(
    out_dir: Path,
    suite: str,
    seeds: int,
    seed_offset: int = 0,
    progress: Callable[[str], None] | None = None,
    generate: Generate | None = None,
    cases: Sequence[SuiteCase] | None = None,
) -> int:
    """One folder per generated case of a suite under `out_dir`; returns how many were written.

    Folders are named by the incident id, which does not give the fault away; a combination the
    generator rejects is skipped for all its seeds, as the gym bench does.
    """
    from warroom.gym.bench import SUITE_NAMES, check_seed_offset, knobs_label, suites

    check_seed_offset(seed_offset)
    if cases is None and suite not in SUITE_NAMES:
        raise ValueError(f"unknown suite {suite!r} (known: {', '.join(SUITE_NAMES)})")
    if generate is None:
        from warroom.gym.simulator import generate as simulate

        generate = simulate
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for topology, fault, knobs in cases if cases is not None else suites()[suite]:
        rejected = False
        for seed in range(seed_offset, seed_offset + seeds):
            if progress:
                progress(f"{topology}/{fault}/{seed}")
            if rejected:
                continue
            try:
                case = generate(topology, fault, seed, knobs)
            except ValueError:
                rejected = True
                continue
            try:
                write_case(case, out_dir / _unique(case.id, used), knobs_label(knobs))
            finally:
                case.store.close()
    return len(used)


def _unique(name: str, used: set[str]) -> str:
    """`name`, or name-2, name-3... (the hard suite's controls share a topology and seed)."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}-{n}"
    used.add(candidate)
    return candidate


def _truth_json(case: GymCase, variant: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "case": {
            "id": case.id,
            "topology": case.topology,
            "fault": case.fault,
            "seed": case.seed,
            "variant": variant,
        },
        "truth": asdict(case.truth),
    }
