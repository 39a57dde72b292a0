"""Kubernetes API objects -> change events: pure functions over the JSON the API server lists.

    mapper = ServiceMapper(("owner", "app.kubernetes.io/name", "app", "name"), replicasets, pods)
    rows = [*deploys(replicasets, mapper), *restarts(pod, mapper.of_object(pod))]

The kinds are the ones the rest of warroom reads: `deploy`, `config` and `scale` are changes
(experts/changes.py: they can explain an anomaly that follows them); `restart` is what the
simulator writes for a container that died (an OOM kill says `OOMKilled:` first, which
causal/fault_types.py reads as a memory fault); `evict`, `schedule`, `unhealthy`, `node` and
`warning` are context for a reader of the report. No I/O here: kubernetes.py lists the objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warroom.model import Event, iso

Obj = Mapping[str, Any]

# The alphabet of generated name suffixes (k8s.io/apimachinery rand.SafeEncodeString): no
# vowels, so a real word like "proxy" or "service" is never taken for a replica suffix.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_DEPLOYMENT_POD = re.compile(rf"-{_SAFE}{{6,10}}-{_SAFE}{{5}}$")
_GENERATED_POD = re.compile(rf"-{_SAFE}{{5}}$")  # DaemonSet and Job pods
_ORDINAL = re.compile(r"-\d+$")  # StatefulSet pods: web-0, web-1
_REPLICASET = re.compile(rf"-{_SAFE}{{6,10}}$")
_CRONJOB_JOB = re.compile(r"-\d{8,}$")  # a CronJob's Job: <name>-<scheduled minute>

REASON_KINDS: dict[str, str] = {
    "ScalingReplicaSet": "scale",  # Deployment controller: "Scaled up replica set x to 3"
    "SuccessfulRescale": "scale",  # HPA: "New size: 5; reason: cpu resource utilization ..."
    "Evicted": "evict",
    "Preempted": "evict",
    "Preempting": "evict",
    "TaintManagerEviction": "evict",
    "FailedScheduling": "schedule",
    "Unhealthy": "unhealthy",  # readiness, liveness and startup probe failures
    "NodeNotReady": "node",
    "NodeNotSchedulable": "node",
    "Rebooted": "node",
    "NodeHasDiskPressure": "node",
    "NodeHasInsufficientMemory": "node",
    "NodeHasInsufficientPID": "node",
    "EvictionThresholdMet": "node",
    "SystemOOM": "node",
    "OOMKilling": "node",  # node-problem-detector's kernel OOM report
}
NOTE_CHARS = 500
DATA_FIELDS = ("f:data", "f:binaryData", "f:stringData")


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 Time or MicroTime; None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def as_mapping(value: Any) -> Obj:
    """The value when it is a JSON object, else {} (telemetry is untrusted)."""
    return value if isinstance(value, Mapping) else {}


def metadata(obj: Obj) -> Obj:
    """An object's metadata ({} when absent)."""
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labels(obj: Obj) -> Obj:
    labels = metadata(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def object_key(obj: Obj) -> tuple[str, str]:
    """(namespace, name); the namespace is empty for cluster-scoped objects."""
    meta = metadata(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _controller(obj: Obj) -> Obj | None:
    """The owner reference with controller: true (the workload that made this object)."""
    for ref in metadata(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


def strip_suffix(kind: str, name: str) -> str:
    """The workload name inside a generated Pod or ReplicaSet name; other names pass through."""
    if kind == "Pod":
        for pattern in (_DEPLOYMENT_POD, _ORDINAL, _GENERATED_POD):
            if pattern.search(name):
                return pattern.sub("", name)
    if kind == "ReplicaSet":
        return _REPLICASET.sub("", name)
    if kind == "Job":
        return _CRONJOB_JOB.sub("", name)
    return name


class ServiceMapper:
    """Which service an object belongs to, by the first of `rules` that gives a name.

    A rule is `owner` (the Deployment, StatefulSet, DaemonSet or CronJob behind the object),
    `name` (the object's own name with replica suffixes stripped) or a label key."""

    def __init__(self, rules: Sequence[str], replicasets: Iterable[Obj], pods: Iterable[Obj]):
        self.rules = tuple(rules)
        self._replicasets = {object_key(rs): rs for rs in replicasets}
        self._pods = {object_key(pod): pod for pod in pods}
        # a Deployment is never listed: its ReplicaSets carry its pod template's labels
        self._deployments: dict[tuple[str, str], Obj] = {}
        for rs in self._replicasets.values():
            owner = _controller(rs)
            if owner and owner.get("kind") == "Deployment":
                self._deployments[(object_key(rs)[0], str(owner.get("name")))] = rs

    def of_object(self, obj: Obj, kind: str = "Pod") -> str:
        """The service of a listed object (a Pod, a ReplicaSet, a ConfigMap...)."""
        for rule in self.rules:
            found = self._rule(rule, obj, kind)
            if found:
                return found
        return strip_suffix(kind, object_key(obj)[1])

    def of_reference(self, ref: Obj) -> str:
        """The service of an event's involvedObject / regarding reference."""
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        key = (str(ref.get("namespace") or ""), name)
        if kind == "Node":
            return f"node/{name}"
        listed = {
            "Pod": self._pods,
            "ReplicaSet": self._replicasets,
            "Deployment": self._deployments,
        }
        obj = listed.get(kind, {}).get(key)
        if obj is not None:
            return self.of_object(obj, "ReplicaSet" if kind == "Deployment" else kind)
        return strip_suffix(kind, name)

    def _rule(self, rule: str, obj: Obj, kind: str) -> str | None:
        if rule == "name":
            return strip_suffix(kind, object_key(obj)[1])
        if rule != "owner":
            value = _labels(obj).get(rule)
            return str(value) if value else None
        return self._workload(obj, kind)

    def _workload(self, obj: Obj, kind: str) -> str | None:
        owner = _controller(obj)
        if owner is None:
            return None
        owner_kind, owner_name = str(owner.get("kind") or ""), str(owner.get("name") or "")
        if owner_kind == "ReplicaSet":
            rs = self._replicasets.get((object_key(obj)[0], owner_name))
            parent = _controller(rs) if rs is not None else None
            if parent is not None:
                return str(parent.get("name") or "") or None
            return strip_suffix("ReplicaSet", owner_name)  # deleted or not listed: its name
        if owner_kind == "Job":
            return strip_suffix("Job", owner_name)
        return owner_name or None


@dataclass(frozen=True)
class Occurrence:
    """One Event object of either API, in the terms both share."""

    uid: str
    first: float
    last: float
    count: int
    reason: str
    type: str
    note: str
    regarding: Obj


def core_event(item: Obj) -> Occurrence | None:
    """A core/v1 Event (firstTimestamp/lastTimestamp/count, or eventTime/series for new writers)."""
    series = as_mapping(item.get("series"))
    first = parse_time(item.get("firstTimestamp")) or parse_time(item.get("eventTime"))
    first = first or parse_time(metadata(item).get("creationTimestamp"))
    last = parse_time(item.get("lastTimestamp")) or parse_time(series.get("lastObservedTime"))
    count = item.get("count") or series.get("count") or 1
    return _occurrence(item, first, last, count, item.get("message"), item.get("involvedObject"))


def new_event(item: Obj) -> Occurrence | None:
    """An events.k8s.io/v1 Event (eventTime, series, regarding, note)."""
    series = as_mapping(item.get("series"))
    first = parse_time(item.get("eventTime")) or parse_time(item.get("deprecatedFirstTimestamp"))
    last = parse_time(series.get("lastObservedTime"))
    last = last or parse_time(item.get("deprecatedLastTimestamp"))
    count = series.get("count") or item.get("deprecatedCount") or 1
    return _occurrence(item, first, last, count, item.get("note"), item.get("regarding"))


def _occurrence(
    item: Obj, first: float | None, last: float | None, count: Any, note: Any, ref: Any
) -> Occurrence | None:
    if first is None or not isinstance(ref, Mapping):
        return None
    return Occurrence(
        uid=str(metadata(item).get("uid") or f"{object_key(item)}"),
        first=first,
        last=max(last or first, first),
        count=count if isinstance(count, int) and count > 0 else 1,
        reason=str(item.get("reason") or ""),
        type=str(item.get("type") or ""),
        note=str(note or "")[:NOTE_CHARS],
        regarding=ref,
    )


def event_kind(occ: Occurrence) -> str | None:
    """The warroom kind of an event; None for routine ones (Pulled, Started, Scheduled...)."""
    if occ.reason == "BackOff":  # the same reason covers image pulls and crash loops
        return "restart" if "restarting" in occ.note else "warning"
    kind = REASON_KINDS.get(occ.reason)
    if kind is None and occ.type == "Warning":
        return "warning"
    return kind


def event_row(occ: Occurrence, mapper: ServiceMapper) -> Event | None:
    """The row of an event, at its first occurrence: a series is one row, whatever its chunk."""
    kind = event_kind(occ)
    if kind is None:
        return None
    ref = occ.regarding
    about = "/".join(str(p) for p in (ref.get("namespace"), ref.get("name")) if p)
    text = f"{occ.reason}: {occ.note} ({ref.get('kind')} {about}"
    if occ.count > 1:
        text += f"; x{occ.count} until {iso(occ.last)}"
    return Event(occ.first, mapper.of_reference(ref), kind, text + ")")


def _images(template_owner: Obj) -> dict[str, str]:
    spec = template_owner.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers") or []
    return {str(c.get("name")): str(c.get("image")) for c in containers if isinstance(c, Mapping)}


def _revision(rs: Obj) -> int:
    annotations = metadata(rs).get("annotations") or {}
    try:
        return int(annotations.get("deployment.kubernetes.io/revision", 0))
    except (TypeError, ValueError):
        return 0


def deploys(replicasets: Sequence[Obj], mapper: ServiceMapper) -> list[Event]:
    """A deploy per ReplicaSet a Deployment created: its revision and the images it changed."""
    by_deployment: dict[tuple[str, str], list[Obj]] = {}
    for rs in replicasets:
        owner = _controller(rs)
        if owner and owner.get("kind") == "Deployment":
            by_deployment.setdefault((object_key(rs)[0], str(owner.get("name"))), []).append(rs)
    rows: list[Event] = []
    for (namespace, deployment), history in by_deployment.items():
        history.sort(key=_revision)
        for before, rs in zip([None, *history], history, strict=False):
            created = parse_time(metadata(rs).get("creationTimestamp"))
            if created is not None:
                what = _rollout_text(namespace, deployment, before, rs)
                rows.append(Event(created, mapper.of_object(rs, "ReplicaSet"), "deploy", what))
    return rows


def _rollout_text(namespace: str, deployment: str, before: Obj | None, rs: Obj) -> str:
    new, old = _images(rs), _images(before) if before is not None else {}
    head = f"Deployment {namespace}/{deployment} revision {_revision(rs)} ({object_key(rs)[1]})"
    if before is None:
        shown = ", ".join(f"{c}={image}" for c, image in sorted(new.items()))
        tail = "first revision kept" if _revision(rs) > 1 else "first revision"
        text = f"{head}: image {shown} ({tail})"
    else:
        changed = [
            f"{c} {old.get(c, 'none')} -> {img}" for c, img in new.items() if old.get(c) != img
        ]
        text = f"{head}: image {', '.join(changed)}" if changed else f"{head}: pod template changed"
        text += f" (was revision {_revision(before)})"
    cause = (metadata(rs).get("annotations") or {}).get("kubernetes.io/change-cause")
    return f"{text}; change-cause: {cause}" if cause else text
