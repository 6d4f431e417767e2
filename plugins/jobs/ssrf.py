"""Where webhooks may send: never link-local or cloud-metadata addresses; not loopback or
private networks either when the deployment says so (``deny_private_targets``).

The check runs on the addresses the host resolves to, at creation and again at every
delivery, and the request then goes to the checked address, so a DNS answer that changes
between the two cannot slip a forbidden address in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

ALWAYS_REFUSED = [
    ipaddress.ip_network(net)
    for net in ("169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128")
]
PRIVATE = [
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "::/128",
    )
]
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "instance-data"})


class TargetRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


def parse_target(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, or :class:`TargetRefused`."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetRefused("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed; sign with the secret")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the URL's port is not valid") from None
    return parts.scheme, parts.hostname.lower(), port


def check_address(address: str, deny_private: bool) -> None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in ALWAYS_REFUSED):
        raise TargetRefused(f"{ip} is a link-local or cloud-metadata address")
    if deny_private and any(ip in net for net in PRIVATE):
        raise TargetRefused(f"{ip} is a loopback or private address, refused by this deployment")


async def resolve_target(url: str, deny_private: bool) -> tuple[str, str]:
    """Check ``url`` and return ``(host, address)``: the address the request must go to."""
    _, host, port = parse_target(url)
    if host in METADATA_HOSTS:
        raise TargetRefused(f"{host} is a cloud-metadata host")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetRefused(f"cannot resolve {host}") from None
    addresses = sorted({info[4][0] for info in infos})
    for address in addresses:
        check_address(address, deny_private)
    return host, addresses[0]
