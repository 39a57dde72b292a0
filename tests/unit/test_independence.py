"""The RCA code must not know the simulator: nothing outside gym/ and cli.py imports warroom.gym.

If it did, the gym could leak its ground truth into the answers it grades (and the pipeline
would ship a simulator it never uses).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "warroom"
# The gym itself, the command line (an edge: it runs gym cases), and the live bench (it backfills
# gym cases into real servers). Nothing that ranks or explains may know the simulator.
ALLOWED = (PACKAGE / "gym", PACKAGE / "cli", PACKAGE / "bench" / "live.py")
GYM = "warroom.gym"
# "module:Class" strings in lazy registries, or importlib.import_module("warroom.gym...").
GYM_STRING = re.compile(r"^warroom\.gym(\.[\w.]*)?(:\w+)?$")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_gym(module: str) -> bool:
    return module == GYM or module.startswith(GYM + ".")


def gym_imports(path: Path) -> Iterator[str]:
    """Every way `path` reaches warroom.gym: imports (absolute or relative) and module strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_of(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if _is_gym(a.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
            yield from (n for n in names if _is_gym(n))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and GYM_STRING.match(node.value)
        ):
            yield node.value


def _rca_files() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not any(p == a or a in p.parents for a in ALLOWED)
    ]


def test_rca_code_does_not_import_the_gym() -> None:
    files = _rca_files()
    assert len(files) > 10  # the scan really found the package
    found = {str(p.relative_to(SRC)): sorted(set(gym_imports(p))) for p in files}
    offenders = {name: imports for name, imports in found.items() if imports}
    assert offenders == {}, f"RCA modules import the simulator: {offenders}"


def _fake_module(tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """src/warroom/causal/x.py in a scratch tree, so relative imports resolve as in warroom."""
    module = tmp_path / "warroom" / "causal" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n")
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path)
    return module


@pytest.mark.parametrize(
    "source",
    [
        "import warroom.gym.simulator",
        "from warroom.gym import simulator",
        "from warroom import gym",
        "from ..gym.case import GymCase",
        "from .. import gym",
        "registry = {'sim': 'warroom.gym.simulator:generate'}",
    ],
)
def test_the_scan_catches_every_form(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert list(gym_imports(_fake_module(tmp_path, source, monkeypatch)))


@pytest.mark.parametrize(
    "source",
    [
        "from warroom.gymnastics import x",
        "from . import gym_free",
        '"""Mentions warroom.gym in prose, which is fine."""',
    ],
)
def test_the_scan_lets_lookalikes_pass(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not list(gym_imports(_fake_module(tmp_path, source, monkeypatch)))
