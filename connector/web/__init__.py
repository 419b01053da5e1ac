"""The Flask app factory: a thin entry point over the services."""
from __future__ import annotations

import threading

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from connector.bootstrap import Container, build
from connector.services.group_commit import GroupCommit
from connector.worker import InboxWorker


def create_app(container: Container | None = None, *, config_path: str | None = None,
               start_worker: bool | None = None) -> Flask:
    container = container if container is not None else build(config_path=config_path)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = container.settings.web.max_body_bytes
    app.extensions["connector"] = container
    app.extensions["connector_stores"] = threading.local()
    web = container.settings.web
    if web.group_commit:
        # Built here, started by the first delivery: so in each process that serves.
        app.extensions["connector_group_commit"] = GroupCommit(
            lambda: container.open_store().write_transactions_only(), max_rows=web.group_commit_max_rows,
            max_wait_seconds=web.group_commit_max_wait_ms / 1000, queue_size=web.group_commit_queue_size,
            # As long as a request would have waited for the write lock itself, plus
            # a second for the group ahead of it.
            answer_timeout_seconds=container.settings.busy_timeout_ms / 1000 + 1,
        )

    from connector.web.api import bp as api_bp
    from connector.web.webhooks import bp as webhooks_bp

    from connector.web.pages import install_pages, page_error, wants_json_error

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(api_bp)
    install_pages(app, container.settings.web_secret_key, web.proxy_hops, json_blueprints=(webhooks_bp, api_bp))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not wants_json_error():
            return page_error(exc)
        # JSON for every client error: webhook senders and API callers read it.
        return jsonify({"error": exc.name.lower().replace(" ", "_"), "detail": exc.description}), exc.code

    @app.get("/healthz")
    def _health():
        return {"ok": True}

    if start_worker is None:
        start_worker = container.settings.web.process_inbox
    if start_worker:
        worker = InboxWorker(container)
        worker.start()
        app.extensions["inbox_worker"] = worker
    return app


def current_store():
    """This thread's own connection, opened once and reused by its requests.

    A connection per request would pay connect, pragmas and schema parsing every
    time, and the last one to close checkpoints the WAL: several times the cost of
    storing a webhook. A thread serves one request at a time, so the connection is
    never shared; anything a failed request left open is rolled back first.
    """
    local = current_app.extensions["connector_stores"]
    store = getattr(local, "store", None)
    if store is None:
        store = local.store = current_app.extensions["connector"].open_store()
    elif store.conn.in_transaction:
        store.conn.execute("ROLLBACK")
    return store
