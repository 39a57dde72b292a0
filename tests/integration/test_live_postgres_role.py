"""The live gym's PostgreSQL: the shop connects as its own role, so held connections exhaust
what the shop may use (as a pool exhaustion does) while a superuser (the exporter, the gym's
healer) still gets in through the reserved slots."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from integration.servers import free_port
from warroom.gym.live.processes import APP_ROLE, Postgres


def test_the_shop_runs_out_of_connections_and_a_superuser_does_not() -> None:
    try:
        pg = Postgres(Path(tempfile.mkdtemp(prefix="warroom-pg-role-")), free_port(), 12)
        pg.start()
    except Exception as err:  # no PostgreSQL 15 here
        pytest.skip(f"PostgreSQL could not start: {err}")
    held: list[psycopg.Connection] = []
    try:
        with psycopg.connect(pg.dsn(), autocommit=True) as shop:
            shop.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, total numeric)")
            assert shop.execute("SELECT current_user").fetchone() == (APP_ROLE,)
        with pytest.raises(psycopg.OperationalError, match="reserved"):
            for _ in range(20):  # 12 slots, 3 reserved for superusers
                held.append(psycopg.connect(pg.dsn(), connect_timeout=5))
        assert len(held) == 9
        with psycopg.connect(pg.dsn(user="postgres"), connect_timeout=5) as admin:
            assert admin.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    finally:
        for conn in held:
            conn.close()
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)
