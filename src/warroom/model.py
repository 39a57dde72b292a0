"""Frozen values that cross module boundaries.

Times are UTC epoch seconds (float) everywhere inside warroom; only report/ formats them.
Numeric series hold read-only numpy arrays so a value can be shared without being mutated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def _frozen(values: object) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).copy()
    array.flags.writeable = False
    return array


# The times a reader accepts: 1970-01-01 up to (not including) 3000-01-01 UTC. Anything else
# in telemetry is a unit mistake or garbage, and much of it cannot even be formatted.
EARLIEST_TIME = 0.0
LATEST_TIME = 32_503_680_000.0


def iso(ts: float) -> str:
    """Format epoch seconds as an ISO-8601 UTC string (second precision)."""
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError, TypeError):
        # A report must still print when a value slipped past the readers' checks.
        return f"<invalid time {short_number(ts)}>"


def from_iso(text: str) -> float:
    """Epoch seconds of an ISO 8601 time (naive means UTC); ValueError when it is not one."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def is_valid_time(ts: object) -> bool:
    """True for a finite epoch time (a real number, not a bool) in [EARLIEST_TIME, LATEST_TIME)."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return False
    try:
        value = float(ts)
    except OverflowError:  # an integer too large for a float
        return False
    return math.isfinite(value) and EARLIEST_TIME <= value < LATEST_TIME


def time_problem(ts: object) -> str | None:
    """Why `ts` is not a usable epoch time (for an error message), or None when it is one."""
    if is_valid_time(ts):
        return None
    if isinstance(ts, float) and not math.isfinite(ts):
        return f"{ts!r} is not a finite time"
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return f"expected a number of epoch seconds, got {type(ts).__name__}"
    return f"{short_number(ts)} is outside 1970..3000 (epoch seconds)"


def short_number(value: object) -> str:
    """A number as an error message shows it: at most ~40 characters, even for a huge int."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr() of an int past Python's int-string limit raises; its size is what matters.
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    if not isinstance(value, int | float | str):
        return f"a {type(value).__name__}"  # repr of a deep structure could itself recurse
    text = repr(value[:41] if isinstance(value, str) else value)
    return text if len(text) <= 40 else f"{text[:37]}..."


