"""Shared fixtures: where the public data sets live (../shared/data beside the project)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WARROOM_DATA", PROJECT.parent / "shared" / "data"))


def data_root(name: str) -> Path:
    """The root of one shared data set, or skip the test saying where it was looked for."""
    root = SHARED_DATA / name
    if not root.is_dir():
        pytest.skip(f"{name} data set not found at {root} (set WARROOM_DATA to its parent)")
    return root


@pytest.fixture
def nezha_root() -> Path:
    """The Nezha data set root."""
    return data_root("nezha")


@pytest.fixture
def petshop_root() -> Path:
    """The PetShop data set root."""
    return data_root("petshop")
