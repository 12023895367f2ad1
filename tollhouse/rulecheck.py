"""Checking a whole rules folder at once: every policy file, and the names they share.

Security teams edit ``rules/`` by hand; ``tollhouse check`` (and ``tollhouse run`` before it
starts) runs every loader here so that a mistake is found before deployment, as one line naming
the file, the line and the field.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from tollhouse.policyfile import PolicyError


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The outcome for one policy file: ``error`` is None when it is valid."""

    file: Path
    what: str
    error: str | None = None
    absent: bool = False  # an optional file that is not there


def _loaders() -> list[tuple[str, str, bool, Callable[[Path], Any]]]:
    # Imported here: the DLP loader pulls in presidio, which takes seconds to import.
    from tollhouse.budget.policy import load_budget_policy
    from tollhouse.catalog import load_catalog
    from tollhouse.dlp import load_dlp_policy
    from tollhouse.identity.config import load_identities
    from tollhouse.injection import load_injection_policy
    from tollhouse.pricing import load_price_book

    # (file, what it decides, required, loader)
    return [
        ("hosts.yaml", "host catalog", True, load_catalog),
        ("dlp.yaml", "data leakage policy", True, load_dlp_policy),
        ("injection.yaml", "prompt-injection rules", True, load_injection_policy),
        ("identities.yaml", "identities and bindings", False, load_identities),
        ("budgets.yaml", "budgets", False, load_budget_policy),
        ("prices.yaml", "price overrides", False, load_price_book),
    ]


def check_rules(rules: Path) -> list[FileCheck]:
    """Load every policy file in ``rules``; never raises for a bad file."""
    results: list[FileCheck] = []
    loaded: dict[str, Any] = {}
    for name, what, required, load in _loaders():
        path = rules / name
        if not path.exists() and not required:
            results.append(FileCheck(path, what, absent=True))
            continue
        try:
            loaded[name] = load(path)
        except PolicyError as exc:
            results.append(FileCheck(path, what, str(exc)))
            continue
        results.append(FileCheck(path, what))
    results.extend(_check_profiles(rules, loaded))
    return results


def _check_profiles(rules: Path, loaded: dict[str, Any]) -> list[FileCheck]:
    """A policy name bound in identities.yaml is a profile across stages: each stage applies its
    section of that name or its default. A name no stage defines is almost surely a typo."""
    identities = loaded.get("identities.yaml")
    dlp, injection = loaded.get("dlp.yaml"), loaded.get("injection.yaml")
    if identities is None or dlp is None or injection is None:
        return []
    known = set(dlp.policies) | set(injection.policies)
    unknown = sorted(set(identities.policies) - known)
    if not unknown:
        return []
    message = (
        f"{rules / 'identities.yaml'}: policies: {', '.join(unknown)} defined neither in dlp.yaml "
        f"nor in injection.yaml (known: {', '.join(sorted(known))})"
    )
    return [FileCheck(rules / "identities.yaml", "policy names", message)]


def first_error(rules: Path) -> str | None:
    """The first problem in ``rules``, or None if every file is valid."""
    return next((c.error for c in check_rules(rules) if c.error), None)


# --- the deployment around the rules: CA, folders, port, state ------------------------------------

# mitmproxy options that would weaken interception if set in the certs folder's config.yaml (which
# mitmproxy reads at start): upstream TLS unverified or verified against another trust store,
# AI hosts passed through undecrypted, or certificates signed by another key.
WEAKENING_OPTIONS = {
    "ssl_insecure": "upstream certificates would not be verified",
    "ssl_verify_upstream_trusted_ca": "upstreams would be verified against another trust store",
    "ssl_verify_upstream_trusted_confdir": "upstreams would be verified against another store",
    "ignore_hosts": "matching hosts would pass through undecrypted",
    "allow_hosts": "other hosts would pass through undecrypted",
    "tcp_hosts": "matching hosts would be relayed as raw TCP",
    "certs": "clients would be shown certificates not issued by the interception CA",
}
EXPIRY_WARNING = datetime.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``tollhouse check --deployment``: level is ok, warn or error."""

    level: str
    what: str
    detail: str


def weakening_option(certs: Path) -> str | None:
    """Why mitmproxy's config file in ``certs`` must not be used, or None."""
    import yaml

    for name in ("config.yaml", "config.yml"):
        path = certs / name
        if not path.exists():
            continue
        try:
            options = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            return f"{path}: not readable as YAML"
        if not isinstance(options, dict):
            return f"{path}: must be a mapping of mitmproxy options"
        for option, why in WEAKENING_OPTIONS.items():
            if option in options and options[option] not in (None, False, [], ""):
                return f"{path} sets {option}: {why}; remove it"
    return None


