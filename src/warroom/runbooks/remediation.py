"""What to do about each fault type, written for the SRE paged at 3 a.m.: first stop the
bleeding, then find the cause. `{service}` is the culprit; `{callers}` the services calling it.

The fault types are the ranking's vocabulary (causal/fault_types.py, the gym catalogue).
"""

from __future__ import annotations

# fault type -> (what it is, in a title; the steps)
REMEDIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cpu": (
        "CPU saturation",
        (
            "Buy time: scale {service} out (more replicas) or raise its CPU limit.",
            "Find the burner: profile one {service} instance (py-spy, async-profiler, pprof) "
            "and check its node for a runaway job or noisy neighbour (`top`, `kubectl top`).",
            "If a deploy of {service} preceded the spike, roll it back.",
        ),
    ),
    "memory": (
        "memory leak",
        (
            "Take a heap dump of one {service} instance before touching anything.",
            "Restart {service} instances one at a time (rolling) to stop the OOM kills.",
            "Raising the memory limit is a stopgap only; roll back the last deploy of {service} "
            "if the growth started after it.",
        ),
    ),
    "disk": (
        "disk full",
        (
            "Free space on {service}'s volume now: old logs, core dumps, temp files, WAL "
            "archives. Never delete data files.",
            "Find the writer: `du -xh --max-depth=2 <mount> | sort -h | tail`.",
            "If the data itself grew, expand the volume; then add an alert at 80 % full.",
        ),
    ),
    "network-delay": (
        "network delay",
        (
            "Measure the path from a caller's node to {service}: `mtr`, `ping`; look at the "
            "node, NIC, CNI/overlay and cross-zone routing.",
            "If one node is slow, cordon and drain it so {service} moves off it.",
            "Callers ({callers}): keep client timeouts below their own SLO so they fail fast.",
        ),
    ),
    "network-loss": (
        "packet loss",
        (
            "Look for drops on {service}'s node: `netstat -s | grep -i retrans`, "
            "`ip -s link`, switch and NIC error counters.",
            "If the loss is local to one node, cordon and drain it.",
            "Callers ({callers}) retrying into the loss make it worse: cap retries.",
        ),
    ),
    "dns": (
        "DNS resolution failure",
        (
            "Resolve {service} from a caller: `getent hosts {service}`, `dig {service}`.",
            "Check the DNS server (CoreDNS logs, upstream) and recent changes to {service}'s "
            "record or Service object; revert a bad change.",
            "Stopgap: restart or scale the resolver; pin the address only as a last resort.",
        ),
    ),
    "pool": (
        "connection pool exhausted",
        (
            "See who holds the connections on {service}: `SELECT state, count(*) FROM "
            "pg_stat_activity GROUP BY 1;` Look for idle-in-transaction.",
            "Kill long idle-in-transaction sessions, then restart the client that leaks them.",
            "Raise the pool size only if {service} has headroom (CPU, max_connections).",
        ),
    ),
    "db-lock": (
        "lock contention",
        (
            "Find the blocker on {service}: `SELECT pid, pg_blocking_pids(pid), query FROM "
            "pg_stat_activity WHERE wait_event_type = 'Lock';`",
            "Terminate it (`SELECT pg_terminate_backend(<pid>);`) if it is a stuck migration "
            "or batch job.",
            "Re-run that job off-peak with a lock_timeout.",
        ),
    ),
    "cache": (
        "cache down",
        (
            "Check {service} is up and reachable: `redis-cli -h {service} ping`; restart it.",
            "Expect a cold cache: watch the database as the hit ratio recovers; shed load if "
            "it struggles.",
        ),
    ),
    "queue": (
        "queue consumer lag",
        (
            "Check consumer {service}: instances running, stuck, or rebalancing over and over "
            "(consumer group state).",
            "Scale {service} up to the partition count; restart stuck instances.",
            "If one poison message blocks a partition, skip it or send it to the dead-letter "
            "queue.",
        ),
    ),
    "thread-pool": (
        "thread pool exhausted",
        (
            "Take a thread dump of one {service} instance (`jstack <pid>` or `kill -3`): what "
            "are the busy threads waiting on?",
            "If they wait on a slow dependency, cut that client's timeout; then restart "
            "{service} instances to drain the pool.",
            "Scale {service} out while the fix ships.",
        ),
    ),
    "code-exception": (
        "bad code path",
        (
            "Roll back the last deploy of {service}.",
            "Take the top stack trace from {service}'s error logs (see the log check) to the "
            "owning team.",
        ),
    ),
    "config": (
        "bad config change",
        (
            "Revert the last config change of {service}.",
            "Restart {service} if it does not reload its config by itself.",
        ),
    ),
    "tls": (
        "TLS/certificate failure",
        (
            "Check the certificate {service} presents: `openssl s_client -connect "
            "{service}:443 -servername {service} </dev/null | openssl x509 -noout -dates`.",
            "Renew and redeploy it; if it is valid, check the CA bundle on the callers "
            "({callers}).",
        ),
    ),
    "dependency": (
        "third-party outage",
        (
            "Confirm from a caller host (`curl -v`) and check {service}'s status page.",
            "Fail over to a secondary provider, or degrade: queue the requests, serve cached "
            "answers, turn the feature off.",
            "Callers ({callers}): make sure they time out fast and do not retry in a loop.",
        ),
    ),
    "retry-storm": (
        "retry storm",
        (
            "Shed load to {service}: rate-limit its callers ({callers}) or scale it out.",
            "Cut client retries (at most 1, exponential backoff with jitter) or switch them "
            "off with a flag.",
            "The storm ends only when offered load drops below capacity: shed first, then restore.",
        ),
    ),
}

GENERIC = (
    "anomaly",
    (
        "Check the latest deploys and config changes of {service}; roll back one that lines "
        "up with the onset.",
        "Look at {service}'s own resources (CPU, memory, disk, connections) and its "
        "dependencies' health.",
    ),
)


def remedy(fault_type: str, service: str, callers: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(words for the fault, the steps) for a fault type, filled in for this culprit."""
    words, steps = REMEDIES.get(fault_type, GENERIC)
    callers_text = ", ".join(callers) if callers else "its callers"
    return words, tuple(s.format(service=service, callers=callers_text) for s in steps)
