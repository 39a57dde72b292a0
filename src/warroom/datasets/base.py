"""What every data set loader returns: a case (incident + baseline + ground truth) and its data."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from warroom.errors import DatasetError
from warroom.model import Incident, TimeRange
from warroom.telemetry.store import TelemetryStore

# Kubernetes pod names: <deployment>-<replicaset hash>-<5 char suffix>.
POD_SUFFIX_SQL = r"-[a-z0-9]{6,10}-[a-z0-9]{5}$"  # also used inside DuckDB regexp_replace
_POD_SUFFIX = re.compile(POD_SUFFIX_SQL)
# A CSV's header rows are read from at most this many bytes: wide files have long headers, but
# not this long.
HEADER_BYTES = 8 << 20


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


def read_csv_head(path: Path, rows: int = 1) -> list[list[str]]:
    """The first `rows` rows of a CSV (fewer when the file has fewer), strictly UTF-8.

    Only the head is decoded: a data row in another encoding further down is the data
    reader's to count, not a reason to refuse the header.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(HEADER_BYTES)
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    text = head.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    found: list[list[str]] = []
    try:
        for row in reader:
            found.append(row)
            if len(found) == rows:
                break
    except csv.Error as err:
        raise DatasetError(f"{path}:{reader.line_num}: unreadable CSV header ({err})") from None
    if len(head) == HEADER_BYTES and head.count(b"\n") < rows:
        raise DatasetError(f"{path}: header rows longer than {HEADER_BYTES} bytes")
    for number, row in enumerate(found, start=1):
        try:
            "".join(row).encode("utf-8")
        except UnicodeEncodeError as err:
            raise DatasetError(
                f"{path}:{number}: the header is not UTF-8 (character {err.start} of the row)"
            ) from None
    return found
