"""The exception chooser and its actions through the Flask test client: what the page
shows, each action's outcome, errors beside their field, and where it goes after."""
from __future__ import annotations

import json
import random
import re

import pytest

from connector import sandbox
from tests.conftest import SHOPIFY_SHOP, shopify_headers
from tests.web import SHOPIFY_USER, add_user, csrf_token, sign_in

ORDER, LINE = "7500001", "7500011"
CHOOSER = f"/actions/exceptions/{ORDER}/{LINE}"


@pytest.fixture
def signed_in(app, container, store, clock):
    """The Shopify shop's user, signed in, and an order to New York City for more
    Cedar Hour candles than any node has (an exception)."""
    order = sandbox.shopify_order(random.Random(3), int(ORDER), 7501, clock(), lines=1)
    order["line_items"][0].update(id=int(LINE), sku="CANDLE-CEDAR", quantity=500, current_quantity=500)
    order["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    body = json.dumps(order).encode()
    assert container.inbox.ingest(store, "shopify", body, shopify_headers(body)).status == 200
    container.inbox.process(store)
    assert store.current_decisions(SHOPIFY_SHOP, ORDER)[0]["exception"] == "partial_stock"
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    client = app.test_client()
    sign_in(client, SHOPIFY_USER)
    return client


def row(page: str, node_id: str) -> str:
    match = re.search(rf'<tr id="node-{node_id}">(.*?)</tr>', page, re.S)
    assert match, node_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_the_chooser_shows_the_reason_and_every_node_with_its_cost(signed_in, store, clock):
    store.set_stock(SHOPIFY_SHOP, "central", "CANDLE-CEDAR", on_hand=600, committed=0, available=600,
                    source="test", now=clock())
    page = signed_in.get(CHOOSER).get_data(as_text=True)
    assert "No node that ships to this region has enough of this product right now." in page
    assert "New York City metro — promised within 1 day" in page
    central = row(page, "central")
    assert "2 days (promise 1) slower" in central and "8.90" in central and "600 → 100" in central
    assert "Ship from central" in central
    assert row(page, "ne-micro").endswith("Cannot: ne-micro has 40 sellable CANDLE-CEDAR, the line needs 500")
    assert "Ship from ne-micro" not in page
    assert "no lane" in row(page, "west-3pl")


def test_ship_from_a_node_routes_it_says_so_and_audits_who(signed_in, store, clock):
    store.set_stock(SHOPIFY_SHOP, "central", "CANDLE-CEDAR", on_hand=600, committed=0, available=600,
                    source="test", now=clock())
    token = csrf_token(signed_in, CHOOSER)
    response = signed_in.post(f"{CHOOSER}/route", data={"csrf_token": token, "node_id": "central",
                                                        "note": "wholesale, agreed"})
    assert response.status_code == 302 and response.headers["Location"] == CHOOSER
    page = signed_in.get(CHOOSER).get_data(as_text=True)
    assert "Order #7501, line 7500011: now ships from central (2 transit days against the 1-day promise" in page
    assert "Ships from <strong>central</strong> (chosen by hand)" in page
    decision = store.current_decisions(SHOPIFY_SHOP, ORDER)[0]
    assert f"chosen by web:{SHOPIFY_USER}" in decision["explanation"]
    assert store.events(SHOPIFY_SHOP, "exception.routed_by_hand")[0]["detail"]["by"] == f"web:{SHOPIFY_USER}"


def test_a_refused_node_is_said_in_red_and_changes_nothing(signed_in, store):
    token = csrf_token(signed_in, CHOOSER)
    response = signed_in.post(f"{CHOOSER}/route", data={"csrf_token": token, "node_id": "ne-micro"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert ('id="route-error">Not routed: Line 7500011 of order #7501 cannot ship from ne-micro: ne-micro has 40 '
            "sellable CANDLE-CEDAR, the line needs 500.") in page
    assert store.active_reservations(SHOPIFY_SHOP, ORDER) == []


def test_dismiss_needs_a_note_beside_its_field_then_returns_only_to_a_local_page(signed_in, store):
    token = csrf_token(signed_in, CHOOSER)
    refused = signed_in.post(f"{CHOOSER}/dismiss", data={"csrf_token": token, "note": " "})
    assert refused.status_code == 422
    assert 'id="dismiss-error" class="field-error">Give a note' in refused.get_data(as_text=True)

    elsewhere = signed_in.post(f"{CHOOSER}/dismiss", data={"csrf_token": token, "note": "sent by hand",
                                                           "next": "https://evil.example/"})
    assert elsewhere.status_code == 302 and elsewhere.headers["Location"] == CHOOSER
    assert store.open_exceptions(SHOPIFY_SHOP) == []
    page = signed_in.get(CHOOSER).get_data(as_text=True)
    assert f"by web:{SHOPIFY_USER}: sent by hand" in page and "Dismiss with this note" not in page


def test_reevaluate_flashes_what_happened_and_goes_back_to_a_local_next(signed_in, store, clock):
    token = csrf_token(signed_in, CHOOSER)
    response = signed_in.post(f"/actions/orders/{ORDER}/reevaluate",
                              data={"csrf_token": token, "next": "/settings/"})
    assert response.status_code == 302 and response.headers["Location"] == "/settings/"
    page = signed_in.get("/settings/").get_data(as_text=True)
    assert "Order #7501 line 7500011 (500 × CANDLE-CEDAR) is still an exception: partial_stock" in page

    store.set_stock(SHOPIFY_SHOP, "ne-micro", "CANDLE-CEDAR", on_hand=500, committed=0, available=500,
                    source="test", now=clock())
    response = signed_in.post(f"/actions/orders/{ORDER}/reevaluate", data={"csrf_token": token, "line_id": LINE})
    assert response.headers["Location"] == CHOOSER
    assert "now ships from ne-micro." in signed_in.get(CHOOSER).get_data(as_text=True)
