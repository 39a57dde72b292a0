"""What the chaos gym hands out: a generated incident, its telemetry, and the known answer.

The RCA code never imports this package (a test scans the imports); the gym only fills a
TelemetryStore and keeps the truth to itself until scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore


@dataclass(frozen=True)
class GymTruth:
    """The injected fault (service None for a no-fault control case)."""

    service: str | None
    fault: str  # the catalogue name, e.g. "cpu-hog"
    fault_type: str  # in the ranking's vocabulary: cpu, memory, network-delay, code-exception...
    onset: float
    path: tuple[str, ...]  # culprit -> ... -> the entry service that alerts
    code_location: str | None = None


@dataclass
class GymCase:
    """One generated incident: the store holds all its telemetry (baseline included)."""

    id: str
    topology: str
    fault: str
    seed: int
    incident: Incident
    baseline: TimeRange
    truth: GymTruth
    store: TelemetryStore
    graph_edges: tuple[tuple[str, str], ...] = ()
