"""GET /api/availability: what a region may buy of a SKU, for a storefront widget.

Authenticated per shop with the shop's API key in ``X-Api-Key`` (compared in
constant time); an unknown shop and a wrong key get the same 401, so the API
does not reveal which shops exist.
"""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request

from connector.web import current_store

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/availability")
def availability():
    container = current_app.extensions["connector"]
    missing = [name for name in ("shop", "sku", "region") if not request.args.get(name)]
    if missing:
        return jsonify({"error": "bad_request", "detail": f"missing query parameter(s): {', '.join(missing)}"}), 400
    shop_id, sku, region_id = (request.args[name] for name in ("shop", "sku", "region"))
    shop = container.shops.get(shop_id)
    key = request.headers.get("X-Api-Key", "")
    expected = shop.storefront.api_key if shop is not None else ""
    if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
        return jsonify({"error": "unauthorized", "detail": "unknown shop or wrong X-Api-Key"}), 401
    if region_id not in shop.network.regions:
        return jsonify({"error": "not_found", "detail": f"shop {shop_id} has no region {region_id!r}"}), 404
    answer = container.availability.lookup(current_store(), shop_id, sku, region_id)
    if answer is None:
        return jsonify({"error": "not_found", "detail": f"shop {shop_id} has no SKU {sku!r}"}), 404
    return jsonify(answer)
