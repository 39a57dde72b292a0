"""The case a command's options name: a data set case (--dataset/--root/--case) or a generated
gym case (--gym-topology/--gym-fault/--gym-seed). Shared by `dsl eval` and `runbook`.

The openers are injected (cli.py passes them) so these commands never import the gym.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from warroom.datasets.base import LoadedCase
from warroom.errors import InputError

DatasetOpener = Callable[[str, Path, str | None], LoadedCase]
GymOpener = Callable[[str, str, int], LoadedCase]


@dataclass
class NamedCase:
    """The opened case, the options that re-open it, and words for it."""

    loaded: LoadedCase
    options: str
    words: str


def open_named_case(
    open_dataset: DatasetOpener,
    open_gym: GymOpener,
    data: tuple[str | None, Path | None, str | None],
    gym: tuple[str | None, str | None, int],
) -> NamedCase:
    """Open the one case the options name; anything else is an InputError."""
    dataset, root, case = data
    topology, fault, seed = gym
    if dataset and root and not topology:
        # Quoted: the options are printed for a person to paste into a shell.
        options = f"--dataset {shlex.quote(dataset)} --root {shlex.quote(str(root))}"
        options += f" --case {shlex.quote(case)}" if case else ""
        words = f"{dataset} case {case or '(first)'} under {root}"
        return NamedCase(open_dataset(dataset, root, case), options, words)
    if topology and fault and not dataset:
        options = (
            f"--gym-topology {shlex.quote(topology)} --gym-fault {shlex.quote(fault)} "
            f"--gym-seed {int(seed)}"
        )
        try:
            loaded = open_gym(topology, fault, seed)
        except (ValueError, KeyError) as err:
            text = err.args[0] if isinstance(err, KeyError) and err.args else err
            raise InputError(str(text)) from None
        return NamedCase(loaded, options, f"gym {topology}/{fault}/{seed}")
    raise InputError(
        "name one case: --dataset and --root [--case], or --gym-topology and --gym-fault"
    )
