"""The Flask app factory: a thin entry point over the services."""
from __future__ import annotations

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

from connector.bootstrap import Container, build
from connector.worker import InboxWorker


def create_app(container: Container | None = None, *, config_path: str | None = None,
               start_worker: bool | None = None) -> Flask:
    container = container if container is not None else build(config_path=config_path)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = container.settings.web.max_body_bytes
    app.extensions["connector"] = container

    from connector.web.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)

    @app.teardown_appcontext
    def _close_store(_exc):
        store = g.pop("store", None)
        if store is not None:
            store.close()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
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
    """This request's own connection, closed at teardown."""
    from flask import current_app

    if "store" not in g:
        g.store = current_app.extensions["connector"].open_store()
    return g.store
