"""The load generator: shoppers arriving at the frontend open-loop, at a rate that drifts.

    python -m warroom.gym.live.shop load --target http://127.0.0.1:18100 --rps 6 --seconds 60
    load: sent=361 ok=355 errors=6 dropped=0

Arrivals are a Poisson process (exponential gaps: random jitter) whose rate follows
rps * (1 + 0.2 sin(2 pi t / 180 s)): a slow swell the detector must not mistake for a fault.
Open-loop, as users are: a slow shop does not slow the arrivals; when MAX_IN_FLIGHT requests
are already waiting, a new arrival is dropped and counted, not queued (queueing would turn the
generator closed-loop and hide the slowdown). The mix per arrival: home 35%, product page 35%,
add to cart 15%, checkout 15% (an add, then the checkout, so the cart is not empty), by users of
a fixed pool. Only 127.0.0.1 is a target.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from warroom.errors import InputError
from warroom.gym.live.contracts import HOST
from warroom.gym.live.shop.catalog import PRODUCTS

USERS = tuple(f"u{i:03d}" for i in range(50))
MIX = (("home", 0.35), ("product", 0.35), ("add", 0.15), ("checkout", 0.15))
SWING = 0.2  # the rate's slow variation, +-20 %
PERIOD_S = 180.0
TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 64


@dataclass
class Tally:
    """What the run did."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0

    def line(self) -> str:
        """The one-line summary."""
        return f"load: sent={self.sent} ok={self.ok} errors={self.errors} dropped={self.dropped}"


def check_target(target: str) -> str:
    """`target` without a trailing slash; InputError unless it is http://127.0.0.1[:port]."""
    parts = urlsplit(target)
    if parts.scheme != "http" or parts.hostname != HOST:
        raise InputError(f"load target must be http://{HOST}:PORT, not {target!r}")
    return target.rstrip("/")


def rate_at(rps: float, elapsed_s: float) -> float:
    """The arrival rate `elapsed_s` into the run."""
    return rps * (1 + SWING * math.sin(2 * math.pi * elapsed_s / PERIOD_S))


class Shoppers:
    """Arrivals against one frontend."""

    def __init__(self, target: str, rps: float, rng: random.Random) -> None:
        self.target = check_target(target)
        self.rps = rps
        self.rng = rng
        self.tally = Tally()
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, seconds: float, stop: asyncio.Event | None = None) -> Tally:
        """Send arrivals for `seconds` (or until `stop`), then wait for those in flight."""
        stop = stop or asyncio.Event()
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
        async with httpx.AsyncClient(
            base_url=self.target, timeout=TIMEOUT_S, limits=limits, trust_env=False
        ) as client:
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds and not stop.is_set():
                self._arrive(client)
                gap = self.rng.expovariate(rate_at(self.rps, elapsed))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(gap, seconds - elapsed))
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=TIMEOUT_S * 2)
        return self.tally

    def _arrive(self, client: httpx.AsyncClient) -> None:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self.tally.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._visit(client))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _visit(self, client: httpx.AsyncClient) -> None:
        user = self.rng.choice(USERS)
        product = self.rng.choice(tuple(PRODUCTS))
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "home":
            await self._send(client, "GET", "/", params={"user": user})
        elif kind == "product":
            await self._send(client, "GET", f"/product/{product}")
        else:
            item = {"product_id": product, "quantity": self.rng.randint(1, 3)}
            added = await self._send(client, "POST", f"/cart/{user}/add", json=item)
            if kind == "checkout" and added:
                await self._send(client, "POST", f"/checkout/{user}")

    async def _send(self, client: httpx.AsyncClient, method: str, path: str, **kw: object) -> bool:
        self.tally.sent += 1
        try:
            answer = await client.request(method, path, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError:
            self.tally.errors += 1
            return False
        if answer.status_code < 400:
            self.tally.ok += 1
            return True
        self.tally.errors += 1
        return False


async def run_load(target: str, rps: float, seconds: float, seed: int | None = None) -> Tally:
    """Run the load until `seconds` pass or SIGTERM/SIGINT; the tally."""
    shoppers = Shoppers(target, rps, random.Random(seed))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await shoppers.run(seconds, stop)
