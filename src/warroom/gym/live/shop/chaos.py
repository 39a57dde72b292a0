"""The hooks the fault injectors pull (gym/live/faults.py), under /_chaos/, loopback only.

    POST /_chaos/leak {"mib_per_s": 10}     every service: keep allocating (RSS grows for real)
    POST /_chaos/leak {"mib_per_s": 0}      stop growing; what leaked stays until a restart
    POST /_chaos/slow {"ms_per_message": 2000}   the worker only (worker.py adds the route)

A leak is real memory: chunks filled byte by byte (a zeroed bytearray of that size would be
mapped lazily and never count in RSS), kept in a list the process holds until it dies, the way
an unbounded cache leaks. It grows from a task on the service's own event loop, so a cgroup
memory limit OOM-kills the very process that serves requests.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

LOOPBACK = ("127.0.0.1", "::1")
TICK_S = 0.1
MIB = 1024 * 1024


def loopback_only(request: Request) -> None:
    """Refuse a chaos hook to any client but this machine's loopback."""
    host = request.client.host if request.client else ""
    if host not in LOOPBACK:
        raise HTTPException(403, "chaos hooks answer loopback clients only")


class LeakRequest(BaseModel):
    """How fast to leak; 0 stops."""

    mib_per_s: float = Field(ge=0, le=1024)


class Leak:
    """Memory retained at a rate, from a task on the running loop."""

    def __init__(self) -> None:
        self.mib_per_s = 0.0
        self.retained: list[bytearray] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def retained_bytes(self) -> int:
        """How much has leaked so far."""
        return sum(len(chunk) for chunk in self.retained)

    def set_rate(self, mib_per_s: float) -> None:
        """Leak `mib_per_s` from now on (0: stop, keeping what leaked)."""
        self.mib_per_s = mib_per_s
        if mib_per_s > 0 and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._grow())

    async def _grow(self) -> None:
        owed = 0.0  # fractions of a byte per tick add up instead of being rounded away
        while self.mib_per_s > 0:
            owed += self.mib_per_s * MIB * TICK_S
            size = int(owed)
            owed -= size
            self.retained.append(bytearray(b"\xa5") * size)  # every page written: resident
            await asyncio.sleep(TICK_S)

    async def stop(self) -> None:
        """Stop growing (the service is shutting down)."""
        self.mib_per_s = 0.0
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def chaos_router(leak: Leak) -> APIRouter:
    """The /_chaos/leak route every Python service serves."""
    router = APIRouter(prefix="/_chaos", dependencies=[Depends(loopback_only)])

    @router.post("/leak")
    async def set_leak(body: LeakRequest) -> dict[str, float]:
        leak.set_rate(body.mib_per_s)
        return {"mib_per_s": leak.mib_per_s, "retained_mib": leak.retained_bytes / MIB}

    return router
