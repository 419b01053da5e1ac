"""POST /webhooks/shopify and /webhooks/woocommerce: verify, store, answer."""
from __future__ import annotations

import logging

from flask import Blueprint, Flask, Request, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from connector.services.group_commit import CommitAlone, GroupCommit, NotStored
from connector.web import current_store

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger("connector.web")

# Seconds a sender should wait before redelivering a webhook answered 503.
RETRY_AFTER_SECONDS = 1


@bp.post("/shopify")
def shopify():
    return _ingest("shopify")


@bp.post("/woocommerce")
def woocommerce():
    return _ingest("woocommerce")


def _ingest(platform: str):
    # The app and request behind the proxies, looked up once: every use of a proxy
    # looks them up again (a context-variable lookup, about a microsecond each).
    app, req = current_app._get_current_object(), request._get_current_object()
    container = app.extensions["connector"]
    try:
        raw_body = _raw_body(req, app.config["MAX_CONTENT_LENGTH"])
    except RequestEntityTooLarge:
        raise
    # The server's own stream raises on a malformed body (a bad chunk size, a chunk cut
    # short, no final 0-chunk, fewer bytes than Content-Length): werkzeug an OSError or
    # ClientDisconnected, gunicorn its ParseException or NoMoreData. The sender's fault,
    # so a 400 and one log line, not a 500 with a traceback.
    except Exception as exc:  # noqa: BLE001 - each server has its own error types
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        log.warning("%s webhook from %s: request body unreadable, answered 400: %s", platform, req.remote_addr,
                    reason)
        return jsonify({"error": "bad_request", "detail": f"the request body could not be read: {reason}"}), 400
    try:
        outcome = container.inbox.ingest(_inbox_writer(app, req), platform, raw_body, req.headers)
    except NotStored as exc:
        # Not known to be committed, so not acknowledged: Shopify and WooCommerce redeliver.
        response = jsonify({"error": "unavailable", "detail": str(exc)})
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, 503
    if outcome.queued:
        worker = app.extensions.get("inbox_worker")
        if worker is not None:
            worker.notify()
    return jsonify(outcome.body), outcome.status


def _inbox_writer(app: Flask, req: Request) -> GroupCommit | CommitAlone:
    """The process's group commit when the server runs several requests at once in
    this process (gunicorn gthread); else a group of one in this thread, since a
    process serving one request at a time never has anything to group."""
    group_commit = app.extensions.get("connector_group_commit")
    if group_commit is not None and req.environ.get("wsgi.multithread"):
        return group_commit
    return CommitAlone(current_store())


def _raw_body(req: Request, limit: int) -> bytes:
    """The exact body bytes (the signature covers them), or 413 when over ``limit``.

    With a Content-Length, werkzeug refuses an oversized body itself. A chunked body
    has none, and werkzeug's limited stream would silently cut it at the limit (the
    cut body then fails the signature: a misleading 401), so read one byte past it.
    """
    if req.content_length is not None or not req.environ.get("wsgi.input_terminated"):
        return req.get_data(cache=False)
    raw = req.environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return raw
