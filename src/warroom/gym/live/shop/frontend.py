"""frontend: the shop's front door; the SLO alerts watch its routes.

    GET  /?user=u07               home page: the user's cart badge (cart GET /cart/{user})
    GET  /product/{product_id}    rendered locally (a template and some recommendations)
    POST /cart/{user}/add         -> cart
    POST /checkout/{user}         -> checkout

A callee's 4xx is passed through (an empty cart is the shopper's problem, 400); a failing or
silent callee answers 502/503 naming it. v2-bad renders the product page with a template field
the context lacks: KeyError on every product page of a product that is on sale.
"""

from __future__ import annotations

import hashlib
import string
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

from warroom.gym.live.shop.app import Runtime
from warroom.gym.live.shop.catalog import PRODUCTS, Product

PAGE = string.Template(
    "<html><head><title>$name</title></head><body><h1>$name</h1>"
    "<p class='price'>$price EUR</p><p>Ships in $days days.</p>"
    "<ul class='also'>$recommended</ul></body></html>"
)
ON_SALE = ("p03", "p07", "p10")


def recommendations(product: Product, count: int = 3) -> list[Product]:
    """Products "bought together" with `product`: a stable ranking by a hash of the pair,
    a few thousand hash rounds standing in for a model's scoring."""
    scores: list[tuple[bytes, Product]] = []
    for other in PRODUCTS.values():
        if other.id == product.id:
            continue
        digest = f"{product.id}:{other.id}".encode()
        for _ in range(300):
            digest = hashlib.sha256(digest).digest()
        scores.append((digest, other))
    return [p for _, p in sorted(scores, key=lambda pair: pair[0])[:count]]


def render_product(product: Product, bad: bool = False) -> str:
    """The product page's HTML."""
    recommended = "".join(f"<li>{p.name}</li>" for p in recommendations(product))
    context = {
        "name": product.name,
        "price": f"{product.price:.2f}",
        "days": 1 + len(product.name) % 3,
        "recommended": recommended,
    }
    if bad and product.id in ON_SALE:
        # v2-bad's sale banner reads a field nobody puts into the context
        context["price"] = f"{context['sale_price']} (was {product.price:.2f})"
    return PAGE.substitute(context)


class Frontend:
    """The frontend service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.router = APIRouter()
        self.router.add_api_route("/", self.home, methods=["GET"])
        self.router.add_api_route("/product/{product_id}", self.product, methods=["GET"])
        self.router.add_api_route("/cart/{user}/add", self.add_to_cart, methods=["POST"])
        self.router.add_api_route("/checkout/{user}", self.checkout, methods=["POST"])

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def home(self, user: str = "guest") -> dict[str, object]:
        """The home page's data: featured products and the user's cart badge."""
        cart = (await self.runtime.peers.call_ok("cart", "GET", f"/cart/{user}")).json()
        featured = [p.id for p in list(PRODUCTS.values())[:4]]
        return {"user": user, "featured": featured, "cart_items": len(cart["items"])}

    async def product(self, product_id: str) -> HTMLResponse:
        """A product page."""
        product = PRODUCTS.get(product_id)
        if product is None:
            raise HTTPException(404, f"no product {product_id}")
        return HTMLResponse(render_product(product, self.runtime.bad))

    async def add_to_cart(self, user: str, body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        """Forward the item to the cart."""
        answer = await self.runtime.peers.call("cart", "POST", f"/cart/{user}/add", json=body)
        return JSONResponse(answer.json(), answer.status_code)

    async def checkout(self, user: str) -> JSONResponse:
        """Forward the checkout."""
        answer = await self.runtime.peers.call("checkout", "POST", f"/checkout/{user}")
        return JSONResponse(answer.json(), answer.status_code)