@dataclass(frozen=True)
class TimeRange:
    """A half-open interval [start, end) in epoch seconds."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"TimeRange end {self.end} is before start {self.start}")

    @property
    def seconds(self) -> float:
        """Length of the range in seconds."""
        return self.end - self.start

    def contains(self, ts: float) -> bool:
        """True when ts lies in [start, end)."""
        return self.start <= ts < self.end

    def shifted(self, by: float) -> TimeRange:
        """The same range moved by `by` seconds."""
        return TimeRange(self.start + by, self.end + by)

    def __str__(self) -> str:
        return f"{iso(self.start)} .. {iso(self.end)}"


@dataclass(frozen=True, eq=False)
class Series:
    """One metric of one service over time (values aligned with times)."""

    service: str
    name: str
    times: FloatArray
    values: FloatArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", _frozen(self.times))
        object.__setattr__(self, "values", _frozen(self.values))
        if self.times.shape != self.values.shape:
            raise ValueError(
                f"series {self.service}/{self.name}: times and values differ in length"
            )

    def within(self, window: TimeRange) -> Series:
        """The points that fall inside `window`."""
        mask = (self.times >= window.start) & (self.times < window.end)
        return Series(self.service, self.name, self.times[mask], self.values[mask])

    def __len__(self) -> int:
        return int(self.times.shape[0])


@dataclass(frozen=True)
class LogRecord:
    """One log line, already unwrapped from its transport envelope."""

    time: float
    service: str
    message: str
    level: str = ""
    pod: str = ""
    trace_id: str = ""
    span_id: str = ""


@dataclass(frozen=True)
class Span:
    """One span of a distributed trace (OTLP fields that RCA needs)."""

    trace_id: str
    span_id: str
    parent_id: str
    service: str
    operation: str
    start: float
    end: float
    error: bool = False
    pod: str = ""
    # A client span's callee as the client names it (OTel peer.service / server.address): the
    # only trace of a call that never reached an instrumented server (DNS, TLS, a third party).
    peer: str = ""

    @property
    def duration(self) -> float:
        """Span duration in seconds."""
        return self.end - self.start


@dataclass(frozen=True)
class Event:
    """A discrete change: deploy, config change, restart, scaling."""

    time: float
    service: str
    kind: str
    description: str


class Modality(StrEnum):
    """Where a finding came from."""

    METRIC = "metric"
    LOG = "log"
    TRACE = "trace"
    EVENT = "event"


class IndicatorKind(StrEnum):
    """What an indicator names: a resource, a code region, or a symptom of something else."""

    RESOURCE = "resource"  # the component's own CPU, memory, disk, network
    CODE = "code"  # a code region: a pair of log events or a span operation
    SYMPTOM = "symptom"  # latency, errors, throughput: propagate along calls


@dataclass(frozen=True)
class Evidence:
    """A computed number with the computation that produced it, so a reader can re-run it."""

    id: str
    statement: str
    value: float
    baseline: float | None = None
    unit: str = ""
    source: str = ""  # the expert and query that produced the number


@dataclass(frozen=True)
class Finding:
    """An expert's claim that one indicator of one service changed, with its numbers."""

    service: str
    indicator: str
    kind: IndicatorKind
    modality: Modality
    score: float  # surprise on a common scale: ~ robust z-score, >= 0
    onset: float | None
    direction: int  # +1 went up / appeared, -1 went down / vanished
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Incident:
    """What an alert or a person hands to warroom: when, and optionally where it hurts."""

    id: str
    window: TimeRange  # where to look for the fault
    alert_time: float  # when the symptom was noticed (or the fault suspected to start)
    symptom_service: str | None = None
    symptom_metric: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    # Other services whose alerts fired in the same storm: each is a symptom to explain (or,
    # for a flapping alert, noise the investigation must not chase).
    also_alerting: tuple[str, ...] = ()


@dataclass(frozen=True)
class RootCause:
    """One ranked candidate: a service, the indicator that changed first, and why."""

    service: str
    indicator: str
    fault_type: str
    score: float
    onset: float | None
    path: tuple[str, ...]  # culprit -> ... -> symptom
    explains: float  # share of anomalous services this candidate can explain along the graph
    evidence: tuple[Evidence, ...] = ()


NarrativeSource = Literal["model", "fallback", "template"]


@dataclass(frozen=True)
class Narrative:
    """The report's prose: a short summary and next steps, and who wrote them.

    source: "model" (a language model's reply that passed every check), "fallback" (a model
    was asked but its reply was rejected, so the template was used), "template" (no model was
    configured). Every number in a template narrative is taken from the report.
    """

    summary: str
    steps: tuple[str, ...] = ()
    source: NarrativeSource = "template"


@dataclass(frozen=True)
class ModelRejection:
    """A language model output (or failed call) that the report did not use, and why."""

    task: str  # narrate, judge, plan, summarise
    reason: str  # timeout, unavailable, invalid_output, ungrounded_number, budget
    detail: str
    attempt: int = 1  # 2 for the one repair attempt


@dataclass(frozen=True)
class Report:
    """The answer: ranked root causes, confidence, and what evidence could not be had."""

    incident: Incident
    candidates: tuple[RootCause, ...]
    confidence: float
    missing: tuple[str, ...] = ()
    findings_count: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    narrative: Narrative | None = None  # summary and next steps (see llm.narrate)
    model_rejections: tuple[ModelRejection, ...] = ()
    # The planner's own score before calibration (causal/calibration.py); None: not calibrated.
    raw_confidence: float | None = None

    @property
    def culprit(self) -> RootCause | None:
        """The top candidate, or None when inconclusive."""
        return self.candidates[0] if self.candidates else None
