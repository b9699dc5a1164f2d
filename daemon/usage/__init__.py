"""Usage: the traffic each subscriber moves, polled from the routers (:mod:`daemon.usage.polling`).

The samples are stored and summed by :mod:`daemon.services.usage`; quotas and overage read those sums.
"""

from __future__ import annotations

from daemon.usage.polling import Poller, PollReport

__all__ = ["PollReport", "Poller"]
