"""The hand-built case of handbuilt.py as a Context (module-scoped: nothing writes to it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from warroom.dsl import Context

from .handbuilt import ALERT, BASELINE, WINDOW, build_store


@pytest.fixture(scope="module")
def context() -> Iterator[Context]:
    """The hand-built case; hypothesis tests share it, so it must be wider than one test."""
    store = build_store()
    yield Context(store, WINDOW, ALERT, BASELINE)
    store.close()
