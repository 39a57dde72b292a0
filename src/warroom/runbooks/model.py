"""What a runbook is: the alert it answers, the DSL checks that recognise it, and what to do.

Pydantic models (frozen, strict about unknown fields), so a runbook read back from a file is
validated field by field and a hand edit that breaks it fails with the field's name.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from warroom.dsl.parser import parse
from warroom.dsl.syntax import Binary, Call, Expr, Selector, Unary, Window

FORMAT = "warroom-runbook/1"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _one_line(text: str) -> str:
    """Whitespace runs (newlines too) as one space: each of these is one Markdown line."""
    return " ".join(text.split())


class Signature(_Frozen):
    """The alert a runbook answers and the root cause it found behind it."""

    symptom_service: str | None = None
    symptom_metric: str | None = None
    symptom_family: str | None = None  # latency, errors or traffic (causal.rank.symptom_family)
    culprit_service: str
    culprit_indicator: str = ""
    fault_type: str
    path: tuple[str, ...] = ()  # culprit -> ... -> symptom

    @property
    def services(self) -> frozenset[str]:
        """Every service the signature names."""
        named = {self.culprit_service, *self.path}
        if self.symptom_service:
            named.add(self.symptom_service)
        return frozenset(named)


class Check(_Frozen):
    """One DSL expression that is true when the runbook applies, and why it should be."""

    name: str = Field(min_length=1)
    expression: str = Field(min_length=1)
    why: str = ""

    _lines = field_validator("name", "why")(_one_line)

    @property
    def services(self) -> frozenset[str]:
        """Services the expression reads: selector `service=` values and `call X` operations."""
        return services_in(parse(self.expression))


class Provenance(_Frozen):
    """Where a runbook was learned."""

    incident_id: str
    confidence: float = Field(ge=0.0, le=1.0)
    verdict: str = ""  # the report's words for its confidence (high, medium, ...)
    source: str = ""  # how the report was obtained (gym case, data set case, report file)


class Runbook(_Frozen):
    """A finished investigation kept for next time: signature, checks, remediation, origin."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    created: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # UTC, seconds
    signature: Signature
    checks: tuple[Check, ...] = Field(min_length=1)
    remediation: tuple[str, ...] = ()
    provenance: Provenance

    @field_validator("created")
    @classmethod
    def _real_moment(cls, created: str) -> str:
        datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")  # ValueError for 2025-13-40T...
        return created

    @field_validator("title")
    @classmethod
    def _title_line(cls, title: str) -> str:
        return _one_line(title)

    @field_validator("remediation")
    @classmethod
    def _step_lines(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_one_line(s) for s in steps)

    def culprit_checks(self) -> tuple[Check, ...]:
        """The checks that measure the culprit itself (not the symptoms along the path)."""
        culprit = self.signature.culprit_service
        return tuple(c for c in self.checks if culprit in c.services)


def services_in(tree: Expr) -> frozenset[str]:
    """Service names an expression's selectors filter on (`service=` or `operation~"call X"`)."""
    found: set[str] = set()
    stack: list[Expr | None] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Selector):
            found.update(_selector_services(node))
            if node.window is not None:
                stack.extend((node.window.start, node.window.end))
        elif isinstance(node, Binary):
            stack.extend((node.left, node.right))
        elif isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, Call):
            stack.extend(node.args)
        elif isinstance(node, Window):  # pragma: no cover - windows sit inside selectors
            stack.extend((node.start, node.end))
    return frozenset(found)


_CALL = re.compile(r"^call\s+(\S+?)\.?$", re.IGNORECASE)


def _selector_services(node: Selector) -> set[str]:
    out = set()
    for f in node.filters:
        if not isinstance(f.value, str):
            continue
        if f.name == "service" and f.op == "=":
            out.add(f.value)
        called = _CALL.match(f.value) if f.name == "operation" else None
        if called:
            out.add(called.group(1))
    return out


def slug(text: str, limit: int = 40) -> str:
    """Lower-case words joined by hyphens: 'orders-db / pool' -> 'orders-db-pool'."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "runbook"


def runbook_id(signature: Signature, incident_id: str, expressions: tuple[str, ...]) -> str:
    """A readable, stable id: the culprit and fault type, and a short hash of what was learned.

    The same investigation saved twice gets the same id (so it overwrites, not duplicates)."""
    text = "\n".join(
        (incident_id, signature.culprit_service, signature.fault_type, *sorted(expressions))
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{slug(f'{signature.culprit_service}-{signature.fault_type}')}-{digest}"
