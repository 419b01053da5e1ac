"""Helpers for the web page tests: users, CSRF tokens read from the forms, signing in."""
from __future__ import annotations

import re

PASSWORD = "correct horse battery staple"
SHOPIFY_USER = "maker@candles.example"
WOO_USER = "grower@botanics.example"

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                   r'type="hidden" name="csrf_token" value="([^"]+)"')


def add_user(container, email: str, shop_id: str, password: str = PASSWORD):
    store = container.open_store()
    try:
        return container.users.add(store, email, password, shop_id)
    finally:
        store.close()


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the form on ``path`` (its secret sits in the client's session cookie)."""
    page = client.get(path)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}: {page.status_code}"
    return match.group(1) or match.group(2)


def sign_in(client, email: str, password: str = PASSWORD, **extra):
    return client.post("/login", data={"csrf_token": csrf_token(client), "email": email, "password": password,
                                       **extra})
