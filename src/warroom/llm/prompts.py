"""Prompt templates: versioned text files in prompts/, filled with string.Template.

A template is named `<task>.v<N>` and lives in prompts/<task>.v<N>.txt. A changed prompt is a
new file (narrate.v2.txt) so that audit records and replays keep meaning what they meant.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

SYSTEM = "system.v1"


@cache
def load(name: str) -> Template:
    """The template `name` (e.g. "narrate.v1")."""
    text = resources.files("warroom.llm").joinpath("prompts", f"{name}.txt").read_text("utf-8")
    return Template(text)


def render(name: str, **values: str) -> str:
    """Fill template `name`; a missing value is a programming error (KeyError)."""
    return load(name).substitute(values).strip()
