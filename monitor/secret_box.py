"""Receiver secrets at rest: signing secrets and header values (credentials, mostly) are stored
encrypted, so that a database dump, a backup or a read-only replica does not hand out what signs
the retraining webhooks or opens the receivers.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under keys from the settings:
``MONITOR_SECRET_KEYS`` is a comma-separated list of Fernet keys; the first encrypts, every one
decrypts, so a key is rotated by putting a new one first, running ``monitor secrets rotate``
(which re-encrypts every stored secret with it), then dropping the old one. Unset, a key is
generated once into ``MONITOR_DATA_DIR/secret.key`` (mode 0600): enough for one host; processes on
several hosts (API, scheduler) must share MONITOR_SECRET_KEYS. A value written before encryption
(no ``enc:v1:`` prefix) is read as it is and encrypted by the next rotation.

The same keys hash the data subjects records name (``subject_hash``): HMAC-SHA256 under a key
derived from each (HKDF), so a stored hash cannot be tied back to a person without the keys, and
an erasure finds a subject's records under every configured key (``subject_hashes``): the keys
rotate as the secrets' do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from monitor.config import Settings

PREFIX = "enc:v1:"
KEY_FILE = "secret.key"


class SecretUnavailable(Exception):
    """A stored secret none of the configured keys decrypts."""


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        # one HMAC key per secret key, derived for this use only (never the encryption key itself)
        self._subject_keys = [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"model-monitor data subject v1").derive(
                base64.urlsafe_b64decode(k)
            )
            for k in keys
        ]
        self._value_keys = [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"model-monitor personal data v1").derive(
                base64.urlsafe_b64decode(k)
            )
            for k in keys
        ]

    def value_hash(self, value: str) -> str:
        """The keyed hash a value declared personal is stored as (``monitor.domain.personal_data``),
        under the first key: ``h:`` and 128 bits in hex, a text that stays a category."""
        return _value_hash(self._value_keys[0], value)

    def value_hashes(self, value: str) -> list[str]:
        """The value's hash under every configured key: what was stored before a rotation too."""
        return [_value_hash(k, value) for k in self._value_keys]

    def subject_hash(self, subject: str) -> bytes:
        """The keyed hash a data subject is stored as (under the first key)."""
        return hmac.new(self._subject_keys[0], subject.encode(), hashlib.sha256).digest()

    def subject_hashes(self, subject: str) -> list[bytes]:
        """The subject's hash under every configured key: records stored before a rotation too."""
        return [hmac.new(k, subject.encode(), hashlib.sha256).digest() for k in self._subject_keys]

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before secrets were encrypted
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                "a stored receiver secret is encrypted with a key not in MONITOR_SECRET_KEYS "
                "(or the key file of MONITOR_DATA_DIR); set the key it was written with"
            ) from None

    def rotate(self, stored: str) -> str:
        """``stored`` encrypted with the first key (plaintext from before encryption too)."""
        if not stored.startswith(PREFIX):
            return self.seal(stored)
        try:
            return PREFIX + self._fernet.rotate(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretUnavailable("a stored receiver secret cannot be decrypted with any configured key") from None

    def seal_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {name: self.seal(value) for name, value in headers.items()}

    def open_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {name: self.open(value) for name, value in headers.items()}

    def rotate_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {name: self.rotate(value) for name, value in headers.items()}


def _value_hash(key: bytes, value: str) -> str:
    return "h:" + hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def _key_file(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:  # created with 0600 from the start; another process creating it first wins
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
    for _ in range(50):  # another process may be writing it this instant
        key = path.read_bytes().strip()
        if key:
            return key
        time.sleep(0.01)
    raise ValueError(f"{path} is empty; delete it to have a new key made, or set MONITOR_SECRET_KEYS")


def load_box(settings: Settings) -> SecretBox:
    if settings.secret_keys:
        keys = [k.strip().encode() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
    else:
        keys = [_key_file(settings.data_dir)]
    try:
        return SecretBox(keys)
    except ValueError as exc:  # a key that is not 32 url-safe base64-encoded bytes
        raise ValueError(f"MONITOR_SECRET_KEYS: {exc}; make one with `monitor secrets new-key`") from None
