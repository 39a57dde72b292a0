"""Log template mining: turn free-text log lines into a small set of event templates.

Masking runs first so both miners see `<*>` where an id, address or number was; the own miner is
a Drain-style fixed-depth parse tree (He et al., ICWS'17), the second one wraps the drain3 package
so the benchmark can compare the two on the same masked input. Pure functions, no I/O.

    >>> result = mine(["took 12 ms", "took 30 ms", "cache miss for key users"])
    >>> result.ids
    (0, 0, 1)
    >>> result.templates[0]
    'took <*> ms'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

PARAM = "<*>"

# Order matters: composite ids (trace ids, UUIDs, addresses, paths) are masked before the bare
# number rule, which would otherwise chop them into several `<*>` and change the token count.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b((?:trace|span)[ _-]?id\s*[:=]\s*)[\w-]+", re.IGNORECASE), rf"\1{PARAM}"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        PARAM,
    ),
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"), PARAM),
    (re.compile(r"(?<![\w.-])[A-Za-z][\w-]*(?:\.[\w-]+)+:\d{1,5}(?![\w.])"), PARAM),
    (re.compile(r"(?<![\w:])\d{1,2}(?::\d{2}){1,2}(?:[.,]\d+)?(?![\w:])"), PARAM),
    (re.compile(r"(?<![\w/])(?:[\w.-]*/)+[\w.-]*\d[\w./-]*"), PARAM),
    (re.compile(r"\b(?:0x)?(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), PARAM),
    (re.compile(r"\b([A-Za-z_][\w.-]*=)(?!<\*>)[^\s,;&)\]}]+"), rf"\1{PARAM}"),
    (re.compile(r"(?<![A-Za-z0-9.])[-+]?\d+(?:\.\d+)?(?![A-Za-z0-9.])"), PARAM),
)

_CODE_LOCATION = re.compile(r"\s*((?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*#\d+)(?![\w#])")
_KEY_CHARS = 80


def mask(message: str) -> str:
    """Replace variable tokens (ids, addresses, numbers, values) in a log message with `<*>`."""
    for pattern, replacement in _MASKS:
        message = pattern.sub(replacement, message)
    return message


def code_location(message: str) -> str | None:
    """Return a leading logger location such as `c.s.ContactsServiceImpl#31`, else None."""
    found = _CODE_LOCATION.match(message)
    return found.group(1) if found else None


def event_key(message: str, template: str) -> str:
    """Return the most precise stable key for a message: its code location, else its template."""
    location = code_location(message)
    return location if location is not None else template_key(template)


def template_key(template: str) -> str:
    """The key of a message without a code location: its template without leading parameters."""
    tokens = template.split()
    # Leading parameters (timestamps, hosts, thread ids) say nothing about the event itself.
    while tokens and _is_parameter_only(tokens[0]):
        tokens.pop(0)
    return " ".join(tokens)[:_KEY_CHARS].rstrip()


def _is_parameter_only(token: str) -> bool:
    return PARAM in token and not any(ch.isalnum() for ch in token.replace(PARAM, ""))


class Miner(Protocol):
    """An online template miner: `ids = [m.add(line) for line in lines]; m.template(ids[0])`."""

    def add(self, message: str) -> int:
        """Assign a template id to one message, updating the templates seen so far."""
        ...

    def template(self, template_id: int) -> str:
        """Return the current text of a template."""
        ...

    def __len__(self) -> int:
        """Return how many templates exist."""
        ...


@dataclass
class _Node:
    """One parse-tree node; leaves hold the ids of the clusters that reached them."""

    children: dict[str, _Node] = field(default_factory=dict)
    clusters: list[int] = field(default_factory=list)


class TemplateMiner:
    """Drain-like miner: tree by token count, then leading tokens; leaves match by similarity."""

    # Tuned once on the 8 Loghub 2k systems (mean GA): depth 5 beats 4 by 0.002 (HealthApp), and
    # similarity 0.40-0.50 is a flat plateau, so the default sits in its middle.
    def __init__(self, similarity: float = 0.45, depth: int = 5, max_children: int = 100) -> None:
        if depth < 3:
            raise ValueError(f"depth must be >= 3 (root, length, leaf), got {depth}")
        self._similarity = similarity
        self._prefix_levels = depth - 2
        self._max_children = max_children
        self._root: dict[int, _Node] = {}
        self._templates: list[list[str]] = []
        # Masking (nine regexes) is most of the cost and a pure function of the text: lines
        # repeat, so each distinct message is masked once.
        self._masked: dict[str, tuple[str, ...]] = {}

    def add(self, message: str) -> int:
        """Assign a template id to one message, generalising the matched template if needed."""
        masked = self._masked.get(message)
        if masked is None:
            masked = self._masked[message] = tuple(mask(message).split())
        tokens = list(masked)
        leaf = self._leaf(tokens)
        best = self._best_match(leaf.clusters, tokens)
        if best is None:
            self._templates.append(tokens)
            leaf.clusters.append(len(self._templates) - 1)
            return len(self._templates) - 1
        template = self._templates[best]
        self._templates[best] = [
            t if t == m else PARAM for t, m in zip(template, tokens, strict=True)
        ]
        return best

    def template(self, template_id: int) -> str:
        """Return the current text of a template."""
        return " ".join(self._templates[template_id])

    def __len__(self) -> int:
        """Return how many templates exist."""
        return len(self._templates)

    def _leaf(self, tokens: list[str]) -> _Node:
        node = self._root.setdefault(len(tokens), _Node())
        for token in tokens[: self._prefix_levels]:
            node = node.children.setdefault(self._route(node, token), _Node())
        return node

    def _route(self, node: _Node, token: str) -> str:
        if token in node.children:
            return token
        # Tokens holding digits are likely variables: routing on them would split one event
        # into as many branches as there are values.
        if _has_digit(token) or PARAM in token:
            return PARAM
        if len(node.children) < self._max_children - (PARAM not in node.children):
            return token
        return PARAM

    def _best_match(self, candidates: list[int], tokens: list[str]) -> int | None:
        best, best_score = None, (-1.0, -1)
        for cluster_id in candidates:
            template = self._templates[cluster_id]
            equal = sum(t == m for t, m in zip(template, tokens, strict=True))
            params = template.count(PARAM)
            score = (equal / max(len(tokens), 1), params)
            if score > best_score:
                best, best_score = cluster_id, score
        if best is None or best_score[0] < self._similarity:
            return None
        return best


def _has_digit(token: str) -> bool:
    return any(ch.isdigit() for ch in token)


class Drain3Miner:
    """The drain3 package's miner over our masked messages, in memory, for comparison."""

    def __init__(self, similarity: float = 0.4, depth: int = 4, max_children: int = 100) -> None:
        try:
            from drain3 import TemplateMiner as _Drain3
            from drain3.template_miner_config import TemplateMinerConfig
        except ImportError as exc:  # pragma: no cover - drain3 is a core dependency
            raise ImportError("Drain3Miner needs drain3: pip install drain3") from exc
        config = TemplateMinerConfig()
        config.profiling_enabled = False
        config.drain_sim_th = similarity
        config.drain_depth = depth
        config.drain_max_children = max_children
        config.masking_instructions = []
        self._miner: Any = _Drain3(persistence_handler=None, config=config)
        # drain3 numbers clusters from 1 in creation order; we expose dense ids from 0.
        self._ids: dict[int, int] = {}
        self._clusters: list[int] = []

    def add(self, message: str) -> int:
        """Assign a template id to one message."""
        cluster_id = int(self._miner.add_log_message(mask(message))["cluster_id"])
        if cluster_id not in self._ids:
            self._ids[cluster_id] = len(self._clusters)
            self._clusters.append(cluster_id)
        return self._ids[cluster_id]

    def template(self, template_id: int) -> str:
        """Return the current text of a template."""
        cluster = self._miner.drain.id_to_cluster[self._clusters[template_id]]
        return str(cluster.get_template())

    def __len__(self) -> int:
        """Return how many templates exist."""
        return len(self._clusters)


@dataclass(frozen=True)
class TemplateResult:
    """Template id per message and the final template text per id."""

    ids: tuple[int, ...]
    templates: tuple[str, ...]


MINERS: dict[str, type[TemplateMiner] | type[Drain3Miner]] = {
    "own": TemplateMiner,
    "drain3": Drain3Miner,
}


def make_miner(name: str = "own") -> Miner:
    """Build a miner by name with its default settings."""
    if name not in MINERS:
        raise ValueError(f"unknown miner {name!r}; known: {', '.join(sorted(MINERS))}")
    return MINERS[name]()


def mine(messages: Sequence[str], miner: str = "own") -> TemplateResult:
    """Mine templates over messages in order; templates are their text after the last message."""
    engine = make_miner(miner)
    ids = tuple(engine.add(message) for message in messages)
    return TemplateResult(ids=ids, templates=tuple(engine.template(i) for i in range(len(engine))))
