"""/settings/alerts through the Flask client, posted as a browser posts it: the channels
saved (secrets write-only and encrypted), problems beside their field, a stale form refused,
the kinds switched off, the JSON address removed, and the test button's sentence for each
channel (a real local SMTP server and a local receiver); and the CLI's alerts commands."""
from __future__ import annotations

import json
import re
from html import unescape

import pytest

from werkzeug.datastructures import MultiDict

from connector.shop_store import ShopConfigStore
from tests.conftest import SHOPIFY_SHOP
from tests.local_smtp import LocalSmtp
from tests.loopback import recording_server
from tests.web import SHOPIFY_USER, add_user, form_data, post_form, sign_in

HOOK_SECRET = "hook-sign-secret-0042"


@pytest.fixture
def smtp():
    with LocalSmtp() as server:
        yield server


@pytest.fixture
def receiver():
    with recording_server() as server:
        yield server


@pytest.fixture
def config_dict(config_dict, smtp):
    config_dict["email"] = smtp.config()
    return config_dict


@pytest.fixture
def signed_in(client, container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    sign_in(client, SHOPIFY_USER)
    return client


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _error(page: str, path: str) -> str | None:
    field_id = "f-" + path.replace(".", "-").replace("[", "-").replace("]", "")
    match = re.search(rf'id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', page)
    return unescape(match.group(1)) if match else None


def save(client, changes: dict, **options):
    """Post the section's form (the page's first: the test button has its own) with ``changes``."""
    return post_form(client, "/settings/alerts", changes, action="/settings/alerts", **options)


def _alerts(container, store) -> dict:
    return container.shop_config.document(store, SHOPIFY_SHOP, reveal=True)[0].get("alerts", {})


def test_the_section_is_in_the_settings_navigation_before_history(signed_in):
    page = _text(signed_in.get("/settings/alerts"))
    nav = re.findall(r'<a href="/settings/([a-z-]*)"', page)
    assert nav.index("alerts") == nav.index("history") - 1
    assert 'aria-current="page"' in page and "Send a test message" in page
    # Every kind is on until the creator says otherwise.
    assert page.count('name="alerts.kinds"') == 6 and page.count(" checked>") >= 6


def test_saving_the_channels_keeps_the_secrets_write_only_and_encrypted(signed_in, container, store, receiver):
    response = save(signed_in, {
        "alerts.emails": "maker@candles.example, studio@candles.example",
        "alerts.post_url": receiver.url + "/hook", "alerts.signing_secret": HOOK_SECRET,
        "alerts.kinds": ["exceptions", "approvals"], "alerts.digest_at": "07:30", "alerts.rate_limit_per_hour": "5"})
    assert response.status_code == 302, _text(response)
    alerts = _alerts(container, store)
    assert alerts == {"emails": ["maker@candles.example", "studio@candles.example"], "post_url": receiver.url + "/hook",
                      "signing_secret": HOOK_SECRET, "kinds": ["exceptions", "approvals"], "digest_at": "07:30",
                      "rate_limit_per_hour": 5}
    stored = json.dumps(ShopConfigStore(store).get(SHOPIFY_SHOP)["document"])
    assert HOOK_SECRET not in stored and "/hook" not in stored  # encrypted at rest
    page = _text(signed_in.get("/settings/alerts"))
    assert HOOK_SECRET not in page and receiver.url not in page
    assert "Saved — type a new value to replace it" in page
    # Saved again without typing them: the secrets stay.
    assert save(signed_in, {"alerts.kinds": ["syncs"]}).status_code == 302
    assert _alerts(container, store)["signing_secret"] == HOOK_SECRET
    assert _alerts(container, store)["kinds"] == ["syncs"]
    [change] = [row for row in container.shop_config.history(store, SHOPIFY_SHOP)
                if "alerts.kinds" in row["diff"]][-1:]
    assert change["actor"] == f"web:{SHOPIFY_USER}"


def test_no_box_ticked_switches_every_alert_off(signed_in, container, store):
    response = save(signed_in, {"alerts.emails": "maker@candles.example"},
                         drop=("alerts.kinds",))
    assert response.status_code == 302
    assert _alerts(container, store)["kinds"] == []
    assert ' checked>' not in re.search(r'<fieldset id="f-alerts-kinds".*?</fieldset>',
                                        _text(signed_in.get("/settings/alerts")), re.S).group(0)


def test_problems_are_shown_beside_their_field_and_nothing_is_saved(signed_in, container, store):
    _, version = container.shop_config.document(store, SHOPIFY_SHOP)
    page = _text(save(signed_in, {
        "alerts.emails": "maker@candles.example, not-an-address",
        "alerts.post_url": "http://hooks.example.com/services/T1/tok3n-in-the-url"}))
    assert "Nothing was saved" in page
    assert "'not-an-address' is not an email address" in (_error(page, "alerts.emails") or ""), page
    assert "must be an https:// address" in (_error(page, "alerts.post_url") or "")
    assert "tok3n-in-the-url" not in page
    zero = _text(save(signed_in, {"alerts.rate_limit_per_hour": "0"}))
    assert "greater than or equal to 1" in (_error(zero, "alerts.rate_limit_per_hour") or "")
    assert container.shop_config.document(store, SHOPIFY_SHOP)[1] == version
    typed = _text(save(signed_in, {"alerts.digest_at": "25:00"}))
    assert "must be a time of day like 14:30" in (_error(typed, "alerts.digest_at") or "")


def test_a_stale_form_is_refused(signed_in, container, store):
    page = signed_in.get("/settings/alerts").get_data(as_text=True)
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    document["alerts"] = {"emails": ["other@candles.example"]}
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "someone else")
    fields = [(k, v) for k, v in form_data(page, "/settings/alerts") if k != "alerts.emails"] + [
        ("alerts.emails", "maker@candles.example")]
    answer = _text(signed_in.post("/settings/alerts", data=MultiDict(fields)))
    assert "Someone saved this shop's settings after you opened this page" in answer
    assert _alerts(container, store)["emails"] == ["other@candles.example"]


