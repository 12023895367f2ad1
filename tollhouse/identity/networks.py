"""Client address → network range, longest prefix first, in a few dict lookups per address."""

from __future__ import annotations

import dataclasses
import ipaddress
from functools import lru_cache

from tollhouse.identity.config import Network


class NetworkTable:
    """Finds what the configured ranges say about an address.

    Ranges nest: each attribute (``name``, ``team``, ``mode``) comes from the most specific range
    that holds the address *and sets it*, so a named device range inside an enforced office is
    still enforced. Ranges are bucketed by family and prefix length at load; a lookup masks the
    address once per distinct prefix length (longest first) and probes a dict, so its cost does
    not grow with the number of ranges. Results are cached per address string (bounded).
    """

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self._buckets: dict[int, list[tuple[int, dict[int, Network]]]] = {4: [], 6: []}
        by_len: dict[tuple[int, int], dict[int, Network]] = {}
        for net in networks:
            by_len.setdefault((net.cidr.version, net.cidr.prefixlen), {})[
                int(net.cidr.network_address)
            ] = net
        for (version, plen), table in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            bits = 32 if version == 4 else 128
            mask = ((1 << plen) - 1) << (bits - plen) if plen else 0
            self._buckets[version].append((mask, table))
        self.match = lru_cache(maxsize=65536)(self._match)

    def _match(self, address: str | None) -> Network | None:
        """The most specific range holding ``address``, with ``name``, ``team`` and ``mode``
        filled from the enclosing ranges where it leaves them unset; None outside every range."""
        if not address:
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d
        value = int(ip)
        found = [n for mask, table in self._buckets[ip.version] if (n := table.get(value & mask))]
        if not found:
            return None
        return dataclasses.replace(
            found[0],
            name=next((n.name for n in found if n.name), None),
            team=next((n.team for n in found if n.team), None),
            mode=next((n.mode for n in found if n.mode), None),
        )
