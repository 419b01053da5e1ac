"""The alert channels against real servers on 127.0.0.1: a local SMTP server (aiosmtpd)
and a local HTTP receiver that checks the signature. Each failure is one sentence without
the mail password, the POST address or its signing secret, in errors and in logs."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone

import pytest

from adapters.email_smtp import SmtpNotifier
from adapters.webhook_post import SIGNATURE_HEADER, WebhookPoster
from connector.domain.alerts import AlertMessage, DeliveryFailed, Destination
from tests.local_smtp import LocalSmtp
from tests.loopback import cut_answer, recording_server

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
PASSWORD = "smtp-pa55-do-not-show"
SIGNING = "sign-0f-the-creator-42"
TOKEN_PATH = "/services/T0123/B0456/hook-tok3n-xyz"
MESSAGE = AlertMessage("aurora:sync_failing_east:20261122T150000", "aurora", "alert",
                       "[aurora.myshopify.com] East sync failing", "East's stock sync failed.\n\nWhat to do: ...\n",
                       NOW, "https://connector.example.com/actions")


def smtp_notifier(server: LocalSmtp, **overrides) -> SmtpNotifier:
    options = {"host": "127.0.0.1", "port": server.port, "security": "none", "username": "", "password": "",
               "from_address": "alerts@connector.example", "timeout": 5, **overrides}
    return SmtpNotifier(**options)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, SIGNING, TOKEN_PATH, "hook-tok3n-xyz"):
            assert secret not in text, text


# ---------------------------------------------------------------- email


def test_an_alert_arrives_as_a_readable_plain_text_email():
    with LocalSmtp() as server:
        smtp_notifier(server).deliver(MESSAGE, Destination("email", ("maker@candles.example", "studio@candles.example")))
        smtp_notifier(server).deliver(MESSAGE, Destination("email", ("maker@candles.example",)))
    first, again = server.messages
    assert first.mail_from == "alerts@connector.example"
    assert first.recipients == ["maker@candles.example", "studio@candles.example"]
    mail = first.message
    assert mail["From"] == "alerts@connector.example"
    assert mail["To"] == "maker@candles.example, studio@candles.example"
    assert mail["Subject"] == "[aurora.myshopify.com] East sync failing"
    assert mail["Date"] == "Sun, 22 Nov 2026 15:00:00 +0000"
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().replace("\r\n", "\n") == MESSAGE.text  # lines end in CRLF on the wire
    # A repeat of the same message (a retry) carries the same Message-ID, so it can be dropped.
    assert mail["Message-ID"].endswith("@connector.example>") and again.message["Message-ID"] == mail["Message-ID"]


def test_a_subject_with_a_line_break_from_order_data_stays_one_header():
    broken = AlertMessage("k", "aurora", "alert", "Order #1: 2 × Fig\r\nBcc: x@evil.example candle", "Text\n", NOW)
    with LocalSmtp() as server:
        smtp_notifier(server).deliver(broken, Destination("email", ("m@c.example",)))
    [received] = server.messages
    assert received.recipients == ["m@c.example"] and received.message["Bcc"] is None
    assert received.message["Subject"] == "Order #1: 2 × Fig Bcc: x@evil.example candle"


def test_a_login_is_used_when_set_and_a_refused_one_is_said_without_the_password(caplog):
    caplog.set_level(logging.DEBUG)
    with LocalSmtp(users={"alerts": PASSWORD}) as server:
        smtp_notifier(server, username="alerts", password=PASSWORD).deliver(MESSAGE, Destination("email", ("m@c.example",)))
        with pytest.raises(DeliveryFailed) as refused:
            smtp_notifier(server, username="alerts", password=PASSWORD + "-wrong").deliver(
                MESSAGE, Destination("email", ("m@c.example",)))
    assert len(server.messages) == 1
    assert "refused the login (code 535)" in str(refused.value)
    assert_no_secret(str(refused.value), caplog.text)


def test_refused_addresses_an_unreachable_server_and_a_missing_starttls_are_each_one_sentence():
    with LocalSmtp() as server:
        with pytest.raises(DeliveryFailed) as refused:
            smtp_notifier(server).deliver(MESSAGE, Destination("email", ("refused@candles.example",)))
        with pytest.raises(DeliveryFailed) as plain_only:
            smtp_notifier(server, security="starttls").deliver(MESSAGE, Destination("email", ("m@c.example",)))
        port = server.port
    assert str(refused.value) == (f"the mail server 127.0.0.1:{port} refused every address: "
                                  "refused@candles.example")
    assert "does not offer STARTTLS" in str(plain_only.value)
    with pytest.raises(DeliveryFailed) as down:  # the server is gone
        smtp_notifier(server, port=port).deliver(MESSAGE, Destination("email", ("m@c.example",)))
    assert str(down.value).startswith(f"could not reach the mail server 127.0.0.1:{port}")


# ---------------------------------------------------------------- JSON POST


def test_a_post_is_signed_so_the_receiver_can_check_it_and_carries_an_idempotency_key():
    server = recording_server()
    received = server.received
    with server:
        to = Destination("post", url=server.url + TOKEN_PATH, signing_secret=SIGNING)
        WebhookPoster().deliver(MESSAGE, to)
        WebhookPoster().deliver(MESSAGE, to)  # a repeat: the same bytes, signature and key
    first, again = received
    assert first["path"] == TOKEN_PATH
    expected = "sha256=" + hmac.new(SIGNING.encode(), first["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(first["headers"][SIGNATURE_HEADER], expected)
    assert first["headers"]["Idempotency-Key"] == MESSAGE.key
    assert first["headers"]["Content-Type"] == "application/json"
    assert json.loads(first["body"]) == {"id": MESSAGE.key, "shop": "aurora", "type": "alert",
                                         "title": MESSAGE.subject, "text": MESSAGE.text, "url": MESSAGE.link,
                                         "created_at": NOW.isoformat()}
    assert again["body"] == first["body"] and again["headers"][SIGNATURE_HEADER] == expected


def test_without_a_signing_secret_nothing_is_signed():
    server = recording_server()
    received = server.received
    with server:
        WebhookPoster().deliver(MESSAGE, Destination("post", url=server.url + "/hook"))
    assert SIGNATURE_HEADER not in received[0]["headers"]


def test_a_refused_post_is_tried_once_and_said_without_the_address_or_the_secret(caplog):
    caplog.set_level(logging.DEBUG)
    server = recording_server(lambda request: (500, {"error": f"bad hook {TOKEN_PATH}"}))
    received = server.received
    with server:
        with pytest.raises(DeliveryFailed) as failed:
            WebhookPoster().deliver(MESSAGE, Destination("post", url=server.url + TOKEN_PATH, signing_secret=SIGNING))
    assert len(received) == 1  # never retried inside one delivery: the outbox retries later
    assert "(127.0.0.1) answered HTTP 500" in str(failed.value)
    assert_no_secret(str(failed.value), caplog.text)


def test_an_answer_cut_off_is_an_unknown_outcome_sent_again_later_with_the_same_key(caplog):
    caplog.set_level(logging.DEBUG)

    def cut(request):
        cut_answer(request.connection, "closed-before-status", b"{}")
        return None

    server = recording_server(cut)
    received = server.received
    with server:
        with pytest.raises(DeliveryFailed) as failed:
            WebhookPoster(timeout=(1, 2)).deliver(MESSAGE, Destination("post", url=server.url + TOKEN_PATH))
    assert len(received) == 1
    assert "sent again later with the same Idempotency-Key" in str(failed.value)
    assert_no_secret(str(failed.value), caplog.text)


def test_nothing_listening_is_could_not_be_reached():
    server = recording_server()
    with server:
        url = server.url
    with pytest.raises(DeliveryFailed) as failed:
        WebhookPoster(timeout=(1, 2)).deliver(MESSAGE, Destination("post", url=url + TOKEN_PATH))
    assert str(failed.value) == "the address for alerts (127.0.0.1) could not be reached"
