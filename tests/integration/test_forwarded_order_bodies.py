"""What every order-forwarding adapter puts in the 3PL's order: the shipping method the
node configured for the order's region (never a made-up "Standard", which ShipMonk, for
one, parks in "Action Required" when no Shipping Mapping has that name), and nothing
without one where the 3PL's API requires it."""
from __future__ import annotations

import dataclasses

import pytest

from adapters.extensiv import ExtensivWarehouse
from adapters.shipbob import ShipBobWarehouse
from adapters.shiphero import ShipHeroWarehouse
from adapters.shipmonk import ShipMonkWarehouse
from connector.domain.model import Address, OutboundOrder, ProviderRejected, ShipmentLine

ORDER = OutboundOrder(
    reference="shop1:1002:node", order_number="#1002", ship_to_name="Ada Lovelace", ship_to=Address("US", "NV", "89501"),
    address_lines=("1 Main St",), city="Reno", email="ada@example.com", phone=None,
    lines=(ShipmentLine("TEE-BLK-M", 2),), location_id="7", shipping_method="2-Day Air",
)


def _shipbob():
    return ShipBobWarehouse("pat", "100102").order_body, lambda body: body["shipping_method"]


def _shipmonk():
    return ShipMonkWarehouse("key", 7).order_body, lambda body: body["requested_shipping_service"]


def _shiphero():
    return ShipHeroWarehouse("token")._order_input, lambda body: body["shipping_lines"]["method"]


def _extensiv():
    warehouse = ExtensivWarehouse("id", "secret", tpl="{guid}", user_login_id="7", customer_id=12, carrier="UPS")
    return warehouse._order_body, lambda body: body["routingInfo"]["mode"]


ADAPTERS = {"shipbob": _shipbob, "shipmonk": _shipmonk, "shiphero": _shiphero, "extensiv": _extensiv}


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_the_orders_shipping_method_is_sent(provider):
    body_of, method_in = ADAPTERS[provider]()
    assert method_in(body_of(ORDER)) == "2-Day Air"
    assert "Standard" not in repr(body_of(ORDER))


@pytest.mark.parametrize("provider", ["shipbob", "shipmonk", "extensiv"])  # ShipHero's shipping_lines is optional
def test_an_order_without_a_method_is_refused_where_the_api_requires_one(provider):
    body_of, _ = ADAPTERS[provider]()
    with pytest.raises(ProviderRejected, match="shipping method"):
        body_of(dataclasses.replace(ORDER, shipping_method=None))
