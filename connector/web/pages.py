"""What the HTML pages share: the signed session cookie, CSRF on every form, security
headers, HTML error pages (webhooks and the API keep their JSON errors), and the page
blueprints."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from connector.config import WEB_SECRET_KEY_ENV, ConfigError

MIN_SECRET_KEY_LENGTH = 32
# Paths whose clients are programs: their errors stay JSON.
JSON_PREFIXES = ("/webhooks", "/api", "/healthz")
# Standalone pages load only this origin's files and are never framed (the Shopify
# admin's embedded pages send their own per-shop frame-ancestors).
STANDALONE_CSP = ("default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
                  "frame-ancestors 'none'")
PAGE_ERRORS = {
    400: ("Something in the request was wrong", "Go back, reload the page and try again."),
    401: ("Please sign in", "This page needs you to be signed in."),
    403: ("Not allowed", "Your account may not open this page."),
    404: ("Page not found", "There is nothing here, or it belongs to another shop."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "What was sent is larger than this service accepts."),
    429: ("Too many attempts", "Wait a moment and try again."),
}


def install_pages(app: Flask, secret_key: str, proxy_hops: int, json_blueprints) -> None:
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"[web] secret_key (or {WEB_SECRET_KEY_ENV}) must be set to at least "
                          f"{MIN_SECRET_KEY_LENGTH} random characters before the web pages can start, e.g. "
                          "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    if proxy_hops:
        # The client's address (login limits) and scheme (links) from the proxies' headers.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops, x_host=proxy_hops)
    # CSRF on every form, checked below: inside the Shopify admin by the session token instead.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf = CSRFProtect(app)
    exempt = {blueprint.name for blueprint in json_blueprints}  # signed (webhooks) or keyed (API), not forms

    from connector.web.auth import (bp as auth_bp, carry_session_token, current_user, embedded_headers,
                                    embedded_request, embedded_session, retry_with_new_token, shopify_app)
    from connector.web.actions import bp as actions_bp
    from connector.web.exception_actions import bp as exceptions_bp
    from connector.web.home import bp as home_bp
    from connector.web.inventory import bp as inventory_bp
    from connector.web.metrics import bp as metrics_bp
    from connector.web.nav import main_nav
    from connector.web.packing import bp as packing_bp
    from connector.web.settings import bp as settings_bp
    from connector.web.shopify_app import bp as shopify_app_bp
    from connector.web.woocommerce_connect import bp as woocommerce_bp
    # WooCommerce's server POSTs the keys there; the one-time user_id proves it.
    exempt_endpoints = {"woocommerce.callback"}

    @app.before_request
    def _csrf():
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE") or request.blueprint in exempt \
                or request.endpoint is None or request.endpoint in exempt_endpoints:  # None: its 404/405 follows
            return None
        if embedded_request():
            if embedded_session() is None:
                return retry_with_new_token()
            g.csrf_valid = True  # Flask-WTF's forms then skip their own token check
            return None
        csrf.protect()
        return None

    app.register_blueprint(auth_bp)
    app.register_blueprint(home_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(actions_bp)
    app.register_blueprint(shopify_app_bp)
    app.register_blueprint(woocommerce_bp)
    app.register_blueprint(inventory_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(packing_bp)
    app.register_blueprint(exceptions_bp)
    app.url_defaults(carry_session_token)
    app.context_processor(lambda: {"current_user": current_user(), "embedded": g.get("embedded"), "main_nav": main_nav,
                                   "shopify_api_key": shopify_app().client_id if shopify_app() else ""})
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    app.add_template_filter(local_time)
    app.after_request(_security_headers)
    app.after_request(embedded_headers)  # runs first: its per-shop CSP wins over the default


def wants_json_error() -> bool:
    return any(request.path == p or request.path.startswith(p + "/") for p in JSON_PREFIXES)


def page_error(exc: HTTPException):
    code = exc.code or 500
    title, advice = PAGE_ERRORS.get(code, ("Something went wrong", "Try again in a moment."))
    if isinstance(exc, CSRFError):
        detail = "This form has expired or did not come from this site."
    elif code >= 500:
        detail = None  # never the inner workings
    elif exc.description != type(exc).description:
        detail = exc.description  # a view's own words (abort(404, "...")), not werkzeug's default
    else:
        detail = None
    response = render_template("error.html", code=code, title=title, detail=detail, advice=advice)
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("retry-after", "allow")}
    return response, code, headers


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", STANDALONE_CSP)
        # Signed-in pages hold a shop's data: not kept by the browser or anything between.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def local_time(value: str | datetime | None, timezone: str = "UTC") -> str:
    """A stored UTC timestamp as the shop's local time, to the minute."""
    if not value:
        return "never"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")
