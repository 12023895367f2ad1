"""Which names the interception CA may vouch for: X.509 Name Constraints from the host catalog.

A DNS name constraint permits a domain and every name below it (RFC 5280 4.2.1.10), so each
catalog entry becomes the narrowest set of subtrees that covers it:

``api.openai.com``
    itself (and, unavoidably, names below it; the provider owns those too).
``*.openai.azure.com``
    the parent ``openai.azure.com``: a whole left-most label stands for any resource name, and
    everything below ``openai.azure.com`` belongs to the same Azure service. The parent must have
    at least three labels, so no pattern can turn into ``azure.com`` or a whole top-level domain.
``bedrock-runtime.*.amazonaws.com``, ``*-aiplatform.googleapis.com``
    the only subtree covering every expansion is ``amazonaws.com`` / ``googleapis.com``: all of
    AWS (S3, IAM, STS...) or all of Google's APIs. A stolen key could then impersonate those, so
    instead the ``*`` is expanded to each region the provider publishes (below). A region added
    later is not covered until the CA is rotated with it (or ``--permit``); until then clients
    refuse the gateway's certificate for it: fail closed, never a bypass.

IP addresses are excluded outright (0.0.0.0/0 and ::/0): the CA never vouches for an IP.

Nothing here imports mitmproxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from cryptography import x509

from tollhouse.catalog import Catalog, Handling

# Regions where the provider serves the API, for patterns whose `*` is not a whole left-most label.
# Source: the providers' region lists (AWS incl. GovCloud; Google Cloud), 2025.
AWS_REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "ca-central-1",
    "ca-west-1",
    "mx-central-1",
    "sa-east-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
]
GCP_REGIONS = [
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "northamerica-south1",
    "southamerica-east1",
    "southamerica-west1",
    "europe-central2",
    "europe-north1",
    "europe-north2",
    "europe-southwest1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west6",
    "europe-west8",
    "europe-west9",
    "europe-west10",
    "europe-west12",
    "me-central1",
    "me-central2",
    "me-west1",
    "africa-south1",
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-south2",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
]
REGIONS = {"amazonaws.com": AWS_REGIONS, "googleapis.com": GCP_REGIONS}

EXCLUDED_IPS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
_MIN_PARENT_LABELS = 3


def catalog_names(catalog: Catalog) -> tuple[list[str], list[str]]:
    """The DNS subtrees covering every host the gateway decrypts or blocks (API hosts, consumer
    apps in ``inspect``/``block``), and the patterns that could not be covered narrowly."""
    names: list[str] = []
    uncovered: list[str] = []
    exact, patterns = catalog.entries()
    for host, entry in exact + patterns:
        if entry.handling == Handling.OBSERVE:
            continue  # never decrypted: the gateway never shows a certificate for it
        expanded = _subtrees(host)
        if expanded is None:
            uncovered.append(host)
        else:
            names.extend(expanded)
    return _dedupe(names), uncovered


def _subtrees(host: str) -> list[str] | None:
    if "*" not in host:
        return [host]
    first, _, parent = host.partition(".")
    if first == "*" and "*" not in parent:
        return [parent] if parent.count(".") + 1 >= _MIN_PARENT_LABELS else None
    for suffix, regions in REGIONS.items():
        if host.endswith("." + suffix) and host.count("*") == 1:
            return [host.replace("*", region) for region in regions]
    return None


def _dedupe(names: Iterable[str]) -> list[str]:
    """Sorted, without duplicates and without names already inside another subtree."""
    unique = sorted({n.lower().rstrip(".") for n in names})
    return [n for n in unique if not any(n != p and _within(n, p) for p in unique)]


def check_permit(name: str) -> str:
    """An operator's ``--permit`` name, lower-cased; raises ValueError if it is not a DNS name
    or is too broad (one label, as a top-level domain is; ``localhost`` excepted, for a reverse
    proxy on a workstation)."""
    value = name.strip().lower().rstrip(".")
    labels = value.split(".")
    if (len(labels) < 2 and value != "localhost") or not all(
        label and len(label) < 64 and label.replace("-", "").isalnum() for label in labels
    ):
        raise ValueError(f"--permit: not a DNS name below a top-level domain: {name!r}")
    return value


def build(permitted: Sequence[str]) -> x509.NameConstraints:
    """Name Constraints permitting ``permitted`` (DNS subtrees) and excluding every IP."""
    return x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(n) for n in _dedupe(permitted)],
        excluded_subtrees=[x509.IPAddress(net) for net in EXCLUDED_IPS],
    )


def of(cert: x509.Certificate) -> x509.NameConstraints | None:
    """The certificate's Name Constraints, or None."""
    try:
        return cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def permitted_dns(constraints: x509.NameConstraints) -> list[str]:
    return [
        str(n.value) for n in constraints.permitted_subtrees or () if isinstance(n, x509.DNSName)
    ]


def allows(constraints: x509.NameConstraints, name: x509.GeneralName) -> bool:
    """True when a certificate under these constraints may carry ``name`` (DNS or IP; other
    types are never allowed, the gateway does not issue them)."""
    permitted = constraints.permitted_subtrees or []
    excluded = constraints.excluded_subtrees or []
    if isinstance(name, x509.DNSName):
        value = name.value.lower()
        if value.endswith("."):
            return False  # verifiers compare literally: `api.openai.com.` is outside the subtree
        if value.startswith("*."):
            value = value[2:]  # a wildcard is within a subtree if the name under it is
        if any(isinstance(e, x509.DNSName) and _within(value, e.value) for e in excluded):
            return False
        dns = [p.value for p in permitted if isinstance(p, x509.DNSName)]
        return not dns or any(_within(value, p) for p in dns)
    if isinstance(name, x509.IPAddress):
        address = name.value
        nets = [e.value for e in excluded if isinstance(e, x509.IPAddress)]
        if any(_ip_in(address, net) for net in nets):
            return False
        ips = [p.value for p in permitted if isinstance(p, x509.IPAddress)]
        return not ips or any(_ip_in(address, net) for net in ips)
    return False


def _ip_in(address: object, net: object) -> bool:
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address) and isinstance(
        net, ipaddress.IPv4Network | ipaddress.IPv6Network
    ):
        return address.version == net.version and address in net
    return False


def _within(name: str, subtree: str) -> bool:
    subtree = subtree.lower().lstrip(".").rstrip(".")
    return name == subtree or name.endswith("." + subtree)
