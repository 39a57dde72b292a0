"""Read a folder of infrastructure code into one IacGraph.

    graph = read_iac(Path("deploy/"))

Each file goes to the reader its content calls for: YAML documents with apiVersion and kind
are Kubernetes manifests, a top-level `services:` mapping is a Compose file, *.tf is
Terraform, *.tfstate its state, and AWSTemplateFormatVersion or `Type: AWS::...` resources a
CloudFormation template. A file that does not parse becomes a problem naming its line; the
rest of the folder is still read. A folder with nothing to read is an InputError.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from warroom.errors import InputError
from warroom.topology.iac.cloudformation import is_template, read_template, yaml_input_error
from warroom.topology.iac.compose import is_compose, read_compose
from warroom.topology.iac.kubernetes import YamlFile, is_manifest, read_manifests
from warroom.topology.iac.model import IacGraph, LineList, LineMap, merge
from warroom.topology.iac.terraform import (
    HclFile,
    module_folder,
    parse_hcl,
    read_module,
    read_state,
)

YAML_SUFFIXES = {".yaml", ".yml"}
_SUFFIXES = YAML_SUFFIXES | {".json", ".template", ".tf", ".tfstate"}
_SKIPPED_DIRS = {"node_modules", "vendor", "__pycache__"}  # plus every hidden folder
_MAX_BYTES = 20 << 20  # larger files are data, not infrastructure code


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings and sequences remember their lines (LineMap, LineList)."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LineMap]:
    data = LineMap()
    data.line = node.start_mark.line + 1
    yield data  # first, so recursive (anchored) structures resolve like SafeLoader's
    data.update(loader.construct_mapping(node))
    data.lines = {
        loader.construct_object(key, deep=True): key.start_mark.line + 1 for key, _ in node.value
    }


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_sequence(node))
    data.lines = [item.start_mark.line + 1 for item in node.value]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def yaml_documents(text: str, path: str) -> list[Any]:
    """Every document of a YAML text with lines kept; InputError naming path:line if it
    does not parse."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_LineLoader) if doc is not None]
    except yaml.YAMLError as err:
        raise yaml_input_error(path, err) from err


def read_iac(folder: Path) -> IacGraph:
    """The components and declared edges of every infrastructure file under `folder`."""
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    reading = _Reading()
    for path in _files(folder):
        reading.read(path)
    graph = reading.graph()
    if not reading.recognised:
        found = "; ".join(graph.problems) or (
            f"{reading.looked_at} YAML, JSON, .tf or .tfstate files, none of them Kubernetes "
            "manifests, a Compose file, Terraform or a CloudFormation template"
        )
        raise InputError(f"no infrastructure code in {folder}: {found}")
    return graph


def _files(folder: Path) -> Iterator[Path]:
    """The folder's files in a stable order, hidden and dependency folders left out."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(names):
            yield Path(root) / name


class _Reading:
    """What the files of one folder gave so far; manifests are read together at the end (a
    ConfigMap in one file feeds a Deployment in another)."""

    def __init__(self) -> None:
        self.manifests: list[YamlFile] = []
        self.modules: dict[str, list[HclFile]] = {}
        self.graphs: list[IacGraph] = []
        self.problems: list[str] = []
        self.recognised = 0
        self.looked_at = 0

    def read(self, path: Path) -> None:
        """Read one file if it is infrastructure code; a parse error becomes a problem."""
        suffix = path.suffix.lower()
        if suffix not in _SUFFIXES or _too_big(path):
            return
        self.looked_at += 1
        try:
            text = path.read_text(encoding="utf-8")
            self._read_text(text, str(path), suffix)
        except (OSError, UnicodeDecodeError) as err:
            self.problems.append(f"{path}: unreadable: {err}")
        except InputError as err:
            self.problems.append(str(err))

    def _read_text(self, text: str, path: str, suffix: str) -> None:
        if not text.strip():
            return
        if suffix == ".tf":
            self.modules.setdefault(module_folder(path), []).append(parse_hcl(path, text))
            self.recognised += 1
        elif suffix == ".tfstate":
            self.graphs.append(read_state(path, text))
            self.recognised += 1
        elif is_template(text) and (template := read_template(path, text)) is not None:
            self.graphs.append(template)
            self.recognised += 1
        elif suffix != ".template":
            self._read_yaml(text, path)

    def _read_yaml(self, text: str, path: str) -> None:
        if path.lower().endswith(".json"):
            documents = _json_documents(text, path)
        else:
            documents = yaml_documents(text, path)
        if any(is_manifest(doc) for doc in documents):
            self.manifests.append(YamlFile(path, documents))
            self.recognised += 1
        elif len(documents) == 1 and is_compose(documents[0]):
            self.graphs.append(read_compose(path, documents[0]))
            self.recognised += 1

    def graph(self) -> IacGraph:
        """The merged graph of everything read, with the problems met."""
        graphs = list(self.graphs)
        graphs.extend(read_module(files) for files in self.modules.values())
        if self.manifests:
            graphs.append(read_manifests(self.manifests))
        merged = merge(graphs)
        return IacGraph(
            merged.components, merged.edges, merged.unknown_kinds, self.problems + merged.problems
        )


def _too_big(path: Path) -> bool:
    try:
        return path.stat().st_size > _MAX_BYTES
    except OSError:
        return False


def _json_documents(text: str, path: str) -> list[Any]:
    """A JSON file checked as JSON (YAML would take `"A": }`), then read with lines kept
    through the YAML loader when it can (JSON indented with tabs is not YAML)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err
    try:
        return yaml_documents(text, path)
    except InputError:
        return [data]
