"""The shop's products: what the frontend renders and the cart prices (a fixed catalogue, so
every service agrees on it without a call)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """One thing the shop sells."""

    id: str
    name: str
    price: float
    weight_kg: float


PRODUCTS: dict[str, Product] = {
    p.id: p
    for p in (
        Product("p01", "Espresso cup", 9.5, 0.2),
        Product("p02", "French press", 34.0, 0.9),
        Product("p03", "Grinder", 129.0, 2.4),
        Product("p04", "Kettle", 59.0, 1.3),
        Product("p05", "Beans 1 kg", 24.0, 1.0),
        Product("p06", "Milk jug", 14.0, 0.3),
        Product("p07", "Scale", 42.0, 0.6),
        Product("p08", "Tamper", 19.0, 0.4),
        Product("p09", "Filter papers", 6.0, 0.1),
        Product("p10", "Espresso machine", 449.0, 8.5),
    )
}
