"""Shared HTTP: a backend's own error words, auth hints, status kept, secrets never shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from loopback import Loopback, Reply
from warroom.errors import BackendError, InputError
from warroom.telemetry.http import Endpoint, connect, request_json


def _ask(reply: Reply, **settings: Any) -> Any:
    with Loopback({"/q": reply}) as server:
        endpoint = Endpoint.model_validate({"url": server.url, **settings})
        with connect(endpoint) as client:
            return request_json(client, "prom", "GET", "/q", time.monotonic() + 5)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error"},
            "bad_data: parse error",
        ),
        (
            {"error": {"root_cause": [{"type": "query_shard_exception", "reason": "bad"}]}},
            "query_shard_exception: bad",
        ),
        ({"errors": [{"code": 400, "msg": "trace id missing"}]}, "trace id missing"),
        ({"kind": "Status", "message": "pods is forbidden"}, "pods is forbidden"),
        (b"plain text from a proxy", "plain text from a proxy"),
    ],
)
def test_errors_carry_the_backends_own_words_and_status(body: Any, words: str) -> None:
    with pytest.raises(BackendError) as err:
        _ask(Reply(body, 400))
    assert str(err.value) == f"prom: /q answered 400: {words}" and err.value.status == 400


def test_auth_failures_say_what_to_check_and_never_show_the_token() -> None:
    with pytest.raises(BackendError) as err:
        _ask(Reply({"error": "unauthorized"}, 401), bearer_token="s3cret")
    assert "check the source's bearer_token" in str(err.value) and err.value.status == 401
    assert "s3cret" not in str(err.value)


def test_the_token_is_sent_as_a_bearer_header() -> None:
    with Loopback({"/q": Reply({"ok": 1})}) as server:
        endpoint = Endpoint.model_validate({"url": server.url, "bearer_token": "t0k"})
        with connect(endpoint) as client:
            assert request_json(client, "prom", "GET", "/q", time.monotonic() + 5) == {"ok": 1}
        assert server.requests[0].headers["authorization"] == "Bearer t0k"


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    endpoint = Endpoint(url="https://x", ca_file=tmp_path / "ca.pem")
    with pytest.raises(InputError, match=r"ca_file .*ca.pem does not exist"):
        connect(endpoint)


def test_a_spent_budget_asks_nothing() -> None:
    with Loopback({"/q": Reply({"ok": 1})}) as server:
        with (
            connect(Endpoint(url=server.url)) as client,
            pytest.raises(BackendError, match="budget"),
        ):
            request_json(client, "prom", "GET", "/q", time.monotonic())
        assert server.requests == []
