"""Proxy auto-config (PAC): a ``FindProxyForURL`` that sends the catalog's hosts to the gateway.

Browsers and operating systems read the file and ask it, per URL, where to send the request.
Everything that the catalog decrypts (API hosts, consumer apps in ``inspect`` or ``block``) goes
to the gateways in order and **never** ``DIRECT``: when every gateway is down those requests
fail, because a direct connection would bypass every control. Consumer apps in ``observe`` go
to the gateways too, so their connections are counted (the gateway relays them undecrypted),
and fall back to ``DIRECT``: observing enforces nothing, and a gateway outage should not take
those sites down with it. Every other host goes ``DIRECT``.

The file routes exactly as :meth:`tollhouse.catalog.Catalog.match` decides: the host is
lowercased and stripped of trailing dots, exact names are looked up first, then the patterns
in catalog order, where ``*`` stands for one or more letters, digits or hyphens within one
label (a PAC ``shExpMatch`` would let ``*`` cross dots, so the file uses regular expressions).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence

from tollhouse.catalog import Catalog, Handling, HostEntry

CONTENT_TYPE = "application/x-ns-proxy-autoconfig"
# A DNS name (letters, digits, hyphens, dots), an IPv4 address or a bracketed IPv6 address.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_LABEL_WILDCARD = "[a-z0-9-]+"  # what the catalog's `*` matches: one or more, within one label


def proxy_address(spec: str) -> str:
    """``spec`` checked as ``HOST:PORT`` (a DNS name, IPv4 address or ``[IPv6]``) and returned
    normalized. Raises ValueError with a message that does not quote ``spec``: the text ends up
    in a script that browsers run, so nothing else may get in."""
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("a proxy must be HOST:PORT with a port from 1 to 65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("a bracketed proxy host must be an IPv6 address") from None
        return f"[{address.compressed}]:{int(port)}"
    if not host or len(host) > 253 or not _NAME.fullmatch(host):
        raise ValueError("a proxy host must be a DNS name, an IPv4 address or [an IPv6 address]")
    return f"{host.lower().rstrip('.')}:{int(port)}"


def pattern_regex(pattern: str) -> str:
    """The regular expression (valid in JavaScript and in Python) for a catalog host or pattern,
    anchored at both ends."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(_LABEL_WILDCARD)
        elif char == ".":
            out.append(r"\.")
        elif char.isascii() and (char.isalnum() or char == "-"):
            out.append(char.lower())
        else:  # the catalog's loader admits nothing else; refuse rather than write it unescaped
            raise ValueError("a host pattern has a character other than a-z, 0-9, -, . and *")
    return "^" + "".join(out) + "$"


def route(entry: HostEntry) -> str | None:
    """``GATEWAY`` (gateways only), ``OBSERVED`` (gateways, then direct) or None (direct)."""
    if entry.decrypt or entry.handling == Handling.BLOCK:
        return "GATEWAY"
    if entry.handling == Handling.OBSERVE:
        return "OBSERVED"
    return None


def pac_file(catalog: Catalog, proxies: Sequence[str], source: str = "hosts.yaml") -> str:
    """The PAC file for ``catalog`` with the gateways ``proxies`` (``HOST:PORT``, first
    preferred, the others its fallbacks). Raises ValueError on a malformed proxy."""
    if not proxies:
        raise ValueError("at least one proxy (HOST:PORT) is needed")
    gateway = "; ".join(f"PROXY {proxy_address(p)}" for p in proxies)
    exact, patterns = catalog.entries()
    exact_lines = [
        f"  {json.dumps(host)}: {way}," for host, entry in exact if (way := route(entry))
    ]
    pattern_lines = [
        f"  [/{pattern_regex(host)}/, {way}]," for host, entry in patterns if (way := route(entry))
    ]
    return _TEMPLATE.format(
        source="".join(c if c.isprintable() else "?" for c in source),  # one comment line
        gateway=json.dumps(gateway),
        exact="\n".join(exact_lines).rstrip(","),
        patterns="\n".join(pattern_lines).rstrip(","),
    )


_TEMPLATE = """\
// Tollhouse proxy auto-config, generated from {source}.
// AI hosts go to the Tollhouse gateways in order and never DIRECT: if every gateway is down,
// they fail rather than bypass the gateway. Observed AI apps go to the gateways (to be counted)
// and fall back to DIRECT. Everything else goes DIRECT.
var GATEWAY = {gateway};
var OBSERVED = GATEWAY + "; DIRECT";
var EXACT = {{
{exact}
}};
// `*` in a catalog pattern is one or more of [a-z0-9-] within one label.
var PATTERNS = [
{patterns}
];

function FindProxyForURL(url, host) {{
  host = String(host).toLowerCase().replace(/\\.+$/, "");
  if (Object.prototype.hasOwnProperty.call(EXACT, host)) {{
    return EXACT[host];
  }}
  for (var i = 0; i < PATTERNS.length; i++) {{
    if (PATTERNS[i][0].test(host)) {{
      return PATTERNS[i][1];
    }}
  }}
  return "DIRECT";
}}
"""

__all__ = ["CONTENT_TYPE", "pac_file", "pattern_regex", "proxy_address", "route"]