def test_the_json_address_can_be_removed_with_its_secret(signed_in, container, store, receiver):
    save(signed_in, {"alerts.post_url": receiver.url + "/hook",
                                              "alerts.signing_secret": HOOK_SECRET})
    assert "Stop sending to the saved JSON address" in _text(signed_in.get("/settings/alerts"))
    assert save(signed_in, {"clear_post_url": "on"}).status_code == 302
    alerts = _alerts(container, store)
    assert "post_url" not in alerts and "signing_secret" not in alerts


def test_the_test_button_sends_on_each_channel_and_says_how_it_went(signed_in, container, store, smtp, receiver):
    save(signed_in, {"alerts.emails": "maker@candles.example",
                                              "alerts.post_url": receiver.url + "/hook",
                                              "alerts.signing_secret": HOOK_SECRET})
    page = _text(post_form(signed_in, "/settings/alerts", action="/settings/alerts/test", button=None))
    assert "Email: sent." in page and "JSON POST: sent." in page
    [mail] = smtp.messages
    assert mail.message["Subject"] == "[aurora-candles.myshopify.com] Test message"
    assert mail.recipients == ["maker@candles.example"]
    assert len(receiver.received) == 1 and "X-Connector-Signature" in receiver.received[0]["headers"]
    [event] = store.events(SHOPIFY_SHOP, "alerts.test")
    assert event["detail"]["by"] == f"web:{SHOPIFY_USER}"


def test_the_test_button_says_what_failed_in_a_sentence_without_secrets(signed_in, container, store, smtp):
    save(signed_in, {"alerts.emails": "refused@candles.example",
                                              "alerts.post_url": "http://127.0.0.1:9/hook-tok3n",
                                              "alerts.signing_secret": HOOK_SECRET})
    page = _text(post_form(signed_in, "/settings/alerts", action="/settings/alerts/test", button=None))
    assert f"Email: not sent, the mail server 127.0.0.1:{smtp.port} refused every address: refused@candles.example." \
        in page
    assert "JSON POST: not sent, the address for alerts (127.0.0.1) could not be reached." in page
    assert "hook-tok3n" not in page and HOOK_SECRET not in page


def test_the_test_button_without_a_channel_asks_for_one(signed_in):
    page = _text(post_form(signed_in, "/settings/alerts", action="/settings/alerts/test", button=None))
    assert "Set an email address or an address for JSON messages first" in page


def test_the_last_messages_show_how_each_went(signed_in, container, store):
    save(signed_in, {"alerts.emails": "refused@candles.example"})
    container.alerts.digest(store, SHOPIFY_SHOP)
    page = _text(signed_in.get("/settings/alerts"))
    assert "Your day: 2026-11-21" in page
    assert "waiting to be sent, tried 1 time, next try" in page and "refused every address" in page


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def with_channels(container, store, receiver):
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    document["alerts"] = {"emails": ["maker@candles.example"], "post_url": receiver.url + "/hook",
                          "signing_secret": HOOK_SECRET}
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")


def test_cli_test_digest_and_send(cli, with_channels, smtp, receiver, store):
    result = cli("alerts", "test", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 0, result.output
    assert "Email: sent." in result.output and "JSON POST: sent." in result.output
    preview = cli("alerts", "digest", "--shop", SHOPIFY_SHOP, "--preview")
    assert preview.exit_code == 0 and "Subject: [aurora-candles.myshopify.com] Your day: " in preview.output
    day = preview.output.split("Your day: ")[1].split("\n")[0]  # the CLI runs on today's clock
    assert len(smtp.messages) == 1  # the preview sent nothing
    sent = cli("alerts", "digest", "--shop", SHOPIFY_SHOP)
    assert sent.exit_code == 0, sent.output
    assert smtp.messages[-1].message["Subject"].endswith(f"Your day: {day}")
    result = cli("alerts", "send")
    assert result.exit_code == 0 and result.output.startswith("alerts: ")
    assert HOOK_SECRET not in result.output + preview.output + sent.output


def test_cli_errors_are_one_line_and_exit_non_zero(cli, store, container):
    result = cli("alerts", "test", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "Set an email address" in result.output
    unknown = cli("alerts", "digest", "--shop", "nope")
    assert unknown.exit_code == 2 and "unknown shop 'nope'" in unknown.output


def test_cli_send_fails_with_exit_1_when_a_message_failed(cli, container, store):
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    document["alerts"] = {"post_url": "http://127.0.0.1:9/hook-tok3n"}
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    result = cli("alerts", "digest", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 1 and "post: pending (the address for alerts (127.0.0.1) could not be reached)" \
        in result.output
    assert "hook-tok3n" not in result.output
