"""Data loss prevention: find PII, secrets and custom entities in prompts and act by policy.

Public surface for the addon and the ``tollhouse scan`` command::

    policy = load_dlp_policy("rules/dlp.yaml")     # PolicyError names file:line:field
    scanner = DlpScanner(policy)                    # build once per policy
    result = scanner.inspect(exchange, "standard")  # DlpError: fail closed, block
    Restorer(result.restore_map).feed(chunk)        # response side, streamed or not
"""

from tollhouse.dlp.policy import DlpPolicy, PolicyError, load_dlp_policy
from tollhouse.dlp.restore import Restorer
from tollhouse.dlp.scanner import DlpError, DlpResult, DlpScanner, Finding, TooLargeToScan

__all__ = [
    "DlpError",
    "DlpPolicy",
    "DlpResult",
    "DlpScanner",
    "Finding",
    "PolicyError",
    "Restorer",
    "TooLargeToScan",
    "load_dlp_policy",
]
