"""Client address → network range, longest prefix first, in a few dict lookups per address."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from tollhouse.identity.config import Network


class NetworkTable:
    """Finds the most specific configured range that holds an address.

    Ranges are bucketed by family and prefix length at load; a lookup masks the address once per
    distinct prefix length (longest first) and probes a dict, so its cost does not grow with the
    number of ranges. Results are cached per address string.
    """

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self._buckets: dict[int, list[tuple[int, int, dict[int, Network]]]] = {4: [], 6: []}
        by_len: dict[tuple[int, int], dict[int, Network]] = {}
        for net in networks:
            by_len.setdefault((net.cidr.version, net.cidr.prefixlen), {})[
                int(net.cidr.network_address)
            ] = net
        for (version, plen), table in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            bits = 32 if version == 4 else 128
            mask = ((1 << plen) - 1) << (bits - plen) if plen else 0
            self._buckets[version].append((plen, mask, table))
        self.match = lru_cache(maxsize=65536)(self._match)

    def _match(self, address: str | None) -> Network | None:
        if not address:
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d
        value = int(ip)
        for _plen, mask, table in self._buckets[ip.version]:
            if (net := table.get(value & mask)) is not None:
                return net
        return None
