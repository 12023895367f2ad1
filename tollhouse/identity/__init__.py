"""Zero-trust identity: who calls, with which application, under which policy.

``config`` loads ``rules/identities.yaml``; ``proxyauth`` (with ``basic`` and ``tokens``) checks
proxy credentials; ``networks`` maps client addresses to ranges; ``keys`` finds and fingerprints
provider API keys; ``resolve`` combines them into a :class:`~tollhouse.identity.resolve.Verdict`;
``report`` reads the shadow-AI picture back from the audit log. No mitmproxy import here.
"""

from tollhouse.identity.config import IdentityConfig, Mode, load_identities
from tollhouse.identity.principal import AuthFailure, Principal, Source
from tollhouse.identity.resolve import Identifier, Reason, Verdict

__all__ = [
    "AuthFailure",
    "Identifier",
    "IdentityConfig",
    "Mode",
    "Principal",
    "Reason",
    "Source",
    "Verdict",
    "load_identities",
]
