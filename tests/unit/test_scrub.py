"""The scrubber: client text for the audit log and the gateway log, through the DLP engine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tollhouse.dlp import DlpScanner, load_dlp_policy
from tollhouse.dlp.policy import ActionSpec, DlpPolicy, NamedPolicy
from tollhouse.dlp.scrub import SCRUB_LIMIT, fingerprint, scrub, scrub_path

RULES = Path(__file__).resolve().parents[2] / "rules"
AWS = "AKIAQ7RZ3MXKT2LWPV4N"
GITHUB = "ghp_Zq3xY8wLm2Pa9Rt5Kv7Nb4Hc6Jd1Fs0Ge2Qw"
EMAIL = "alice.jones@acme-corp.com"


@pytest.fixture(scope="module")
def scanner() -> DlpScanner:
    return DlpScanner(load_dlp_policy(RULES / "dlp.yaml"))


def test_a_key_in_a_path_segment_is_replaced_by_its_type(scanner):
    assert scrub(scanner, f"/v1/files/{AWS}/content") == "/v1/files/[AWS_ACCESS_KEY_ID]/content"


def test_a_json_key_quoted_in_a_parse_error_is_replaced(scanner):
    reason = f"invalid request: $.messages[0].{GITHUB}: expected string, got number"
    scrubbed = scrub(scanner, reason)
    assert GITHUB not in scrubbed
    assert scrubbed == "invalid request: $.messages[0].[GITHUB_TOKEN]: expected string, got number"


def test_every_finding_goes_even_where_the_policy_allows_it():
    # A policy that lets email addresses through to the provider still keeps them out of the log.
    allow = NamedPolicy("default", {"default": ActionSpec(action="allow")})
    permissive = DlpScanner(DlpPolicy(policies={"default": allow}))
    assert permissive.scan_text(EMAIL)[0].action == "allow"
    scrubbed = scrub(permissive, f"gpt-4o {EMAIL} {AWS}")
    assert scrubbed == "gpt-4o [EMAIL_ADDRESS] [AWS_ACCESS_KEY_ID]"


def test_plain_text_is_kept_as_it_is(scanner):
    for text in ("/v1/chat/completions", "gpt-4o-mini", "$.messages[2].content", ""):
        assert scrub(scanner, text) == text


def test_without_a_scanner_the_value_becomes_a_fingerprint():
    scrubbed = scrub(None, f"/v1/files/{AWS}")
    assert AWS not in scrubbed and scrubbed.startswith("[unscanned:")
    assert scrub(None, f"/v1/files/{AWS}") == scrubbed  # same value, same fingerprint
    assert scrub(None, "/v1/files/other") != scrubbed


def test_a_failing_scanner_gives_a_fingerprint_never_the_text(scanner, monkeypatch):
    def broken(text: str):
        raise RuntimeError(f"cannot scan {text}")  # a message quoting the value

    monkeypatch.setattr(scanner.detector, "detect", broken)
    scrubbed = scrub(scanner, f"/v1/files/{AWS}")
    assert AWS not in scrubbed and scrubbed.startswith("[unscannable:")


def test_a_non_string_gives_a_fingerprint(scanner):
    assert scrub(scanner, 12345).startswith("[unscannable:")  # type: ignore[arg-type]
    assert fingerprint(b"bytes").startswith("[unscanned:")  # type: ignore[arg-type]


def test_long_text_is_clipped_with_a_marker(scanner):
    text = "word " * 2000
    scrubbed = scrub(scanner, text)
    assert len(scrubbed) < SCRUB_LIMIT + 60
    assert scrubbed.endswith(f"[... clipped: {len(text)} characters in all]")


@pytest.mark.parametrize("offset", range(-25, 5))
def test_a_key_at_the_cut_leaves_no_part_of_itself(scanner, offset):
    pad = "a " * ((SCRUB_LIMIT + offset) // 2)
    text = pad + AWS + " tail" * 500
    scrubbed = scrub(scanner, text)
    assert "AKIA" not in scrubbed and AWS[-6:] not in scrubbed


def test_a_long_run_without_spaces_at_the_cut_is_dropped_not_kept_in_part(scanner):
    secret_like = "Zq3xY8wLm2Pa9Rt5" * 400  # 6400 characters, no detector matches it whole
    scrubbed = scrub(scanner, "/v1/files/" + secret_like)
    assert "Zq3xY8wLm2Pa9Rt5" not in scrubbed


def test_a_huge_value_is_scrubbed_in_bounded_time(scanner):
    text = f"{AWS} " * 200_000  # 4 MB
    started = time.perf_counter()
    scrubbed = scrub(scanner, text)
    assert time.perf_counter() - started < 0.5
    assert "AKIA" not in scrubbed


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/files/%41{AWS[1:]}",  # one escaped letter
        f"/v1/files/%2541{AWS[1:]}",  # escaped twice
        "/v1/files/" + "".join(f"%{ord(c):02X}" for c in AWS),  # every letter
    ],
)
def test_a_key_hidden_in_percent_escapes_of_a_path_is_found(scanner, path):
    scrubbed = scrub_path(scanner, path)
    assert scrubbed == "/v1/files/[AWS_ACCESS_KEY_ID]"


def test_a_path_without_hidden_values_keeps_its_escapes(scanner):
    assert scrub_path(scanner, "/v1/models/gpt%2D4o") == "/v1/models/gpt%2D4o"
    assert scrub_path(scanner, f"/v1/files/{AWS}") == "/v1/files/[AWS_ACCESS_KEY_ID]"


def test_a_path_escaped_too_many_times_is_fingerprinted(scanner):
    path = "/v1/files/%2525252541" + AWS[1:]
    assert scrub_path(scanner, path).startswith("[unscannable:")
    assert scrub_path(None, path).startswith("[unscanned:")
