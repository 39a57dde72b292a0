"""v2-bad, the release a bad deploy ships: each service's one broken path raises a real
exception there and only there; v1 never does on the same inputs."""

from __future__ import annotations

import pytest

from warroom.gym.live.shop.catalog import PRODUCTS
from warroom.gym.live.shop.checkout import discount, loyalty_tier
from warroom.gym.live.shop.frontend import ON_SALE, render_product
from warroom.gym.live.shop.load import USERS
from warroom.gym.live.shop.payment import gateway_amount
from warroom.gym.live.shop.shipping import quote


def test_checkout_discount_fails_for_the_bronze_tier_only() -> None:
    bronze = [u for u in USERS if loyalty_tier(u) == "bronze"]
    assert 0.3 <= len(bronze) / len(USERS) <= 0.5  # "about 40%" of the load's users
    for user in USERS:
        assert discount(user, 100.0) >= 0  # v1: every user
        if user in bronze:
            with pytest.raises(KeyError, match="bronze"):
                discount(user, 100.0, bad=True)
        else:
            assert discount(user, 100.0, bad=True) == discount(user, 100.0)


def test_shipping_quote_divides_by_zero_below_three_items_only() -> None:
    for items in range(1, 10):
        good = quote(items, 2.0)
        if items < 3:
            with pytest.raises(ZeroDivisionError):
                quote(items, 2.0, bad=True)
        else:
            assert quote(items, 2.0, bad=True)["days"] == good["days"]


def test_payment_fails_on_large_amounts_only() -> None:
    assert gateway_amount(52.5, bad=True) == gateway_amount(52.5, bad=False) == 5250
    assert gateway_amount(449.0, bad=False) == 44900
    with pytest.raises(AttributeError, match="quantize"):
        gateway_amount(449.0, bad=True)


def test_the_product_page_fails_for_products_on_sale_only() -> None:
    for product in PRODUCTS.values():
        assert product.name in render_product(product)
        if product.id in ON_SALE:
            with pytest.raises(KeyError, match="sale_price"):
                render_product(product, bad=True)
        else:
            assert render_product(product, bad=True) == render_product(product)
