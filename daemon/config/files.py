"""Reading a file an administrator hands to edgebill (the configuration, a bank statement, a password file).

:func:`read_user_file` reads it whole but bounded, and :func:`decode_text` checks that it is UTF-8 text. Both
raise :class:`FileProblem`, whose message is one line without the file name (the caller puts its own in front,
with what the file was for): ``is a directory``, ``is too large (3.2 MB; at most 1 MB)``, ``not valid UTF-8:
byte 0xe9 at offset 17``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileProblem", "check_nesting", "decode_text", "read_user_file"]


class FileProblem(Exception):
    """A file that cannot be used as it is; ``str()`` is one line saying why, without the file's name."""


def _size(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count // 1024} KB" if count and count % 1024 == 0 else f"{count} bytes"
    return f"{count / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def read_user_file(path: Path, *, limit: int) -> bytes:
    """The bytes of ``path``, refusing a missing, unreadable or special file, or one larger than ``limit`` bytes.

    A pipe or device (``/dev/stdin``) is read up to the limit.
    """
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise FileProblem(f"is too large ({_size(info.st_size)}; at most {_size(limit)})")
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise FileProblem("cannot read: is a directory") from None
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileProblem(f"is too large (more than {_size(limit)})")
    return data


def decode_text(data: bytes, *, bom: bool = False) -> str:
    """``data`` as UTF-8 text; with ``bom``, a leading byte order mark is dropped (spreadsheets write one)."""
    if data.startswith(b"\xef\xbb\xbf"):
        if not bom:
            raise FileProblem("starts with a byte order mark (BOM): save it as UTF-8 without BOM")
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None


def check_nesting(document: object, *, limit: int) -> None:
    """Refuse a parsed document (TOML, JSON) whose arrays and tables nest deeper than ``limit`` levels.

    Walks without recursion, so that a document the parser could still read never reaches a recursive
    reader (or a message quoting a value) that would fail with ``RecursionError``.
    """
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = list(value)
        else:
            continue
        if depth >= limit:
            raise FileProblem(f"values are nested more than {limit} levels deep")
        stack.extend((child, depth + 1) for child in children)