def ca_problem(certs: Path, *, allow_unconstrained: bool = False) -> str | None:
    """Why the CA in ``certs`` must not sign the gateway's certificates, or None."""
    from tollhouse import castore, pki

    try:
        info = castore.describe(certs)
    except pki.CAError as exc:
        return str(exc)
    if problem := castore.signing_problem(info.cert):
        return f"{info.path}: {problem}"
    if info.permitted is None and not allow_unconstrained:
        return (
            f"{info.path} has no name constraints: a stolen key could impersonate any site. "
            f"Issue a constrained CA with `tollhouse ca rotate`, or pass --allow-unconstrained-ca"
        )
    return None


def check_deployment(
    rules: Path, data: Path, certs: Path, host: str, port: int, state: str, passphrase: bytes | None
) -> list[Finding]:
    """Everything a gateway needs besides valid rules; never raises."""
    findings = [_ca_files(certs, passphrase), *_ca_scope(rules, certs)]
    findings.append(_data_folder(data))
    from tollhouse.commands.run import check_mode

    mode_problem = check_mode("regular", host, port)
    findings.append(
        Finding("error", "port", mode_problem)
        if mode_problem
        else Finding("ok", "port", f"{host}:{port} is free")
    )
    if weak := weakening_option(certs):
        findings.append(Finding("error", "mitmproxy options", weak))
    if state.startswith(("redis://", "rediss://", "unix://")):
        findings.append(_redis(state))
    return findings


def _ca_files(certs: Path, passphrase: bytes | None) -> Finding:
    from tollhouse import castore, pki

    try:
        info = castore.describe(certs)
        if problem := castore.signing_problem(info.cert):
            return Finding("error", "CA", f"{info.path}: {problem}")
        if info.key_mode is None:
            return Finding("error", "CA key", f"{certs / pki.CA_KEY_FILE} is missing")
        for name in (pki.CA_KEY_FILE, pki.MITMPROXY_CA_FILE):
            if (certs / name).exists():
                pki._check_private(certs / name)
        key = pki.load_key(certs / pki.CA_KEY_FILE, passphrase)
    except (pki.CAError, OSError) as exc:
        return Finding("error", "CA", str(exc))
    if info.cert.public_key() != key.public_key():
        return Finding("error", "CA", f"{certs / pki.CA_KEY_FILE} does not belong to {info.path}")
    left = info.expires - datetime.datetime.now(datetime.UTC)
    if left < EXPIRY_WARNING:
        return Finding(
            "warn", "CA", f"{info.path} expires in {left.days} days: `tollhouse ca rotate` now"
        )
    return Finding("ok", "CA", f"{info.path}, key 0600, expires {info.expires:%Y-%m-%d}")


def _ca_scope(rules: Path, certs: Path) -> list[Finding]:
    """The constraints exist, and cover every host the catalog decrypts."""
    from tollhouse import castore, nameconstraints, pki
    from tollhouse.catalog import load_catalog

    try:
        info = castore.describe(certs)
        names, uncovered = nameconstraints.catalog_names(load_catalog(rules / "hosts.yaml"))
    except (pki.CAError, PolicyError, OSError):
        return []  # reported by the CA and rules lines
    if info.permitted is None:
        return [Finding("error", "CA constraints", ca_problem(certs) or "none")]
    limits = nameconstraints.of(info.cert)
    assert limits is not None
    missing = [n for n in names if not nameconstraints.allows(limits, x509.DNSName(n))]
    findings = []
    if missing or uncovered:
        gaps = missing + uncovered
        shown = ", ".join(gaps[:5]) + (" ..." if len(gaps) > 5 else "")
        findings.append(
            Finding(
                "error",
                "CA constraints",
                f"the catalog decrypts hosts the CA cannot vouch for ({shown}): clients will "
                f"refuse them; `tollhouse ca rotate` issues a CA from the current catalog",
            )
        )
    ips = "IP addresses excluded" if info.ips_excluded else "IP addresses NOT excluded"
    level = "ok" if info.ips_excluded else "warn"
    findings.append(
        Finding(level, "CA constraints", f"{len(info.permitted)} DNS subtrees permitted, {ips}")
    )
    return findings


def _data_folder(data: Path) -> Finding:
    if not data.exists():
        return Finding("ok", "data folder", f"{data} will be created (mode 0700)")
    mode = stat.S_IMODE(data.stat().st_mode)
    if mode & 0o077:
        return Finding(
            "error",
            "data folder",
            f"{data} has mode {mode:04o}: the audit log holds prompts; chmod 700 {data}",
        )
    if not os.access(data, os.W_OK | os.X_OK):
        return Finding("error", "data folder", f"{data} is not writable by this user")
    return Finding("ok", "data folder", f"{data} mode {mode:04o}")


def _redis(state: str) -> Finding:
    from tollhouse.budget.store import StateError, open_store

    try:
        open_store(state, Path("."), read_only=True).close()  # pings Redis
    except StateError as exc:
        return Finding("error", "state", str(exc))
    return Finding("ok", "state", "Redis answers")
