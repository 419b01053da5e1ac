"""Connecting a WooCommerce store (connector.services.store_connections): the public
page that starts it, the wc-auth callback WooCommerce POSTs the keys to, and the page
the creator returns to. The browser that started a connection carries its id in the
signed session cookie: only that browser sees the outcome, and is signed in when the
store was connected (it set the password a moment ago)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from connector.auth_store import AuthStore
from connector.services.store_connections import FormProblems, NotConfigured
from connector.services.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from connector.web import current_store
from connector.web.auth import _sign_in, current_user
from connector.web.pages import STANDALONE_CSP

bp = Blueprint("woocommerce", __name__, url_prefix="/woocommerce")
SESSION_KEY = "woocommerce_connection"
HEADLINES = {
    "keys_refused": "Your store refused the keys",
    "unreachable": "Your store could not be reached",
    "store_url": "Your store's address cannot be used",
    "webhooks_refused": "Your store refused to create the webhooks",
    "callback": "Your store sent keys we could not read",
    "save": "The connection could not be saved",
}


class ConnectForm(FlaskForm):
    store_url = StringField("Store address", validators=[InputRequired("Enter your store's address."),
                                                        Length(max=2000)])
    email = EmailField("Your email", validators=[InputRequired("Enter your email."), Length(max=254)])
    password = PasswordField("A password for these pages",
                             validators=[InputRequired("Choose a password."), Length(max=MAX_PASSWORD_LENGTH)])


@bp.route("/connect", methods=["GET", "POST"])
def connect():
    connections = _connections()
    try:
        connections.public_url()
    except NotConfigured as exc:
        return render_template("woocommerce/unavailable.html", message=str(exc)), 503
    form = ConnectForm()
    if form.validate_on_submit():
        try:
            started = connections.start(current_store(), form.store_url.data, form.email.data, form.password.data)
        except FormProblems as exc:
            for name, message in exc.problems.items():
                getattr(form, name).errors.append(message)
        else:
            session[SESSION_KEY] = started.connection_id
            return redirect(started.authorize_url, 303)
    page = render_template("woocommerce/connect.html", form=form, min_password=MIN_PASSWORD_LENGTH,
                           last=_last_failure(), lookback_hours=_scheduler().reconcile_first_lookback_hours)
    # The form's answer redirects to the store (another origin), which browsers hold to the
    # page's form-action: any https origin, since the store is only known once it is typed.
    return page, {"Content-Security-Policy": STANDALONE_CSP.replace("form-action 'self'", "form-action 'self' https:")}


@bp.post("/callback")
def callback():
    """wc-auth's POST of the keys (JSON, unsigned, CSRF-exempt): exactly 200 only when
    everything was saved; anything else makes WooCommerce delete the key."""
    answer = _connections().complete(current_store(), request.get_data(cache=False))
    return jsonify({"ok": answer.status == 200, "detail": answer.message}), answer.status


@bp.get("/connected")
def connected():
    connection_id = request.args.get("c", "")
    state = _connections().state(current_store(), connection_id) if connection_id else None
    if state is None:
        abort(404, "This connection is unknown (or so old it was deleted): connect your store again.")
    if session.get(SESSION_KEY) != connection_id:
        return render_template("woocommerce/connected.html", view="elsewhere", state=state)
    outcome = state.outcome
    if outcome is not None and outcome.connected:
        user = current_user()
        if user is None or user.shop_id != outcome.shop_id:
            user = AuthStore(current_store()).user_by_email(state.pending.email)
            if user is not None:
                _sign_in(user)
                session[SESSION_KEY] = connection_id  # a reload shows this page again
        hours = _scheduler().reconcile_first_lookback_hours
        minutes = max(1, round(_scheduler().reconcile_every_seconds / 60))
        return render_template("woocommerce/connected.html", view="connected", state=state, hours=hours,
                               minutes=minutes)
    if outcome is not None:
        return render_template("woocommerce/connected.html", view="failed", state=state,
                               headline=_headline(outcome.kind, outcome.message))
    if state.taken:
        return render_template("woocommerce/connected.html", view="working", state=state)
    if _connections().clock() >= state.pending.expires_at:
        return render_template("woocommerce/connected.html", view="expired", state=state)
    view = "declined" if request.args.get("success") == "0" else "waiting"
    return render_template("woocommerce/connected.html", view=view, state=state)


def _headline(kind: str, message: str) -> str:
    if kind == "store_url" and "served over https" in message:
        return "Your store must use https"
    return HEADLINES.get(kind, "The connection failed")


def _last_failure():
    """This browser's last connection, when it failed: WooCommerce shows its own error page
    then and never sends the creator back, so the form says what happened."""
    connection_id = session.get(SESSION_KEY)
    state = _connections().state(current_store(), connection_id) if isinstance(connection_id, str) else None
    if state is None or state.outcome is None or state.outcome.connected:
        return None
    return {"headline": _headline(state.outcome.kind, state.outcome.message), "message": state.outcome.message,
            "store_url": state.pending.store_url}


def _connections():
    return current_app.extensions["connector"].connections


def _scheduler():
    return current_app.extensions["connector"].settings.scheduler
