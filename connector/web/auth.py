"""Who is asking, one decorator per kind, each handing the view the shop id (the only way
a page learns which shop it shows, so one shop's user never reaches another's):

* ``login_required``: the standalone pages' signed-in user (email + password, one-time
  login links, sign-out); a request from inside the Shopify admin is passed on to
* ``embedded_required``: the App Bridge session token (app-ui.md §2) in ``id_token`` (page
  loads, links and forms carry it) or ``Authorization: Bearer`` (App Bridge's fetch). A page
  load with a missing or stale token goes to the bounce page, which reloads it with a fresh
  one; anything else gets 401 with ``X-Shopify-Retry-Invalid-Session-Request: 1``. A shop
  without stored tokens is installed first (token exchange, ``ShopifyApp.ensure_installed``).

Inside the admin's iframe the session cookie is a third-party cookie: the verified session
token is the CSRF protection there (``embedded_session``, used by pages.py)."""
from __future__ import annotations

import functools
import math
from urllib.parse import urlencode, urlsplit

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from adapters.shopify_auth import (RETRY_INVALID_SESSION_HEADER, InvalidSessionToken, InvalidSubjectToken,
                                   SessionToken, shop_domain, verify_session_token)
from connector.auth_store import User
from connector.bootstrap import shopify_client_secrets
from connector.domain.model import ProviderError
from connector.services.users import MAX_PASSWORD_LENGTH
from connector.web import current_store

bp = Blueprint("auth", __name__)
HOME = "home.index"  # where signing in lands


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired("Enter your password."),
                                                     Length(max=MAX_PASSWORD_LENGTH)])


class LinkForm(FlaskForm):
    """Only the CSRF token: the link is used by a POST, so a link preview cannot spend it."""


def current_user() -> User | None:
    if "user" not in g:
        user_id = session.get("user_id")
        g.user = _users().user(current_store(), user_id) if isinstance(user_id, int) else None
    return g.user


def login_required(view):
    """Signed in: the view runs with ``shop_id`` = the user's shop. Else: to the login page.
    A request from inside the Shopify admin is checked as ``embedded_required`` checks it."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if embedded_request():
            return _as_embedded(view, args, kwargs)
        user = current_user()
        if user is None:
            return redirect(url_for("auth.login", next=_this_page()))
        g.shop_id = user.shop_id  # the page's shop, for what every page shows (connector.web.nav)
        return view(*args, shop_id=user.shop_id, **kwargs)

    return wrapped


def embedded_required(view):
    """A valid session token: the view runs with ``shop_id`` = the token's shop (installed on
    its first visit). Else: the bounce page (page loads) or 401 + retry header."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        return _as_embedded(view, args, kwargs)

    return wrapped


def embedded_request() -> bool:
    """The request comes from inside the Shopify admin (or claims to)."""
    return bool(_from_fetch() or request.values.get("id_token") or request.args.get("embedded") == "1")


def embedded_session() -> SessionToken | None:
    """This request's verified session token (Bearer header, else ``id_token``), or None."""
    if "session_token" not in g:
        g.session_token = None
        app = shopify_app()
        token = session_token_text()
        if app is not None and token:
            try:
                g.session_token = verify_session_token(
                    token, client_id=app.client_id, secrets=shopify_client_secrets(app.settings), now=app.clock)
            except InvalidSessionToken:
                pass
    return g.session_token


def shopify_app():
    return current_app.extensions["connector"].shopify_app


def _as_embedded(view, args, kwargs):
    app = shopify_app()
    if app is None:
        abort(404, "This service is not set up as a Shopify app ([shopify] client_id).")
    session_token = embedded_session()
    if session_token is None:
        return retry_with_new_token()
    token = session_token_text()
    # Set first: an error page below is an embedded page of this shop too (its CSP, App Bridge).
    g.embedded = {"embedded": "1", "shop": session_token.shop, "host": request.args.get("host", ""),
                  "id_token": token}
    try:
        shop_id = app.ensure_installed(current_store(), session_token.shop, token, session_token.user_id)
    except InvalidSubjectToken:
        return retry_with_new_token(bounce=False)
    except ProviderError:
        abort(503, "Shopify did not answer as expected. Reload the page in a moment.")
    g.shop_id = shop_id
    return view(*args, shop_id=shop_id, **kwargs)


