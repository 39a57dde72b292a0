"""Which backends an investigation reads: `[sources.<kind>]` tables of a TOML file, or URLs given
on the command line, built into Source objects through a registry that imports lazily.

    # warroom.toml
    [fetch]
    budget_s = 120               # all fetches of one investigation
    concurrency = 4
    [sources.prometheus]
    url = "http://127.0.0.1:9090"
    service_labels = ["service", "job"]
    [sources.loki]
    url = "http://127.0.0.1:3100"
    headers = { "X-Scope-OrgID" = "shop" }
    [[sources.jaeger]]           # an array of tables: several backends of one kind
    url = "http://127.0.0.1:16686"
    [sources.kubernetes]
    kubeconfig = "~/.kube/config" # or in_cluster = true, or url + bearer_token_file + ca_file

A setting the backend does not know, a missing url or a wrong type is an InputError naming the
file and the table; nothing is contacted here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warroom.errors import InputError
from warroom.intake.files import load_toml
from warroom.telemetry.sources import DEFAULT_BUDGET_S, DEFAULT_CONCURRENCY, Source

# kind -> module with `Config` and `sources(config)`; imported only when a source of it is used.
BACKENDS: dict[str, str] = {
    "prometheus": "warroom.telemetry.prometheus",  # also VictoriaMetrics, Thanos, Mimir/Cortex
    "loki": "warroom.telemetry.loki",
    "tempo": "warroom.telemetry.tempo",
    "jaeger": "warroom.telemetry.jaeger",
    "elasticsearch": "warroom.telemetry.elastic",  # also OpenSearch
    "kubernetes": "warroom.telemetry.kubernetes",
    "received": "warroom.telemetry.otlp_segments",  # what `warroom receive` stored
    "changes": "warroom.telemetry.changes_file",  # deploy/config markers, JSON lines
}
MAX_CONFIG_BYTES = 1024 * 1024


class FetchSettings(BaseModel):
    """The `[fetch]` table: how long and how wide an investigation may fetch."""

    model_config = ConfigDict(extra="forbid")

    budget_s: float = Field(default=DEFAULT_BUDGET_S, gt=0, le=3600)
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=64)


class SourcesConfig(BaseModel):
    """A whole config file: fetch settings and the raw tables of each backend kind."""

    model_config = ConfigDict(extra="ignore")  # other tools' tables may share the file

    fetch: FetchSettings = Field(default_factory=FetchSettings)
    sources: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


def load_config(path: Path) -> SourcesConfig:
    """Read a TOML config file; the backends' own settings are checked by `build_sources`."""
    raw = load_toml(path, "config", MAX_CONFIG_BYTES)
    tables = raw.get("sources", {})
    if not isinstance(tables, dict):
        raise InputError(f"config {path}: 'sources' must be a table of [sources.<kind>] tables")
    raw["sources"] = {kind: _as_list(kind, value, path) for kind, value in tables.items()}
    try:
        return SourcesConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"config {path}: {where}: {first['msg']}") from None


def from_urls(urls: Mapping[str, str | None]) -> dict[str, list[dict[str, Any]]]:
    """Source tables from command-line URLs (kind -> url; None: not given)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for kind, url in urls.items():
        if url:
            key = "path" if kind == "received" else "url"
            tables.setdefault(kind, []).append({key: url})
    return tables


def build_sources(tables: Mapping[str, Sequence[Mapping[str, Any]]], where: str) -> list[Source]:
    """Source objects for every table; `where` names the origin (a file, or 'the command line')."""
    built: list[Source] = []
    for kind, items in tables.items():
        if kind not in BACKENDS:
            known = ", ".join(sorted(BACKENDS))
            raise InputError(f"{where}: unknown source kind {kind!r} (known: {known})")
        module = importlib.import_module(BACKENDS[kind])
        for i, table in enumerate(items):
            label = f"sources.{kind}" + (f"[{i}]" if len(items) > 1 else "")
            built.extend(module.sources(_backend_config(module, kind, dict(table), where, label)))
    return built


def _backend_config(module: Any, kind: str, table: dict[str, Any], where: str, label: str) -> Any:
    try:
        if kind == "kubernetes" and ("kubeconfig" in table or table.get("in_cluster")):
            return _kubernetes(module, table)
        return module.Config.model_validate(table)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "table"
        raise InputError(f"{where}: {label}: {field}: {first['msg']}") from None
    except (ValueError, OSError) as err:
        raise InputError(f"{where}: {label}: {err}") from None


def _kubernetes(module: Any, table: dict[str, Any]) -> Any:
    """A cluster named by a kubeconfig file (and context) or by the pod's own service account."""
    if table.pop("in_cluster", False):
        return module.Config.in_cluster(**table)
    path = Path(str(table.pop("kubeconfig"))).expanduser()
    return module.Config.from_kubeconfig(path, table.pop("context", None), **table)


def _as_list(kind: str, value: Any, path: Path) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise InputError(f"config {path}: sources.{kind} must be a table or an array of tables")
