"""orders: the order table in PostgreSQL and the stream the worker fulfils from.

    POST /orders {"user": "u07", "total": 52.5, "items": 3, "charge_id": "ch_..."}
        INSERT INTO orders ... RETURNING id        (a pooled connection, statement_timeout)
        XADD shop:orders {order_id, user, traceparent}
        -> {"order_id": 42}

The stream entry carries the request's traceparent, so the worker's processing span continues
the order's trace. The table is created at start if missing (idempotent); until PostgreSQL
answers, start-up retries in the background instead of holding /healthz. v2-bad inserts into a
column the table does not have (`customer_id`): every order fails with UndefinedColumn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter
from opentelemetry import propagate
from psycopg import sql
from pydantic import BaseModel, Field

from warroom.gym.live.contracts import STREAM
from warroom.gym.live.shop.app import Runtime
from warroom.gym.live.shop.instrument import datastore_call
from warroom.gym.live.shop.stores import postgres_pool, redis_client, watch_pool

log = logging.getLogger("shop.orders")

SCHEMA = """CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY, user_id text, total numeric,
    created_at timestamptz DEFAULT now(), shipped_at timestamptz)"""
SCHEMA_RETRY_S = 2.0
STREAM_MAXLEN = 100_000  # bounded, approximately: the stream must not grow without end


class NewOrder(BaseModel):
    """What checkout sends for one paid order."""

    user: str
    total: float = Field(ge=0)
    items: int = Field(ge=1)
    charge_id: str


class Orders:
    """The orders service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pool = postgres_pool(runtime.config)
        self.redis = redis_client(runtime.config)
        self._schema: asyncio.Task[None] | None = None
        watch_pool(self.pool, runtime.telemetry)
        self.router = APIRouter()
        self.router.add_api_route("/orders", self.create, methods=["POST"])

    async def start(self) -> None:
        """Open the pool in the background and create the table once PostgreSQL answers."""
        await self.pool.open(wait=False)
        self._schema = asyncio.get_running_loop().create_task(self._ensure_schema())

    async def stop(self) -> None:
        """Close the pool and the Redis connections."""
        if self._schema is not None:
            self._schema.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._schema
        await self.pool.close(timeout=2)
        await self.redis.aclose()

    async def _ensure_schema(self) -> None:
        while True:
            try:
                async with self.pool.connection() as conn:
                    await conn.execute(SCHEMA)
                return
            except Exception as err:  # a background task's edge: keep trying, say why
                log.warning("cannot create the orders table yet: %s", err)
                await asyncio.sleep(SCHEMA_RETRY_S)

    async def create(self, order: NewOrder) -> dict[str, int]:
        """Store the order and publish it for fulfilment."""
        order_id = await self._insert(order)
        entry: dict[Any, Any] = {"order_id": str(order_id), "user": order.user}
        propagate.inject(entry)  # traceparent (and tracestate) into the stream entry
        async with datastore_call(self.runtime.telemetry, "redis", "XADD"):
            await self.redis.xadd(STREAM, entry, maxlen=STREAM_MAXLEN, approximate=True)
        return {"order_id": order_id}

    async def _insert(self, order: NewOrder) -> int:
        user_column = "customer_id" if self.runtime.bad else "user_id"  # v2-bad's rename
        statement = sql.SQL("INSERT INTO orders ({}, total) VALUES (%s, %s) RETURNING id").format(
            sql.Identifier(user_column)
        )
        async with (
            datastore_call(self.runtime.telemetry, "postgres", "INSERT", "INSERT INTO orders"),
            self.pool.connection() as conn,
        ):
            cursor = await conn.execute(statement, (order.user, order.total))
            row = await cursor.fetchone()
        assert row is not None  # RETURNING always yields the new row
        return int(row[0])
