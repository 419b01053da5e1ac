"""Alerts and digests by email, through the deployment's mail server (SMTP, ``[email]``).

One connection per message, with the configured timeout on every socket operation;
STARTTLS (port 587) or TLS from the start (465) with the system's certificate checks;
plain only to a server on this machine (the config refuses it elsewhere). A message is
plain text, readable as it is, with From, To, Subject, Date and a Message-ID made from
the message's key, so a retry after an unknown outcome carries the same Message-ID.
Errors become one sentence without the password (``DeliveryFailed``).
"""
from __future__ import annotations

import email.utils
import hashlib
import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import Callable

from adapters.http import Redactor
from connector.domain.alerts import AlertMessage, DeliveryFailed, Destination

log = logging.getLogger("connector.alerts")


class SmtpNotifier:
    channel = "email"

    def __init__(self, *, host: str, port: int, security: str, username: str, password: str, from_address: str,
                 timeout: float, tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context):
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.from_address = from_address
        self.timeout = timeout
        self._tls_context = tls_context
        self._redact = Redactor((password,))

    def __repr__(self) -> str:  # never the password
        return f"SmtpNotifier({self.host}:{self.port}, {self.security})"

    def compose(self, message: AlertMessage, to: Destination) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = ", ".join(to.addresses)
        mail["Subject"] = " ".join(message.subject.split())  # a product title with a line break stays one header
        mail["Date"] = email.utils.format_datetime(message.created_at)
        domain = self.from_address.rpartition("@")[2]
        mail["Message-ID"] = f"<{hashlib.sha256(message.key.encode()).hexdigest()[:32]}@{domain}>"
        mail.set_content(message.text)
        return mail

    def deliver(self, message: AlertMessage, to: Destination) -> None:
        if not to.addresses:
            raise DeliveryFailed("no email address is set for alerts")
        mail = self.compose(message, to)
        where = f"the mail server {self.host}:{self.port}"
        try:
            if self.security == "ssl":
                connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._tls_context())
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with connection:
                if self.security == "starttls":
                    connection.starttls(context=self._tls_context())
                if self.username:
                    connection.login(self.username, self._password)
                refused = connection.send_message(mail)
        except smtplib.SMTPNotSupportedError:
            raise DeliveryFailed(f"{where} does not offer STARTTLS or login; check [email] security") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"{where} refused the login (code {exc.smtp_code}); check [email] username and "
                                 "password") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"{where} refused every address: {', '.join(sorted(exc.recipients))}") from None
        except smtplib.SMTPResponseException as exc:
            said = self._redact(_text(exc.smtp_error))[:200]
            raise DeliveryFailed(f"{where} answered {exc.smtp_code}: {said}") from None
        except (socket.timeout, TimeoutError):
            raise DeliveryFailed(f"{where} did not answer within {self.timeout:g} seconds") from None
        except ssl.SSLError as exc:
            raise DeliveryFailed(f"the secure connection to {where} failed ({exc.reason or type(exc).__name__})") from None
        except smtplib.SMTPServerDisconnected:
            raise DeliveryFailed(f"{where} closed the connection before the message was accepted") from None
        except OSError as exc:  # refused, unreachable, unknown host
            raise DeliveryFailed(f"could not reach {where} ({exc.strerror or type(exc).__name__})") from None
        if refused:  # sent to the others; resending would repeat it to them
            log.warning("alert %s: the mail server refused %s", message.key, ", ".join(sorted(refused)))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
