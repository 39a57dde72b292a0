"""What each task gets and must return. Outputs are pydantic models: their JSON schema is sent
to the server (structured output) and every reply is validated against it.

Inputs turn themselves into `facts`: short lines for the prompt, which also count as
grounding for numbers (a confidence the prompt states may be repeated).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TASKS = ("plan", "judge", "summarise", "narrate")


class _Output(BaseModel):
    # Extra keys are ignored rather than fatal: models like to add a "notes" field.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Narrative(_Output):
    """The report's prose: a short summary and the next steps (a runbook)."""

    summary: str = Field(min_length=1, max_length=1500)
    steps: list[str] = Field(default_factory=list, max_length=10)


class Judgement(_Output):
    """Whether the evidence supports a hypothesis, how sure, and why."""

    verdict: Literal["supports", "refutes", "inconclusive"]
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(min_length=1, max_length=1000)


class PlanStep(_Output):
    """One check an actor should run."""

    actor: str = Field(min_length=1, max_length=60)
    check: str = Field(min_length=1, max_length=300)


class Plan(_Output):
    """The checks to run next, most promising first."""

    steps: list[PlanStep] = Field(max_length=10)


class LogSummary(_Output):
    """A few lines on what the logs say, and the lines worth reading."""

    summary: str = Field(min_length=1, max_length=1000)
    notable: list[str] = Field(default_factory=list, max_length=10)


class TaskInput(BaseModel):
    """Base of task inputs: frozen, and able to list itself as facts."""

    model_config = ConfigDict(frozen=True)

    def facts(self) -> list[str]:
        """Short lines that describe this input in a prompt."""
        raise NotImplementedError


class NarrateInput(TaskInput):
    """The ranked answer to narrate (the evidence goes separately)."""

    incident: str
    culprit: str
    fault_type: str
    indicator: str
    onset: str  # ISO time or "unknown"
    path: list[str]
    confidence: float
    confidence_label: str
    explains: float
    others: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)

    def facts(self) -> list[str]:
        """The answer as lines."""
        lines = [
            f"incident: {self.incident}",
            f"culprit: {self.culprit}",
            f"fault type: {self.fault_type}",
            f"first changed indicator: {self.indicator}",
            f"onset: {self.onset}",
            f"propagation path: {' -> '.join(self.path)}",
            f"confidence: {self.confidence:.2f} ({self.confidence_label})",
            f"explains {self.explains:.0%} of the anomalous services",
        ]
        lines += [f"other candidate: {o}" for o in self.others]
        return lines + [f"missing evidence: {m}" for m in self.missing]


class JudgeInput(TaskInput):
    """A hypothesis to test against the evidence."""

    hypothesis: str

    def facts(self) -> list[str]:
        """The hypothesis as a line."""
        return [f"hypothesis: {self.hypothesis}"]


class PlanInput(TaskInput):
    """The symptom, the suspects so far, and who can check what."""

    symptom: str
    suspects: list[str]
    actors: list[str]

    def facts(self) -> list[str]:
        """The planning situation as lines."""
        return [
            f"symptom: {self.symptom}",
            f"suspects: {', '.join(self.suspects) or 'none yet'}",
            f"actors: {', '.join(self.actors)}",
        ]


class SummariseInput(TaskInput):
    """Log lines (templates with counts, preferably) of one service."""

    service: str
    lines: list[str]

    def facts(self) -> list[str]:
        """The service and its lines."""
        return [f"service: {self.service}", *(f"log: {line}" for line in self.lines)]
