"""The load generator: its drifting rate, its open-loop arrivals against a real loopback
server, and its tally."""

from __future__ import annotations

import asyncio
import random

import pytest

from warroom.errors import InputError
from warroom.gym.live.shop.gateway import Gateway
from warroom.gym.live.shop.load import PERIOD_S, Shoppers, check_target, rate_at


def test_the_rate_swings_twenty_percent_around_the_mean() -> None:
    rates = [rate_at(10.0, t) for t in range(0, int(PERIOD_S))]
    assert min(rates) == pytest.approx(8.0, abs=0.01) and max(rates) == pytest.approx(
        12.0, abs=0.01
    )
    assert rate_at(10.0, 0) == 10.0


@pytest.mark.parametrize("target", ["http://127.0.0.2:80", "http://example.com", "ftp://127.0.0.1"])
def test_only_the_loopback_is_a_target(target: str) -> None:
    with pytest.raises(InputError):
        check_target(target)


async def _run_against_gateway(seconds: float, rps: float) -> tuple[int, int, int, int]:
    server = await asyncio.start_server(Gateway().serve_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        shoppers = Shoppers(f"http://127.0.0.1:{port}/", rps, random.Random(3))
        tally = await shoppers.run(seconds)
    return tally.sent, tally.ok, tally.errors, tally.dropped


def test_arrivals_come_at_the_rate_and_every_answer_is_tallied() -> None:
    # The gateway knows none of the shop's routes: every request is a 404, an error.
    sent, ok, errors, dropped = asyncio.run(_run_against_gateway(seconds=1.5, rps=40))
    assert (
        35 <= sent <= 95
    )  # Poisson around 60 (a checkout arrival sends one request: the add fails)
    assert ok == 0 and errors == sent and dropped == 0
