"""An inventory item without a SKU, or without its locations, fails the whole snapshot in
every adapter that parses inventory: the sync then changes nothing, records the error per
node and `connector sync` prints it (exit 1). Skipping the item instead would let that
SKU's stock vanish from the node while the sync reported OK; and an item whose SKU is
missing cannot be matched to the row it used to be, so "keep its previous row" is not
possible for it. An empty location list is no gap: the item has no stock anywhere."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import responses

from adapters.csv_feed import parse_inventory_csv
from adapters.extensiv import ExtensivWarehouse
from adapters.shipbob import ShipBobWarehouse
from adapters.shiphero import ShipHeroWarehouse
from adapters.shipmonk import ShipMonkWarehouse
from connector.domain.model import ProviderResponseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fx(provider: str, name: str) -> dict:
    return json.loads((FIXTURES / provider / f"{name}.json").read_text())


def shipbob(rsps, mutate):
    page = fx("shipbob", "inventory_locations_page1") | {"next": None}
    mutate(page["items"][0])
    rsps.get("https://api.shipbob.com/2026-01/inventory-level/locations", json=page)
    return ShipBobWarehouse("pat", "100102")


def shipmonk(rsps, mutate):
    page = fx("shipmonk", "products_page1") | {"next_cursor": None}
    page["total"] = len(page["data"])
    mutate(page["data"][0])
    rsps.post("https://api.shipmonk.com/v1/integrations/products/search", json={"total": page["total"], "cursor": "c1"})
    rsps.get("https://api.shipmonk.com/v1/integrations/products/search/paginate", json=page)
    return ShipMonkWarehouse("key", 7)


def shiphero(rsps, mutate):
    body = fx("shiphero", "warehouse_products_page1")
    body["data"]["warehouse_products"]["data"]["pageInfo"] = {"hasNextPage": False, "endCursor": None}
    mutate(body["data"]["warehouse_products"]["data"]["edges"][0]["node"])
    rsps.post("https://public-api.shiphero.com/auth/refresh", json=fx("shiphero", "auth_refresh"))
    rsps.post("https://public-api.shiphero.com/graphql", json=body)
    return ShipHeroWarehouse("refresh")


def extensiv(rsps, mutate):
    page = fx("extensiv", "inventory_page3")
    page["totalResults"] = len(page["_embedded"]["item"])
    mutate(page["_embedded"]["item"][1])
    rsps.post("https://secure-wms.com/AuthServer/api/Token", json=fx("extensiv", "token"))
    rsps.get("https://secure-wms.com/inventory", json=page)
    return ExtensivWarehouse("id", "secret", tpl="{guid}", user_login_id="7", customer_id=12)


def _set(*path):
    def mutate(item):
        target = item
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = None
    return mutate


GAPS = {
    ("shipbob", "null sku"): (shipbob, _set("sku")),
    ("shipbob", "null locations"): (shipbob, _set("locations")),
    ("shipbob", "no locations key"): (shipbob, lambda item: item.pop("locations")),
    ("shipmonk", "null sku"): (shipmonk, _set("sku")),
    ("shipmonk", "null locations"): (shipmonk, _set("inventory", "locations")),
    ("shipmonk", "no locations key"): (shipmonk, lambda item: item["inventory"].pop("locations")),
    ("shiphero", "null sku"): (shiphero, _set("sku")),
    ("shiphero", "null warehouse"): (shiphero, _set("warehouse_id")),
    ("extensiv", "null sku"): (extensiv, _set("itemIdentifier", "sku")),
    ("extensiv", "null facility"): (extensiv, _set("facilityIdentifier", "id")),
    ("extensiv", "null customer"): (extensiv, _set("customerIdentifier", "id")),
}


@pytest.mark.parametrize("case", sorted(GAPS), ids=lambda c: f"{c[0]}-{c[1].replace(' ', '-')}")
def test_an_item_without_sku_or_locations_fails_the_snapshot(case):
    build, mutate = GAPS[case]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        warehouse = build(rsps, mutate)
        with pytest.raises(ProviderResponseError):
            list(warehouse.list_inventory())


def test_a_csv_line_without_a_sku_fails_the_snapshot():
    with pytest.raises(ProviderResponseError, match="line 3"):
        parse_inventory_csv(b"sku,quantity\nTEE-BLK-M,4\n,7\n", default_location="here")


@pytest.mark.parametrize("build, empty", [
    (shipbob, lambda item: item.update(locations=[])),
    (shipmonk, lambda item: item["inventory"].update(locations=[])),
])
def test_an_empty_location_list_is_no_stock_not_a_gap(build, empty):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        records = list(build(rsps, empty).list_inventory())
    assert records  # the other items still come through
