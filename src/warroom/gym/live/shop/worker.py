"""worker: fulfils orders from the Redis stream, one at a time.

    XREADGROUP GROUP fulfilment worker-1 STREAMS shop:orders >     (group made if missing)
        per entry, in a CONSUMER span continuing the order's trace (its traceparent field):
        UPDATE orders SET shipped_at = now()      (PostgreSQL, pooled)
        shipping POST /ship                        (the label)
        XACK
    every second: XINFO GROUPS -> queue_lag_messages (undelivered + pending entries)

A failed entry stays pending and is claimed again (XAUTOCLAIM) once idle for RETRY_IDLE_S, so a
disk-full shipping or a stalled PostgreSQL backs the stream up and the lag shows it. The app in
the same process serves /metrics, /healthz, /_chaos/leak and /_chaos/slow: a slow consumer
spends ms_per_message per entry (mostly awaiting, partly on the CPU). v2-bad marks orders
shipped in a column the table does not have: every entry fails and the stream backs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from psycopg import sql
from pydantic import BaseModel, Field
from redis.exceptions import ResponseError

from warroom.gym.live.contracts import CONSUMER_GROUP, STREAM
from warroom.gym.live.shop.app import Runtime
from warroom.gym.live.shop.chaos import loopback_only
from warroom.gym.live.shop.instrument import PeerError, datastore_call
from warroom.gym.live.shop.stores import postgres_pool, redis_client, watch_pool

log = logging.getLogger("shop.worker")

CONSUMER = "worker-1"  # one name across restarts: a restarted worker owns its old pending
BATCH = 10
BLOCK_MS = 1000
RETRY_IDLE_S = 15.0
CLAIM_EVERY_S = 5.0
LAG_EVERY_S = 1.0
ERROR_PAUSE_S = 1.0
CPU_SHARE = 0.2  # of a slowed message's time, spent computing rather than awaiting
CPU_SLICE_S = 0.01  # the loop gets back control this often while computing


class SlowRequest(BaseModel):
    """How long each message takes (0: normal)."""

    ms_per_message: float = Field(ge=0, le=60_000)


async def spend(seconds: float) -> None:
    """Spend `seconds` per message: mostly awaiting (a slow dependency would), partly burning
    CPU in slices so /metrics still answers."""
    await asyncio.sleep(seconds * (1 - CPU_SHARE))
    deadline = time.perf_counter() + seconds * CPU_SHARE
    while time.perf_counter() < deadline:
        until = min(deadline, time.perf_counter() + CPU_SLICE_S)
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(0)


class Worker:
    """The fulfilment consumer and its small app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.redis = redis_client(runtime.config)
        self.pool = postgres_pool(runtime.config)
        self.ms_per_message = 0.0
        self._group_ready = False
        self._last_claim = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        telemetry = runtime.telemetry
        watch_pool(self.pool, telemetry)
        self.lag = telemetry.gauge("queue_lag_messages", "Stream entries not yet acknowledged")
        self.processed = telemetry.counter(
            "queue_messages_processed", "Stream entries processed", ["status"]
        )
        self.duration = telemetry.histogram(
            "queue_message_processing_seconds", "Time to fulfil one stream entry"
        )
        self.router = APIRouter()
        self.router.add_api_route(
            "/_chaos/slow", self.set_slow, methods=["POST"], dependencies=[Depends(loopback_only)]
        )

    async def set_slow(self, body: SlowRequest) -> dict[str, float]:
        """The slow-consumer hook."""
        self.ms_per_message = body.ms_per_message
        return {"ms_per_message": self.ms_per_message}

    async def start(self) -> None:
        """Open the pool in the background; start consuming and measuring the lag."""
        await self.pool.open(wait=False)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._forever(self._consume_once)),
            loop.create_task(self._forever(self._measure_lag, LAG_EVERY_S)),
        ]

    async def stop(self) -> None:
        """Stop both loops; close the pool and the Redis connections."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pool.close(timeout=2)
        await self.redis.aclose()

    async def _forever(self, step: Callable[[], Awaitable[None]], pause: float = 0.0) -> None:
        """Run `step` until cancelled; a failure is logged and retried after a pause."""
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except ResponseError as err:
                if "NOGROUP" in str(err):  # Redis lost its data (a crash): make the group again
                    self._group_ready = False
                log.error("%s failed: %s", step.__name__, err)
                await asyncio.sleep(ERROR_PAUSE_S)
            except Exception as err:  # a background loop's edge: say why, keep going
                log.error("%s failed: %s: %s", step.__name__, type(err).__name__, err)
                await asyncio.sleep(ERROR_PAUSE_S)
            if pause:
                await asyncio.sleep(pause)

    async def _consume_once(self) -> None:
        await self._ensure_group()
        for entry_id, fields in await self._claim_stale() or await self._read_new():
            await self._process(entry_id, fields)

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            async with datastore_call(self.runtime.telemetry, "redis", "XGROUP CREATE"):
                await self.redis.xgroup_create(STREAM, CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):  # BUSYGROUP: it exists already, as wanted
                raise
        self._group_ready = True

    async def _read_new(self) -> list[tuple[str, dict[str, str]]]:
        # Not timed: its duration is mostly the BLOCK wait for new entries, not Redis's speed.
        timeout_ms = self.runtime.config.settings.client_timeout_s * 1000
        answer: Any = await self.redis.xreadgroup(
            CONSUMER_GROUP,
            CONSUMER,
            {STREAM: ">"},
            count=BATCH,
            block=int(min(BLOCK_MS, timeout_ms / 2)) or 1,
        )
        return [entry for _, entries in answer or () for entry in entries]

    async def _claim_stale(self) -> list[tuple[str, dict[str, str]]]:
        """Entries that failed (or whose consumer died) RETRY_IDLE_S ago, now ours again."""
        if time.monotonic() - self._last_claim < CLAIM_EVERY_S:
            return []
        self._last_claim = time.monotonic()
        async with datastore_call(self.runtime.telemetry, "redis", "XAUTOCLAIM", traced=False):
            answer = await self.redis.xautoclaim(
                STREAM, CONSUMER_GROUP, CONSUMER, int(RETRY_IDLE_S * 1000), count=BATCH
            )
        return list(answer[1])

    async def _process(self, entry_id: str, fields: dict[str, str]) -> None:
        telemetry = self.runtime.telemetry
        started, status = time.perf_counter(), "error"
        with telemetry.tracer.start_as_current_span(
            f"process {STREAM}",
            context=propagate.extract(fields),  # continues the order's trace
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "redis",
                "messaging.destination.name": STREAM,
                "messaging.message.id": entry_id,
                "messaging.consumer.group.name": CONSUMER_GROUP,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self._fulfil(entry_id, fields)
                status = "ok"
            except PeerError as err:
                span.set_status(Status(StatusCode.ERROR, str(err)))
                log.error("order entry %s: call to %s failed: %s", entry_id, err.peer, err.reason)
            except Exception as err:  # one bad entry must not stop the consumer
                span.record_exception(err)
                span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                log.exception("order entry %s failed", entry_id)
        self.processed.labels(status).inc()
        self.duration.observe(time.perf_counter() - started)

    async def _fulfil(self, entry_id: str, fields: dict[str, str]) -> None:
        if self.ms_per_message > 0:
            await spend(self.ms_per_message / 1000)
        order_id = int(fields["order_id"])
        await self._mark_shipped(order_id)
        await self.runtime.peers.call_ok("shipping", "POST", "/ship", json={"order_id": order_id})
        async with datastore_call(self.runtime.telemetry, "redis", "XACK"):
            await self.redis.xack(STREAM, CONSUMER_GROUP, entry_id)

    async def _mark_shipped(self, order_id: int) -> None:
        column = "shipped" if self.runtime.bad else "shipped_at"  # v2-bad's wrong column
        statement = sql.SQL(
            "UPDATE orders SET {} = now() WHERE id = %s AND shipped_at IS NULL"
        ).format(sql.Identifier(column))
        async with (
            datastore_call(self.runtime.telemetry, "postgres", "UPDATE", "UPDATE orders"),
            self.pool.connection() as conn,
        ):
            await conn.execute(statement, (order_id,))

    async def _measure_lag(self) -> None:
        """queue_lag_messages = entries never delivered to the group + delivered, not acked."""
        async with datastore_call(self.runtime.telemetry, "redis", "XINFO", traced=False):
            try:
                groups = await self.redis.xinfo_groups(STREAM)
            except ResponseError as err:
                if "no such key" not in str(err).lower():
                    raise
                groups = []  # no stream yet: nothing waits
        group = next((g for g in groups if g.get("name") == CONSUMER_GROUP), None)
        if group is None:
            self.lag.set(0)
            return
        # lag is None when Redis cannot tell (entries deleted mid-stream): count pending only
        self.lag.set(float(group.get("lag") or 0) + float(group.get("pending") or 0))
