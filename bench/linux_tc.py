"""Figures for the Linux tc gateway driver on the namespaced lab gateway (needs root).

Prints, for the driver (one ``tc -batch``/``nft -f`` per reconcile, over one SSH session) and for the same work
done with one ``tc`` process per object (run inside the gateway namespace, without SSH, on a smaller N and
extrapolated linearly, which flatters the baseline):

* a full build of N subscribers, both directions;
* one plan change end to end (read, plan, apply) and the apply alone; the same run scoped to the one subscriber
  (as the daemon pushes a change), alone and with the read back that confirms it;
* suspending 1,000 subscribers at once;
* reading the counters of N subscribers;
* ``read_state`` (the first one of a driver, and a later one that reuses what the earlier read parsed) and
  ``plan`` alone.

Usage: ``python -m bench.linux_tc [--subscribers 10000] [--baseline 500]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from drivers.linux import LinuxTcDriver
from drivers.linux.commands import Builder
from drivers.linux.layout import class_id
from drivers.models import Scope
from lab.linux_gw import LinuxGateway, problem
from policies.desired import ConnectionType, DesiredState, EnforcementSpec, ProfileSpec, ServiceState, SubscriberSpec
from policies.rates import RateLimit

PLAN = RateLimit(10_000_000, 5_000_000)
FASTER = RateLimit(20_000_000, 10_000_000)


@dataclass(frozen=True)
class Params:
    name: str
    host: str
    port: int
    ssh_key_file: Path | None
    known_hosts_file: Path | None
    interface: str | None
    upload_ifb: str | None
    kind: str = "linux"
    username: str = "root"
    tls: bool = False
    tls_verify: bool = True
    encoding: str = "utf-8"
    timeout: timedelta = timedelta(seconds=60)
    trust_on_first_use: bool = False
    leaf_qdisc: str = "pfifo"
    subnets: tuple[IPv4Network, ...] = ()

    def password(self) -> str:
        raise RuntimeError("the lab gateway uses a key")


def addresses(n: int) -> list[IPv4Address]:
    """``n`` addresses, 250 per /24, across 100.64.0.0/10."""
    return [IPv4Address(f"100.{64 + i // 64000}.{(i // 250) % 256}.{1 + i % 250}") for i in range(n)]


def desired_state(addrs: Sequence[IPv4Address], suspended: int = 0, faster: int = -1) -> DesiredState:
    subs = tuple(
        SubscriberSpec(
            key=f"svc-{i}",
            service_id=i,
            connection=ConnectionType.STATIC,
            profile="20M" if i == faster else "10M",
            rate=FASTER if i == faster else PLAN,
            state=ServiceState.SUSPENDED if i < suspended else ServiceState.ACTIVE,
            address=a,
        )
        for i, a in enumerate(addrs)
    )
    return DesiredState(
        (ProfileSpec("10M", PLAN), ProfileSpec("20M", FASTER)),
        subs,
        EnforcementSpec(payment_page_url="http://198.18.0.3:8080/pay"),
    )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def per_object(gw: LinuxGateway, lines: Sequence[str], program: str) -> float:
    """Seconds to run ``lines`` as one ``program`` process each, inside the gateway namespace."""
    script = "".join(f"{program} {line}\n" for line in lines)
    start = time.perf_counter()
    subprocess.run(
        ["ip", "netns", "exec", gw.gw_ns, "sh", "-e", "-s"], input=script, text=True, check=True, capture_output=True
    )
    return time.perf_counter() - start


def wipe(gw: LinuxGateway) -> None:
    gw.gateway(
        "sh",
        "-c",
        "tc qdisc del dev sub0 root; tc qdisc del dev ifb0 root; nft delete table inet edgebill",
        check=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=500, help="N for the one-process-per-object baseline")
    args = parser.parse_args(argv)
    why = problem()
    if why:
        print(f"skipped: {why}", file=sys.stderr)
        return 2
    n, nb = args.subscribers, args.baseline
    addrs = addresses(n)
    rows: list[tuple[str, float, float, str]] = []
    with LinuxGateway.up(1) as gw:
        params = Params("bench", gw.host, gw.port, gw.key_file, gw.known_hosts_file, gw.interface, gw.upload_ifb)
        with LinuxTcDriver(params) as drv:
            full = desired_state(addrs)
            empty = drv.read_state()
            plan = drv.plan(full, empty)
            build = timed(lambda: drv.apply(plan))
            assert drv.plan(full, drv.read_state()).empty, "second reconcile is not empty"
            read = timed(drv.read_state)
            # Another name is another gateway to the driver: nothing it parsed for "bench" is reused.
            with LinuxTcDriver(dataclasses.replace(params, name="bench-first-read")) as fresh:
                fresh.facts()  # log in first: only the read is timed
                cold_read = timed(fresh.read_state)
            actual = drv.read_state()
            plan_time = min(timed(lambda: drv.plan(full, actual)) for _ in range(3))

            changed = desired_state(addrs, faster=n // 2)
            one = drv.plan(changed, actual)
            single_apply = timed(lambda: drv.apply(one))
            back = drv.plan(full, drv.read_state())

            def reconcile(want: DesiredState) -> None:
                drv.apply(drv.plan(want, drv.read_state()))

            drv.apply(back)
            runs: list[float] = []
            for _ in range(3):
                runs.append(timed(lambda: reconcile(changed)))
                reconcile(full)
            single_e2e = min(runs)

            # The same change as the daemon pushes it: a run scoped to the one subscriber, then read back.
            key = f"svc-{n // 2}"
            scope = Scope.of(changed, {key})

            def scoped(want: DesiredState, confirm: bool) -> None:
                mine = dataclasses.replace(want, subscribers=tuple(s for s in want.subscribers if s.key == key))
                plan = drv.plan(mine, drv.read_state(scope), scope)
                assert len(plan.changes) == 2, plan.changes
                drv.apply(plan)
                if confirm:
                    assert drv.plan(mine, drv.read_state(scope), scope).empty

            scoped_runs: list[float] = []
            confirmed_runs: list[float] = []
            for _ in range(5):
                scoped_runs.append(timed(lambda: scoped(changed, False)))
                scoped(full, False)
                confirmed_runs.append(timed(lambda: scoped(changed, True)))
                scoped(full, True)
            assert drv.plan(full, drv.read_state()).empty

            suspend = drv.plan(desired_state(addrs, suspended=1000), drv.read_state())
            suspend_time = timed(lambda: drv.apply(suspend))
            counters = drv.counters()
            assert len(counters) == n, f"{len(counters)} counters for {n} subscribers"
            counter_time = min(timed(drv.counters) for _ in range(3))

            # Baselines: the same lines, one process per object, on nb subscribers.
            one_lines = [line.text for line in Builder(drv.devices).build(one.changes).tc]
            base_single = per_object(gw, one_lines, "tc")
            wipe(gw)
            small = drv.plan(desired_state(addrs[:nb]), drv.read_state())
            script = Builder(drv.devices).build(small.changes)
            base_build = per_object(gw, [line.text for line in script.ip], "ip") + per_object(
                gw, [line.text for line in script.tc], "tc"
            )
            base_build_n = base_build * n / nb
            drv.apply(dataclasses.replace(small, changes=tuple(c for c in small.changes if c.kind.startswith("nft"))))
            elems = [f"add element inet edgebill edgebill-overdue {{ {a} }}" for a in addrs[: min(nb, 1000)]]
            base_suspend = per_object(gw, elems, "nft") * 1000 / min(nb, 1000)
            dev_lines = [f"-s class show dev {d} classid {h}" for d in ("sub0", "ifb0") for h in _classids(addrs[:nb])]
            base_counters = per_object(gw, dev_lines, "tc") * n / nb

    rows += [
        (f"full build, {n} subscribers x 2 directions", build, base_build_n, f"baseline N={nb}, extrapolated"),
        ("one plan change, apply only", single_apply, base_single, "same tc lines, one process each"),
        ("one plan change, full read + plan + apply", single_e2e, base_single, "best of 3"),
        ("one plan change, scoped read + plan + apply", min(scoped_runs), base_single, _spread(scoped_runs)),
        ("  ... and read back to confirm", min(confirmed_runs), base_single, _spread(confirmed_runs)),
        ("1000 suspensions at once", suspend_time, base_suspend, "baseline: one nft per element"),
        (f"counters of {n} subscribers", counter_time, base_counters, f"baseline: tc per class, N={nb} extrapolated"),
        (f"read_state of {n} subscribers", read, float("nan"), "after an earlier read by the same driver"),
        (f"read_state of {n} subscribers, first read", cold_read, float("nan"), "nothing parsed before"),
        (f"plan of {n} subscribers (pure)", plan_time, float("nan"), "best of 3"),
    ]
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load:.2f} at the end (figures scale with load)")
    print(f"{'work':48} {'edgebill':>10} {'per object':>11} {'ratio':>7}  note")
    for name, ours, base, note in rows:
        ratio = f"{base / ours:6.0f}x" if base == base else "      -"
        base_text = f"{base:10.3f}s" if base == base else "          -"
        print(f"{name:48} {ours:9.3f}s {base_text} {ratio}  {note}")
    return 0


def _spread(runs: Sequence[float]) -> str:
    ordered = sorted(runs)
    return f"best of {len(runs)}; median {ordered[len(ordered) // 2] * 1000:.0f} ms"


def _classids(addrs: Sequence[IPv4Address]) -> list[str]:
    return [shlex.quote(class_id(a)) for a in addrs]


if __name__ == "__main__":
    raise SystemExit(main())
