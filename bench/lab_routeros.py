"""Speed of the RouterOS emulator: sentences served per second and large prints through librouteros.

Run: ``python bench/lab_routeros.py [--queues 10000] [--seconds 3] [--clients 4]``
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time

import librouteros
from librouteros.query import Key

from lab.routeros import RouterOSEmulator
from lab.routeros.wire import SentenceReader, encode_sentence

USER, PASSWORD = "bench", "bench"


def _round_trips(port: int, seconds: float, clients: int) -> tuple[int, int]:
    """Request/reply round trips by ``clients`` raw connections; returns (requests, sentences received)."""
    counts = [(0, 0)] * clients
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        reader = SentenceReader(sock.recv)
        sock.sendall(encode_sentence(["/login", f"=name={USER}", f"=password={PASSWORD}"]))
        reader.read_sentence()
        request = encode_sentence(["/interface/print", "=.proplist=name", "?name=ether1"])
        requests = sentences = 0
        while time.monotonic() < stop_at:
            sock.sendall(request)
            while True:
                sentences += 1
                if reader.read_sentence()[0] == "!done":
                    break
            requests += 1
        sock.close()
        counts[index] = (requests, sentences)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    with RouterOSEmulator(users={USER: PASSWORD}) as router:
        for clients in (1, args.clients):
            requests, sentences = _round_trips(router.port, args.seconds, clients)
            print(
                f"round trips, {clients} client(s): {requests / args.seconds:,.0f} requests/s, "
                f"{(requests + sentences) / args.seconds:,.0f} sentences/s (requests + replies)"
            )

        started = time.perf_counter()
        for index in range(args.queues):
            router.call(
                "/queue/simple/add",
                {
                    "name": f"sub{index}",
                    "target": f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}",
                    "max-limit": "10M/50M",
                    "comment": f"customer {index}",
                },
            )
        print(f"created {args.queues:,} simple queues in {time.perf_counter() - started:.2f} s")

        sock = socket.create_connection(("127.0.0.1", router.port))
        reader = SentenceReader(sock.recv)
        sock.sendall(encode_sentence(["/login", f"=name={USER}", f"=password={PASSWORD}"]))
        reader.read_sentence()
        started = time.perf_counter()
        sock.sendall(encode_sentence(["/queue/simple/print"]))
        streamed = 1
        while reader.read_sentence()[0] != "!done":
            streamed += 1
        elapsed = time.perf_counter() - started
        sock.close()
        print(
            f"raw-socket print of {args.queues:,} simple queues: {elapsed:.2f} s "
            f"({streamed / elapsed:,.0f} sentences/s streamed)"
        )

        api = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, timeout=120)
        queues = api.path("queue", "simple")
        started = time.perf_counter()
        rows = list(queues)
        full = time.perf_counter() - started
        fields = sum(len(row) for row in rows)
        print(
            f"librouteros print of {len(rows):,} simple queues, all properties: {full:.2f} s "
            f"({len(rows) / full:,.0f} !re sentences/s, {fields:,} properties)"
        )
        started = time.perf_counter()
        rows = list(queues.select(Key(".id"), Key("name"), Key("max-limit"), Key("bytes")))
        narrow = time.perf_counter() - started
        print(
            f"librouteros print of {len(rows):,} simple queues, .proplist=.id,name,max-limit,bytes: "
            f"{narrow:.2f} s ({len(rows) / narrow:,.0f} !re sentences/s)"
        )
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
