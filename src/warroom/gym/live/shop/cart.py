"""cart: one Redis hash per user, product id -> quantity.

    GET    /cart/{user}        HGETALL cart:{user}, priced from the catalogue
    POST   /cart/{user}/add    {"product_id": "p03", "quantity": 1}: HINCRBY
    DELETE /cart/{user}        DEL (checkout empties the cart after the order)

A Redis error (timeout, refused) is not caught: the request answers 500 with the redis-py
stack trace in the log, the way an unguarded cache client fails. v2-bad's "read then write" add
concatenates the stored quantity (a str) with the new one: TypeError on every add of a product
already in the cart.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from warroom.gym.live.shop.app import Runtime
from warroom.gym.live.shop.catalog import PRODUCTS
from warroom.gym.live.shop.instrument import datastore_call
from warroom.gym.live.shop.stores import redis_client


class AddItem(BaseModel):
    """One product into the cart."""

    product_id: str
    quantity: int = Field(default=1, ge=1, le=100)


def cart_key(user: str) -> str:
    """The Redis key of a user's cart."""
    return f"cart:{user}"


class Cart:
    """The cart service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.redis = redis_client(runtime.config)
        self.router = APIRouter()
        self.router.add_api_route("/cart/{user}", self.get_cart, methods=["GET"])
        self.router.add_api_route("/cart/{user}/add", self.add, methods=["POST"])
        self.router.add_api_route("/cart/{user}", self.empty, methods=["DELETE"])

    async def start(self) -> None:
        """Nothing to open: the client connects on its first command."""

    async def stop(self) -> None:
        """Close the Redis connections."""
        await self.redis.aclose()

    async def get_cart(self, user: str) -> dict[str, object]:
        """The user's items with their prices and the total."""
        telemetry = self.runtime.telemetry
        async with datastore_call(telemetry, "redis", "HGETALL"):
            stored = await self.redis.hgetall(cart_key(user))
        quantities = {pid: int(qty) for pid, qty in stored.items() if pid in PRODUCTS}
        items = [
            {"product_id": pid, "quantity": qty, "price": PRODUCTS[pid].price}
            for pid, qty in sorted(quantities.items())
        ]
        total = round(sum(PRODUCTS[pid].price * qty for pid, qty in quantities.items()), 2)
        return {"user": user, "items": items, "total": total}

    async def add(self, user: str, item: AddItem) -> dict[str, object]:
        """Add a product; the new quantity of it."""
        if item.product_id not in PRODUCTS:
            raise HTTPException(404, f"no product {item.product_id}")
        key, telemetry = cart_key(user), self.runtime.telemetry
        if self.runtime.bad:
            return await self._add_read_then_write(user, item)
        async with datastore_call(telemetry, "redis", "HINCRBY"):
            quantity = await self.redis.hincrby(key, item.product_id, item.quantity)
        return {"user": user, "product_id": item.product_id, "quantity": quantity}

    async def _add_read_then_write(self, user: str, item: AddItem) -> dict[str, object]:
        """v2-bad's add: HGET, add, HSET; the stored quantity comes back a str."""
        key, telemetry = cart_key(user), self.runtime.telemetry
        async with datastore_call(telemetry, "redis", "HGET"):
            current = await self.redis.hget(key, item.product_id)
        # the bug v2-bad ships: the stored quantity is a str (TypeError when present)
        quantity = item.quantity if current is None else current + item.quantity  # type: ignore[operator]
        async with datastore_call(telemetry, "redis", "HSET"):
            await self.redis.hset(key, item.product_id, quantity)
        return {"user": user, "product_id": item.product_id, "quantity": quantity}

    async def empty(self, user: str) -> dict[str, str]:
        """Remove the user's cart."""
        async with datastore_call(self.runtime.telemetry, "redis", "DEL"):
            await self.redis.delete(cart_key(user))
        return {"user": user, "status": "emptied"}