def retry_with_new_token(*, bounce: bool = True) -> Response:
    """A page load: to the bounce page, which has App Bridge reload it with a fresh token.
    A fetch or a form: 401 with the header App Bridge retries on."""
    if bounce and request.method == "GET" and not _from_fetch():
        query = [(k, v) for k, v in request.args.items(multi=True) if k != "id_token"]
        reload = request.base_url + (f"?{urlencode(query)}" if query else "")
        return redirect(url_for("shopify_app.bounce") + "?" + urlencode([*query, ("shopify-reload", reload)]))
    return Response("The Shopify session token is missing, invalid or expired.\n", 401,
                    {RETRY_INVALID_SESSION_HEADER: "1", "Content-Type": "text/plain; charset=utf-8"})


def carry_session_token(endpoint: str, values: dict) -> None:
    """Inside the admin every link and form of a page carries its session token (a multi-page
    app must: app-ui.md §2), and the shop and host App Bridge needs."""
    embedded = g.get("embedded") if g else None
    if embedded and endpoint != "static":
        for key, value in embedded.items():
            values.setdefault(key, value)


def embedded_headers(response: Response) -> Response:
    """Embedded pages may be framed by their shop's admin only (a per-shop frame-ancestors,
    never a wildcard) and load App Bridge from Shopify's CDN; the bounce page by the shop it names."""
    shop = (g.get("embedded") or {}).get("shop") or (
        shop_domain(request.args.get("shop")) if request.endpoint == "shopify_app.bounce" else None)
    if shop and response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = (
            f"frame-ancestors https://{shop} https://admin.shopify.com; script-src 'self' https://cdn.shopify.com; "
            "object-src 'none'; base-uri 'none'; form-action 'self'")
    return response


def session_token_text() -> str | None:
    """App Bridge's header, else a form's field (refreshed by embedded.js at submit), else the URL's."""
    return _bearer() or request.form.get("id_token") or request.args.get("id_token")


def _from_fetch() -> bool:
    """App Bridge's fetch: a bearer token (maybe empty or stale), never a page load."""
    return request.headers.get("Authorization", "").startswith("Bearer")


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[len("Bearer "):].strip() or None if header.startswith("Bearer ") else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = _safe_next(request.values.get("next"))
    if current_user() is not None:
        return redirect(target or url_for(HOME))
    form = LoginForm()
    if form.validate_on_submit():
        outcome = _users().login(current_store(), form.email.data, form.password.data, request.remote_addr or "")
        if outcome.retry_after_seconds is not None:
            minutes = math.ceil(outcome.retry_after_seconds / 60)
            return (render_template("too_many.html", minutes=minutes), 429,
                    {"Retry-After": str(outcome.retry_after_seconds)})
        if outcome.user is not None:
            _sign_in(outcome.user)
            return redirect(target or url_for(HOME))
        form.password.errors.append("Email or password is wrong.")
    return render_template("login.html", form=form, next=target)


@bp.post("/logout")
def logout():
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


@bp.route("/login/link/<token>", methods=["GET", "POST"])
def login_link(token: str):
    users, secret_key = _users(), current_app.config["SECRET_KEY"]
    form = LinkForm()
    if form.validate_on_submit():
        user = users.use_link(current_store(), token, secret_key)
        if user is not None:
            _sign_in(user)
            return redirect(url_for(HOME))
    else:
        user = users.link_user(current_store(), token, secret_key)
        if user is not None:
            return render_template("login_link.html", form=form, user=user)
    abort(404, "This login link is unknown, has expired or was used already. Ask for a new one.")


def _sign_in(user: User) -> None:
    session.clear()  # nothing from before the login carries over
    session["user_id"] = user.id
    session.permanent = True
    g.user = user


def _users():
    return current_app.extensions["connector"].users


def _this_page() -> str:
    return request.path + (f"?{request.query_string.decode()}" if request.query_string else "")


def _safe_next(target: str | None) -> str | None:
    """A path on this site to return to after signing in; anything else is dropped."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None
