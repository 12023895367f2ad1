"""Upstream overrides: ``HOST=ADDR:PORT`` sends a catalog host's traffic to another address."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class UpstreamMap:
    """Host → (address, port). The key ``*`` applies to every AI API host not named explicitly."""

    targets: dict[str, tuple[str, int]]

    def target(self, host: str, *, is_ai_host: bool) -> tuple[str, int] | None:
        host = host.lower().rstrip(".")
        if host in self.targets:
            return self.targets[host]
        if is_ai_host:
            return self.targets.get("*")
        return None


def parse_upstreams(specs: Iterable[str]) -> UpstreamMap:
    """Parse ``--upstream`` values. Raises ValueError naming the bad value."""
    targets: dict[str, tuple[str, int]] = {}
    for spec in specs:
        host, sep, address = spec.partition("=")
        addr, colon, port = address.rpartition(":")
        if not sep or not host or not colon or not addr or not port.isdigit():
            raise ValueError(f"--upstream {spec!r}: expected HOST=ADDR:PORT (or *=ADDR:PORT)")
        if not 0 < int(port) < 65536:
            raise ValueError(f"--upstream {spec!r}: port must be 1-65535")
        targets[host.lower().rstrip(".")] = (addr.strip("[]"), int(port))
    return UpstreamMap(targets)
