"""nftables on a loopback port, for real: a 100 % drop makes a connect time out, a reject
refuses it, removing the table heals it and leaves no table. The ruleset text is checked
without root; the kernel tests skip (saying why) without root or nft."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from warroom.gym.live import nft
from warroom.gym.live.nft import Nft

kernel = pytest.mark.skipif(nft.available() is not None, reason=str(nft.available()))


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.fixture
def table() -> Iterator[Nft]:
    made = Nft(f"warroom_gym_test_{os.getpid()}")
    try:
        yield made
    finally:
        made.remove_table()
        assert not made.exists()


def _connect(port: int, timeout: float = 1.0) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout):
        pass


@kernel
def test_a_full_drop_times_a_connect_out_and_removing_the_table_heals(
    listener: int, table: Nft
) -> None:
    _connect(listener)
    table.add_drop(listener, 100)
    assert table.exists() and len(table.rules()) == 2  # to the port and from it
    with pytest.raises(TimeoutError):
        _connect(listener, timeout=0.5)
    assert table.remove_table() is True
    _connect(listener)
    assert table.remove_table() is False  # already gone: no error


@kernel
def test_a_reject_refuses_the_connection(listener: int, table: Nft) -> None:
    table.add_reject(listener)
    with pytest.raises(ConnectionRefusedError):
        _connect(listener)
    table.remove_table()
    _connect(listener)


def test_the_ruleset_is_loopback_only_and_built_from_checked_values() -> None:
    text = Nft("warroom_gym").drop_ruleset(18301, 25)
    assert "table inet warroom_gym" in text and "hook output" in text
    assert text.count('oifname "lo" ip daddr 127.0.0.1') == 2
    assert "tcp dport 18301 numgen random mod 100 < 25" in text
    assert "tcp sport 18301" in text
    assert "sport" not in Nft().drop_ruleset(18301, 25, both_ways=False)


@pytest.mark.parametrize("port", [0, 65536, "80; flush ruleset", 3.5, True])
def test_a_bad_port_never_reaches_nft(port: object) -> None:
    with pytest.raises(ValueError, match="not a TCP port"):
        Nft().drop_ruleset(port, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("percent", [-1, 101, "50"])
def test_a_bad_percentage_never_reaches_nft(percent: object) -> None:
    with pytest.raises(ValueError, match="percentage"):
        Nft().drop_ruleset(18301, percent)  # type: ignore[arg-type]


def test_a_table_name_cannot_carry_more_ruleset() -> None:
    with pytest.raises(ValueError, match="bad nft table name"):
        Nft("x { }; flush ruleset")
