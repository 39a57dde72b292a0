"""Shared cases: three generated incidents (seconds each, so built once per session) and the
recorded reports of every gym fault kind (gym_reports.json, see test_derive.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from warroom.gym.case import GymCase
from warroom.gym.simulator import generate
from warroom.model import Report
from warroom.planner import investigate
from warroom.runbooks import Runbook, from_report, report_from_json

REPORTS = Path(__file__).with_name("gym_reports.json")
CREATED = datetime(2025, 6, 16, 3, 0, tzinfo=UTC)


def recorded_reports() -> dict[str, dict[str, Any]]:
    """`topology/fault/seed` -> the JSON of the report warroom wrote for it."""
    data: dict[str, dict[str, Any]] = json.loads(REPORTS.read_text(encoding="utf-8"))
    return data


def recorded_runbooks() -> dict[str, Runbook]:
    """A runbook from each recorded report (inconclusive ones too)."""
    return {
        key: from_report(report_from_json(payload), created=CREATED, min_confidence=0.0)
        for key, payload in recorded_reports().items()
    }


@pytest.fixture(scope="session")
def pool_case() -> Iterator[GymCase]:
    """orders-db connection pool exhaustion in the shop (the runbook's own incident)."""
    case = generate("shop", "db-pool-exhaustion", 1)
    yield case
    case.store.close()


@pytest.fixture(scope="session")
def pool_report(pool_case: GymCase) -> Report:
    """warroom's report on pool_case (the ranking's, calibrated, as before the director)."""
    return investigate(
        pool_case.incident,
        pool_case.store,
        pool_case.baseline,
        pool_case.graph_edges,
        planner="ranking",
    ).report


@pytest.fixture(scope="session")
def pool_runbook(pool_report: Report) -> Runbook:
    """The runbook learned from pool_case."""
    return from_report(pool_report, created=CREATED, source="gym shop/db-pool-exhaustion/1")


@pytest.fixture(scope="session")
def pool_again() -> Iterator[GymCase]:
    """The same fault on the same database, another seed: the runbook should fit it."""
    case = generate("shop", "db-pool-exhaustion", 2)
    assert case.truth.service == "orders-db"
    yield case
    case.store.close()


@pytest.fixture(scope="session")
def disk_case() -> Iterator[GymCase]:
    """Another fault on the same database (its disk fills up): the runbook should not fit."""
    case = generate("shop", "disk-full", 2)
    assert case.truth.service == "orders-db"
    yield case
    case.store.close()
