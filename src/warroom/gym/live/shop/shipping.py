"""shipping: quotes (local compute) and labels (files on its own small volume).

    GET  /quote?items=3&weight_kg=2.4     -> {"cost": 7.9, "days": 2}
    POST /ship {"order_id": 42}           -> writes labels_dir/order-42.txt (a few KB)

An OSError writing a label (ENOSPC when the disk-full fault filled the volume) is not caught:
it answers 500 with the stack trace in the log, which is what that fault is seen by. Only the
newest labels are kept (the courier has collected the older ones), so steady traffic does not
fill the volume by itself. v2-bad's quote averages the weight over the "billable" items, a
third of them rounded down: ZeroDivisionError for any order of fewer than three items.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from warroom.gym.live.shop.app import Runtime

LABEL_BYTES = 4096
KEEP_LABELS = 200  # about 800 KB on the volume in steady state
PRUNE_EVERY = 50


class Shipment(BaseModel):
    """One order to label."""

    order_id: int = Field(ge=1)


def quote(items: int, weight_kg: float, bad: bool = False) -> dict[str, float]:
    """The shipping cost and days for a parcel."""
    per_kg = weight_kg / (items // 3) if bad else weight_kg / items  # v2-bad: items // 3
    cost = 4.9 + 1.5 * weight_kg + 0.2 * per_kg
    # A few rounds of hashing stand in for the rate tables a real carrier API would walk.
    digest = f"{items}:{weight_kg}".encode()
    for _ in range(200):
        digest = hashlib.sha256(digest).digest()
    return {"cost": round(cost, 2), "days": 1 + digest[0] % 4}


def render_label(order_id: int) -> bytes:
    """A printable label, padded to LABEL_BYTES like a rendered image would be."""
    head = f"SHIP ORDER {order_id}\nFROM warroom shop\nTRACKING {order_id:012d}\n".encode()
    return head + b"#" * (LABEL_BYTES - len(head))


class Shipping:
    """The shipping service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.labels_dir = Path(runtime.config.labels_dir)
        self._written = 0
        self.router = APIRouter()
        self.router.add_api_route("/quote", self.get_quote, methods=["GET"])
        self.router.add_api_route("/ship", self.ship, methods=["POST"])

    async def start(self) -> None:
        """Make the labels folder if it is not there."""
        self.labels_dir.mkdir(parents=True, exist_ok=True)

    async def stop(self) -> None:
        """Nothing to close."""

    async def get_quote(
        self, items: int = Query(ge=1, le=1000), weight_kg: float = Query(gt=0, le=1000)
    ) -> dict[str, float]:
        """The quote for a parcel."""
        return quote(items, weight_kg, self.runtime.bad)

    async def ship(self, shipment: Shipment) -> dict[str, object]:
        """Write the order's label; where it went."""
        path = self.labels_dir / f"order-{shipment.order_id}.txt"
        try:
            with open(path, "wb") as label:  # ENOSPC raises on write, flush or fsync
                label.write(render_label(shipment.order_id))
                label.flush()
                os.fsync(label.fileno())
        except OSError:
            path.unlink(missing_ok=True)  # no half label for the courier
            raise
        self._written += 1
        if self._written % PRUNE_EVERY == 0:
            self._prune()
        return {"order_id": shipment.order_id, "label": path.name}

    def _prune(self) -> None:
        labels = sorted(self.labels_dir.glob("order-*.txt"), key=lambda p: p.stat().st_mtime)
        for old in labels[:-KEEP_LABELS]:
            old.unlink(missing_ok=True)
