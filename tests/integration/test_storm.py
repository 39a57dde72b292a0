"""A small alert storm against a real warroom serve (uvicorn on 127.0.0.1, SQLite): nothing
lost, one investigation per group. `warroom bench storm` runs the 1,000-notification one."""

from __future__ import annotations

from warroom.bench.storm import run_storm


def test_a_storm_loses_nothing_and_opens_one_investigation_per_group() -> None:
    result = run_storm(notifications=60, groups=6, clients=3)
    assert result.errors == 0 and result.accepted == 60
    assert result.persisted == 60  # every notification stored before its answer
    assert result.investigations == 6  # repeats and resolves joined their group's
