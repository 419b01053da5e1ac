"""POST /webhooks/shopify and /webhooks/woocommerce: verify, store, answer."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from connector.web import current_store

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/shopify")
def shopify():
    return _ingest("shopify")


@bp.post("/woocommerce")
def woocommerce():
    return _ingest("woocommerce")


def _ingest(platform: str):
    container = current_app.extensions["connector"]
    # Raw bytes (the signature covers them); over MAX_CONTENT_LENGTH raises 413 here.
    raw_body = request.get_data(cache=False)
    outcome = container.inbox.ingest(current_store(), platform, raw_body, request.headers)
    if outcome.queued:
        worker = current_app.extensions.get("inbox_worker")
        if worker is not None:
            worker.notify()
    return jsonify(outcome.body), outcome.status
