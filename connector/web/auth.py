"""Signing in to the standalone pages: email + password, one-time login links, sign-out,
and ``login_required``, which hands a view the signed-in user's shop id (the only
way a page learns which shop it shows, so one shop's user never reaches another's)."""
from __future__ import annotations

import functools
import math
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from connector.auth_store import User
from connector.services.users import MAX_PASSWORD_LENGTH
from connector.web import current_store

bp = Blueprint("auth", __name__)
HOME = "settings.status"


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
    """Signed in: the view runs with ``shop_id`` = the user's shop. Else: to the login page."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            return redirect(url_for("auth.login", next=_this_page()))
        return view(*args, shop_id=user.shop_id, **kwargs)

    return wrapped


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
