"""Secrets at rest: password hashing, PPPoE password encryption and API tokens.

* User passwords are hashed with argon2id (:func:`hash_password`, :func:`verify_password`); only the hash is
  stored.
* PPPoE passwords must be readable again (they are pushed to routers), so they are encrypted with Fernet
  (AES-128-CBC + HMAC-SHA256) under a key kept in a file outside the database (:class:`SecretBox`). The key
  file holds one key per line; the first encrypts, every key decrypts, so a key can be rotated by putting a
  new key on the first line and re-saving the passwords. The file is read, with its permission checks, by
  :meth:`daemon.config.SecuritySettings.fernet_keys`: ``SecretBox(settings.security.fernet_keys())``.
* API tokens are random strings shown once; only their SHA-256 is stored (:func:`new_api_token`,
  :func:`token_digest`).

Nothing in this module logs a secret.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from daemon.config.secrets import write_private

__all__ = [
    "TOKEN_PREFIX",
    "SecretBox",
    "SecretError",
    "create_key_file",
    "hash_password",
    "new_api_token",
    "password_needs_rehash",
    "token_digest",
    "verify_password",
]

log = logging.getLogger(__name__)

#: Every API token starts with this, so a leaked one is easy to recognise (and to scan for).
TOKEN_PREFIX = "ebt_"

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong user name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class SecretError(Exception):
    """A key file is missing or malformed, or a ciphertext cannot be decrypted with the configured keys."""


# -- user passwords -----------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; two calls give different hashes)."""
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; ``None`` (no such user) costs the same and is False."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


# -- API tokens ---------------------------------------------------------------------------------------------


def new_api_token() -> str:
    """A fresh random API token (256 bits), to be shown to its owner once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 hex digest stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- encryption at rest -------------------------------------------------------------------------------------


def create_key_file(path: str | os.PathLike[str]) -> Path:
    """Write a new random key to ``path`` (mode 0600, missing folders 0700), refusing to overwrite a file."""
    target = Path(path)
    try:
        write_private(target, Fernet.generate_key() + b"\n", exclusive=True)
    except FileExistsError as exc:
        raise SecretError(f"key file {target} already exists; refusing to overwrite it") from exc
    log.info("created encryption key file %s", target)
    return target


class SecretBox:
    """Encrypts and decrypts short secrets (PPPoE passwords) with the installation's Fernet keys."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretError("no encryption key given")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError) as exc:
            raise SecretError("invalid encryption key: expected 32 url-safe base64-encoded bytes") from exc
        self._fernet = MultiFernet(fernets)

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a fresh random key (for tests and throwaway databases)."""
        return cls([Fernet.generate_key()])

    def encrypt(self, plaintext: str) -> bytes:
        """Encrypt ``plaintext`` with the primary key; the result embeds a timestamp and a MAC."""
        if not isinstance(plaintext, str):
            raise TypeError(f"expected a string to encrypt, got {type(plaintext).__name__}")
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> str:
        """Decrypt a value made by :meth:`encrypt` with any of the keys; ``SecretError`` if none fits."""
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode("utf-8")
        except InvalidToken as exc:
            raise SecretError("cannot decrypt a stored secret: wrong or rotated-out key file") from exc

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt ``ciphertext`` under the primary key (after a new key was put first in the file)."""
        try:
            return self._fernet.rotate(bytes(ciphertext))
        except InvalidToken as exc:
            raise SecretError("cannot decrypt a stored secret: wrong or rotated-out key file") from exc
