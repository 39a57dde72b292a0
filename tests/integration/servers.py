"""The real servers of warroom.bench.servers, with a missing binary skipping the test."""

from __future__ import annotations

import pytest

from warroom.bench import servers
from warroom.bench.servers import (
    alertmanager,
    free_port,
    import_prometheus,
    prometheus,
    running,
    serve,
    victoria_metrics,
)

__all__ = [
    "alertmanager",
    "free_port",
    "import_prometheus",
    "prometheus",
    "running",
    "serve",
    "victoria_metrics",
]


def _skip(message: str) -> None:
    pytest.skip(message)


servers.on_missing = _skip
