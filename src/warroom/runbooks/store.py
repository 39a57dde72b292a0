"""A folder of runbooks, one Markdown file each, and which of them fit a new alert.

    book = RunbookStore(Path(".warroom/runbooks"))
    path = book.save(from_report(report))
    for runbook, score in book.similar(incident, services=store.services(), edges=edges):
        ...

The folder is created on the first save (constructors do no I/O). Saving the same
investigation again overwrites its file: the id hashes what was learned.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

from warroom.causal.rank import symptom_family
from warroom.errors import InputError
from warroom.intake.files import read_text
from warroom.model import Incident
from warroom.report.files import write_text
from warroom.runbooks.markdown import from_markdown, to_markdown
from warroom.runbooks.model import Runbook, Signature

DEFAULT_DIR = Path(".warroom") / "runbooks"
SUFFIX = ".md"

# Similarity weights (they sum to 1): the alert's service, its metric, and whether the
# runbook's services exist here at all.
SAME_SYMPTOM, NEAR_SYMPTOM = 0.5, 0.25
SAME_METRIC, SAME_FAMILY = 0.3, 0.2
PRESENT = 0.2
CULPRIT_ABSENT = 0.25  # factor when the runbook's culprit is not a service of this system
MIN_SCORE = 0.1
MAX_RUNBOOK_BYTES = 1 << 20  # a runbook is a page a person reads


class RunbookStore:
    """Runbooks saved as `<id>.md` under one folder."""

    def __init__(self, root: Path = DEFAULT_DIR) -> None:
        self.root = Path(root)

    def path(self, runbook_id: str) -> Path:
        """Where a runbook with this id lives."""
        return self.root / f"{runbook_id}{SUFFIX}"

    def save(self, runbook: Runbook) -> Path:
        """Write the runbook (atomically: a reader never sees half a file); returns its path."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"runbook folder {self.root} is a file, not a folder")
        return write_text(self.path(runbook.id), to_markdown(runbook), "runbook")

    def load(self, runbook_id: str) -> Runbook:
        """The runbook with this id (or a unique prefix of it); InputError names what exists."""
        return read(self._resolve(runbook_id))

    def list(self) -> builtins.list[Runbook]:
        """Every runbook, newest first; InputError on the first malformed file."""
        return _newest_first(read(p) for p in self._files())

    def load_all(self) -> tuple[builtins.list[Runbook], builtins.list[str]]:
        """Every readable runbook (newest first) and one problem line per unreadable file."""
        runbooks, problems = [], []
        for p in self._files():
            try:
                runbooks.append(read(p))
            except InputError as err:
                problems.append(str(err))
        return _newest_first(runbooks), problems

    def similar(
        self,
        incident: Incident,
        services: Iterable[str] | None = None,
        edges: Sequence[tuple[str, str]] = (),
        limit: int = 5,
    ) -> builtins.list[tuple[Runbook, float]]:
        """Stored runbooks ranked by how well their alert signature fits this incident.

        `services`: the services of this system (e.g. store.services()); a runbook whose
        culprit is not among them scores low. `edges`: caller -> callee pairs, so an alert on
        a neighbour of a runbook's symptom still matches. Unreadable files are skipped.
        """
        known = None if services is None else frozenset(services)
        runbooks, _problems = self.load_all()
        scored = [(r, similarity(r.signature, incident, known, edges)) for r in runbooks]
        scored = [(r, s) for r, s in scored if s >= MIN_SCORE]
        scored.sort(key=lambda rs: (-rs[1], -rs[0].provenance.confidence))
        return scored[:limit]

    def _files(self) -> builtins.list[Path]:
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"runbook folder {self.root} is a file, not a folder")
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob(f"*{SUFFIX}") if p.is_file())

    def _resolve(self, runbook_id: str) -> Path:
        exact = self.path(runbook_id)
        if runbook_id and "/" not in runbook_id and exact.is_file():
            return exact
        ids = [p.stem for p in self._files()]
        matches = [i for i in ids if runbook_id and i.startswith(runbook_id)]
        if len(matches) == 1:
            return self.path(matches[0])
        if len(matches) > 1:
            raise InputError(f"runbook id {runbook_id!r} is ambiguous: {', '.join(matches[:5])}")
        close = difflib.get_close_matches(runbook_id, ids, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        where = f"{len(ids)} runbooks in {self.root}" if ids else f"no runbooks in {self.root}"
        raise InputError(f"no runbook {runbook_id!r}{hint}: {where}")


def read(path: Path) -> Runbook:
    """Parse one runbook file; InputError naming the file when it cannot be read or parsed."""
    return from_markdown(read_text(path, MAX_RUNBOOK_BYTES), str(path))


def _newest_first(runbooks: Iterable[Runbook]) -> list[Runbook]:
    return sorted(runbooks, key=lambda r: (r.created, r.id), reverse=True)


def similarity(
    signature: Signature,
    incident: Incident,
    services: frozenset[str] | None = None,
    edges: Sequence[tuple[str, str]] = (),
) -> float:
    """0..1: same alerting service and metric score highest, a neighbouring service next."""
    score = 0.0
    symptom = incident.symptom_service
    if symptom and symptom == signature.symptom_service:
        score += SAME_SYMPTOM
    elif symptom and _near(symptom, signature, edges):
        score += NEAR_SYMPTOM
    metric = incident.symptom_metric
    if metric and metric == signature.symptom_metric:
        score += SAME_METRIC
    elif metric and symptom_family(metric) == signature.symptom_family:
        score += SAME_FAMILY
    if services is not None:
        named = signature.path or (signature.culprit_service,)
        score += PRESENT * sum(s in services for s in named) / len(named)
        if signature.culprit_service not in services:
            score *= CULPRIT_ABSENT
    return round(score, 3)


def _near(symptom: str, signature: Signature, edges: Sequence[tuple[str, str]]) -> bool:
    """The alerting service lies on the runbook's path, or next to its symptom or culprit."""
    if symptom in signature.path or symptom == signature.culprit_service:
        return True
    anchors = {signature.culprit_service}
    if signature.symptom_service:
        anchors.add(signature.symptom_service)
    return any((a == symptom and b in anchors) or (b == symptom and a in anchors) for a, b in edges)
