"""Investigations as Ray tasks, on a real local Ray: the outcome comes back from a Ray worker
process, an exception and a hang fail the investigation with their reason, and serve's
--executor choice is checked before the server starts."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from unit.server.test_children import record
from warroom.errors import InputError
from warroom.server.model import InvestigationRecord, Status
from warroom.server.ray_runner import RayRunner
from warroom.server.workers import Outcome

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'warroom[ray]')")


@dataclass
class Behaving:
    def __call__(self, rec: InvestigationRecord) -> Outcome:
        return Outcome(Status.done, culprit=rec.request.service, reason=str(os.getpid()))


@dataclass
class Raising:
    def __call__(self, rec: InvestigationRecord) -> Outcome:
        raise ValueError("no such metric")


@dataclass
class Hanging:
    def __call__(self, rec: InvestigationRecord) -> Outcome:
        time.sleep(60)
        return Outcome(Status.done)


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the module (starting one costs seconds); this module's classes travel
    by value, since Ray's workers cannot import the test folder."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_the_outcome_comes_back_from_a_ray_worker() -> None:
    outcome = RayRunner(Behaving())(record())
    assert outcome.status is Status.done and outcome.culprit == "cart"
    assert int(outcome.reason) != os.getpid()


def test_an_exception_in_the_task_fails_the_investigation_with_it() -> None:
    outcome = RayRunner(Raising())(record())
    assert outcome.status is Status.failed
    assert outcome.reason == "internal error: ValueError: no such metric"


def test_a_task_past_its_timeout_fails_the_investigation() -> None:
    began = time.monotonic()
    outcome = RayRunner(Hanging(), timeout_s=2)(record())
    assert outcome.status is Status.failed and outcome.reason == "stopped after 2 s"
    assert time.monotonic() - began < 20


def test_a_runner_leaves_a_ray_it_did_not_start_running() -> None:
    runner = RayRunner(Behaving())
    runner(record())
    runner.close()
    assert ray.is_initialized()


def test_serve_checks_its_executor_before_starting(tmp_path: Path) -> None:
    from warroom.cli.serve import build

    urls: dict[str, str | None] = {"prometheus": "http://127.0.0.1:9"}
    common = ("127.0.0.1", 8080, tmp_path, None, 1, None, True, urls)
    with pytest.raises(InputError, match="give local or ray"):
        build(None, *common, executor="threads")
    with pytest.raises(InputError, match="--ray-address needs --executor ray"):
        build(None, *common, ray_address="auto")
    app, _ = build(None, *common, executor="ray")
    assert app is not None
