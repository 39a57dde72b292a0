"""What every data set loader returns: a case (incident + baseline + ground truth) and its data."""

from __future__ import annotations

import re
from dataclasses import dataclass

from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

# Kubernetes pod names: <deployment>-<replicaset hash>-<5 char suffix>.
POD_SUFFIX_SQL = r"-[a-z0-9]{6,10}-[a-z0-9]{5}$"  # also used inside DuckDB regexp_replace
_POD_SUFFIX = re.compile(POD_SUFFIX_SQL)


def service_of_pod(pod: str) -> str:
    """The deployment (service) a Kubernetes pod belongs to; other names pass through."""
    return _POD_SUFFIX.sub("", pod)


@dataclass(frozen=True)
class GroundTruth:
    """The known answer of a public or generated case."""

    service: str
    fault_type: str
    indicator: str | None = None  # inner-service label: a metric name or a code region


@dataclass(frozen=True)
class CaseSpec:
    """One case: the incident handed to the pipeline, its fault-free baseline, and the truth."""

    id: str
    incident: Incident
    baseline: TimeRange | None  # fault-free window for logs and traces, when the data has one
    truth: GroundTruth | None
    graph_edges: tuple[tuple[str, str], ...] = ()  # caller -> callee, when the data ships a graph
    notes: tuple[str, ...] = ()  # what was missing or degraded while loading
    # Other windows of the same data, loaded to judge how usual the incident's findings are.
    references: tuple[TimeRange, ...] = ()


@dataclass
class LoadedCase:
    """A case with its telemetry loaded into a store (the store is owned by the caller)."""

    spec: CaseSpec
    store: TelemetryStore
    load_seconds: float = 0.0
