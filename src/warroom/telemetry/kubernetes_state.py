"""What the current state of Kubernetes objects still tells about the past: pure functions.

The API keeps no history but Events (an hour by default), so the rest is read from state:
a container's last termination (`lastState.terminated`: reason, exit code, finishedAt), a
pod's condition transitions, who last wrote a ConfigMap's data (managedFields times), a node's
Ready condition. Each of these shows only the latest occurrence: two OOM kills of one
container in the window are one row plus a restart count.

    rows = [*restarts(pod, "checkout"), *pod_conditions(pod, "checkout")]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warroom.model import Event, TimeRange
from warroom.telemetry.kubernetes_objects import (
    DATA_FIELDS,
    Obj,
    Occurrence,
    ServiceMapper,
    metadata,
    object_key,
    parse_time,
)

# A pod condition that is False (or True for DisruptionTarget) since a time: what it says.
CONDITION_KINDS = {
    ("Ready", "False"): "unhealthy",
    ("PodScheduled", "False"): "schedule",
    ("DisruptionTarget", "True"): "evict",  # 1.26+: evicted, preempted or drained
}
NODE_BAD = {("Ready", "False"), ("Ready", "Unknown"), ("MemoryPressure", "True")}
_ASSIGNED = re.compile(r"assigned (?P<ns>[^/\s]+)/(?P<pod>\S+) to (?P<node>\S+)")
NODE_BAD |= {("DiskPressure", "True"), ("PIDPressure", "True")}


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _name(obj: Obj) -> str:
    return "/".join(p for p in object_key(obj) if p)


def restarts(pod: Obj, service: str) -> list[Event]:
    """One row per container termination the pod status still shows (the last one each)."""
    status = _status(pod)
    rows: list[Event] = []
    for group in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(group) or ():
            if not isinstance(container, Mapping):
                continue
            last = (container.get("lastState") or {}).get("terminated")
            now = (container.get("state") or {}).get("terminated")
            for term in (last, now):
                # a container that exits 0 and is not restarted finished its work
                ended = term is now and (term or {}).get("reason") == "Completed"
                if isinstance(term, Mapping) and not ended:
                    row = _termination(pod, service, container, term)
                    rows.extend([row] if row else [])
    return rows


def _termination(pod: Obj, service: str, container: Obj, term: Obj) -> Event | None:
    finished = parse_time(term.get("finishedAt"))
    if finished is None:
        return None
    reason = str(term.get("reason") or "Terminated")
    text = (
        f"{reason}: container {container.get('name')} of pod {_name(pod)} exited with code "
        f"{term.get('exitCode')} (restart count {container.get('restartCount', 0)})"
    )
    if term.get("message"):
        text += f": {str(term['message'])[:200]}"
    return Event(finished, service, "restart", text)


def pod_conditions(pod: Obj, service: str) -> list[Event]:
    """Readiness lost, unschedulable, disrupted: the last transition of each condition."""
    rows: list[Event] = []
    for condition in _status(pod).get("conditions") or ():
        if not isinstance(condition, Mapping):
            continue
        kind = CONDITION_KINDS.get((str(condition.get("type")), str(condition.get("status"))))
        since = parse_time(condition.get("lastTransitionTime"))
        if kind is None or since is None:
            continue
        why = ": ".join(str(condition[k]) for k in ("reason", "message") if condition.get(k))
        text = f"pod {_name(pod)} {condition.get('type')}={condition.get('status')}"
        rows.append(Event(since, service, kind, f"{text}: {why}" if why else text))
    return rows


def config_changes(
    kind: str, objects: Sequence[Obj], pods: Sequence[Obj], mapper: ServiceMapper
) -> list[Event]:
    """A row per service using a ConfigMap or Secret whose data a manager wrote after creation.

    A managedFields entry keeps only its manager's latest write, and that write may have
    touched metadata only: the time is the latest data-owning write, an upper bound."""
    users = _users(kind, pods, mapper)
    rows: list[Event] = []
    for obj in objects:
        created = parse_time(metadata(obj).get("creationTimestamp")) or 0.0
        services = users.get(object_key(obj)) or {mapper.of_object(obj, kind)}
        for entry in metadata(obj).get("managedFields") or ():
            written = parse_time(entry.get("time")) if isinstance(entry, Mapping) else None
            if written is None or written <= created or not _owns_data(entry):
                continue
            version = metadata(obj).get("resourceVersion")
            text = (
                f"{kind} {_name(obj)} data written by {entry.get('manager')} "
                f"({entry.get('operation')}; resourceVersion {version})"
            )
            rows.extend(Event(written, service, "config", text) for service in sorted(services))
    return rows


def _owns_data(entry: Obj) -> bool:
    fields = entry.get("fieldsV1")
    return isinstance(fields, Mapping) and any(f in fields for f in DATA_FIELDS)


def _users(
    kind: str, pods: Iterable[Obj], mapper: ServiceMapper
) -> dict[tuple[str, str], set[str]]:
    """(namespace, name) of each ConfigMap or Secret -> the services whose pods use it."""
    users: dict[tuple[str, str], set[str]] = {}
    for pod in pods:
        namespace, service = object_key(pod)[0], mapper.of_object(pod)
        for name in _references(kind, pod.get("spec") or {}):
            users.setdefault((namespace, name), set()).add(service)
    return users


def _references(kind: str, spec: Obj) -> set[str]:
    """Names of the ConfigMaps (or Secrets) a pod spec mounts or reads into its environment."""
    volume_key, ref_key, name_key = (
        ("configMap", "configMapRef", "name")
        if kind == "ConfigMap"
        else ("secret", "secretRef", "secretName")
    )
    names: set[str] = set()
    for volume in spec.get("volumes") or ():
        names.add(str((volume.get(volume_key) or {}).get(name_key) or ""))
        for source in (volume.get("projected") or {}).get("sources") or ():
            names.add(str((source.get(volume_key) or {}).get("name") or ""))
    key_ref = "configMapKeyRef" if kind == "ConfigMap" else "secretKeyRef"
    for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        for source in container.get("envFrom") or ():
            names.add(str((source.get(ref_key) or {}).get("name") or ""))
        for env in container.get("env") or ():
            names.add(str(((env.get("valueFrom") or {}).get(key_ref) or {}).get("name") or ""))
    names.discard("")
    return names


def node_conditions(node: Obj) -> list[Event]:
    """A node that is NotReady or under pressure: the time its condition last turned bad."""
    name = object_key(node)[1]
    rows: list[Event] = []
    for condition in _status(node).get("conditions") or ():
        if not isinstance(condition, Mapping):
            continue
        since = parse_time(condition.get("lastTransitionTime"))
        bad = (str(condition.get("type")), str(condition.get("status"))) in NODE_BAD
        if bad and since is not None:
            why = ": ".join(str(condition[k]) for k in ("reason", "message") if condition.get(k))
            text = f"Node {name} {condition.get('type')}={condition.get('status')}: {why}"
            rows.append(Event(since, f"node/{name}", "node", text))
    return rows


@dataclass(frozen=True)
class Placement:
    """A pod on a node from `start` to `end` (None: still there when listed, or not known)."""

    namespace: str
    pod: str
    service: str
    node: str
    start: float
    end: float | None

    def overlaps(self, window: TimeRange) -> bool:
        """True when the pod was on its node at some time inside the window."""
        return self.start < window.end and (self.end is None or self.end >= window.start)


def pod_placement(pod: Obj, service: str) -> Placement | None:
    """Where a listed pod runs (spec.nodeName) since its start; its end once it terminated."""
    node = (pod.get("spec") or {}).get("nodeName")
    status = _status(pod)
    start = parse_time(status.get("startTime")) or parse_time(
        metadata(pod).get("creationTimestamp")
    )
    if not node or start is None:
        return None
    end = None
    if status.get("phase") in ("Succeeded", "Failed"):
        ends = [
            parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            for c in status.get("containerStatuses") or ()
            if isinstance(c, Mapping)
        ]
        end = max((t for t in ends if t is not None), default=None)
    namespace, name = object_key(pod)
    return Placement(namespace, name, service, str(node), start, end)


def scheduled_placement(occ: Occurrence, mapper: ServiceMapper) -> Placement | None:
    """A `Scheduled` event ("Successfully assigned ns/pod to node"): placement of a pod that
    may since have been deleted."""
    found = _ASSIGNED.search(occ.note) if occ.reason == "Scheduled" else None
    if found is None:
        return None
    ref: dict[str, Any] = {"kind": "Pod", "namespace": found["ns"], "name": found["pod"]}
    service = mapper.of_reference(ref)
    return Placement(found["ns"], found["pod"], service, found["node"], occ.first, None)
