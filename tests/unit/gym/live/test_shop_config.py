"""Reading a shop service's config, and the CLI's one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from warroom.gym.live.contracts import Layout, ServiceConfig
from warroom.gym.live.shop.__main__ import main
from warroom.gym.live.shop.config import ConfigError, load_config


def _config(service: str, **changes: object) -> dict[str, object]:
    layout = Layout(base_port=18000)
    config = ServiceConfig(
        service=service,
        port=layout.port(service),
        peers=layout.peers(service),
        postgres_dsn="host=127.0.0.1 port=18309 user=postgres dbname=shop",
        otlp_endpoint="http://127.0.0.1:18318",
        labels_dir="/tmp/labels" if service == "shipping" else "",
        log_path="/tmp/shop.jsonl",
    ).model_dump()
    config.update(changes)
    return config


def _write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_config_the_stack_writes_is_read_back(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, _config("checkout")))
    assert config.service == "checkout"
    assert set(config.peers) == {"cart", "orders", "payment", "shipping"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "config"),
        (_config("cart", port="eighty"), "port"),
        (_config("cart", surprise=1), "surprise"),
        ({**_config("cart"), "service": "search"}, "unknown service 'search'"),
        (_config("cart", version="v3"), "unknown version 'v3'"),
        (_config("checkout", peers={"cart": "127.0.0.1:1"}), "needs peers for orders, payment"),
        (_config("cart", peers={"redis": "localhost"}), "not host:port"),
        (_config("orders", postgres_dsn=""), "orders needs postgres_dsn"),
        (_config("shipping", labels_dir=""), "shipping needs labels_dir"),
    ],
)
def test_a_bad_config_names_what_is_wrong(tmp_path: Path, content: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, content))


def test_a_missing_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--config", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shop: error: cannot read config") and err.count("\n") == 1


def test_the_process_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "[1, 2")
    command = [sys.executable, "-m", "warroom.gym.live.shop", "serve", "--config", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize(
    "target", ["http://10.0.0.1:80", "https://127.0.0.1:1", "http://localhost:1"]
)
def test_the_load_refuses_targets_off_the_loopback(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load", "--target", target, "--rps", "1", "--seconds", "1"]) == 2
    assert "load target must be http://127.0.0.1:PORT" in capsys.readouterr().err
