"""An emulated RouterOS router speaking the binary API, for tests, benchmarks and the demo.

``RouterOSEmulator`` serves the API (and optionally API-SSL) on TCP with the ISP menus (PPP profiles,
secrets and active sessions, simple queues, address lists, pools, interfaces, identity, resource) and a
simulated network of PPPoE subscribers whose traffic grows on an injectable clock.
"""

from lab.routeros.emulator import RouterOSEmulator
from lab.routeros.errors import Trap
from lab.routeros.model import Quirks

__all__ = ["Quirks", "RouterOSEmulator", "Trap"]
