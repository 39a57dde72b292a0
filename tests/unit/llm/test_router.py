from __future__ import annotations

from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.llm.backend import parse_spec
from warroom.llm.openai_compat import OpenAICompatible
from warroom.llm.replay import Replay
from warroom.llm.router import Router, load_config


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "llm.toml"
    path.write_text(text)
    return path


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "calls.jsonl"
    path.write_text('{"content": "{}"}\n')
    return path


def test_parse_spec_knows_openai_replay_and_none(script: Path) -> None:
    backend = parse_spec("openai:http://127.0.0.1:8000/v1#qwen2.5-7b")
    assert isinstance(backend, OpenAICompatible)
    assert (backend.base_url, backend.model) == ("http://127.0.0.1:8000/v1", "qwen2.5-7b")
    assert isinstance(parse_spec(f"replay:{script}"), Replay)
    assert parse_spec("none") is None
    assert parse_spec("") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt4", "unknown model spec"),
        ("claude:foo", "unknown model spec"),
        ("openai:http://127.0.0.1:8000/v1", "expected openai:URL#MODEL"),
        ("openai:127.0.0.1:8000#m", "expected openai:URL#MODEL"),
        ("replay:/does/not/exist.jsonl", "replay file not found"),
    ],
)
def test_bad_specs_say_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_spec(spec)


def test_default_is_no_model() -> None:
    router = Router.none()
    assert all(router.route(t) is None for t in ("plan", "judge", "summarise", "narrate"))
    assert router.audit is None
    assert Router.from_spec("none").routes == {}


def test_from_spec_routes_every_task_to_one_backend(script: Path, tmp_path: Path) -> None:
    router = Router.from_spec(f"replay:{script}", audit=tmp_path / "audit.jsonl")
    backends = {id(r.backend) for r in router.routes.values()}
    assert len(router.routes) == 4 and len(backends) == 1
    assert router.audit is not None and router.audit.path == tmp_path / "audit.jsonl"


def test_config_routes_tasks_to_models(tmp_path: Path, script: Path) -> None:
    path = _config(
        tmp_path,
        f"""
audit = "{tmp_path / "a.jsonl"}"
[models.local]
spec = "openai:http://127.0.0.1:8000/v1#qwen"
retries = 4
[models.script]
spec = "replay:{script}"
[tasks.narrate]
model = "local"
timeout = 60
max_tokens = 800
temperature = 0.2
[tasks.judge]
model = "script"
[tasks.summarise]
model = "script"
[tasks.plan]
model = "none"
""",
    )
    router = Router.from_config(path)
    narrate = router.route("narrate")
    assert narrate is not None and isinstance(narrate.backend, OpenAICompatible)
    assert (narrate.timeout, narrate.max_tokens, narrate.temperature) == (60, 800, 0.2)
    assert narrate.backend.retries == 4
    judge, summarise = router.route("judge"), router.route("summarise")
    assert judge is not None and summarise is not None
    assert judge.backend is summarise.backend  # one replay script is one sequence of calls
    assert router.route("plan") is None
    assert "narrate: openai:" in router.describe()


def test_the_token_budget_comes_from_the_file_unless_the_cli_says(
    tmp_path: Path, script: Path
) -> None:
    path = _config(tmp_path, f'token_budget = 900\n[tasks.judge]\nmodel = "replay:{script}"\n')
    assert Router.from_config(path).token_budget == 900
    assert Router.from_config(path, token_budget=50).token_budget == 50
    assert Router.from_spec(f"replay:{script}", token_budget=7).token_budget == 7


def test_a_spec_can_stand_in_for_a_model_name(tmp_path: Path) -> None:
    path = _config(tmp_path, '[tasks.judge]\nmodel = "openai:http://127.0.0.1:1/v1#m"\n')
    route = Router.from_config(path).route("judge")
    assert route is not None and route.backend.name == "openai:http://127.0.0.1:1/v1#m"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[tasks.narate]\nmodel = 'none'\n", "tasks.narate"),
        ("[tasks.narrate]\ntimout = 3\n", "tasks.narrate.timout"),
        ("[tasks.narrate]\ntimeout = -1\n", "tasks.narrate.timeout"),
        ("[tasks.judge]\ntemperature = 9\n", "tasks.judge.temperature"),
        ("[tasks.judge]\nmax_tokens = 'lots'\n", "tasks.judge.max_tokens"),
        ("[models.local]\nurl = 'x'\n", "models.local.spec"),
        ("[tasks.judge]\nmodel = 'big'\n", "tasks.judge.model: unknown model 'big'"),
        ("[tasks.judge]\nmodel = 'gpt:x'\n", "tasks.judge.model: unknown model spec"),
        (
            "[models.m]\nspec = 'openai:http://h/v1#m'\napi_key_env = 'WARROOM_TEST_NO_SUCH_KEY'\n"
            "[tasks.plan]\nmodel = 'm'\n",
            "models.m.api_key_env: environment variable WARROOM_TEST_NO_SUCH_KEY",
        ),
        ("audit = [1]\n", "audit"),
        ("token_budget = 0\n", "token_budget"),
        ("[tasks\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(InputError) as err:
        Router.from_config(_config(tmp_path, text))
    assert names in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model config .*nope.toml: cannot read"):
        load_config(tmp_path / "nope.toml")


def test_api_key_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARROOM_TEST_KEY", "sk-test")
    path = _config(
        tmp_path,
        "[models.m]\nspec = 'openai:http://h/v1#m'\napi_key_env = 'WARROOM_TEST_KEY'\n"
        "[tasks.plan]\nmodel = 'm'\n",
    )
    route = Router.from_config(path).route("plan")
    assert route is not None and isinstance(route.backend, OpenAICompatible)
    assert route.backend._api_key == "sk-test"


def test_unknown_task_is_an_input_error() -> None:
    with pytest.raises(InputError, match="known: plan, judge, summarise, narrate"):
        Router.none().route("poem")
