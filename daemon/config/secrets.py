"""Secret files: the permission checks a file must pass to hold a secret, and reading one at call time.

A secret file must exist, be a regular readable file, and must not be readable or writable by all users (any of
the ``o=rw`` mode bits): such a file is refused with the ``chmod`` that fixes it. A file readable by its group is
accepted with a logged warning, so a service group can share it. Contents are never echoed; messages name only
the file.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet

from daemon.config.errors import ConfigError

__all__ = [
    "check_secret_file",
    "decode_password",
    "fernet_keys",
    "is_public_key",
    "read_secret",
    "secret_file_problem",
    "strip_newline",
]

logger = logging.getLogger(__name__)


def secret_file_problem(path: Path) -> str:
    """Why ``path`` cannot hold a secret, or an empty string; logs a warning when its group may read it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return f"is accessible to all users (mode {mode:04o}); run chmod o-rwx on it"
    if not os.access(path, os.R_OK):
        return "cannot read: Permission denied"
    if mode & stat.S_IRGRP:
        logger.warning("secret file %s is readable by its group (mode %04o)", path, mode)
    return ""


#: What to do about each problem :func:`secret_file_problem` finds, added to the errors of files read at run time
#: (the file was fine when the configuration was loaded: someone moved, replaced or chmod'ed it since).
_REMEDIES: Final = {
    "no such file": "restore it, or correct the path in the configuration and restart",
    "not a regular file": "put the secret in a regular file at that path",
    "cannot read": "let the user edgebill runs as read it (chown that user, chmod 600)",
}


def _with_remedy(problem: str) -> str:
    for start, remedy in _REMEDIES.items():
        if problem.startswith(start):
            return f"{problem}; {remedy}"
    return problem


def check_secret_file(path: Path, what: str) -> None:
    """Raise :class:`ConfigError` when ``path`` cannot hold a secret now, saying what to do about it."""
    problem = secret_file_problem(path)
    if problem:
        raise ConfigError(_with_remedy(problem), path=path, key=what)


def read_secret(path: Path, what: str) -> bytes:
    """The contents of the secret file ``path`` (one trailing newline removed), checked and read now.

    Raises :class:`ConfigError` naming the file and ``what`` it holds (``"SMTP password"``) and what to do.
    """
    check_secret_file(path, what)
    try:
        return strip_newline(path.read_bytes())
    except OSError as exc:
        raise ConfigError(_with_remedy(f"cannot read: {exc.strerror or exc}"), path=path, key=what) from None


def strip_newline(data: bytes) -> bytes:
    """``data`` without one trailing ``\\n`` or ``\\r\\n``."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def decode_password(data: bytes, path: Path, what: str) -> str:
    """A password read from ``path``: UTF-8 and not empty, else :class:`ConfigError`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("is not valid UTF-8", path=path, key=what) from None
    if not text:
        raise ConfigError("is empty", path=path, key=what)
    return text


def fernet_keys(data: bytes) -> tuple[tuple[bytes, ...], str]:
    """The Fernet keys in a key file (one per line; blank lines and ``#`` comments ignored), or why not."""
    keys: list[bytes] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            Fernet(line)
        except (ValueError, TypeError):
            return (), f"line {number} is not a Fernet key (32 url-safe base64-encoded bytes)"
        keys.append(line)
    if not keys:
        return (), "holds no Fernet key"
    return tuple(keys), ""


def is_public_key(path: Path) -> bool:
    """True when ``path`` is a readable OpenSSH public key (a common mistake for the private key file)."""
    if not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return head.startswith((b"ssh-", b"ecdsa-", b"sk-"))
