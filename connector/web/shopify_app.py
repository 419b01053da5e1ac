"""The Shopify app: its home inside the admin (the app's home page), the store's locations
(each offered as a node), the bounce page that gets a page a fresh session token, and the
authorization-code grant for installs that start outside the admin (``/shopify/install`` → Shopify's grant
screen → ``/shopify/auth/callback``, the redirect URL in shopify.app.toml)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from adapters.shopify_auth import (REQUIRED_SCOPES, InvalidOAuthRequest, ReauthorizationNeeded, admin_app_url,
                                   install_url, new_state, shop_domain, verify_callback, verify_install_request)
from connector.bootstrap import shopify_client_secrets
from connector.config import InvalidShop
from connector.domain.model import ProviderError
from connector.services.shop_config import StaleVersion
from connector.services.shopify_app import CALLBACK_PATH
from connector.web import current_store
from connector.web.auth import embedded_required, login_required, shopify_app
from connector.web.home import home_page

bp = Blueprint("shopify_app", __name__, url_prefix="/shopify")

STATE_COOKIE = "shopify_oauth_state"
STATE_MAX_AGE = 600  # seconds from the install redirect to the callback


@bp.get("/app")
@embedded_required
def home(shop_id: str):
    """The application URL: Shopify opens it in the admin with ``embedded=1&id_token=…``.
    It shows the app's home page, as ``/`` does outside the admin."""
    return home_page(shop_id)


@bp.get("/locations")
@login_required
def locations(shop_id: str):
    return _locations_page(shop_id)


@bp.post("/locations")
@login_required
def add_location(shop_id: str):
    shop = _shopify_shop(shop_id)
    gid, version = request.form.get("location", ""), request.form.get("version", "")
    if not version.isdigit():
        abort(400, "The form lacks the configuration version it was made on.")
    try:
        node_id = shopify_app().add_location(current_store(), shop, gid, int(version), _actor())
    except LookupError:
        abort(404, "The store has no such location.")
    except StaleVersion:
        return _locations_page(shop_id, error="The configuration changed since this page was loaded: nothing was "
                                              "saved. Look at the list again and add the location once more.", code=409)
    except (ValueError, InvalidShop) as exc:
        return _locations_page(shop_id, error=str(exc), code=422)
    except ProviderError:
        return _locations_page(shop_id, error="Shopify did not answer; nothing was saved. Try again.", code=502)
    flash(f"Added node {node_id}. It now receives orders for every region: set its lanes, cutoff and capacity "
          "on the settings pages.")
    return redirect(url_for("shopify_app.locations"))


@bp.get("/bounce")
def bounce():
    """Only App Bridge: it reloads ``shopify-reload`` with a fresh ``id_token``."""
    app = shopify_app()
    if app is None:
        abort(404)
    return render_template("shopify/bounce.html", api_key=app.client_id)


@bp.get("/install")
def install():
    app = _app()
    params = request.args.to_dict()
    if "hmac" in params:  # Shopify's signed request to the app URL
        try:
            shop = verify_install_request(params, secrets=shopify_client_secrets(app.settings),
                                          now=app.clock().timestamp())
        except InvalidOAuthRequest as exc:
            abort(400, f"This install link is not valid: {exc}.")
    else:
        shop = shop_domain(params.get("shop"))
        if shop is None:
            abort(400, "Give the store as shop=your-store.myshopify.com.")
    state = new_state()
    url = install_url(shop, client_id=app.client_id, scopes=REQUIRED_SCOPES,
                      redirect_uri=app.settings.web.public_url + CALLBACK_PATH, state=state)
    response = redirect(url)
    response.set_cookie(STATE_COOKIE, _state_signer().dumps(state), max_age=STATE_MAX_AGE, path=CALLBACK_PATH,
                        secure=True, httponly=True, samesite="Lax")
    return response


@bp.get("/auth/callback")
def callback():
    app = _app()
    try:
        expected = _state_signer().loads(request.cookies.get(STATE_COOKIE, ""), max_age=STATE_MAX_AGE)
    except BadSignature:
        expected = None
    try:
        grant = verify_callback(request.args.to_dict(), secrets=shopify_client_secrets(app.settings),
                                expected_state=expected, now=app.clock().timestamp())
    except InvalidOAuthRequest as exc:
        abort(400, f"This authorization cannot be used: {exc}. Start the install again.")
    try:
        tokens = app.keeper.oauth.exchange_code(grant.shop, grant.code)
    except ProviderError:
        abort(502, "Shopify did not give this service an access token. Start the install again.")
    missing = tokens.missing_scopes(REQUIRED_SCOPES)
    if missing:
        abort(400, f"The app needs every access it asks for; missing: {', '.join(missing)}. Install it again.")
    app.keeper.adopt(grant.shop, tokens)
    try:
        app.installed(current_store(), grant.shop, "shopify install (authorization code)")
    except ProviderError:
        abort(502, "Shopify did not accept the webhook subscriptions. Start the install again.")
    if grant.host:
        try:
            target = admin_app_url(grant.host, app.client_id)
        except InvalidOAuthRequest:
            target = f"https://{grant.shop}/admin/apps/{app.client_id}/"
    else:
        target = f"https://{grant.shop}/admin/apps/{app.client_id}/"
    response = redirect(target)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH, secure=True, httponly=True, samesite="Lax")
    return response


def _locations_page(shop_id: str, *, error: str | None = None, code: int = 200):
    shop = _shopify_shop(shop_id)
    offered, problem = [], error
    try:
        offered = shopify_app().locations(shop)
    except ReauthorizationNeeded:
        problem = problem or ("This store has not authorized the app yet: open the app from the store's Shopify "
                              "admin to connect it.")
    except ProviderError:
        problem = problem or "Shopify did not answer with the store's locations. Reload the page in a moment."
    return render_template("shopify/locations.html", shop=shop, offered=offered, error=problem,
                           version=shop.version), code


def _shopify_shop(shop_id: str):
    if shopify_app() is None:
        abort(404, "This service is not set up as a Shopify app.")
    shop = current_app.extensions["connector"].shops.get(shop_id)
    if shop is None or shop.platform != "shopify":
        abort(404, "This page is for Shopify stores.")
    return shop


def _app():
    app = shopify_app()
    if app is None or not app.settings.web.public_url:
        abort(404, "This service is not set up for Shopify installs ([shopify] client_id, [web] public_url).")
    return app


def _state_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="shopify-oauth-state")


def _actor() -> str:
    from connector.web.auth import current_user, embedded_session

    session_token = embedded_session()
    if session_token is not None:
        return f"shopify user {session_token.user_id}"
    user = current_user()
    return user.email if user else "unknown"
