"""The host catalog (rules/hosts.yaml): which hosts are AI services, and how each is handled."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tollhouse.policyfile import PolicyDocument, PolicyError, load_policy_file

APIS = frozenset({"openai", "azure", "anthropic", "gemini", "vertex", "bedrock", "cohere"})
CONSUMER_HANDLING = frozenset({"observe", "inspect", "block"})
UNSCANNABLE = frozenset({"block", "pass"})
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._~/:@!$&'()*+,;=-]*")  # RFC 3986 pchar minus %
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")
_HOST_PATTERN = re.compile(r"^(\*|[a-z0-9-]+)?([a-z0-9*-]*)(\.[a-z0-9*-]+)+$")


class Handling:
    INTERCEPT = "intercept"  # decrypt, parse and audit (every API host)
    OBSERVE = "observe"  # never decrypted; the connection is recorded from its ClientHello
    INSPECT = "inspect"  # a consumer app decrypted and audited like an API
    BLOCK = "block"  # connection refused


@dataclass(frozen=True, slots=True)
class HostEntry:
    """What the catalog says about one host."""

    name: str  # provider (APIs) or app name (consumer apps)
    api: str | None  # wire format for APIs; None for consumer apps
    kind: str  # "api" or "consumer"
    handling: str
    # (path prefix, "block" | "pass") for bodies no scanner can read, longest prefix first
    unscannable: tuple[tuple[str, str], ...] = ()
    # path prefixes where a websocket upgrade is allowed (OpenAI Realtime, Gemini Live); none: no
    # upgrade at all, since a tunnel the gateway cannot read would carry prompts unscanned
    websocket: tuple[str, ...] = ()

    @property
    def decrypt(self) -> bool:
        return self.handling in (Handling.INTERCEPT, Handling.INSPECT)

    def allows_websocket(self, path: str) -> bool:
        """True when ``path`` (without its query) may be upgraded to a websocket: it equals an
        allowed prefix or continues it after a ``/``, and is plain (no percent-encoding, dot
        segments or repeated slashes that the upstream might read as another endpoint)."""
        if not _PLAIN_PATH.fullmatch(path) or "//" in path or _DOT_SEGMENT.search(path):
            return False
        return any(path == p or path.startswith(p + "/") for p in self.websocket)


class Catalog:
    """Host lookup: exact names from a dict, patterns through one compiled regex."""

    def __init__(self, entries: list[tuple[str, HostEntry]], unscannable: str = "block") -> None:
        self.default_unscannable = unscannable
        self._exact: dict[str, HostEntry] = {}
        self._patterns: list[tuple[str, HostEntry]] = []
        for host, entry in entries:
            if "*" in host:
                self._patterns.append((host, entry))
            else:
                self._exact[host] = entry
        alternatives = [
            f"(?P<p{i}>{re.escape(host).replace(r'\*', '[a-z0-9-]+')})"
            for i, (host, _) in enumerate(self._patterns)
        ]
        self._regex = re.compile("|".join(alternatives)) if alternatives else None

    def match(self, host: str | None) -> HostEntry | None:
        """The entry for ``host`` (case-insensitive, trailing dot ignored), or None."""
        if not host:
            return None
        host = host.lower().rstrip(".")
        if entry := self._exact.get(host):
            return entry
        if self._regex and (m := self._regex.fullmatch(host)):
            assert m.lastgroup is not None
            return self._patterns[int(m.lastgroup[1:])][1]
        return None

    def unscannable(self, entry: HostEntry, path: str) -> str:
        """``block`` or ``pass``: what happens to a request to ``path`` (decoded, no query) on
        ``entry``'s hosts whose body, or part of it, no scanner can read."""
        for prefix, action in entry.unscannable:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return action
        return self.default_unscannable

    def api_hosts(self) -> list[str]:
        """Every API host name and pattern, e.g. for a test certificate's SANs."""
        names = [h for h, e in self._exact.items() if e.kind == "api"]
        return names + [h for h, e in self._patterns if e.kind == "api"]

    def entries(self) -> tuple[list[tuple[str, HostEntry]], list[tuple[str, HostEntry]]]:
        """Exact names and patterns with their entries, in the order :meth:`match` tries them
        (e.g. to write a proxy auto-config file that routes exactly as the catalog matches)."""
        return list(self._exact.items()), list(self._patterns)


