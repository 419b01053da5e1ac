"""A real SMTP server on 127.0.0.1 for the alert tests (aiosmtpd, in its own thread).

It keeps every message it accepted (``messages``: parsed ``email.message.Message``s with
the envelope's recipients), can ask for a login (``users``), and refuses recipients whose
address starts with "refused" (550), as a mail server refuses an unknown mailbox.
"""
from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    message: email.message.EmailMessage


class _Handler:
    def __init__(self, server: "LocalSmtp"):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalSmtp:
    """``with LocalSmtp() as smtp:`` a server at ``smtp.port``; ``users`` {name: password}
    makes it offer AUTH (over plain SMTP: it is on this machine) and check the login."""

    def __init__(self, users: dict[str, str] | None = None):
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.users = users
        self.port = _free_port()
        options = {}
        if users is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and self.users.get(auth_data.login.decode()) == \
            auth_data.password.decode()
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 235 or 535 itself

    def __enter__(self) -> "LocalSmtp":
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()

    def config(self, **extra) -> dict:
        """The ``[email]`` table for this server."""
        return {"host": "127.0.0.1", "port": self.port, "security": "none", "from_address": "alerts@connector.example",
                "timeout_seconds": 5, **extra}
