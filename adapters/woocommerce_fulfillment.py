"""Telling a WooCommerce order where it ships from and that it shipped, through the REST
API v3 (woocommerce.md; WooCommerce REST API docs "Orders" and "Order notes").

* ``PUT /orders/<id>`` with ``meta_data: [{key, value}]``: WooCommerce updates a meta entry
  by its key (adds it when absent), so sending the same value again changes nothing; the
  same call with ``status`` sets the order's status. A PUT is safe to repeat.
* ``GET /orders/<id>/notes`` (``type=any``) lists the order's notes (``id``, ``note``,
  ``customer_note``, ``date_created_gmt``); ``POST /orders/<id>/notes`` with ``note`` and
  ``customer_note`` (true: the customer is emailed) adds one. A POST is not safe to repeat,
  so it is sent once; after an unknown outcome the caller reads the notes and looks for its
  own before posting again.

Authentication as :mod:`adapters.woocommerce_stock`: the consumer key and secret as HTTP
Basic over HTTPS.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from adapters.http import HttpClient
from adapters.woocommerce_stock import rest_client
from connector.domain.handoff import OrderNote
from connector.domain.model import ProviderResponseError


class WooCommerceFulfillment:
    platform = "woocommerce"

    def __init__(self, store_url: str | None = None, consumer_key: str | None = None,
                 consumer_secret: str | None = None, *, client: HttpClient | None = None,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic):
        """``client`` (based at ``.../wp-json/wc/v3``) replaces the HTTPS client in tests."""
        self.client = client or rest_client(store_url, consumer_key, consumer_secret, sleep=sleep, monotonic=monotonic)

    def update_order(self, order_id: str, *, meta: Mapping[str, str] | None = None, status: str | None = None) -> None:
        body: dict = {}
        if meta:
            body["meta_data"] = [{"key": key, "value": value} for key, value in meta.items()]
        if status:
            body["status"] = status
        resp = self.client.request("PUT", f"/orders/{order_id}", json=body)
        if not isinstance(self.client.decode_json(resp), dict):
            raise ProviderResponseError(f"woocommerce: PUT /orders/{order_id} did not answer the order")

    def notes(self, order_id: str) -> list[OrderNote]:
        body = self.client.get_json(f"/orders/{order_id}/notes", {"type": "any"})
        if not isinstance(body, list):
            raise ProviderResponseError(f"woocommerce: GET /orders/{order_id}/notes did not answer a list")
        notes = []
        for item in body:
            if not isinstance(item, dict) or not isinstance(item.get("id"), int) or not isinstance(item.get("note"), str):
                raise ProviderResponseError(f"woocommerce: GET /orders/{order_id}/notes: a note without id or text")
            notes.append(OrderNote(item["id"], item["note"], bool(item.get("customer_note"))))
        return notes

    def add_note(self, order_id: str, text: str, *, customer: bool) -> int:
        resp = self.client.request("POST", f"/orders/{order_id}/notes", json={"note": text, "customer_note": customer},
                                   retry=False)
        body = self.client.decode_json(resp)
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise ProviderResponseError(f"woocommerce: POST /orders/{order_id}/notes did not answer the note")
        return body["id"]
