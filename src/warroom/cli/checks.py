"""Checks of command-line options before any work starts, so a typo costs a second, not an
investigation: each returns the checked value or raises an InputError naming the option.

    repo = check_repo(Path("../shop"))          # a git work tree, or InputError
    problems = check_runbooks(Path("books"))    # a folder; one line per unreadable runbook
    check_outputs({"--out": out, "--html": html})
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from warroom.errors import InputError
from warroom.planner import check as check_planner
from warroom.report.files import check_output

GIT_TIMEOUT_S = 10.0
MAX_LLM_TIMEOUT_S = 3600.0


def check_outputs(paths: Mapping[str, Path | None]) -> None:
    """Every given output path (option name -> path) can be written: not a directory, a
    socket, or under a file. Missing folders are fine: writing makes them."""
    for option, path in paths.items():
        if path is not None:
            check_output(path, option)


def check_repo(repo: Path | None) -> Path | None:
    """`repo` if it is a folder inside a git work tree (or None when not given)."""
    if repo is None:
        return None
    if not repo.exists():
        raise InputError(f"--repo {repo}: no such folder")
    if not repo.is_dir():
        raise InputError(f"--repo {repo}: not a folder (give the repository's folder)")
    git = shutil.which("git")
    if git is None:
        raise InputError("--repo needs git, and git is not installed")
    try:
        done = subprocess.run(  # an argument list, never a shell: the path is the user's
            [git, "-C", str(repo), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(f"--repo {repo}: git could not look at it ({err})") from None
    if done.returncode != 0 or done.stdout.strip() != "true":
        raise InputError(f"--repo {repo}: not a git repository (no .git here or above)")
    return repo


def check_runbooks(folder: Path | None) -> list[str]:
    """One line per runbook in `folder` that cannot be read; InputError if it is no folder."""
    if folder is None:
        return []
    if not folder.exists():
        raise InputError(
            f"--runbooks {folder}: no such folder (save one with `warroom runbook save --dir`)"
        )
    if not folder.is_dir():
        raise InputError(f"--runbooks {folder}: not a folder")
    from warroom.runbooks import RunbookStore

    _runbooks, problems = RunbookStore(folder).load_all()
    return problems


def check_llm_numbers(timeout: float | None, seconds: float | None) -> None:
    """--llm-timeout and --llm-seconds, when given, are positive and finite."""
    if timeout is not None and not 0 < timeout <= MAX_LLM_TIMEOUT_S:  # False for NaN, too
        raise InputError(
            f"--llm-timeout is a number of seconds above 0 and at most {MAX_LLM_TIMEOUT_S:g}, "
            f"not {timeout}"
        )
    if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
        raise InputError(f"--llm-seconds is a positive number of seconds, not {seconds}")


def check_planners(text: str) -> list[str]:
    """The planners of a comma-separated list, each known, none repeated; at least one."""
    names = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names:
        raise InputError(f"--planner {text!r}: no planner named (e.g. --planner director)")
    return [check_planner(name) for name in names]
