"""The live chaos gym: a real shop on this machine (shop/), real faults injected into it
(faults/), the observability stack that watches it (stack.py), and the episodes that break it,
wait for the page, let `warroom serve` investigate and score the answer (episodes.py).

Everything listens on 127.0.0.1, is started by the gym and stopped by PID; faults that change
the machine (cgroups, nftables) are registered so `warroom gym live --cleanup` removes them.
"""
