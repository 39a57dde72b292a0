"""RCAEval's BARO as a side-by-side baseline: metric columns in, ranked service names out.

BARO (RCAEval ``RCAEval/e2e/baro.py``) splits the frame at ``inject_time``, runs RCAEval's
``preprocess`` on each half (drop ``time``, drop columns constant within that half, memory
columns ending ``_mem`` divided by 1e6), keeps the columns that survive in both halves, fits a
``RobustScaler`` on the normal half and scores each column by its largest robust z-score in
the anomalous half. Before calling it we prepare the frame the way RCAEval's own ``main.py``
does: infinities become NaN, NaN is forward-filled, then filled with 0. Columns that are NaN
everywhere are dropped first, so they never reach BARO.

Only ``RCAEval/e2e/baro.py`` is loaded, from its file: importing it as ``RCAEval.e2e.baro``
runs ``RCAEval/e2e/__init__.py``, which on Python 3.11 imports RCD (causal-learn, matplotlib,
requests, ...). BARO itself needs numpy, pandas and scikit-learn.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from warroom.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

INSTALL_HINT = "the BARO baseline needs RCAEval: pip install 'warroom[baselines]'"
TIME_COLUMN = "time"
# Any dataset name but None (no preprocessing) or "causalrca-sock-shop" (time dropped only)
# gets RCAEval's standard preprocessing: drop time, drop constant columns, memory to MB.
DATASET_LABEL = "warroom"

BaroFunction = Callable[..., dict[str, Any]]


def _import_or_hint(name: str) -> ModuleType:
    """Import a baseline dependency, or raise ImportError naming the extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} (missing: {exc.name or name})") from exc


def _baro_path() -> Path:
    """Path of RCAEval's ``e2e/baro.py`` in the installed package."""
    spec = importlib.util.find_spec("RCAEval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{INSTALL_HINT} (missing: RCAEval)")
    for root in spec.submodule_search_locations:
        path = Path(root) / "e2e" / "baro.py"
        if path.is_file():
            return path
    raise ImportError(f"{INSTALL_HINT} (this RCAEval has no e2e/baro.py)")


@cache
def load_baro() -> BaroFunction:
    """RCAEval's ``baro`` function, loaded lazily from its own module file."""
    _import_or_hint("pandas")
    _import_or_hint("sklearn")
    path = _baro_path()
    spec = importlib.util.spec_from_file_location("_warroom_rcaeval_baro", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{INSTALL_HINT} (cannot load {path})")
    module = importlib.util.module_from_spec(spec)
    # baro.py calls warnings.filterwarnings("ignore") at import; keep that out of our process.
    with warnings.catch_warnings():
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            raise ImportError(f"{INSTALL_HINT} (missing: {exc.name})") from exc
    baro: BaroFunction = module.baro
    return baro


def service_of(column: str) -> str:
    """Service part of a ``<service>_<metric>`` column: everything before the last ``_``."""
    return column.rsplit("_", 1)[0]


def collapse_to_services(ranked_columns: Sequence[str]) -> list[str]:
    """Services in order of their first (best-ranked) column."""
    return list(dict.fromkeys(service_of(column) for column in ranked_columns))


def _check_shape(times: Sequence[float], columns: Mapping[str, Sequence[float]]) -> None:
    """Raise InputError unless every column is as long as ``times`` and none is named time."""
    if TIME_COLUMN in columns:
        raise InputError(f"metric column may not be named {TIME_COLUMN!r}")
    for name, values in columns.items():
        if len(values) != len(times):
            raise InputError(f"column {name!r} has {len(values)} values for {len(times)} times")


def build_frame(times: Sequence[float], columns: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """The frame BARO expects: ``time`` in epoch seconds plus one float column per metric."""
    _check_shape(times, columns)
    pd = _import_or_hint("pandas")
    np = _import_or_hint("numpy")
    frame = pd.DataFrame(
        {name: np.asarray(values, dtype=float) for name, values in columns.items()},
        index=pd.RangeIndex(len(times)),
    )
    frame.insert(0, TIME_COLUMN, np.asarray(times, dtype=float))
    frame = frame.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)
    frame = frame.replace([np.inf, -np.inf], np.nan)
    frame = frame.dropna(axis="columns", how="all")
    return frame.ffill().fillna(0.0)


def _has_both_sides(frame: pd.DataFrame, anomaly_time: float) -> bool:
    """True when the frame has at least one row before and one at/after ``anomaly_time``."""
    times = frame[TIME_COLUMN]
    return bool((times < anomaly_time).any() and (times >= anomaly_time).any())


def baro_rank_columns(
    times: Sequence[float], columns: Mapping[str, Sequence[float]], anomaly_time: float
) -> list[str]:
    """BARO's metric-level ranking (best first); empty when there is nothing to compare."""
    frame = build_frame(times, columns)
    if frame.shape[1] < 2 or not _has_both_sides(frame, anomaly_time):
        return []
    baro = load_baro()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = baro(frame, inject_time=anomaly_time, dataset=DATASET_LABEL)
    return [str(column) for column in result["ranks"]]


def baro_rank(
    times: Sequence[float], columns: Mapping[str, Sequence[float]], anomaly_time: float
) -> list[str]:
    """Services ranked by BARO, most suspect first; columns are named ``<service>_<metric>``."""
    return collapse_to_services(baro_rank_columns(times, columns, anomaly_time))
