"""A real Linux ``tc`` gateway in network namespaces, reached over OpenSSH, for tests, benchmarks and the demo."""

from lab.linux_gw.gateway import IperfResult, LabError, LinuxGateway, problem, subscriber_addresses

__all__ = ["IperfResult", "LabError", "LinuxGateway", "problem", "subscriber_addresses"]
