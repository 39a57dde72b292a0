"""Episodes of the live gym: break the running shop for real, wait for the page, let `warroom
serve` investigate from the live sources, score its report, heal, check the shop is healthy
again, keep the episode as a case folder.

    plans = plan_episodes(count=6, seed=0)               # faults and controls, seeded
    result = run_episode(stack, plan, registry, out_dir) # one EpisodeResult
    summarize([r.score for r in results])                # gym/scoring.py's measures

An episode: (1) the shop is healthy (nothing pending or firing, every process up) and has been
quiet for QUIET_S; (2) the fault is injected (a control injects nothing, or a harmless change:
an unrelated deploy, a batch job); (3) the first page Alertmanager delivers to serve after the
injection is the investigation (a control with no page within CONTROL_S, or a fault that paged
nothing within ALERT_WAIT_S, is asked for through the API, as an on-call engineer would ask
about the frontend; the result says it was not paged); (4) its report is scored against the
truth: culprit, fault type, the path from the culprit to the alerting service; (5) heal.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from warroom.gym.faults import CATALOGUE
from warroom.gym.live.contracts import EDGES, EXTERNAL
from warroom.gym.live.processes import StackError
from warroom.gym.live.stack import Stack, append_change
from warroom.gym.scoring import CaseScore
from warroom.intake.case_dir import FORMAT
from warroom.report.render import INCONCLUSIVE_BELOW
from warroom.topology.graph import propagation_path, service_graph

QUIET_S = 90.0  # healthy this long before a fault: the baseline the investigation compares to
HEALTHY_WAIT_S = 300.0
ALERT_WAIT_S = 180.0
CONTROL_S = 150.0
REPORT_WAIT_S = 240.0
POLL_S = 2.0
SYMPTOM = "frontend"  # the service an on-call engineer asks about when nothing paged

# Which components each live fault may hit (the shop's shape decides: a cache fault needs the
# cache, a consumer lag the consumer).
TARGETS: dict[str, tuple[str, ...]] = {
    "cpu-hog": ("checkout", "cart", "orders", "payment", "frontend"),
    "memory-leak": ("checkout", "cart", "orders", "payment"),
    "network-delay": ("cart", "orders", "payment", "redis", "postgres"),
    "packet-loss": ("cart", "orders", "payment", "redis", "postgres"),
    "cache-down": ("redis",),
    "db-lock-contention": ("postgres",),
    "db-pool-exhaustion": ("postgres",),
    "bad-deploy": ("checkout", "cart", "orders", "payment", "shipping"),
    "bad-config-push": ("checkout", "payment", "orders"),
    "disk-full": ("shipping",),
    "third-party-outage": (EXTERNAL,),
    "queue-consumer-lag": ("worker",),
}
CONTROLS = ("quiet", "harmless-deploy", "batch-job")
CONTROL_EVERY = 6  # one episode in six is a no-fault control


@dataclass(frozen=True)
class Timing:
    """How long an episode waits at each step (a short CI smoke waits less)."""

    quiet_s: float = QUIET_S
    page_wait_s: float = ALERT_WAIT_S
    control_s: float = CONTROL_S


@dataclass(frozen=True)
class EpisodePlan:
    """What one episode does: a fault on a target, or a control."""

    index: int
    kind: str  # a TARGETS key, or a CONTROLS name
    target: str | None
    seed: int

    @property
    def is_control(self) -> bool:
        return self.kind in CONTROLS

    @property
    def fault_type(self) -> str:
        return "none" if self.is_control else CATALOGUE[self.kind][0]

    @property
    def id(self) -> str:
        return f"live-{self.index:02d}-{self.kind}-{self.target or 'none'}"


@dataclass
class EpisodeResult:
    """One episode, measured."""

    plan: EpisodePlan
    score: CaseScore
    paged: bool  # an alert reached serve (False: asked through the API)
    alert: str = ""  # the alert's name, or "" when not paged
    symptom: str = ""
    seconds_to_page: float | None = None  # injection -> the investigation's creation
    seconds_to_report: float | None = None  # the page's arrival -> the finished report
    healed_in_s: float | None = None
    case_dir: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["plan"]["id"] = self.plan.id
        return out


def plan_episodes(count: int, seed: int, kinds: Sequence[str] = ()) -> list[EpisodePlan]:
    """`count` episodes: the fault kinds in a seeded order, cycling, with a control in every
    CONTROL_EVERY-th place (the first control comes third, so a short smoke has one)."""
    rng = random.Random(seed)
    faults = list(kinds or TARGETS)
    unknown = [k for k in faults if k not in TARGETS]
    if unknown:
        raise StackError(f"no live fault {unknown[0]!r}: the live gym has {', '.join(TARGETS)}")
    rng.shuffle(faults)
    controls = list(CONTROLS)
    rng.shuffle(controls)
    plans: list[EpisodePlan] = []
    for index in range(count):
        episode_seed = rng.randrange(1 << 30)
        if index % CONTROL_EVERY == 2:
            kind = controls[(index // CONTROL_EVERY) % len(controls)]
            plans.append(EpisodePlan(index, kind, None, episode_seed))
            continue
        kind = faults.pop(0)
        faults.append(kind)
        target = random.Random(episode_seed).choice(TARGETS[kind])
        plans.append(EpisodePlan(index, kind, target, episode_seed))
    return plans


def expected_path(culprit: str, symptom: str) -> tuple[str, ...]:
    """culprit -> ... -> symptom along the shop's calls (how the failure travels)."""
    return propagation_path(service_graph(EDGES), culprit, symptom)


