"""checkout: turns a cart into a paid, stored order.

    POST /checkout/{user}
        cart GET /cart/{user}         the items (400 when the cart is empty)
        shipping GET /quote           the parcel's cost
        payment POST /charge          with an idempotency key, so payment may retry
        orders POST /orders           stored and published for the worker
        cart DELETE /cart/{user}
        -> {"order_id": 42, "total": 61.4, "charge_id": "ch_..."}

A callee that fails answers 502 (503 when it did not answer at all), naming the callee in the
log line and the body. v2-bad looks the loyalty discount up by tier with [] instead of .get():
KeyError for the users of the "bronze" tier the discount table has no entry for (about 40%).
"""

from __future__ import annotations

import logging
import uuid
import zlib

from fastapi import APIRouter, HTTPException

from warroom.gym.live.shop.app import Runtime
from warroom.gym.live.shop.catalog import PRODUCTS

log = logging.getLogger("shop.checkout")

TIERS = ("gold", "silver", "bronze", "bronze", "none")  # by a stable hash of the user
DISCOUNTS = {"gold": 0.10, "silver": 0.05, "none": 0.0}  # bronze got no entry


def loyalty_tier(user: str) -> str:
    """The user's tier (stable across processes: crc32, not the salted hash())."""
    return TIERS[zlib.crc32(user.encode()) % len(TIERS)]


def discount(user: str, subtotal: float, bad: bool = False) -> float:
    """The loyalty discount on `subtotal`."""
    tier = loyalty_tier(user)
    rate = DISCOUNTS[tier] if bad else DISCOUNTS.get(tier, 0.0)
    return round(subtotal * rate, 2)


class Checkout:
    """The checkout service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.router = APIRouter()
        self.router.add_api_route("/checkout/{user}", self.checkout, methods=["POST"])

    async def start(self) -> None:
        """Nothing to open: every callee is reached through the shared peer client."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def checkout(self, user: str) -> dict[str, object]:
        """Place the order for the user's cart."""
        peers = self.runtime.peers
        cart = (await peers.call_ok("cart", "GET", f"/cart/{user}")).json()
        items = cart["items"]
        if not items:
            raise HTTPException(400, f"the cart of {user} is empty")
        count = sum(int(i["quantity"]) for i in items)
        weight = sum(PRODUCTS[i["product_id"]].weight_kg * int(i["quantity"]) for i in items)
        params = {"items": count, "weight_kg": f"{weight:.2f}"}
        shipping = (await peers.call_ok("shipping", "GET", "/quote", params=params)).json()
        subtotal = float(cart["total"])
        total = round(subtotal - discount(user, subtotal, self.runtime.bad) + shipping["cost"], 2)
        key = uuid.uuid4().hex
        charge = await peers.call_ok(
            "payment",
            "POST",
            "/charge",
            json={"user": user, "amount": total},
            headers={"Idempotency-Key": key},
            idempotent=True,
        )
        charge_id = charge.json()["charge_id"]
        order = {"user": user, "total": total, "items": count, "charge_id": charge_id}
        order_id = (await peers.call_ok("orders", "POST", "/orders", json=order)).json()
        await peers.call_ok("cart", "DELETE", f"/cart/{user}")
        log.info("order %s placed for %s: %.2f", order_id["order_id"], user, total)
        return {"order_id": order_id["order_id"], "total": total, "charge_id": charge_id}
