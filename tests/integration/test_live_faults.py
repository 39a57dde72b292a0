"""The live datastore faults against real servers: a SIGSTOPped redis-server stops answering
PING and answers again once healed; a held LOCK TABLE blocks an INSERT into orders in a real
PostgreSQL 15 (it fails on its lock_timeout) until healed; a connection holder leaves a new
client "too many clients" until healed. Missing binaries skip, saying which."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from integration.postgres import postgres_server
from integration.servers import free_port
from warroom.gym.live.contracts import Layout, ServiceSettings
from warroom.gym.live.faults import CacheDown, DbPoolExhaustion, make_fault
from warroom.gym.live.registry import Registry

NO_RETRY = Retry(NoBackoff(), 0)  # a stalled PING fails after its timeout, not ~10 s of retries


@dataclass
class Datastores:
    """contracts.Processes over a real Redis and/or PostgreSQL (nothing else runs)."""

    layout: Layout
    run_dir: Path
    redis_pid: int = 0
    dsn: str = ""

    def pid(self, name: str) -> int:
        assert name == "redis"
        return self.redis_pid

    def restart(
        self, name: str, *, version: str | None = None, settings: ServiceSettings | None = None
    ) -> None:
        raise AssertionError("no datastore fault restarts a service")

    def postgres_dsn(self) -> str:
        return self.dsn

    def cgroup_name(self, name: str) -> str:
        return name


class _RedisLayout(Layout):
    """A layout whose "redis" is the test's own redis-server port."""

    def __init__(self, redis_port: int) -> None:
        super().__init__(base_port=redis_port - 200)  # Layout.port("redis") is base + 200


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    made = Registry(tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.kill()  # SIGKILL works on a stopped process too
        proc.wait(timeout=5)


def test_a_stopped_redis_times_out_and_answers_again_once_healed(
    redis_server: tuple[int, int], tmp_path: Path, registry: Registry
) -> None:
    port, pid = redis_server
    procs = Datastores(_RedisLayout(port), tmp_path, redis_pid=pid)
    fault = make_fault("cache-down", "redis", random.Random(0))
    assert isinstance(fault, CacheDown) and fault.mode == "stop"
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, retry=NO_RETRY)
    fault.inject(procs, registry)
    try:
        assert registry.entries()["stopped"][0]["pid"] == pid
        with pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        fault.heal(procs, registry)
    assert redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
    assert registry.entries() == {}


@pytest.fixture(scope="module")
def shop_dsn() -> Iterator[str]:
    with postgres_server() as server:
        server.create_database("shop")
        dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=shop"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text)")
        yield dsn


def _insert(dsn: str, lock_timeout: str = "500ms") -> None:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"SET lock_timeout = '{lock_timeout}'")
        conn.execute("INSERT INTO orders (item) VALUES ('book')")


def test_a_held_table_lock_blocks_inserts_until_healed(
    shop_dsn: str, tmp_path: Path, registry: Registry
) -> None:
    procs = Datastores(Layout(), tmp_path, dsn=shop_dsn)
    fault = make_fault("db-lock-contention", "postgres", random.Random(0))
    _insert(shop_dsn)
    fault.inject(procs, registry)
    try:
        with pytest.raises(psycopg.errors.LockNotAvailable):
            _insert(shop_dsn)
    finally:
        fault.heal(procs, registry)
    _insert(shop_dsn, lock_timeout="3s")
    assert registry.entries() == {}


def test_held_connections_leave_a_new_client_none_until_healed(
    shop_dsn: str, tmp_path: Path, registry: Registry
) -> None:
    procs = Datastores(Layout(), tmp_path, dsn=shop_dsn)
    fault = make_fault("db-pool-exhaustion", "postgres", random.Random(0))
    fault.inject(procs, registry)
    try:
        assert isinstance(fault, DbPoolExhaustion) and fault.held > 50
        with pytest.raises(psycopg.OperationalError, match="too many clients|connection slots"):
            psycopg.connect(shop_dsn, connect_timeout=3).close()
    finally:
        fault.heal(procs, registry)
    _insert(shop_dsn)
    assert registry.entries() == {}
