"""IPv4 CIDR parsing and per-node subnet carving."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def parse_ipv4_network(text: str) -> ipaddress.IPv4Network:
    """Parse `a.b.c.d/n` strictly (explicit prefix, host bits zero); ValueError otherwise."""
    if "/" not in text:
        raise ValueError("missing /prefix")
    network = ipaddress.ip_network(text, strict=True)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError("not an IPv4 network")
    if str(network) != text:
        raise ValueError("not in canonical form")
    return network


def lowest_free_subnet(
    pod_cidr: str, prefix: int, used: Iterable[str]
) -> ipaddress.IPv4Network | None:
    """The lowest `/prefix` subnet of `pod_cidr` not in `used`, or None when exhausted."""
    network = parse_ipv4_network(pod_cidr)
    taken = {ipaddress.IPv4Network(cidr) for cidr in used}
    size = 1 << (32 - prefix)
    count = 1 << (prefix - network.prefixlen)
    base = int(network.network_address)
    # The first free slot is among the first len(taken)+1 candidates.
    for index in range(min(count, len(taken) + 1)):
        candidate = ipaddress.IPv4Network((base + index * size, prefix))
        if candidate not in taken:
            return candidate
    return None
