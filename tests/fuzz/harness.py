"""Run a reader over generated inputs in worker processes, with a watchdog.

    stats = fuzz("nezha", inputs=300, seed=0)      # Stats(inputs, values, project, other, ...)

Each input is a seed copy with one to three mutations (mutate.py), reproducible from the
reader's name, the run seed and the input's index. A call must end in values that keep the
reader's promises or in a WarroomError; anything else counts as `other`. Every call is timed:
one over BOUND_S counts as over the bound, and a call still running after KILL_S is killed (its
worker is restarted after it) and counted as a hang, so a hang never stalls the run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from fuzz.mutate import Mutator, copy_seed
from fuzz.readers import READERS, Nonsense, Reader
from warroom.errors import WarroomError

BOUND_S = 5.0
KILL_S = float(os.environ.get("WARROOM_FUZZ_KILL_S", "60"))
FAILURES = Path(tempfile.gettempdir()) / "warroom-fuzz-failures"


@dataclass
class Stats:
    """What one reader's run found."""

    reader: str
    inputs: int = 0
    values: int = 0
    project: int = 0  # ended in a WarroomError: the rule
    other: int = 0  # any other exception, nonsense values, a hang or a dead worker
    over_bound: int = 0
    max_seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def add(self, index: int, outcome: str, seconds: float, detail: str) -> None:
        """Count one input's outcome."""
        self.inputs += 1
        self.max_seconds = max(self.max_seconds, seconds)
        if outcome == "value":
            self.values += 1
        elif outcome == "project":
            self.project += 1
        else:
            self.other += 1
            self._example(f"#{index} {outcome}: {detail}")
        if seconds > BOUND_S:
            self.over_bound += 1
            self._example(f"#{index} took {seconds:.1f} s ({outcome})")

    def _example(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)


def generate(reader: Reader, seed: Path, work: Path, run_seed: int, index: int) -> Path:
    """The index-th mutated input of a run: a fresh seed copy under `work`, damaged."""
    rng = random.Random(f"{reader.name}:{run_seed}:{index}")
    target = copy_seed(seed, work)
    mutator = Mutator(rng, work.parent / "pwned.csv")
    files = reader.files(target)
    if target.is_dir() and rng.random() < 0.08:
        mutator.layout(files)
        return target
    for path in rng.sample(files, k=min(len(files), rng.choice((1, 1, 1, 2, 3)))):
        mutator.file(path)
    return target


def _call(reader: Reader, target: Path) -> tuple[str, str]:
    try:
        reader.call(target)
    except WarroomError:
        return "project", ""
    except Nonsense as err:
        return "nonsense", str(err)[:300]
    except BaseException as err:  # the point of the harness: anything else is a finding
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        return "other", f"{type(err).__name__} at {where}: {str(err)[:240]}"
    return "value", ""


def worker(name: str, start: int, stop: int, run_seed: int, conn: Connection) -> None:
    """Child process: build the seed, then generate and read inputs [start, stop)."""
    reader = READERS[name]
    base = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-", dir=_scratch()))
    try:
        (base / "seed").mkdir()
        seed = reader.build(base / "seed")
        work, pwned = base / "work", base / "pwned.csv"
        for index in range(start, stop):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            try:
                target = generate(reader, seed, work, run_seed, index)
            except Exception as err:  # a harness bug must show, not kill the worker
                conn.send(("done", index, "generator", 0.0, f"{type(err).__name__}: {err}"))
                continue
            conn.send(("start", index))
            started = time.perf_counter()
            outcome, detail = _call(reader, target)
            seconds = time.perf_counter() - started
            if pwned.exists():
                outcome, detail = "injection", "a hostile name made SQL write a file"
                pwned.unlink()
            if outcome != "value" and outcome != "project":
                _keep(target, name, index)
            conn.send(("done", index, outcome, seconds, detail))
        conn.send(("end",))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _scratch() -> str | None:
    """A RAM disk for the inputs when there is one: thousands of folders come and go."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _keep(target: Path, name: str, index: int) -> None:
    """Save a failing input for a look (its index reproduces it too)."""
    keep = FAILURES / name / str(index)
    shutil.rmtree(keep, ignore_errors=True)
    try:
        if target.is_dir():
            shutil.copytree(target, keep)
        elif target.exists():
            keep.mkdir(parents=True)
            shutil.copy2(target, keep / target.name)
    except OSError:
        pass  # keeping a copy is a convenience, never a reason to stop the run


@dataclass
class _Job:
    process: Any
    conn: Connection
    next: int  # the first input not yet done
    stop: int
    current: int | None = None
    since: float = 0.0
    ended: bool = False
    eof: bool = False  # the pipe closed: the worker is gone


def fuzz(name: str, inputs: int, seed: int = 0, workers: int | None = None) -> Stats:
    """Run `inputs` generated inputs through one reader; returns what happened."""
    stats = Stats(name)
    count = max(1, min(workers or os.cpu_count() or 1, inputs))
    bounds = [inputs * k // count for k in range(count + 1)]
    jobs = [_start(name, a, b, seed) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    while jobs:
        ready = wait([j.conn for j in jobs], timeout=1.0)
        for job in list(jobs):
            if job.conn in ready:
                _receive(job, stats)
            restart = _watch(job, stats, name, seed)
            if job.ended or restart is not None:
                job.process.join(timeout=5)
                jobs.remove(job)
                if restart is not None:
                    jobs.append(restart)
    return stats


def _start(name: str, start: int, stop: int, seed: int) -> _Job:
    context = mp.get_context("spawn")  # no fork of a process with DuckDB threads
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=worker, args=(name, start, stop, seed, child), daemon=True)
    process.start()
    child.close()
    return _Job(process, parent, start, stop, since=time.monotonic())


def _receive(job: _Job, stats: Stats) -> None:
    try:
        while job.conn.poll():
            message = job.conn.recv()
            if message[0] == "start":
                job.current, job.since = message[1], time.monotonic()
            elif message[0] == "done":
                _, index, outcome, seconds, detail = message
                stats.add(index, outcome, seconds, detail)
                job.current, job.next = None, index + 1
            else:
                job.ended = True
    except (EOFError, OSError):
        job.eof = True  # the worker died: _watch counts it


def _watch(job: _Job, stats: Stats, name: str, seed: int) -> _Job | None:
    """A job whose call hangs or whose process died: count it, return its successor."""
    if not job.ended and not job.eof and not job.process.is_alive():
        _receive(job, stats)  # it may have exited after its last messages were sent
    if job.ended:
        return None
    dead = job.eof or not job.process.is_alive()
    hung = not dead and job.current is not None and time.monotonic() - job.since > KILL_S
    if not (hung or dead):
        return None
    index = job.current if job.current is not None else job.next
    seconds = time.monotonic() - job.since
    if hung:
        job.process.kill()
        stats.add(index, "hang", seconds, f"killed after {seconds:.0f} s")
    else:
        job.process.join(timeout=5)
        stats.add(index, "worker died", seconds, f"exit code {job.process.exitcode}")
    job.ended = True
    return _start(name, index + 1, job.stop, seed) if index + 1 < job.stop else None
