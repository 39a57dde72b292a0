"""payment: charges a card through the third-party gateway.

    POST /charge {"user": "u07", "amount": 52.5}  (Idempotency-Key header from checkout)
        -> payment-gateway POST /v1/charges, retried per settings (the key makes it safe)
        -> {"charge_id": "ch_...", "amount": 52.5}

A failing or silent gateway answers 502/503 naming payment-gateway (PeerError). v2-bad rounds
large amounts as if they were Decimals: AttributeError on every charge over 100.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from warroom.gym.live.contracts import EXTERNAL
from warroom.gym.live.shop.app import Runtime

LARGE_AMOUNT = 100.0


class Charge(BaseModel):
    """One charge checkout asks for."""

    user: str
    amount: float = Field(gt=0)
    currency: str = "EUR"


def gateway_amount(amount: float, bad: bool) -> int:
    """The amount in cents as the gateway wants it."""
    if bad and amount > LARGE_AMOUNT:
        # v2-bad assumed a Decimal here: a float has no quantize
        amount = amount.quantize(1)  # type: ignore[attr-defined]
    return round(amount * 100)


class Payment:
    """The payment service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.router = APIRouter()
        self.router.add_api_route("/charge", self.charge, methods=["POST"])

    async def start(self) -> None:
        """Nothing to open: the gateway is reached through the shared peer client."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def charge(
        self, charge: Charge, idempotency_key: str | None = Header(default=None)
    ) -> dict[str, object]:
        """Charge the gateway; its charge id."""
        key = idempotency_key or uuid.uuid4().hex
        body = {
            "amount": gateway_amount(charge.amount, self.runtime.bad),
            "currency": charge.currency,
            "customer": charge.user,
        }
        answer = await self.runtime.peers.call(
            EXTERNAL,
            "POST",
            "/v1/charges",
            json=body,
            headers={"Idempotency-Key": key},
            idempotent=True,
        )
        return {"charge_id": answer.json()["id"], "amount": charge.amount}
