"""Alerts and digests as a JSON POST to a creator's address (a chat channel's incoming
webhook, or their own endpoint).

One attempt per delivery, with a timeout (the shared HTTP client, ``max_attempts=1``):
a failure goes back to the outbox, which tries again at a later run with backoff. Every
attempt of a message sends the same body with the same ``Idempotency-Key`` (the message
key), so a receiver that saw the first one can drop the repeat. With a signing secret the
body is signed: ``X-Connector-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

The address usually carries its own token, so it is a credential: logs and errors name no
path, and each sentence passes through a Redactor holding the address, its parts and the secret.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import threading
from collections import Counter
from typing import Iterator
from urllib.parse import urlsplit

from adapters.http import HttpClient, Redactor, error_status
from connector.domain.alerts import AlertMessage, DeliveryFailed, Destination, json_payload
from connector.domain.model import ProviderError, ProviderOutcomeUnknown

SIGNATURE_HEADER = "X-Connector-Signature"
DEFAULT_TIMEOUT = (3.05, 10.0)


class _MaskAddresses(logging.Filter):
    """urllib3 logs every request's path at DEBUG: while a POST to a creator's address is
    under way, that address is masked in those lines."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._hidden: Counter[str] = Counter()

    @contextlib.contextmanager
    def hiding(self, *secrets: str) -> Iterator[None]:
        shown = [secret for secret in secrets if secret and len(secret) >= 4]
        with self._lock:
            self._hidden.update(shown)
        try:
            yield
        finally:
            with self._lock:
                self._hidden.subtract(shown)
                self._hidden = +self._hidden  # drop the ones no POST uses any more

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            hidden = list(self._hidden)
        if hidden:
            text = record.getMessage()
            masked = Redactor(hidden)(text)
            if masked != text:
                record.msg, record.args = masked, ()
        return True


_MASK = _MaskAddresses()


def signature(secret: str, body: bytes) -> str:
    """The header value a receiver recomputes to check a POST came from us, unchanged."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookPoster:
    channel = "post"

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT):
        self.timeout = timeout
        logging.getLogger("urllib3.connectionpool").addFilter(_MASK)  # once: a filter is added only once

    def deliver(self, message: AlertMessage, to: Destination) -> None:
        if not to.url:
            raise DeliveryFailed("no address is set for alerts sent as JSON")
        body = json_payload(message)
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.key}
        if to.signing_secret:
            headers[SIGNATURE_HEADER] = signature(to.signing_secret, body)
        parts = urlsplit(to.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        redact = Redactor((to.url, parts.path, parts.query, to.signing_secret))
        try:
            client = HttpClient(base_url=f"{parts.scheme}://{parts.netloc}", timeout=self.timeout, max_attempts=1,
                                provider="alert address", secrets=(to.url, parts.path, parts.query, to.signing_secret),
                                hide_path=True)
        except ValueError:
            raise DeliveryFailed("the address for alerts sent as JSON is not a valid http(s) address") from None
        try:
            with _MASK.hiding(to.url, parts.path, parts.query):
                client.request("POST", target, data=body, headers=headers, retry=False)
        except ProviderOutcomeUnknown as exc:
            status = error_status(exc)
            what = f"answered HTTP {status}" if status else "did not answer in time or dropped the connection"
            raise DeliveryFailed(f"the address for alerts ({parts.hostname}) {what}; it is sent again later "
                                 "with the same Idempotency-Key") from None
        except ProviderError as exc:
            status = error_status(exc)
            excerpt = redact(getattr(exc, "body_excerpt", None) or "")[:120]
            what = (f"answered HTTP {status}" + (f": {excerpt}" if excerpt else "")) if status else \
                "could not be reached"
            raise DeliveryFailed(f"the address for alerts ({parts.hostname}) {what}") from None
        finally:
            client.close()
