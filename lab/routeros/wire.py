"""The RouterOS API wire format: length-prefixed words grouped into sentences.

Words are carried as ``str`` decoded with latin-1, which maps every byte to one code point, so any byte
sequence a client sends (including text in a Windows codepage) round-trips unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

ENCODING = "latin-1"

#: Largest word accepted from a client before the connection is closed (protects the emulator's memory).
MAX_WORD_LENGTH = 64 * 1024 * 1024


class ProtocolViolation(Exception):
    """The peer sent bytes that are not a valid API stream; the connection cannot continue."""


class PeerClosed(Exception):
    """The peer closed the connection (cleanly or mid-word)."""


def encode_length(length: int) -> bytes:
    """Encode a word length in 1 to 5 bytes, big-endian, as RouterOS does."""
    if length < 0:
        raise ValueError(f"negative word length {length}")
    if length < 0x80:
        return length.to_bytes(1, "big")
    if length < 0x4000:
        return (length | 0x8000).to_bytes(2, "big")
    if length < 0x200000:
        return (length | 0xC00000).to_bytes(3, "big")
    if length < 0x10000000:
        return (length | 0xE0000000).to_bytes(4, "big")
    if length <= 0xFFFFFFFF:
        return b"\xf0" + length.to_bytes(4, "big")
    raise ValueError(f"word length {length} does not fit in the API length prefix")


def prefix_size(first: int) -> int:
    """Total size in bytes of a length prefix given its first byte; raises on a control byte."""
    if first < 0x80:
        return 1
    if first < 0xC0:
        return 2
    if first < 0xE0:
        return 3
    if first < 0xF0:
        return 4
    if first < 0xF8:
        return 5
    raise ProtocolViolation(f"control byte 0x{first:02X} received")


def decode_length(prefix: bytes) -> int:
    """Decode a complete length prefix (as sized by :func:`prefix_size`)."""
    first = prefix[0]
    size = prefix_size(first)
    if len(prefix) != size:
        raise ProtocolViolation(f"length prefix needs {size} bytes, got {len(prefix)}")
    if size == 1:
        return first
    if size == 2:
        return int.from_bytes(prefix, "big") & 0x3FFF
    if size == 3:
        return int.from_bytes(prefix, "big") & 0x1FFFFF
    if size == 4:
        return int.from_bytes(prefix, "big") & 0xFFFFFFF
    return int.from_bytes(prefix[1:], "big")


def encode_word(word: str) -> bytes:
    data = word.encode(ENCODING)
    return encode_length(len(data)) + data


def encode_sentence(words: Iterable[str]) -> bytes:
    """Encode one sentence: each word with its prefix, then the zero-length terminator."""
    parts: list[bytes] = []
    for word in words:
        data = word.encode(ENCODING)
        parts.append(encode_length(len(data)))
        parts.append(data)
    parts.append(b"\x00")
    return b"".join(parts)


class SentenceReader:
    """Reads sentences through ``recv`` (a blocking ``socket.recv``-like callable) with a buffer."""

    def __init__(self, recv: Callable[[int], bytes], max_word: int = MAX_WORD_LENGTH) -> None:
        self._recv = recv
        self._buffer = bytearray()
        self._pos = 0
        self._max_word = max_word

    def _fill(self, need: int) -> None:
        while len(self._buffer) - self._pos < need:
            if self._pos:
                del self._buffer[: self._pos]
                self._pos = 0
            chunk = self._recv(max(65536, need - len(self._buffer)))
            if not chunk:
                raise PeerClosed("connection closed by peer")
            self._buffer += chunk

    def _take(self, count: int) -> bytes:
        self._fill(count)
        data = bytes(self._buffer[self._pos : self._pos + count])
        self._pos += count
        return data

    def read_word(self) -> str:
        self._fill(1)
        size = prefix_size(self._buffer[self._pos])
        length = decode_length(self._take(size))
        if length > self._max_word:
            raise ProtocolViolation(f"word of {length} bytes exceeds the limit of {self._max_word}")
        return self._take(length).decode(ENCODING)

    def read_sentence(self, max_bytes: int | None = None) -> list[str]:
        """Read words up to the empty word. ``max_bytes`` bounds the total size (pre-login limits)."""
        words: list[str] = []
        total = 0
        while True:
            word = self.read_word()
            if not word:
                return words
            total += len(word)
            if max_bytes is not None and total > max_bytes:
                raise ProtocolViolation(f"sentence larger than {max_bytes} bytes before login")
            words.append(word)
