"""POST /webhooks/shopify and /webhooks/woocommerce: verify, store, answer."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from connector.services.group_commit import CommitAlone, GroupCommit, NotStored
from connector.web import current_store

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Seconds a sender should wait before redelivering a webhook answered 503.
RETRY_AFTER_SECONDS = 1


@bp.post("/shopify")
def shopify():
    return _ingest("shopify")


@bp.post("/woocommerce")
def woocommerce():
    return _ingest("woocommerce")


def _ingest(platform: str):
    container = current_app.extensions["connector"]
    raw_body = _raw_body(current_app.config["MAX_CONTENT_LENGTH"])
    try:
        outcome = container.inbox.ingest(_inbox_writer(), platform, raw_body, request.headers)
    except NotStored as exc:
        # Not known to be committed, so not acknowledged: Shopify and WooCommerce redeliver.
        response = jsonify({"error": "unavailable", "detail": str(exc)})
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, 503
    if outcome.queued:
        worker = current_app.extensions.get("inbox_worker")
        if worker is not None:
            worker.notify()
    return jsonify(outcome.body), outcome.status


def _inbox_writer() -> GroupCommit | CommitAlone:
    """The process's group commit when the server runs several requests at once in
    this process (gunicorn gthread); else a group of one in this thread, since a
    process serving one request at a time never has anything to group."""
    group_commit = current_app.extensions.get("connector_group_commit")
    if group_commit is not None and request.environ.get("wsgi.multithread"):
        return group_commit
    return CommitAlone(current_store())


def _raw_body(limit: int) -> bytes:
    """The exact body bytes (the signature covers them), or 413 when over ``limit``.

    With a Content-Length, werkzeug refuses an oversized body itself. A chunked body
    has none, and werkzeug's limited stream would silently cut it at the limit (the
    cut body then fails the signature: a misleading 401), so read one byte past it.
    """
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)
    raw = request.environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return raw
