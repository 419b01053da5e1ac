"""What the browser tests share: Debian's Chromium driven by Playwright (never a downloaded
browser), the real app served on 127.0.0.1 over a temporary SQLite database (one per test
module), a page per test, screenshots under test-artifacts/screenshots/, signing in."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from connector import sandbox
from connector.bootstrap import build, utc_now
from connector.config import settings_from_dict
from connector.web import create_app
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET
from tests.web import PASSWORD, add_user

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
USER = "maker@candles.example"
PUBLIC_URL = "https://connector.example.com"


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        message = (f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), "
                   "as README command 2 does; the browser tests never download a browser")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def deployment_extra() -> dict:
    """Deployment tables a test module adds to the served config (e.g. [email] for a local
    mail server): override it in the module."""
    return {}


@pytest.fixture(scope="module")
def served(tmp_path_factory, deployment_extra):
    """The container behind ``server`` (to set up or check what the pages change)."""
    now = utc_now()
    tmp = tmp_path_factory.mktemp("browser")
    config = sandbox.demo_config(now, str(tmp / "t.db"), SHOPIFY_SECRET, WOO_SECRET)
    config["web"]["public_url"] = PUBLIC_URL  # only written into links to stores: nothing is fetched from it
    config.update(deployment_extra)
    container = build(settings_from_dict(config))
    container.init_database()
    store = container.open_store()
    try:
        sandbox.seed_stock(store, now)
    finally:
        store.close()
    add_user(container, USER, SHOPIFY_SHOP)
    for n in range(3):  # one account per test that fails logins, so their counts stay apart
        add_user(container, f"typo{n}@candles.example", SHOPIFY_SHOP)
    return container


@pytest.fixture(scope="module")
def server(served):
    """The real app (no inbox worker) on a random port, with the sandbox shops and one user."""
    httpd = make_server("127.0.0.1", 0, create_app(served, start_worker=False), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, server, email=USER, password=PASSWORD, next: str | None = "/settings/") -> None:
    """Sign in on the login page; it then opens ``next`` (where most tests start; None: the
    home page, where signing in lands by itself)."""
    page.goto(f"{server}/login" + (f"?next={next}" if next else ""))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def proposed_transfer(served, **fields) -> int:
    """A transfer of the Shopify shop waiting for approval, in the served database; ``fields``
    as ``Store.add_transfer`` takes them (sku, nodes, units, cost, lead days, the reason)."""
    store = served.open_store()
    try:
        with store.write():
            return store.add_transfer(SHOPIFY_SHOP, status="proposed", emergency=False, now=utc_now(), **fields)
    finally:
        store.close()