def _hosts(doc: PolicyDocument, path: tuple[str | int, ...], value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise doc.error(path, "must be a non-empty list of host names")
    out = []
    for i, host in enumerate(value):
        if not isinstance(host, str) or not _HOST_PATTERN.match(host.lower()):
            raise doc.error((*path, i), f"not a host name or pattern: {host!r}")
        out.append(host.lower())
    return out


def _text(doc: PolicyDocument, item: dict, path: tuple[str | int, ...], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise doc.error((*path, key), "required, must be text")
    return value


def load_catalog(path: Path) -> Catalog:
    """Load and validate a hosts file. Raises :class:`PolicyError` naming file, line and field."""
    doc = load_policy_file(path)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "must be a mapping with `apis` and `consumer_apps`")
    unknown = set(data) - {"version", "apis", "consumer_apps", "unscannable"}
    if unknown:
        raise doc.error((sorted(unknown)[0],), "unknown key")
    entries: list[tuple[str, HostEntry]] = []
    seen: dict[str, str] = {}
    for section, kind in (("apis", "api"), ("consumer_apps", "consumer")):
        items = data.get(section) or []
        if not isinstance(items, list):
            raise doc.error((section,), "must be a list")
        for i, item in enumerate(items):
            where: tuple[str | int, ...] = (section, i)
            if not isinstance(item, dict):
                raise doc.error(where, "must be a mapping")
            if kind == "api":
                name = _text(doc, item, where, "provider")
                api = _text(doc, item, where, "api")
                if api not in APIS:
                    raise doc.error((*where, "api"), f"unknown api {api!r}; one of {sorted(APIS)}")
                rules = _unscannable(doc, (*where, "unscannable"), item.get("unscannable", {}))
                upgrades = _websocket(doc, (*where, "websocket"), item.get("websocket", []))
                entry = HostEntry(name, api, kind, Handling.INTERCEPT, rules, websocket=upgrades)
                allowed = {"provider", "api", "hosts", "unscannable", "websocket"}
            else:
                name = _text(doc, item, where, "name")
                handling = item.get("handling", Handling.OBSERVE)
                if handling not in CONSUMER_HANDLING:
                    raise doc.error(
                        (*where, "handling"), f"must be one of {sorted(CONSUMER_HANDLING)}"
                    )
                entry = HostEntry(name, None, kind, handling)
                allowed = {"name", "hosts", "handling"}
            if extra := set(item) - allowed:
                raise doc.error((*where, sorted(extra)[0]), "unknown key")
            for j, host in enumerate(_hosts(doc, (*where, "hosts"), item.get("hosts"))):
                if host in seen:
                    raise doc.error(
                        (*where, "hosts", j), f"{host} is already listed by {seen[host]}"
                    )
                seen[host] = name
                entries.append((host, entry))
    default = data.get("unscannable", "block")
    if default not in UNSCANNABLE:
        raise doc.error(("unscannable",), f"must be one of {sorted(UNSCANNABLE)}")
    return Catalog(entries, default)


def _unscannable(
    doc: PolicyDocument, path: tuple[str | int, ...], value: object
) -> tuple[tuple[str, str], ...]:
    """Per-path actions for unreadable bodies: ``{/v1/audio/transcriptions: pass}``."""
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping of path prefix to block or pass")
    rules = []
    for prefix, action in value.items():
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise doc.error((*path, str(prefix)), "a path prefix starting with /")
        if action not in UNSCANNABLE:
            raise doc.error((*path, prefix), f"must be one of {sorted(UNSCANNABLE)}")
        rules.append((prefix, action))
    return tuple(sorted(rules, key=lambda r: len(r[0]), reverse=True))


def _websocket(doc: PolicyDocument, path: tuple[str | int, ...], value: object) -> tuple[str, ...]:
    """Path prefixes allowed to upgrade to a websocket: ``[/v1/realtime]``."""
    if not isinstance(value, list):
        raise doc.error(path, "must be a list of path prefixes")
    prefixes = []
    for i, prefix in enumerate(value):
        if (
            not isinstance(prefix, str)
            or not _PLAIN_PATH.fullmatch(prefix)
            or prefix.endswith("/")
            or "//" in prefix
            or _DOT_SEGMENT.search(prefix)
        ):
            raise doc.error(
                (*path, i),
                "a path prefix: starts with /, no query, no trailing /, no %, . or .. segments",
            )
        prefixes.append(prefix)
    return tuple(prefixes)


__all__ = ["Catalog", "Handling", "HostEntry", "PolicyError", "load_catalog"]
