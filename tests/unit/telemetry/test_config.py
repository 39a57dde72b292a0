"""Source configuration: TOML tables and command-line URLs into Source objects, bad input named."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.telemetry.config import build_sources, from_urls, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warroom.toml"
    path.write_text(text)
    return path


def test_tables_and_arrays_of_tables_build_one_source_each(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            '[fetch]\nbudget_s = 30\n[sources.prometheus]\nurl = "http://127.0.0.1:9090"\n'
            '[[sources.loki]]\nurl = "http://127.0.0.1:3100"\n'
            '[[sources.loki]]\nurl = "http://127.0.0.1:3101"\nheaders = { "X-Scope-OrgID" = "a" }\n'
            "[llm]\nother = 'tables of other tools are left alone'\n",
        )
    )
    assert config.fetch.budget_s == 30
    sources = build_sources(config.sources, "config x")
    assert [(s.name, s.table) for s in sources] == [
        ("prometheus", "metrics"),
        ("loki", "logs"),
        ("loki", "logs"),
    ]
    assert len({s.identity() for s in sources}) == 3


def test_command_line_urls_become_tables() -> None:
    tables = from_urls({"prometheus": "http://p:9090", "loki": None, "received": "/data/otlp"})
    assert tables == {
        "prometheus": [{"url": "http://p:9090"}],
        "received": [{"path": "/data/otlp"}],
    }
    assert [s.table for s in build_sources(tables, "the command line")] == [
        "metrics",
        "spans",
        "logs",
        "metrics",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sources.prometheus]\nurl = 'http://p'\nstep = 5\n", r"sources.prometheus: step: Extra"),
        ("[sources.prometheus]\n", r"sources.prometheus: url: Field required"),
        ("[sources.graphite]\nurl = 'http://g'\n", r"unknown source kind 'graphite' \(known: "),
        ("[sources.loki]\nurl = 'ftp://l'\n", r"sources.loki: .*http:// or https://"),
        ("[fetch]\nbudget_s = -1\n", r"fetch.budget_s: Input should be greater than 0"),
        ("[sources\n", r"is not valid TOML"),
        ("sources = 3\n", r"'sources' must be a table"),
        ("x = 1" + "0" * 5000 + "\n", r"a number too long to read"),
    ],
)
def test_bad_configs_name_the_table_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=message):
        build_sources(load_config(path).sources, f"config {path}")


def test_secrets_come_from_named_environment_variables_and_a_missing_one_fails_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = '[sources.prometheus]\nurl = "http://p:9090"\nbearer_token_env = "WARROOM_TEST_TOKEN"\n'
    path = _write(tmp_path, text)
    monkeypatch.delenv("WARROOM_TEST_TOKEN", raising=False)
    with pytest.raises(InputError, match="the environment variable WARROOM_TEST_TOKEN is not set"):
        build_sources(load_config(path).sources, "config")
    monkeypatch.setenv("WARROOM_TEST_TOKEN", "s3cret-value")
    (source,) = build_sources(load_config(path).sources, "config")
    assert "s3cret-value" not in source.identity()
    assert "s3cret-value" not in repr(source.config)  # type: ignore[attr-defined]


def test_the_readme_sample_config_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    sample = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    kube = tmp_path / ".kube"
    kube.mkdir()
    (kube / "config").write_text(
        '{"apiVersion": "v1", "current-context": "x",'
        ' "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],'
        ' "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}]}'
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PROM_TOKEN", "p")
    monkeypatch.setenv("ES_PASSWORD", "e")
    sources = build_sources(load_config(_write(tmp_path, sample)).sources, "README")
    assert sorted({s.name for s in sources}) == sorted(
        ["prometheus", "loki", "tempo", "elasticsearch", "kubernetes", "changes", "received"]
    )
