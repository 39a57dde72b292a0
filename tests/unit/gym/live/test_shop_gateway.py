"""The payment gateway stub over a real loopback socket: its outage modes, including "down"
closing the connection unanswered, and its chaos hook's loopback guard."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from warroom.gym.live.shop import gateway as gateway_module
from warroom.gym.live.shop.gateway import Gateway, Request


async def _scenario(gw: Gateway) -> dict[str, object]:
    server = await asyncio.start_server(gw.serve_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen: dict[str, object] = {}
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=3) as client:

        async def charge() -> httpx.Response:
            return await client.post("/v1/charges", json={"amount": 5250})

        async def outage(mode: str) -> int:
            answer = await client.post("/_chaos/outage", json={"mode": mode})
            return answer.status_code

        seen["health"] = (await client.get("/healthz")).status_code
        ok = await charge()
        seen["ok"] = (ok.status_code, ok.json()["status"], ok.json()["amount"])
        seen["bad mode"] = await outage("sideways")
        await outage("errors")
        seen["errors"] = (await charge()).status_code
        await outage("slow")
        started = time.monotonic()
        seen["slow"] = ((await charge()).status_code, time.monotonic() - started)
        await outage("down")
        try:
            await charge()
            seen["down"] = "answered"
        except httpx.RemoteProtocolError:
            seen["down"] = "closed"
        seen["health while down"] = (await client.get("/healthz")).status_code
        await outage("ok")
        seen["healed"] = (await charge()).status_code
    return seen


def test_the_gateway_answers_fails_slows_and_hangs_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_module, "SLOW_S", 0.4)
    seen = asyncio.run(_scenario(Gateway()))
    assert seen["health"] == 200
    assert seen["ok"] == (200, "succeeded", 5250)
    assert seen["bad mode"] == 400
    assert seen["errors"] == 503
    status, took = seen["slow"]  # type: ignore[misc]
    assert status == 200 and took >= 0.4
    assert seen["down"] == "closed"
    assert seen["health while down"] == 200  # the hook must still heal it
    assert seen["healed"] == 200


def test_the_outage_hook_refuses_clients_off_the_loopback() -> None:
    gw = Gateway()
    hook = Request("POST", "/_chaos/outage", {}, b'{"mode": "down"}')
    refused = asyncio.run(gw.handle(hook, "10.0.0.9"))
    assert refused is not None and refused.status == 403 and gw.mode == "ok"
    accepted = asyncio.run(gw.handle(hook, "127.0.0.1"))
    assert accepted is not None and accepted.status == 200 and gw.mode == "down"
