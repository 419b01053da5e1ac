"""Signing in to the standalone pages (Flask test client): password logins, the rate
limit, sign-out, one-time login links, the session cookie, the secret key, error pages,
security headers and escaping."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner

from connector import sandbox
from connector.bootstrap import build
from connector.config import ConfigError, settings_from_dict
from connector.services.users import FAILURE_WINDOW, MAX_FAILURES_PER_EMAIL, MAX_FAILURES_PER_IP
from connector.web import create_app
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP, initialised, to_toml
from tests.web import PASSWORD, SHOPIFY_USER, WOO_USER, add_user, csrf_token, sign_in


@pytest.fixture
def users(container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    add_user(container, WOO_USER, WOO_SHOP)


def _text(response) -> str:
    return response.get_data(as_text=True)


# ---------------------------------------------------------------- password login


def test_login_opens_the_home_page_and_the_shops_connection_status_is_a_click_away(client, users):
    response = sign_in(client, SHOPIFY_USER)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert 'href="/settings/">Settings</a>' in _text(client.get("/"))
    page = client.get("/settings/")
    assert page.status_code == 200
    text = _text(page)
    assert "Connection status" in text and SHOPIFY_SHOP in text and sandbox.SHOPIFY_DOMAIN in text
    for node_id in ("central", "ne-micro", "west-3pl", "cold-room", "popup-soho"):
        assert f"/settings/nodes/{node_id}" in text
    assert WOO_SHOP not in text and sandbox.WOO_URL not in text


def test_email_is_matched_whatever_its_case_and_spaces(client, users):
    assert sign_in(client, f"  {SHOPIFY_USER.upper()} ").status_code == 302


@pytest.mark.parametrize("email, password", [(SHOPIFY_USER, "wrong password here"),
                                             ("nobody@nowhere.example", PASSWORD)])
def test_a_wrong_login_says_so_beside_the_password_and_signs_nobody_in(client, users, email, password):
    response = sign_in(client, email, password)
    assert response.status_code == 200
    text = _text(response)
    field = re.search(r'<input[^>]*id="password"[^>]*>\s*<small id="password-error"[^>]*>([^<]*)</small>', text)
    assert field and field.group(1) == "Email or password is wrong."
    assert 'aria-invalid="true"' in field.group(0) and 'aria-describedby="password-error"' in field.group(0)
    assert client.get("/settings/").status_code == 302


def test_an_empty_field_is_named_beside_it(client, users):
    text = _text(client.post("/login", data={"csrf_token": csrf_token(client), "email": "", "password": ""}))
    assert re.search(r'id="email-error"[^>]*>Enter your email\.<', text)
    assert re.search(r'id="password-error"[^>]*>Enter your password\.<', text)


def test_login_returns_to_the_page_asked_for(client, users):
    first = client.get("/settings/nodes/central")
    assert first.headers["Location"] == "/login?next=/settings/nodes/central"
    response = sign_in(client, SHOPIFY_USER, next="/settings/nodes/central")
    assert response.headers["Location"] == "/settings/nodes/central"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x",
                                    "settings/"])
def test_login_never_sends_anyone_off_site(client, users, target):
    response = sign_in(client, SHOPIFY_USER, next=target)
    assert response.headers["Location"] == "/"


def test_the_session_cookie_is_secure_httponly_and_lax(client, users):
    cookie = sign_in(client, SHOPIFY_USER).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_logout_ends_the_session(client, users):
    sign_in(client, SHOPIFY_USER)
    token = csrf_token(client, "/settings/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "You are signed out." in _text(client.get("/login"))
    assert client.get("/settings/").status_code == 302


# ---------------------------------------------------------------- rate limit


def test_failures_for_one_email_block_it_for_a_while(client, users, clock):
    for _ in range(MAX_FAILURES_PER_EMAIL):
        assert sign_in(client, SHOPIFY_USER, "not the password").status_code == 200
        clock.advance(seconds=30)
    blocked = sign_in(client, SHOPIFY_USER)  # even the right password, while blocked
    assert blocked.status_code == 429
    # The first failure ages out of the 15 minutes 2.5 minutes after it: 12.5 → 13 minutes.
    assert "Try again in 13 minutes." in _text(blocked)
    assert blocked.headers["Retry-After"] == str(int((FAILURE_WINDOW - timedelta(seconds=150)).total_seconds()))
    assert client.get("/settings/").status_code == 302
    assert sign_in(client.application.test_client(), WOO_USER).status_code == 302  # another account is not blocked
    clock.advance(seconds=FAILURE_WINDOW.total_seconds() - 150)
    assert sign_in(client, SHOPIFY_USER).status_code == 302


def test_failures_from_one_address_block_it_for_every_email(app, users, clock):
    client = app.test_client()
    for n in range(MAX_FAILURES_PER_IP):
        assert sign_in(client, f"guess{n}@nowhere.example", "guessing").status_code == 200
    assert sign_in(client, SHOPIFY_USER).status_code == 429
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_in(other, SHOPIFY_USER).status_code == 302


def test_a_good_login_forgets_the_emails_earlier_failures(client, users):
    for _ in range(MAX_FAILURES_PER_EMAIL - 1):
        sign_in(client, SHOPIFY_USER, "not the password")
    assert sign_in(client, SHOPIFY_USER).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/settings/")})
    for _ in range(MAX_FAILURES_PER_EMAIL - 1):
        assert sign_in(client, SHOPIFY_USER, "not the password").status_code == 200
    assert sign_in(client, SHOPIFY_USER).status_code == 302


# ---------------------------------------------------------------- one-time login links


def _link(container, email=SHOPIFY_USER, minutes=15, key=None) -> str:
    store = container.open_store()
    try:
        return "/login/link/" + container.users.issue_link(store, email, key or container.settings.web_secret_key,
                                                           timedelta(minutes=minutes))
    finally:
        store.close()


def test_a_login_link_signs_in_once(client, container, users):
    link = _link(container)
    page = client.get(link)
    assert page.status_code == 200 and f"Continue as {SHOPIFY_USER}" in _text(page)
    assert client.get("/settings/").status_code == 302  # opening it (a link preview) signs nobody in
    response = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/settings/").status_code == 200
    again = client.application.test_client()
    assert again.get(link).status_code == 404
    assert "unknown, has expired or was used already" in _text(again.get(link))


def test_a_login_link_expires(client, container, users, clock):
    link = _link(container, minutes=5)
    token = csrf_token(client, link)
    clock.advance(minutes=5)
    assert client.post(link, data={"csrf_token": token}).status_code == 404
    assert client.get("/settings/").status_code == 302


@pytest.mark.parametrize("spoil", ["tampered", "other_key", "garbage"])
def test_a_forged_login_link_is_refused(client, container, users, spoil):
    link = _link(container)
    if spoil == "tampered":
        link = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    elif spoil == "other_key":
        link = _link(container, key="another-deployment-key-" + "x" * 20)
    else:
        link = "/login/link/not-a-token"
    assert client.get(link).status_code == 404
    assert client.post(link, data={"csrf_token": csrf_token(client)}).status_code == 404
    assert client.get("/settings/").status_code == 302


# ---------------------------------------------------------------- secret key


def test_the_pages_refuse_to_start_without_a_secret_key(config_dict, clock):
    config_dict["web"].pop("secret_key")
    with pytest.raises(ConfigError, match=r"\[web\] secret_key \(or CONNECTOR_WEB_SECRET_KEY\) must be set"):
        create_app(build(settings_from_dict(config_dict), clock=clock), start_worker=False)
    config_dict["web"]["secret_key"] = "short"
    with pytest.raises(ConfigError, match="at least 32"):
        create_app(build(settings_from_dict(config_dict), clock=clock), start_worker=False)
    env_key = "k" * 32
    app = create_app(build(settings_from_dict(config_dict, env={"CONNECTOR_WEB_SECRET_KEY": env_key}), clock=clock),
                     start_worker=False)
    assert app.config["SECRET_KEY"] == env_key


def test_serve_without_a_secret_key_says_so_in_one_line(tmp_path, config_dict):
    from connector.cli import main

    config_dict["web"].pop("secret_key")
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(path), "serve", "--port", "0"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "secret_key" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- errors, headers, escaping


def test_pages_get_html_errors_and_webhooks_and_the_api_keep_json(client, users):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html" and "Page not found" in _text(page)
    assert client.get("/webhooks/shopify").is_json  # 405
    assert client.get("/webhooks/nope").get_json()["error"] == "not_found"
    assert client.get("/api/availability").get_json()["error"] == "bad_request"
    assert client.get("/api/nope").is_json
    csrf = client.post("/login", data={"email": SHOPIFY_USER, "password": PASSWORD})
    assert csrf.status_code == 400 and "This form has expired or did not come from this site." in _text(csrf)


def test_a_crash_on_a_page_is_a_plain_html_500_without_details(container):
    app = create_app(container, start_worker=False)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret inner workings")

    response = app.test_client().get("/boom")
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "Something went wrong" in _text(response) and "secret inner workings" not in _text(response)


def _pages(client):
    """Every kind of HTML answer: a form, a signed-in page, a 404, a 429."""
    yield "login", client.get("/login")
    yield "csrf 400", client.post("/login", data={})
    sign_in(client, SHOPIFY_USER)
    yield "status", client.get("/settings/")
    yield "node", client.get("/settings/nodes/central")
    yield "404", client.get("/settings/nodes/nope")


def test_every_html_answer_carries_the_security_headers(client, users):
    for name, response in _pages(client):
        assert response.mimetype == "text/html", name
        headers = response.headers
        assert headers["Content-Security-Policy"].startswith("default-src 'self'"), name
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["Referrer-Policy"] == "same-origin", name
        assert headers["Cache-Control"] == "no-store", name


HOSTILE = '<script>alert("x")</script>'


def test_names_from_the_config_and_users_are_escaped(config_dict, clock):
    config_dict["shops"][SHOPIFY_SHOP]["nodes"][0]["name"] = HOSTILE
    config_dict["shops"][SHOPIFY_SHOP]["shop_domain"] = "candles.myshopify.com"
    container = initialised(build(settings_from_dict(config_dict), clock=clock), clock)
    email = '"<img/src=x/onerror=alert(1)>"@x.example'
    add_user(container, email, SHOPIFY_SHOP)
    client = create_app(container, start_worker=False).test_client()
    assert sign_in(client, email).status_code == 302
    for path in ("/settings/", "/settings/nodes/central"):
        text = _text(client.get(path))
        assert HOSTILE not in text and "<img/src=x" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
        assert "&lt;img/src=x/onerror=alert(1)&gt;" in text


def test_deleting_a_shops_data_removes_its_users_and_their_links(client, container, users):
    link = _link(container)
    store = container.open_store()
    try:
        counts = store.delete_shop_data(SHOPIFY_SHOP)
    finally:
        store.close()
    assert counts["users"] == 1 and counts["login_links"] == 1
    assert sign_in(client, SHOPIFY_USER).status_code == 200
    assert client.get(link).status_code == 404
    assert sign_in(client, WOO_USER).status_code == 302
