"""Loghub 2k samples: log message contents with their ground-truth template ids.

Layout (any root in it works, not only the copy in shared/data):

    <root>/<System>/<System>_2k.log_structured.csv
    <root>/corrected/<System>/<System>_2k.log_structured.csv            (preferred when present)
    <root>/corrected/<System>/<System>_2k.log_structured_corrected.csv  (the name Loghub ships)

Only the Content and EventId columns are read; the other columns differ per system.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from warroom.errors import DatasetError

_SUFFIX = "_2k.log_structured"
_CORRECTED = "corrected"
_COLUMNS = ("Content", "EventId")


@dataclass(frozen=True)
class LoghubSample:
    """One system's 2k sample: message contents and the true template id of each."""

    system: str
    contents: tuple[str, ...]
    truth_ids: tuple[str, ...]


def load_loghub(root: Path) -> list[LoghubSample]:
    """Load every system under a Loghub 2k root, sorted by system name."""
    if not root.is_dir():
        raise DatasetError(f"Loghub root not found: {root}")
    systems = sorted(_systems(root) | _systems(root / _CORRECTED))
    if not systems:
        raise DatasetError(f"no <System>/<System>{_SUFFIX}.csv files under {root}")
    return [_read_sample(system, _structured_file(root, system)) for system in systems]


def _systems(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {d.name for d in folder.iterdir() if d.is_dir() and _candidates(folder, d.name)}


def _candidates(folder: Path, system: str) -> list[Path]:
    names = (f"{system}{_SUFFIX}.csv", f"{system}{_SUFFIX}_corrected.csv")
    return [folder / system / name for name in names if (folder / system / name).is_file()]


def _structured_file(root: Path, system: str) -> Path:
    # The corrected ground truth fixes known template mistakes, so it wins when it exists.
    found = _candidates(root / _CORRECTED, system) or _candidates(root, system)
    return found[0]


def _read_sample(system: str, path: Path) -> LoghubSample:
    contents: list[str] = []
    truth: list[str] = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            try:
                _check_header(path, reader.fieldnames)
                for row in reader:
                    contents.append(_field(path, reader.line_num, row, "Content"))
                    truth.append(_field(path, reader.line_num, row, "EventId"))
            except csv.Error as exc:
                raise DatasetError(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not contents:
        raise DatasetError(f"{path}: no rows")
    return LoghubSample(system=system, contents=tuple(contents), truth_ids=tuple(truth))


def _field(path: Path, line: int, row: dict[str | None, object], column: str) -> str:
    value = row.get(column)
    # DictReader files surplus cells under the key None and fills missing ones with None.
    if None in row or None in row.values() or not isinstance(value, str):
        raise DatasetError(f"{path}:{line}: malformed row (wrong number of cells)")
    if column == "EventId" and not value:
        raise DatasetError(f"{path}:{line}: empty EventId")
    return value


def _check_header(path: Path, fieldnames: object) -> None:
    names = list(fieldnames) if isinstance(fieldnames, list | tuple) else []
    missing = [c for c in _COLUMNS if c not in names]
    if missing:
        raise DatasetError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
