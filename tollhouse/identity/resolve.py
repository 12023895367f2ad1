"""Who is calling, with which application, under which policy: the identity stage's engine.

Sources, first match wins, in this order:

- **who** (``user_id``): proxy authentication (Bearer JWT or Basic, whichever the client sent),
  then the client address (a network range with a ``name``: a device or site);
- **application** (``app``): the fingerprint of the provider API key, when it is registered to an
  application, then the application header (default ``X-Tollhouse-App``);
- **team**: the caller's (JWT claim or ``users``), then the network range's, then the application's.

The binding for (who, application) is the most specific one: ``user:``/``device:`` before
``team:`` before ``*``, and a named application before ``*``. An exchange that lacks any of these
is shadow AI, with every reason recorded; in enforce mode it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tollhouse.identity import keys
from tollhouse.identity.basic import Credentials
from tollhouse.identity.config import IdentityConfig, Mode, load_identities
from tollhouse.identity.networks import NetworkTable
from tollhouse.identity.principal import AuthFailure, Principal, Source
from tollhouse.identity.proxyauth import ProxyAuthenticator
from tollhouse.identity.tokens import JwtVerifier

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Reason:
    """Why an exchange is shadow AI: stable codes that lead each ``shadow_reason`` part."""

    AUTH_FAILED = "auth-failed"
    NO_IDENTITY = "no-identity"
    NO_APP = "no-app"
    UNKNOWN_APP = "unknown-app"
    UNREGISTERED_KEY = "unregistered-key"
    SEVERAL_KEYS = "several-keys"
    NO_BINDING = "no-binding"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The identity of one exchange, its policy, and what (if anything) is missing."""

    mode: str
    user_id: str | None = None
    team: str | None = None
    app: str | None = None
    source: str | None = None  # e.g. "basic+header": who came from Basic, the app from the header
    policy: str | None = None
    key_fingerprint: str | None = None
    reasons: tuple[str, ...] = ()  # "code: detail", one per missing part
    identified: bool = False  # a principal was found

    @property
    def shadow(self) -> bool:
        return bool(self.reasons)

    @property
    def shadow_reason(self) -> str | None:
        return "; ".join(self.reasons) or None

    @property
    def refused(self) -> bool:
        return self.mode == Mode.ENFORCE and self.shadow

    def message(self) -> str:
        """What the client is told when enforce mode refuses: what is missing, no secrets."""
        details = [r.partition(": ")[2] for r in self.reasons]
        return "not attributed to an identity and application bound to a policy: " + "; ".join(
            details
        )


class Identifier:
    """Everything the identity stage needs, precomputed from the identity file."""

    def __init__(self, config: IdentityConfig, secret: bytes) -> None:
        self.config = config
        self.secret = secret
        self.networks = NetworkTable(config.networks)
        basic = Credentials.load(config.basic.credentials) if config.basic else None
        jwt = JwtVerifier(config.jwt, config.users) if config.jwt else None
        self.auth = ProxyAuthenticator(basic, jwt, config.users)
        self.app_header = config.app_header.lower()

    @classmethod
    def load(cls, path: Path | str, data_dir: Path | str) -> Identifier:
        """Load the identity file (and its credentials and JWKS files) and the fingerprint
        secret. Raises :class:`~tollhouse.policyfile.PolicyError` on any mistake."""
        return cls(load_identities(path), keys.load_secret(data_dir))

    def mode(self, client_ip: str | None) -> str:
        """The mode for a client: the most specific range that sets one, else the global one."""
        net = self.networks.match(client_ip)
        return net.mode if net is not None and net.mode else self.config.mode

    def device(self, client_ip: str | None) -> Principal | None:
        """The device or site a client address stands for: the most specific named range."""
        net = self.networks.match(client_ip)
        if net is None or net.name is None:
            return None
        return Principal(net.name, net.team, Source.NETWORK)

    def resolve(
        self,
        *,
        client_ip: str | None,
        principal: Principal | None = None,
        failure: AuthFailure | None = None,
        app_name: str | None = None,
        key: str | None = None,
        other_keys: Sequence[str] = (),
    ) -> Verdict:
        """Combine what the request carries into a verdict. ``principal`` and ``failure`` come
        from proxy authentication; ``app_name`` from the application header; ``key`` is the
        provider API key (only its fingerprint is kept), ``other_keys`` any further ones the
        request carries: a registered key beside another proves nothing, since the provider may
        use the other (a decoy)."""
        net = self.networks.match(client_ip)
        mode = self.mode(client_ip)
        reasons: list[str] = []
        if failure is not None:
            reasons.append(f"{Reason.AUTH_FAILED}: {failure.message}")
        who = principal or self.device(client_ip)
        if who is None and failure is None:
            reasons.append(
                f"{Reason.NO_IDENTITY}: no identity (no proxy credentials, and the client "
                "address is not a registered device)"
            )

        fp = keys.fingerprint(self.secret, key) if key else None
        apps = self.config.applications
        app, app_source = None, None
        if other_keys:
            shown = ", ".join(keys.fingerprint(self.secret, k) for k in (key or "", *other_keys))
            reasons.append(
                f"{Reason.SEVERAL_KEYS}: several provider API keys in one request ({shown}); "
                "the provider may use any of them"
            )
        if fp is not None and fp in self.config.keys and not other_keys:
            app, app_source = self.config.keys[fp], Source.KEY
        elif app_name:
            app_name = app_name.strip()
            if app_name in apps:
                app, app_source = app_name, Source.HEADER
            else:
                shown = repr(app_name) if _SAFE.match(app_name) else "(unreadable name)"
                reasons.append(f"{Reason.UNKNOWN_APP}: unknown application {shown}")
        if fp is not None and app_source != Source.KEY:
            if app is None:
                reasons.append(f"{Reason.UNREGISTERED_KEY}: API key {fp} is not registered")
            elif apps[app].keys:  # the app names its keys: another key is not the app's
                reasons.append(
                    f"{Reason.UNREGISTERED_KEY}: API key {fp} is not registered to {app!r}"
                )
        if app is None and not app_name:
            header = self.config.app_header
            reasons.append(
                f"{Reason.NO_APP}: no application (no {header} header, no registered API key)"
            )

        team = (who.team if who else None) or (net.team if net else None)
        team = team or (apps[app].team if app else None)
        policy = None
        if who is not None and app is not None:
            policy = self._binding(who, team, app)
            if policy is None:
                reasons.append(
                    f"{Reason.NO_BINDING}: no policy binds {_who(who)}"
                    f"{f' (team {team})' if team else ''} to application {app!r}"
                )
        source = "+".join(s for s in (who.source if who else None, app_source) if s) or None
        return Verdict(
            mode=mode,
            user_id=who.user_id if who else None,
            team=team,
            app=app,
            source=source,
            policy=policy,
            key_fingerprint=fp,
            reasons=tuple(reasons),
            identified=who is not None,
        )

    def _binding(self, who: Principal, team: str | None, app: str) -> str | None:
        bindings = self.config.bindings
        candidates = [_who(who)]
        if team:
            candidates.append(f"team:{team}")
        candidates.append("*")
        for principal in candidates:
            for name in (app, "*"):
                if (policy := bindings.get((principal, name))) is not None:
                    return policy
        return None


def _who(principal: Principal) -> str:
    kind = "device" if principal.source == Source.NETWORK else "user"
    return f"{kind}:{principal.user_id}"
