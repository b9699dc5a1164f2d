"""A minimal API client on a raw socket, for protocol corners the real clients cannot reach."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self

from lab.routeros.wire import SentenceReader, encode_sentence

Sentence = list[str]


class RawClient:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = SentenceReader(self.sock.recv)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, *words: str) -> None:
        self.sock.sendall(encode_sentence(words))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> Sentence:
        return self.reader.read_sentence()

    def until_done(self) -> list[Sentence]:
        """Read sentences up to and including the first ``!done``."""
        sentences: list[Sentence] = []
        while True:
            sentence = self.read()
            sentences.append(sentence)
            if sentence[0] == "!done":
                return sentences

    def call(self, *words: str) -> list[Sentence]:
        self.send(*words)
        return self.until_done()

    def login(self, user: str = "admin", password: str = "admin") -> None:
        reply = self.call("/login", f"=name={user}", f"=password={password}")
        assert reply == [["!done"]], reply

    def closed_by_peer(self) -> bool:
        """True when the server has closed the connection (reads EOF)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def attrs(sentence: Sentence) -> dict[str, str]:
    """``["!re", "=name=x", ".tag=1"]`` -> ``{"name": "x", ".tag": "1"}``."""
    result: dict[str, str] = {}
    for word in sentence[1:]:
        if word.startswith("="):
            key, _, value = word[1:].partition("=")
            result[key] = value
        else:
            key, _, value = word.partition("=")
            result[key] = value
    return result
