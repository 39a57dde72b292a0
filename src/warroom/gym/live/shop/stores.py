"""The shop's clients to its datastores, as configured (through the edge proxy's ports).

    redis = redis_client(config)          # redis.asyncio, socket timeouts = client_timeout_s
    pool = postgres_pool(config)          # psycopg_pool, opened in the background
    await pool.open(wait=False)
    watch_pool(pool, telemetry)           # db_pool_connections_in_use / _max / requests_waiting

No client retries behind the service's back: redis-py's default three attempts would turn a
stalled Redis into three timeouts per call, and the injected fault into a different latency than
the one configured. Each statement runs under statement_timeout = client_timeout_s, as a web
service sets it, so a held lock fails a query instead of hanging it forever.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from warroom.gym.live.contracts import ServiceConfig
from warroom.gym.live.shop.telemetry import Telemetry

POOL_RECONNECT_S = 5.0  # give up a failed reconnection this fast and try again on demand


def redis_client(config: ServiceConfig) -> aioredis.Redis:
    """A Redis client for `config`'s redis peer (no I/O until the first command)."""
    host, _, port = config.peers["redis"].rpartition(":")
    timeout = config.settings.client_timeout_s
    return aioredis.Redis(
        host=host,
        port=int(port),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        health_check_interval=0,
    )


def postgres_pool(config: ServiceConfig) -> AsyncConnectionPool:
    """A closed pool of at most db_pool_size connections to `config`'s postgres_dsn; a request
    waits at most client_timeout_s for a connection (then PoolTimeout)."""
    settings = config.settings
    statement_ms = int(settings.client_timeout_s * 1000)
    return AsyncConnectionPool(
        config.postgres_dsn,
        kwargs={
            "connect_timeout": max(2, int(settings.client_timeout_s)),  # libpq: whole seconds
            "options": f"-c statement_timeout={statement_ms}",
            "autocommit": True,
        },
        min_size=1,
        max_size=settings.db_pool_size,
        timeout=settings.client_timeout_s,
        reconnect_timeout=POOL_RECONNECT_S,
        open=False,
        name=config.service,
    )


def watch_pool(pool: AsyncConnectionPool, telemetry: Telemetry) -> None:
    """The pool's gauges, read from its stats at every scrape."""
    in_use = telemetry.gauge("db_pool_connections_in_use", "PostgreSQL connections lent out")
    limit = telemetry.gauge("db_pool_connections_max", "The pool's connection limit")
    waiting = telemetry.gauge("db_pool_requests_waiting", "Requests waiting for a connection")

    def lent() -> float:
        stats = pool.get_stats()
        return float(stats.get("pool_size", 0) - stats.get("pool_available", 0))

    in_use.set_function(lent)
    limit.set_function(lambda: float(pool.max_size))
    waiting.set_function(lambda: float(pool.get_stats().get("requests_waiting", 0)))
