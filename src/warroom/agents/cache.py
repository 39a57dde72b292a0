"""Content-addressed cache of agent results: re-running a step with the same input is free.

The key is the sha256 of (agent name, agent version, the canonical JSON of the input, the
context fingerprint). The fingerprint is a hash of the *contents* of the telemetry tables the
agent reads (see `StoreView.fingerprint`), so an entry can only be served for the same data: a
different store, more rows appended, or another data set all give other keys, and a cache on
disk stays valid across processes for exactly the data it was computed from.

Entries hold the output's JSON text, never a live object: every hit decodes a fresh, frozen
value, so no caller can change what the next caller gets (copy on write by construction).

What is cached: outputs, and the `no_data` failure (absence of data is a fact about the same
data, so asking again gives the same answer). Not cached: `timeout` and `backend_error`
(transient: the next try may succeed) and `invalid_output` (a bug; it should stay loud, and the
fix comes with a new agent version, hence a new key anyway).

    cache = AgentCache(max_entries=2048, directory=".warroom/cache")   # directory optional
    ctx = AgentContext(store, cache=cache)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

EntryKind = Literal["output", "no_data"]


@dataclass(frozen=True)
class CacheEntry:
    """One cached result: an output's JSON, or the message of a no_data failure."""

    kind: EntryKind
    payload: str


def canonical_json(model: BaseModel) -> str:
    """The input's JSON with sorted keys and no spaces: equal inputs give equal text."""
    data = json.loads(model.model_dump_json())
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    """Hex sha256 of a string (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(agent: str, version: str, input_json: str, fingerprint: str) -> str:
    """The content address of one agent call."""
    # Length-prefixed parts, so no choice of names can make two different tuples collide.
    parts = (agent, version, input_json, fingerprint)
    return sha256_hex("".join(f"{len(p)}:{p}" for p in parts))


class AgentCache:
    """An in-memory LRU of entries, optionally backed by a directory of JSON files.

    Thread-safe. The directory (created on first write) is not size-bounded: delete it to
    reclaim space; a file that cannot be read is treated as a miss.
    """

    def __init__(self, max_entries: int = 1024, directory: str | Path | None = None) -> None:
        self.max_entries = max_entries
        self.directory = Path(directory) if directory is not None else None
        self.hits = self.misses = self.write_errors = 0
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._claims: dict[str, tuple[threading.Lock, int]] = {}

    def get(self, key: str) -> CacheEntry | None:
        """The entry for key (memory first, then disk), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
        entry = self._read(key)
        with self._lock:
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            self._remember(key, entry)
        return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        """Store an entry in memory and, when configured, on disk."""
        with self._lock:
            self._remember(key, entry)
        self._write(key, entry)

    def clear(self) -> None:
        """Forget the in-memory entries (files on disk stay)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @contextmanager
    def claim(self, key: str) -> Iterator[None]:
        """Hold key while computing it: a second caller with the same key waits, then hits.

        Two actors asking the same question at the same time cost one computation.
        """
        with self._lock:
            lock, users = self._claims.get(key, (threading.Lock(), 0))
            self._claims[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._claims[key]
                if users == 1:
                    del self._claims[key]
                else:
                    self._claims[key] = (lock, users - 1)

    def _remember(self, key: str, entry: CacheEntry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _path(self, key: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / key[:2] / f"{key}.json"

    def _read(self, key: str) -> CacheEntry | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != key or data.get("kind") not in ("output", "no_data"):
                return None
            return CacheEntry(data["kind"], str(data["payload"]))
        except (OSError, ValueError, KeyError, AttributeError):
            return None

    def _write(self, key: str, entry: CacheEntry) -> None:
        # A disk that refuses a write costs a future recomputation, never the current result.
        path = self._path(key)
        if path is None:
            return
        text = json.dumps({"key": key, "kind": entry.kind, "payload": entry.payload})
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half a file, even across processes.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except OSError:
            self.write_errors += 1
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
