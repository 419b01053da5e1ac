"""Shopify's GraphQL Admin endpoint for one order's fulfillment orders, answered with the
fixtures under tests/fixtures/shopify/ through ``responses`` (tests of the store hand-off)."""
from __future__ import annotations

import copy
import json

import graphql
import requests
import responses

from tests.conftest import SHOPIFY_DOMAIN, fixture_json

GRAPHQL_URL = f"https://{SHOPIFY_DOMAIN}/admin/api/2026-04/graphql.json"


class ShopifyAdmin:
    """Shopify's GraphQL endpoint for one order: answers with the fixtures, keeps the order's
    fulfillment orders as a move or a fulfillment leaves them, and checks every document
    sent parses (graphql-core)."""

    def __init__(self, rsps, state_fixture: str = "fulfillment_orders_open.json"):
        self.state = fixture_json("shopify", state_fixture)
        self.move_answer = "fulfillment_order_move_moved.json"
        self.create_answer = "fulfillment_create_created.json"
        self.lose_answer_of: set[str] = set()  # operations applied whose answer never arrives
        self.sent: list[tuple[str, dict]] = []
        rsps.add_callback(responses.POST, GRAPHQL_URL, callback=self._answer, content_type="application/json")

    def operations(self, name: str) -> list[dict]:
        return [variables for operation, variables in self.sent if operation == name]

    def _answer(self, request):
        body = json.loads(request.body)
        document = graphql.parse(body["query"])  # a document Shopify could not parse fails every call
        operation = document.definitions[0].name.value
        variables = body["variables"]
        self.sent.append((operation, variables))
        if operation == "orderFulfillmentOrders":
            answer = copy.deepcopy(self.state)
        elif operation == "fulfillmentOrderMove":
            answer = fixture_json("shopify", self.move_answer)
            if not answer["data"]["fulfillmentOrderMove"]["userErrors"]:
                self._moved(variables, answer)
        else:
            answer = fixture_json("shopify", self.create_answer)
            if not answer["data"]["fulfillmentCreate"]["userErrors"]:
                self._fulfilled(variables)
        if operation in self.lose_answer_of:
            self.lose_answer_of.discard(operation)
            raise requests.exceptions.ReadTimeout("the answer never came")
        return 200, {}, json.dumps(answer)

    def _fulfillment_orders(self) -> list[dict]:
        return self.state["data"]["order"]["fulfillmentOrders"]["nodes"]

    def _moved(self, variables, answer) -> None:
        """A whole fulfillment order is reassigned; some of its lines are split off into a new
        one at the destination (fulfillmentOrderMove's two scenarios)."""
        nodes = self._fulfillment_orders()
        original = next(node for node in nodes if node["id"] == variables["id"])
        moved = answer["data"]["fulfillmentOrderMove"]["movedFulfillmentOrder"]
        if variables["fulfillmentOrderLineItems"] is None:
            original["assignedLocation"]["location"]["id"] = variables["newLocationId"]
        else:
            ids = {line["id"] for line in variables["fulfillmentOrderLineItems"]}
            split = copy.deepcopy(original)
            split["id"] = moved["id"] = f"{original['id']}{len(nodes)}"
            split["assignedLocation"] = {"name": "moved", "location": {"id": variables["newLocationId"]}}
            split["lineItems"]["nodes"] = [l for l in original["lineItems"]["nodes"] if l["id"] in ids]
            original["lineItems"]["nodes"] = [l for l in original["lineItems"]["nodes"] if l["id"] not in ids]
            nodes.append(split)
        moved["assignedLocation"]["location"]["id"] = variables["newLocationId"]

    def _fulfilled(self, variables) -> None:
        fulfillment = variables["fulfillment"]
        for pair in fulfillment["lineItemsByFulfillmentOrder"]:
            units = {line["id"]: line["quantity"] for line in pair["fulfillmentOrderLineItems"]}
            for node in self._fulfillment_orders():
                if node["id"] == pair["fulfillmentOrderId"]:
                    for line in node["lineItems"]["nodes"]:
                        line["remainingQuantity"] -= units.get(line["id"], 0)
                    if all(line["remainingQuantity"] == 0 for line in node["lineItems"]["nodes"]):
                        node["status"], node["supportedActions"] = "CLOSED", []
        self.state["data"]["order"]["fulfillments"].append(
            {"id": "gid://shopify/Fulfillment/1", "trackingInfo": [fulfillment["trackingInfo"]]})
