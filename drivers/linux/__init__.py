"""The Linux ``tc`` gateway driver: HTB and u32 shaping, ifb for upload, nftables for suspension, over SSH."""

from drivers.linux.driver import LinuxTcDriver
from drivers.linux.layout import LayoutError

__all__ = ["LayoutError", "LinuxTcDriver"]
