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
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "check_secret_file",
    "decode_password",
    "fernet_keys",
    "is_public_key",
    "make_private_dir",
    "read_secret",
    "secret_file_problem",
    "strip_newline",
    "write_private",
]

logger = logging.getLogger(__name__)

#: Files edgebill writes that hold secrets or personal data (keys, the SQLite database, invoice PDFs).
PRIVATE_FILE_MODE: Final = 0o600
#: Folders edgebill creates to hold such files.
PRIVATE_DIR_MODE: Final = 0o700


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


# -- writing ----------------------------------------------------------------------------------------------------


def make_private_dir(path: Path) -> None:
    """Create the folder ``path`` and its missing parents, each readable by its owner only (0700).

    Folders that exist already are left as they are.
    """
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path``, readable and writable by its owner only (0600), from the moment it exists.

    Missing parent folders are made with :func:`make_private_dir`. With ``exclusive``, an existing file is
    never overwritten (``FileExistsError``); otherwise it is replaced in place, and a regular file is made 0600
    (a device such as ``/dev/stdout`` is written as it is). Raises ``OSError`` when the file cannot be written.
    """
    make_private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE_FILE_MODE)
        handle.write(data)
