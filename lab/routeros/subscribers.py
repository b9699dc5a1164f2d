"""The simulated subscribers behind the router: PPPoE CPEs that dial in, and the traffic they carry.

Driven by the router's clock and always called with the router's lock held. It works on the shared
:class:`~lab.routeros.device.Device` (menus, clock, settings) through its public methods and follows the changes
of simple queues through :meth:`~lab.routeros.device.Device.watch`; the command side tells it about secrets
through :meth:`Subscribers.secret_ready` and :meth:`Subscribers.secret_removed`.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass

from lab.routeros import network
from lab.routeros import values as v
from lab.routeros.device import Device
from lab.routeros.model import Item, Table

logger = logging.getLogger(__name__)

SESSION_ID_BASE = 0x81000000


@dataclass
class Session:
    """A connected PPPoE subscriber."""

    serial: int
    secret_uid: int
    name: str
    address: str
    mac: str
    started: float
    active_uid: int
    interface_uid: int
    queue_uid: int | None
    address_list_uid: int | None
    pool: str | None
    up_bits: float = 0.0
    down_bits: float = 0.0
    up_drop_bits: float = 0.0
    down_drop_bits: float = 0.0


class Subscribers:
    """Every secret's CPE, the sessions that are up and the traffic model."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.sessions: dict[int, Session] = {}  # by secret uid
        self._cpe_next: dict[int, float] = {}  # secret uid -> next dial attempt
        self._by_active: dict[int, Session] = {}  # /ppp/active item uid -> session
        self._in_use: dict[str, int] = {}  # address -> sessions using it
        self._cursor: dict[int, int] = {}  # pool uid -> where the next lease search starts
        self._serial = 0
        self._queue_index: tuple[dict[str, Item], list[tuple[ipaddress.IPv4Network, Item]], dict[int, int]] | None
        self._queue_index = None
        device.watch(self._changed)

    def _changed(self, table: Table, _item: Item, _dead: bool) -> None:
        if table.spec.path == "/queue/simple":
            self.queues_changed()

    def queues_changed(self) -> None:
        """Simple queues were added, edited or removed: which queue limits whom must be worked out again."""
        self._queue_index = None

    def secret_ready(self, uid: int) -> None:
        """A secret was added or enabled: its CPE gets in at its next attempt, now at the latest."""
        self._cpe_next[uid] = min(self._cpe_next.get(uid, self.device.now), self.device.now)

    def secret_removed(self, uid: int) -> None:
        """A secret was removed: its CPE stops dialling (a session that is up stays up)."""
        self._cpe_next.pop(uid, None)

    def power_off(self) -> None:
        """Forget every session at once (the router is rebooting; it removes the dynamic entries itself)."""
        self.sessions.clear()
        self._by_active.clear()
        self._in_use.clear()
        self._queue_index = None

    def power_on(self) -> None:
        """The router booted: every secret's CPE dials after the redial delay."""
        for uid in self.device.tables["/ppp/secret"].by_uid:
            self._cpe_next[uid] = self.device.now + self.device.redial_delay

    def session_by_active(self, uid: int) -> Session | None:
        """The session behind an ``/ppp/active`` item."""
        return self._by_active.get(uid)

    def next_event(self) -> float | None:
        times: list[float] = []
        secrets = self.device.tables["/ppp/secret"].by_uid
        for uid, when in self._cpe_next.items():
            secret = secrets.get(uid)
            if (
                secret is not None
                and uid not in self.sessions
                and self._cpe_eligible(secret)
                and when > self.device.now
            ):
                times.append(when)
        for item in self.device.tables["/ip/firewall/address-list"].items:
            if item.expires is not None and item.expires > self.device.now:
                times.append(item.expires)
        return min(times) if times else None

    @staticmethod
    def _cpe_eligible(secret: Item) -> bool:
        return secret.values.get("disabled") != "true" and secret.values.get("service") in ("pppoe", "any")

    def events(self) -> None:
        lists = self.device.tables["/ip/firewall/address-list"]
        for item in [entry for entry in lists.items if entry.expires is not None and entry.expires <= self.device.now]:
            self.device.discard(lists, item)
        secrets = self.device.tables["/ppp/secret"]
        for uid, when in sorted(self._cpe_next.items(), key=lambda pair: (pair[1], pair[0])):
            if when > self.device.now or uid in self.sessions:
                continue
            secret = secrets.by_uid.get(uid)
            if secret is None:
                self._cpe_next.pop(uid, None)
                continue
            if self._cpe_eligible(secret):
                self._dial(secret)

    def _profile_of(self, secret: Item) -> Item:
        profiles = self.device.tables["/ppp/profile"]
        profile = profiles.by_uid.get(secret.refs.get("profile", -1))
        return profile if profile is not None else profiles.by_key["default"]

    def _allocate(self, secret: Item, profile: Item) -> tuple[str, str | None] | None:
        """The session's address: the secret's, else the profile's address or pool (then its next pools)."""
        if "remote-address" in secret.values:
            return secret.values["remote-address"], None
        remote = profile.values.get("remote-address")
        if remote is None:
            fallback = self.device.default_remote_range
            if fallback is None:
                return None
            address = self._lease(0, _spans(str(fallback)))
            return (address, None) if address is not None else None
        if remote[0].isdigit():
            return remote, None
        pools = self.device.tables["/ip/pool"]
        seen: set[int] = set()
        pool = pools.by_key.get(remote)
        while pool is not None and pool.uid not in seen:
            seen.add(pool.uid)
            address = self._lease(pool.uid, _spans(pool.values["ranges"]))
            if address is not None:
                return address, pool.values["name"]
            next_uid = pool.refs.get("next-pool")
            pool = pools.by_uid.get(next_uid) if next_uid is not None else None
        return None

    def _lease(self, pool_uid: int, spans: tuple[tuple[int, int], ...]) -> str | None:
        """The next free address of a pool, scanning on from the last one handed out."""
        total = sum(high - low + 1 for low, high in spans)
        start = self._cursor.get(pool_uid, 0)
        for step in range(total):
            address = _address_at(spans, (start + step) % total)
            if address not in self._in_use:
                self._cursor[pool_uid] = (start + step + 1) % total
                return address
        return None

    def _dial(self, secret: Item) -> None:
        name = secret.values["name"]
        profile = self._profile_of(secret)
        allocation = self._allocate(secret, profile)
        if allocation is None:
            logger.debug("PPPoE client %s could not get an address; retrying in %ss", name, self.device.redial_delay)
            self._cpe_next[secret.uid] = self.device.now + max(self.device.redial_delay, 1.0)
            return
        address, pool = allocation
        self._serial += 1
        serial = self._serial
        mac = self.device.mac(f"cpe:{name}")
        ifname = f"<pppoe-{name}>"
        active_table = self.device.tables["/ppp/active"]
        active = self.device.new_item(
            active_table,
            {
                "name": name,
                "service": "pppoe",
                "caller-id": mac,
                "encoding": "",
                "address": address,
                "session-id": f"0x{SESSION_ID_BASE + serial:X}",
                "limit-bytes-in": secret.values.get("limit-bytes-in", "0"),
                "limit-bytes-out": secret.values.get("limit-bytes-out", "0"),
                "radius": "false",
            },
            dynamic=True,
        )
        interfaces = self.device.tables["/interface"]
        if ifname in interfaces.by_key:  # a stale entry from an earlier session
            self.device.discard(interfaces, interfaces.by_key[ifname])
        interface = self.device.new_item(
            interfaces,
            {"name": ifname, "type": "pppoe-in", "mtu": "1480", "actual-mtu": "1480", "disabled": "false"},
            dynamic=True,
            counters=network.Counters(),
        )
        queue_uid: int | None = None
        rate_text = profile.values.get("rate-limit")
        queues = self.device.tables["/queue/simple"]
        if rate_text and ifname not in queues.by_key:
            rate = v.parse_rate_limit("rate-limit", rate_text)
            values = self.device.with_defaults(queues.spec, {"name": ifname, "target": ifname})
            values["max-limit"] = f"{rate.rx}/{rate.tx}"
            values["limit-at"] = f"{rate.min_rx}/{rate.min_tx}"
            values["burst-limit"] = f"{rate.burst_rx}/{rate.burst_tx}"
            values["burst-threshold"] = f"{rate.threshold_rx}/{rate.threshold_tx}"
            values["burst-time"] = f"{v.duration_text(rate.burst_time_rx)}/{v.duration_text(rate.burst_time_tx)}"
            values["priority"] = f"{rate.priority}/{rate.priority}"
            queue = self.device.new_item(queues, values, dynamic=True, counters=network.Counters())
            queues.insert(queue, first=True)
            self._queue_index = None
            queue_uid = queue.uid
        list_uid: int | None = None
        list_name = profile.values.get("address-list")
        lists = self.device.tables["/ip/firewall/address-list"]
        if list_name and (list_name, address) not in lists.by_unique:
            entry = self.device.new_item(
                lists,
                {
                    "list": list_name,
                    "address": address,
                    "creation-time": self.device.date(self.device.now),
                    "disabled": "false",
                },
                dynamic=True,
            )
            lists.insert(entry)
            list_uid = entry.uid
        session = Session(
            serial=serial,
            secret_uid=secret.uid,
            name=name,
            address=address,
            mac=mac,
            started=self.device.now,
            active_uid=active.uid,
            interface_uid=interface.uid,
            queue_uid=queue_uid,
            address_list_uid=list_uid,
            pool=pool,
        )
        active.session = serial
        self.sessions[secret.uid] = session
        self._by_active[active.uid] = session
        self._in_use[address] = self._in_use.get(address, 0) + 1
        active_table.insert(active)
        interfaces.insert(interface)
        secret.values["last-caller-id"] = mac
        self.device.notify(active_table, active)
        self.device.notify(interfaces, interface)
        if queue_uid is not None:
            self.device.notify(queues, queues.by_uid[queue_uid])
        logger.debug("PPPoE client %s connected with %s", name, address)

    def disconnect(self, session: Session, reason: str | None, *, redial: bool = True) -> None:
        self.sessions.pop(session.secret_uid, None)
        self._by_active.pop(session.active_uid, None)
        remaining = self._in_use.get(session.address, 0) - 1
        if remaining > 0:
            self._in_use[session.address] = remaining
        else:
            self._in_use.pop(session.address, None)
        for path, uid in (
            ("/ppp/active", session.active_uid),
            ("/interface", session.interface_uid),
            ("/queue/simple", session.queue_uid),
            ("/ip/firewall/address-list", session.address_list_uid),
        ):
            table = self.device.tables[path]
            item = table.by_uid.get(uid) if uid is not None else None
            if item is not None:
                self.device.discard(table, item)
        secret = self.device.tables["/ppp/secret"].by_uid.get(session.secret_uid)
        if secret is not None and reason is not None:
            secret.values["last-logged-out"] = self.device.date(self.device.now)
            secret.values["last-caller-id"] = session.mac
            secret.values["last-disconnect-reason"] = reason
            self.device.notify(self.device.tables["/ppp/secret"], secret)
        if secret is not None and redial:
            self._cpe_next[secret.uid] = self.device.now + self.device.redial_delay
        logger.debug("PPPoE client %s disconnected (%s)", session.name, reason)

    def hang_up(self, name: str, reason: str) -> bool:
        for session in list(self.sessions.values()):
            if session.name == name:
                self.disconnect(session, reason)
                return True
        return False

    def _queue_for(self, session: Session) -> Item | None:
        queues = self.device.tables["/queue/simple"]
        if session.queue_uid is not None:
            own = queues.by_uid.get(session.queue_uid)
            if own is not None and own.values.get("disabled") != "true":
                return own
        if self._queue_index is None:
            exact: dict[str, Item] = {}
            subnets: list[tuple[ipaddress.IPv4Network, Item]] = []
            positions: dict[int, int] = {}
            for position, queue in enumerate(queues.items):
                positions[queue.uid] = position
                if queue.dynamic or queue.values.get("disabled") == "true":
                    continue
                for token in queue.values["target"].split(","):
                    if token.endswith("/32") or not token[:1].isdigit():
                        exact.setdefault(token, queue)
                    else:
                        subnets.append((ipaddress.IPv4Network(token), queue))
            self._queue_index = (exact, subnets, positions)
        exact, subnets, positions = self._queue_index
        candidates = [
            queue
            for queue in (exact.get(f"{session.address}/32"), exact.get(f"<pppoe-{session.name}>"))
            if queue is not None
        ]
        if subnets:
            host = ipaddress.IPv4Address(session.address)
            candidates.extend(queue for network_, queue in subnets if host in network_)
        if not candidates:
            return None
        return min(candidates, key=lambda queue: positions.get(queue.uid, 0))

    def _caps(self, queue: Item | None) -> tuple[int, int]:
        if queue is None:
            return self.device.line_rate, self.device.line_rate
        up, down = (int(part) for part in queue.values["max-limit"].split("/"))
        return (
            min(up, self.device.line_rate) if up else self.device.line_rate,
            min(down, self.device.line_rate) if down else self.device.line_rate,
        )

    def flow(self, start: float, end: float) -> None:
        if end <= start or not self.sessions:
            return
        interfaces = self.device.tables["/interface"]
        uplink = interfaces.items[0] if interfaces.items else None
        for session in self.sessions.values():
            queue = self._queue_for(session)
            up, down = network.integrate(
                self.device.seed, f"{session.name}#{session.serial}", start, end, self._caps(queue)
            )
            deltas = []
            for attribute, added in (
                ("up_bits", up.carried),
                ("down_bits", down.carried),
                ("up_drop_bits", up.dropped),
                ("down_drop_bits", down.dropped),
            ):
                before = getattr(session, attribute)
                after = before + added
                setattr(session, attribute, after)
                deltas.append(int(after // 8) - int(before // 8))
            up_bytes, down_bytes, up_drop_bytes, down_drop_bytes = deltas
            up_dropped = up_drop_bytes // network.UP_PACKET
            down_dropped = down_drop_bytes // network.DOWN_PACKET
            interface = interfaces.by_uid.get(session.interface_uid)
            if interface is not None and interface.counters is not None:
                interface.counters.add(up_bytes, down_bytes, 0, 0)
            if queue is not None and queue.counters is not None:
                queue.counters.add(up_bytes, down_bytes, up_dropped, down_dropped)
            if uplink is not None and uplink.counters is not None:
                # Toward the internet the directions swap: the subscriber's upload leaves on the uplink.
                uplink.counters.add(down_bytes, up_bytes, 0, 0)

    def update_rates(self) -> None:
        for table in (self.device.tables["/queue/simple"], self.device.tables["/interface"]):
            for item in table.items:
                if item.counters is not None:
                    item.counters.up_rate = item.counters.down_rate = 0
        epoch = int(self.device.now // network.EPOCH)
        for session in self.sessions.values():
            queue = self._queue_for(session)
            if queue is None or queue.counters is None:
                continue
            up, down = network.offered(self.device.seed, f"{session.name}#{session.serial}", epoch)
            caps = self._caps(queue)
            queue.counters.up_rate += network.bounded(up, caps[0])
            queue.counters.down_rate += network.bounded(down, caps[1])


def _address_at(spans: tuple[tuple[int, int], ...], offset: int) -> str:
    for low, high in spans:
        if offset <= high - low:
            return str(ipaddress.IPv4Address(low + offset))
        offset -= high - low + 1
    raise IndexError(offset)


@functools.lru_cache(maxsize=1024)
def _spans(ranges: str) -> tuple[tuple[int, int], ...]:
    """``10.0.0.2-10.0.0.9,10.1.0.0/24`` -> inclusive integer spans of usable addresses."""
    spans: list[tuple[int, int]] = []
    for part in ranges.split(","):
        if "-" in part:
            low, _, high = part.partition("-")
            spans.append((int(ipaddress.IPv4Address(low)), int(ipaddress.IPv4Address(high))))
        else:
            net = ipaddress.IPv4Network(part)
            if net.prefixlen >= 31:
                spans.append((int(net.network_address), int(net.broadcast_address)))
            else:
                spans.append((int(net.network_address) + 1, int(net.broadcast_address) - 1))
    return tuple(spans)
