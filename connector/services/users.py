"""People who sign in to the standalone pages: adding them, checking a login (with
failed attempts slowing guessing down), and one-time login links."""
from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Callable

from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from connector.auth_store import AuthStore, DuplicateEmail, User
from connector.store import Store

# Guessing: a few tries per account, more per address (an office shares one).
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 20
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # hashing is the cost; no one types more
MAX_LINK_VALIDITY = timedelta(hours=24)
_LINK_SALT = "connector.login-link"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserError(ValueError):
    """Bad input to ``add``, phrased for the person who typed it."""


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None  # None: refused
    retry_after_seconds: int | None = None  # set when refused for too many failed attempts


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


@cache
def _no_such_user_hash() -> str:
    """Checked against when the email is unknown, so both cases cost one hash."""
    return generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


class Users:
    def __init__(self, known_shop: Callable[[str], bool], clock: Callable[[], datetime]):
        self._known_shop = known_shop
        self._clock = clock

    def add(self, store: Store, email: str, password: str, shop_id: str) -> User:
        problems = self.account_problems(store, email, password, check_taken=False)
        if "email" in problems:
            raise UserError(problems["email"])
        if not self._known_shop(shop_id):
            raise UserError(f"unknown shop {shop_id!r}")
        if "password" in problems:
            raise UserError(problems["password"])
        with store.write():
            return self.add_hashed(store, email, hash_password(password), shop_id)

    def account_problems(self, store: Store, email: str, password: str, *, check_taken: bool = True) -> dict[str, str]:
        """What is wrong with a new account's email and password, by field (empty: nothing)."""
        email = normalise_email(email)
        problems = {}
        if not _EMAIL.match(email):
            problems["email"] = f"{email!r} is not an email address"
        elif check_taken and AuthStore(store).user_by_email(email) is not None:
            problems["email"] = f"a user {email} exists already"
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            problems["password"] = f"the password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        return problems

    def add_hashed(self, store: Store, email: str, password_hash: str, shop_id: str) -> User:
        """A user whose password was hashed earlier (``hash_password``), inside the caller's
        transaction (which may be creating the shop too, so the shop is not checked here)."""
        email = normalise_email(email)
        try:
            return AuthStore(store).add_user(email, password_hash, shop_id, self._clock())
        except DuplicateEmail:
            raise UserError(f"a user {email} exists already") from None

    def user(self, store: Store, user_id: int) -> User | None:
        return AuthStore(store).user(user_id)

    def login(self, store: Store, email: str, password: str, ip: str) -> LoginOutcome:
        """The user, or a refusal; while too many recent failures block the email or the
        address, even the right password is refused (and not checked)."""
        auth, email, now = AuthStore(store), normalise_email(email), self._clock()
        wait = self._blocked_for(auth, email, ip, now)
        if wait is not None:
            return LoginOutcome(None, wait)
        user = auth.user_by_email(email)
        good = check_password_hash(user.password_hash if user else _no_such_user_hash(), password[:MAX_PASSWORD_LENGTH])
        if user is None or not good:
            auth.record_failure(email, ip, now, forget_before=now - FAILURE_WINDOW)
            return LoginOutcome(None)
        auth.forget_failures(email)
        return LoginOutcome(user)

    @staticmethod
    def _blocked_for(auth: AuthStore, email: str, ip: str, now: datetime) -> int | None:
        """Seconds until enough of the failures in the window age out to let a try in."""
        waits = []
        for failures, limit in ((auth.failures_since(now - FAILURE_WINDOW, email=email), MAX_FAILURES_PER_EMAIL),
                                (auth.failures_since(now - FAILURE_WINDOW, ip=ip), MAX_FAILURES_PER_IP)):
            if len(failures) >= limit:
                frees_at = failures[len(failures) - limit] + FAILURE_WINDOW
                waits.append(max(1, math.ceil((frees_at - now).total_seconds())))
        return max(waits) if waits else None

    # ------------------------------------------------------------ one-time login links

    def issue_link(self, store: Store, email: str, secret_key: str, valid_for: timedelta) -> str:
        """A token for ``/login/link/<token>``: signed with the web secret key (so a copy of
        the database alone makes no working link) and naming a nonce usable once."""
        if not timedelta(0) < valid_for <= MAX_LINK_VALIDITY:
            raise UserError(f"a login link is valid for up to {MAX_LINK_VALIDITY.total_seconds() / 3600:.0f} hours")
        auth, now = AuthStore(store), self._clock()
        user = auth.user_by_email(normalise_email(email))
        if user is None:
            raise UserError(f"no user {normalise_email(email)}")
        nonce = secrets.token_urlsafe(24)
        with store.write():
            auth.add_login_link(nonce, user.id, now, now + valid_for)
        return URLSafeTimedSerializer(secret_key, salt=_LINK_SALT).dumps(nonce)

    def link_user(self, store: Store, token: str, secret_key: str) -> User | None:
        """Whose unused, unexpired link this is (without using it); None for any other token."""
        nonce = self._nonce(token, secret_key)
        if nonce is None:
            return None
        row = AuthStore(store).login_link(nonce, self._clock())
        return AuthStore(store).user(row) if row is not None else None

    def use_link(self, store: Store, token: str, secret_key: str) -> User | None:
        nonce = self._nonce(token, secret_key)
        user_id = AuthStore(store).use_login_link(nonce, self._clock()) if nonce is not None else None
        return AuthStore(store).user(user_id) if user_id is not None else None

    @staticmethod
    def _nonce(token: str, secret_key: str) -> str | None:
        try:
            nonce = URLSafeTimedSerializer(secret_key, salt=_LINK_SALT).loads(
                token, max_age=int(MAX_LINK_VALIDITY.total_seconds()))
        except BadSignature:  # also SignatureExpired
            return None
        return nonce if isinstance(nonce, str) else None
