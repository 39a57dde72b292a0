"""A small Report (as the pipeline would produce) for the llm tests, with a secret planted in
one evidence statement the way a log template can carry one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warroom.model import Evidence, Incident, Report, RootCause, TimeRange

T0 = 1674986600.0  # 2023-01-29T10:03:20Z
SECRETS = ("hunter2", "AKIAIOSFODNN7EXAMPLE", "oncall@example.com", "10.20.30.40")

EVIDENCE = (
    Evidence(
        "metric:orders-db:connections",
        "orders-db connections 12 -> 95 (x7.92, 8.1 robust sigma) from 2023-01-29T10:03:20Z",
        value=95.0,
        baseline=12.0,
        unit="connections",
        source="experts.metrics.deviation(series=orders-db/connections)",
    ),
    Evidence(
        "log:checkout:pool",
        "checkout: error log 'pool exhausted connecting to "
        "postgres://app:hunter2@10.20.30.40/orders' new: 0/340 lines (0.0%) fault-free vs "
        "12/350 (3.4%) now",
        value=0.0343,
        baseline=0.0,
        unit="share of service log lines",
        source="experts.logs.template_findings(service=checkout)",
    ),
    Evidence(
        "log:orders-db:auth",
        "orders-db: log 'login aws_key=AKIAIOSFODNN7EXAMPLE by oncall@example.com' new",
        value=0.01,
        baseline=0.0,
        source="experts.logs.template_findings(service=orders-db)",
    ),
)


def make_report() -> Report:
    """A report blaming orders-db for checkout errors."""
    culprit = RootCause(
        service="orders-db",
        indicator="connections",
        fault_type="pool",
        score=8.1,
        onset=T0,
        path=("orders-db", "orders", "checkout"),
        explains=0.8,
        evidence=EVIDENCE,
    )
    other = RootCause(
        "orders", "latency", "symptom-only", 3.0, T0 + 40, ("orders", "checkout"), 0.5
    )
    incident = Incident("INC-7", TimeRange(T0 - 300, T0 + 600), T0 + 60, "checkout", "errors")
    return Report(incident, (culprit, other), confidence=0.92, findings_count=9)


@pytest.fixture
def report() -> Report:
    """A report with a planted secret in its evidence."""
    return make_report()


def reply(payload: object) -> str:
    """One replay line whose content is `payload` as JSON text."""
    return json.dumps({"content": json.dumps(payload)})


def write_script(path: Path, *lines: str) -> Path:
    """A replay file with these lines."""
    path.write_text("\n".join(lines) + "\n")
    return path


def audit_lines(path: Path) -> list[dict[str, object]]:
    """The entries of an audit file."""
    return [json.loads(line) for line in path.read_text().splitlines()]
