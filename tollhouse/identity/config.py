"""The identity file (``rules/identities.yaml``): loading and validation.

It names the teams, users, networks and applications the gateway knows, how callers prove who they
are (proxy authentication: Basic against a credentials file, Bearer JWT against a JWKS file), and
the bindings identity x application -> policy. Every value is checked on load; an error names
``file:line: field``. :func:`load_identities` returns a complete configuration or raises.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollhouse.policyfile import FieldPath, PolicyDocument, PolicyError, load_policy_file

__all__ = [
    "Application",
    "BasicConfig",
    "IdentityConfig",
    "JwtConfig",
    "Mode",
    "Network",
    "PolicyError",
    "load_identities",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class Mode:
    """What the gateway does with a caller it cannot attribute and bind to a policy."""

    ENFORCE = "enforce"  # refuse (403, or a 407 challenge where proxy authentication would help)
    MONITOR = "monitor"  # pass, and mark the exchange as shadow AI with the reason

    ALL = frozenset({ENFORCE, MONITOR})


@dataclass(frozen=True, slots=True)
class Network:
    """A client address range: its mode, and the device or site and team it may stand for."""

    cidr: IPNetwork
    name: str | None = None  # a device or site: the caller when nobody authenticates
    team: str | None = None
    mode: str | None = None  # None: the global mode


@dataclass(frozen=True, slots=True)
class Application:
    """A sanctioned application, and the fingerprints of the provider keys registered to it."""

    name: str
    team: str | None = None
    keys: frozenset[str] = frozenset()  # empty: the app may use any key


@dataclass(frozen=True, slots=True)
class BasicConfig:
    """``Proxy-Authorization: Basic``, checked against a file of ``user:hash`` lines."""

    credentials: Path


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """``Proxy-Authorization: Bearer <JWT>``, verified against a JWKS file."""

    jwks: Path
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    user_claim: str = "sub"
    team_claim: str | None = None
    leeway_seconds: int = 30


@dataclass(frozen=True)
class IdentityConfig:
    """A validated identity file."""

    file: str
    mode: str = Mode.MONITOR
    app_header: str = "X-Tollhouse-App"
    realm: str = "tollhouse"
    basic: BasicConfig | None = None
    jwt: JwtConfig | None = None
    teams: frozenset[str] = frozenset()
    users: dict[str, str | None] = field(default_factory=dict)  # user id → team
    networks: tuple[Network, ...] = ()
    applications: dict[str, Application] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # key fingerprint → application
    policies: frozenset[str] = frozenset()
    bindings: dict[tuple[str, str], str] = field(default_factory=dict)  # (who, app) → policy

    @property
    def proxy_auth(self) -> bool:
        """Whether callers can authenticate to the proxy (and so may be challenged with 407)."""
        return self.basic is not None or self.jwt is not None


def _mapping(doc: PolicyDocument, path: FieldPath, value: Any, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping")
    if extra := set(value) - allowed:
        raise doc.error(
            (*path, sorted(extra)[0]), f"unknown key; expected one of {sorted(allowed)}"
        )
    return value


def _list(doc: PolicyDocument, path: FieldPath, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise doc.error(path, "must be a list")
    return value


def _name(doc: PolicyDocument, path: FieldPath, value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise doc.error(path, f"{what} must be text of letters, digits and ._@- (up to 128)")
    return value


def _optional(
    doc: PolicyDocument, path: FieldPath, value: Any, known: frozenset[str]
) -> str | None:
    if value is None:
        return None
    name = _name(doc, path, value)
    if name not in known:
        raise doc.error(path, f"unknown team {name!r}; declare it under `teams`")
    return name


def _mode(doc: PolicyDocument, path: FieldPath, value: Any) -> str:
    if value not in Mode.ALL:
        raise doc.error(path, f"must be one of {sorted(Mode.ALL)}")
    return str(value)


def _file(doc: PolicyDocument, path: FieldPath, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise doc.error(path, "must be a file path (relative to this file's folder)")
    return (doc.file.parent / value).resolve()


def _text(doc: PolicyDocument, path: FieldPath, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise doc.error(path, "required, must be text")
    return value


def _proxy_auth(doc: PolicyDocument, raw: Any) -> tuple[str, BasicConfig | None, JwtConfig | None]:
    if raw is None:
        return "tollhouse", None, None
    data = _mapping(doc, ("proxy_auth",), raw, {"realm", "basic", "jwt"})
    realm = data.get("realm", "tollhouse")
    if not isinstance(realm, str) or not _NAME.match(realm):
        raise doc.error(("proxy_auth", "realm"), "must be a short name")
    basic = None
    if (b := data.get("basic")) is not None:
        b = _mapping(doc, ("proxy_auth", "basic"), b, {"credentials"})
        basic = BasicConfig(
            _file(doc, ("proxy_auth", "basic", "credentials"), b.get("credentials"))
        )
    jwt = None
    if (j := data.get("jwt")) is not None:
        where: FieldPath = ("proxy_auth", "jwt")
        allowed = {
            "jwks",
            "issuer",
            "audience",
            "algorithms",
            "user_claim",
            "team_claim",
            "leeway_seconds",
        }
        j = _mapping(doc, where, j, allowed)
        algorithms = j.get("algorithms", ["RS256", "ES256"])
        if not isinstance(algorithms, list) or not algorithms:
            raise doc.error((*where, "algorithms"), "must be a non-empty list")
        for i, alg in enumerate(algorithms):
            if alg not in JWT_ALGORITHMS:  # never "none" or a shared-secret HMAC
                raise doc.error(
                    (*where, "algorithms", i), f"must be one of {sorted(JWT_ALGORITHMS)}"
                )
        leeway = j.get("leeway_seconds", 30)
        if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= 300:
            raise doc.error((*where, "leeway_seconds"), "must be a whole number from 0 to 300")
        team_claim = j.get("team_claim")
        jwt = JwtConfig(
            jwks=_file(doc, (*where, "jwks"), j.get("jwks")),
            issuer=_text(doc, (*where, "issuer"), j.get("issuer")),
            audience=_text(doc, (*where, "audience"), j.get("audience")),
            algorithms=tuple(algorithms),
            user_claim=_text(doc, (*where, "user_claim"), j.get("user_claim", "sub")),
            team_claim=None
            if team_claim is None
            else _text(doc, (*where, "team_claim"), team_claim),
            leeway_seconds=leeway,
        )
    return realm, basic, jwt


def _networks(doc: PolicyDocument, raw: Any, teams: frozenset[str]) -> tuple[Network, ...]:
    out: list[Network] = []
    seen: dict[IPNetwork, int] = {}
    for i, item in enumerate(_list(doc, ("networks",), raw)):
        where: FieldPath = ("networks", i)
        item = _mapping(doc, where, item, {"cidr", "name", "team", "mode"})
        try:
            cidr = ipaddress.ip_network(str(item.get("cidr")), strict=True)
        except ValueError as exc:
            raise doc.error((*where, "cidr"), f"not a network range: {exc}") from None
        if cidr in seen:
            raise doc.error((*where, "cidr"), f"{cidr} is already listed as networks[{seen[cidr]}]")
        seen[cidr] = i
        name = item.get("name")
        out.append(
            Network(
                cidr=cidr,
                name=None if name is None else _name(doc, (*where, "name"), name),
                team=_optional(doc, (*where, "team"), item.get("team"), teams),
                mode=None if "mode" not in item else _mode(doc, (*where, "mode"), item["mode"]),
            )
        )
    return tuple(out)


def _applications(
    doc: PolicyDocument, raw: Any, teams: frozenset[str]
) -> tuple[dict[str, Application], dict[str, str]]:
    apps: dict[str, Application] = {}
    keys: dict[str, str] = {}
    for i, item in enumerate(_list(doc, ("applications",), raw)):
        where: FieldPath = ("applications", i)
        item = _mapping(doc, where, item, {"name", "team", "keys"})
        name = _name(doc, (*where, "name"), item.get("name"))
        if name in apps:
            raise doc.error((*where, "name"), f"application {name!r} is listed twice")
        fingerprints = []
        for j, fp in enumerate(_list(doc, (*where, "keys"), item.get("keys"))):
            if not isinstance(fp, str) or not _FINGERPRINT.match(fp):
                raise doc.error(
                    (*where, "keys", j),
                    "must be a key fingerprint (16 hex digits from `tollhouse shadow fingerprint`),"
                    " never the key itself",
                )
            if fp in keys:
                raise doc.error((*where, "keys", j), f"already registered to {keys[fp]!r}")
            keys[fp] = name
            fingerprints.append(fp)
        team = _optional(doc, (*where, "team"), item.get("team"), teams)
        apps[name] = Application(name, team, frozenset(fingerprints))
    return apps, keys


def _who(doc: PolicyDocument, path: FieldPath, value: Any, config: dict[str, Any]) -> str:
    if value == "*":
        return "*"
    kind, sep, name = str(value).partition(":")
    if not sep or kind not in ("user", "team", "device"):
        raise doc.error(path, "must be user:ID, team:NAME, device:NAME or *")
    known = {"user": config["users"], "team": config["teams"], "device": config["devices"]}[kind]
    if kind != "user" and name not in known:  # JWT users need not be listed; teams and devices do
        raise doc.error(path, f"unknown {kind} {name!r}")
    return f"{kind}:{_name(doc, path, name)}"


def _bindings(doc: PolicyDocument, raw: Any, config: dict[str, Any]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for i, item in enumerate(_list(doc, ("bindings",), raw)):
        where: FieldPath = ("bindings", i)
        item = _mapping(doc, where, item, {"who", "apps", "policy"})
        who = item.get("who")
        apps = item.get("apps")
        if not isinstance(who, list) or not who:
            raise doc.error((*where, "who"), "must be a non-empty list")
        if not isinstance(apps, list) or not apps:
            raise doc.error((*where, "apps"), "must be a non-empty list of application names or *")
        policy = item.get("policy")
        if policy not in config["policies"]:
            raise doc.error(
                (*where, "policy"), f"must be one of `policies`: {sorted(config['policies'])}"
            )
        for j, w in enumerate(who):
            principal = _who(doc, (*where, "who", j), w, config)
            for k, app in enumerate(apps):
                if app != "*" and app not in config["apps"]:
                    raise doc.error((*where, "apps", k), f"unknown application {app!r}")
                if (principal, app) in out:
                    raise doc.error((*where, "who", j), f"{principal} is already bound to {app}")
                out[(principal, app)] = str(policy)
    return out


def parse_identities(doc: PolicyDocument) -> IdentityConfig:
    """Validate a parsed identity file. Raises :class:`PolicyError` naming file, line and field."""
    allowed = {
        "version",
        "mode",
        "app_header",
        "proxy_auth",
        "teams",
        "users",
        "networks",
        "applications",
        "policies",
        "bindings",
    }
    data = _mapping(doc, (), doc.data, allowed)
    mode = _mode(doc, ("mode",), data.get("mode", Mode.MONITOR))
    header = data.get("app_header", "X-Tollhouse-App")
    if not isinstance(header, str) or not _HEADER.match(header):
        raise doc.error(("app_header",), "must be an HTTP header name")
    realm, basic, jwt = _proxy_auth(doc, data.get("proxy_auth"))
    teams = frozenset(
        _name(doc, ("teams", i), t) for i, t in enumerate(_list(doc, ("teams",), data.get("teams")))
    )
    users: dict[str, str | None] = {}
    for i, item in enumerate(_list(doc, ("users",), data.get("users"))):
        item = _mapping(doc, ("users", i), item, {"id", "team"})
        uid = _name(doc, ("users", i, "id"), item.get("id"))
        if uid in users:
            raise doc.error(("users", i, "id"), f"user {uid!r} is listed twice")
        users[uid] = _optional(doc, ("users", i, "team"), item.get("team"), teams)
    networks = _networks(doc, data.get("networks"), teams)
    apps, keys = _applications(doc, data.get("applications"), teams)
    policies = frozenset(
        _name(doc, ("policies", i), p)
        for i, p in enumerate(_list(doc, ("policies",), data.get("policies")))
    )
    known = {
        "users": users,
        "teams": teams,
        "devices": {n.name for n in networks if n.name},
        "apps": apps,
        "policies": policies,
    }
    bindings = _bindings(doc, data.get("bindings"), known)
    return IdentityConfig(
        file=str(doc.file),
        mode=mode,
        app_header=header,
        realm=realm,
        basic=basic,
        jwt=jwt,
        teams=teams,
        users=users,
        networks=networks,
        applications=apps,
        keys=keys,
        policies=policies,
        bindings=bindings,
    )


def load_identities(path: Path | str) -> IdentityConfig:
    """Load and validate ``identities.yaml``. Raises :class:`PolicyError` on any mistake."""
    return parse_identities(load_policy_file(Path(path)))
