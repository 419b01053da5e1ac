"""Secrets at rest: shop documents keep every secret value encrypted.

``SecretBox`` wraps cryptography's MultiFernet (AES-128-CBC + HMAC-SHA256, with a
timestamp): the first key encrypts, every key decrypts, so a key is rotated by putting
the new one first, running ``connector secrets rotate`` (re-encrypts every stored
secret with it) and then dropping the old one. Keys come from the environment
(``CONNECTOR_ENCRYPTION_KEYS``, comma-separated) or the deployment's
``[encryption] keys_file``; never from the database they protect.

A stored secret is the string ``fernet:<token>``, so a document read back without
the key still shows which values are secrets and that they are set.
"""
from __future__ import annotations

from collections.abc import Mapping  # not typing's alias: its isinstance is several times slower
from typing import Any, Callable, Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "fernet:"
KEYS_ENV = "CONNECTOR_ENCRYPTION_KEYS"


class KeyMissing(Exception):
    """No encryption key configured, or one that is not a Fernet key."""


class SecretUnreadable(Exception):
    """A stored secret none of the configured keys decrypts (the key that wrote it is gone)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, keys: Iterable[str]):
        keys = [key.strip() for key in keys if key and key.strip()]
        if not keys:
            raise KeyMissing(f"no encryption key: set {KEYS_ENV} (comma-separated Fernet keys, newest first; make "
                             "one with `connector secrets new-key`) or [encryption] keys_file")
        fernets = []
        for position, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                # the key itself is never echoed
                raise KeyMissing(f"{KEYS_ENV}: key {position} is not a Fernet key (32 url-safe base64-encoded "
                                 "bytes)") from None
        self._fernet = MultiFernet(fernets)

    def encrypt(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("a stored secret cannot be decrypted with any key in "
                                   f"{KEYS_ENV} (was the key that wrote it removed?)") from None

    def rotate(self, stored: str) -> str:
        """``stored`` encrypted with the first key (a plain value gets encrypted)."""
        if not stored.startswith(PREFIX):
            return self.encrypt(stored)
        try:
            return PREFIX + self._fernet.rotate(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(f"a stored secret cannot be decrypted with any key in {KEYS_ENV}") from None


def map_secrets(document: Any, secret_keys: frozenset[str], change: Callable[[str], str]) -> Any:
    """A copy of ``document`` with ``change`` applied to every non-empty string under a
    key named in ``secret_keys`` (at any depth; lists walked)."""
    if isinstance(document, Mapping):
        return {key: (change(value) if key in secret_keys and isinstance(value, str) and value
                      else map_secrets(value, secret_keys, change))
                for key, value in document.items()}
    if isinstance(document, list):
        return [map_secrets(item, secret_keys, change) for item in document]
    return document