# --- one episode --------------------------------------------------------------------------


class Serve:
    """The few calls the gym makes to `warroom serve`."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    def investigations(self) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.url}/api/v1/investigations", params={"limit": 200}, headers=self.headers,
            timeout=10,
        )  # fmt: skip
        answer.raise_for_status()
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def one(self, investigation: str) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.url}/api/v1/investigations/{investigation}", headers=self.headers, timeout=10
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def ask(self, service: str, start: float, end: float) -> str:
        request = {"service": service, "start": start, "end": end}
        answer = httpx.post(
            f"{self.url}/api/v1/investigations", json=request, headers=self.headers, timeout=10
        )
        answer.raise_for_status()
        return str(answer.json()["id"])


def run_episode(
    stack: Stack,
    plan: EpisodePlan,
    registry: Any,
    out_dir: Path,
    say: Callable[[str], None] = lambda _: None,
    timing: Timing = Timing(),
) -> EpisodeResult:
    """Break, wait for the page, score the report, heal; the shop healthy again at the end."""
    serve = Serve(stack.serve_url, stack.token)
    say(f"{plan.id}: waiting for a healthy, quiet shop")
    wait_healthy(stack, timing.quiet_s)
    seen = {i["id"] for i in serve.investigations()}
    fault = _make(plan)
    injected = time.time()
    say(f"{plan.id}: injecting {plan.kind} on {plan.target or '-'}")
    if fault is not None:
        fault.inject(stack, registry)
    notes: list[str] = []
    try:
        wait_s = timing.control_s if plan.is_control else timing.page_wait_s
        page = _first_page(serve, seen, injected, wait_s)
        if page is None:
            say(f"{plan.id}: no page in {wait_s:.0f} s: asking about {SYMPTOM}")
            investigation = serve.ask(SYMPTOM, injected - timing.quiet_s, time.time())
            page = serve.one(investigation)
        paged_at = float(page["created_at"])
        firing = active_alerts(stack.prometheus_url)
        say(f"{plan.id}: investigating {page['service']} ({page['id']})")
        finished = _finished(serve, page["id"])
    finally:
        healed_at = time.time()
        if fault is not None:
            say(f"{plan.id}: healing")
            fault.heal(stack, registry)
    healed_in = _healed_in(stack, healed_at, notes)
    report = finished.get("report") or {}
    symptom = str(page["service"] or SYMPTOM)
    score = score_report(plan, report, symptom, float(finished["updated_at"]) - paged_at)
    result = EpisodeResult(
        plan=plan,
        score=score,
        paged=page.get("source") == "alertmanager",
        alert=",".join(sorted(set(firing))) if page.get("source") == "alertmanager" else "",
        symptom=symptom,
        seconds_to_page=round(paged_at - injected, 1),
        seconds_to_report=score.seconds,
        healed_in_s=healed_in,
        notes=notes + ([f"status {finished['status']}: {finished.get('reason')}"]
                       if finished["status"] == "failed" else []),
    )  # fmt: skip
    result.case_dir = export_case(stack, plan, finished, injected, out_dir, notes)
    return result


def failed_episode(plan: EpisodePlan, err: Exception) -> EpisodeResult:
    """An episode that could not be run to its end (an injector or the stack failed)."""
    score = CaseScore(
        case_id=plan.id, topology="live-shop", fault=plan.kind if not plan.is_control else "none",
        seed=plan.seed, truth_service=plan.target, top=(), rank=None, fault_type_ok=False,
        path_ok=False, false_alarm=None, seconds=0.0,
        variant=plan.kind if plan.is_control else "", error=f"{type(err).__name__}: {err}",
    )  # fmt: skip
    return EpisodeResult(plan=plan, score=score, paged=False, notes=[f"failed: {err}"])


def _make(plan: EpisodePlan) -> Any:
    """The live fault (or the control's harmless change) of a plan; None for a quiet control."""
    from warroom.gym.live import faults

    rng = random.Random(plan.seed)
    if plan.kind == "quiet":
        return None
    if plan.kind == "harmless-deploy":
        return faults.HarmlessDeploy(rng.choice(("cart", "shipping", "payment")))
    if plan.kind == "batch-job":
        return faults.BatchJob()
    return faults.make_fault(plan.kind, plan.target, rng)


def wait_healthy(stack: Stack, quiet_s: float = QUIET_S) -> None:
    """Until every process runs and no alert has been pending or firing for `quiet_s`."""
    deadline = time.monotonic() + HEALTHY_WAIT_S
    calm_since: float | None = None
    while time.monotonic() < deadline:
        down = stack.healthy()
        alerts = active_alerts(stack.prometheus_url)
        if down or alerts:
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet_s:
            return
        time.sleep(POLL_S)
    raise StackError(
        f"the shop is not healthy after {HEALTHY_WAIT_S:.0f} s: down {stack.healthy()}, "
        f"alerts {active_alerts(stack.prometheus_url)}"
    )


def active_alerts(prometheus: str) -> list[str]:
    """Names of the alerts pending or firing now."""
    try:
        answer = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return ["(prometheus unreachable)"]
    return [a["labels"].get("alertname", "?") for a in answer.get("data", {}).get("alerts", [])]


def _first_page(serve: Serve, seen: set[str], since: float, wait_s: float) -> dict[str, Any] | None:
    """The first investigation created after `since` that a notification started."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        fresh = [
            i for i in serve.investigations()
            if i["id"] not in seen and i["created_at"] >= since
            and i.get("source") == "alertmanager"
        ]  # fmt: skip
        if fresh:
            return min(fresh, key=lambda i: float(i["created_at"]))
        time.sleep(POLL_S)
    return None


def _finished(serve: Serve, investigation: str) -> dict[str, Any]:
    deadline = time.monotonic() + REPORT_WAIT_S
    while time.monotonic() < deadline:
        body = serve.one(investigation)
        if body["status"] in ("done", "inconclusive", "failed"):
            return body
        time.sleep(POLL_S)
    raise StackError(f"investigation {investigation} not finished in {REPORT_WAIT_S:.0f} s")


def _healed_in(stack: Stack, healed_at: float, notes: list[str]) -> float | None:
    try:
        wait_healthy(stack, quiet_s=0)
    except StackError as err:
        notes.append(f"not healthy after healing: {err}")
        return None
    return round(time.time() - healed_at, 1)


def score_report(
    plan: EpisodePlan, report: dict[str, Any], symptom: str, seconds: float
) -> CaseScore:
    """The simulated gym's measures on a live report (gym/scoring.py's CaseScore)."""
    candidates = report.get("candidates") or []
    top = tuple((c["service"], c["indicator"], c["fault_type"]) for c in candidates[:5])
    culprit = report.get("culprit")
    confidence = float(report.get("confidence") or 0.0)
    if plan.is_control:
        alarm = culprit is not None and confidence >= INCONCLUSIVE_BELOW
        rank, type_ok, path_ok, false_alarm = None, False, False, alarm
    else:
        services = list(dict.fromkeys(c["service"] for c in candidates))
        rank = services.index(plan.target) + 1 if plan.target in services else None
        hit = culprit is not None and culprit["service"] == plan.target
        type_ok = hit and culprit is not None and culprit["fault_type"] == plan.fault_type
        truth_path = expected_path(str(plan.target), symptom)
        path_ok = culprit is not None and tuple(culprit.get("path", ())) == truth_path
        false_alarm = None
    return CaseScore(
        case_id=plan.id,
        topology="live-shop",
        fault=plan.kind if not plan.is_control else "none",
        seed=plan.seed,
        truth_service=plan.target,
        top=top,
        rank=rank,
        fault_type_ok=type_ok,
        path_ok=path_ok,
        false_alarm=false_alarm,
        seconds=round(seconds, 1),
        confidence=confidence,
        raw_confidence=report.get("confidence_raw"),
        variant=plan.kind if plan.is_control else "",
    )


# --- keeping the episode ------------------------------------------------------------------


def export_case(
    stack: Stack,
    plan: EpisodePlan,
    finished: dict[str, Any],
    injected: float,
    out_dir: Path,
    notes: list[str],
) -> str:
    """The episode as a case folder (`investigate --dataset files` replays it): what the live
    sources hold for the investigation's window, fetched again, plus truth.json."""
    folder = out_dir / plan.id
    window = finished["window"]
    command = [
        sys.executable, "-m", "warroom.cli", "investigate",
        "--config", str(stack.run_dir / "warroom.toml"), "--service", str(finished["service"]),
        "--start", str(window["start"]), "--end", str(window["end"]),
        "--alert-time", str(finished["alert_time"]), "--save-case", str(folder),
        "--cache", ":memory:", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not folder.is_dir():
        notes.append(f"case export failed: {done.stderr.strip()[-300:]}")
        return ""
    truth = {
        "format": FORMAT,
        "case": {"source": "gym-live", "kind": plan.kind, "seed": plan.seed},
        "truth": {
            "service": plan.target,
            "fault": plan.kind if not plan.is_control else "none",
            "fault_type": plan.fault_type,
            "onset": injected,
            "path": list(expected_path(plan.target, str(finished["service"])))
            if plan.target
            else [],
        },
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    return str(folder)


def mark_deploy(stack: Stack, service: str, description: str) -> None:
    """A deploy event in the changes file serve reads (what a CI pipeline would append)."""
    append_change(stack.changes_path, service, "deploy", description)
