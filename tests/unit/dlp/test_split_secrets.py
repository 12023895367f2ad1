"""Keys split into fragments, in one segment or across messages, are redacted in every piece."""

from __future__ import annotations

import itertools
import random
import string
import time
import zlib
from dataclasses import replace

import pytest

from tests.unit.dlp.conftest import ALNUM, rand
from tollhouse.dlp import DlpScanner
from tollhouse.dlp.policy import ActionSpec, NamedPolicy
from tollhouse.dlp.split import SplitFinder, github_checksum, merge_fragments
from tollhouse.exchange import Exchange, Role, Segment

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
B32 = string.ascii_uppercase + "234567"


def b62(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(6, "0")


def github(seed: int, prefix: str = "ghp_") -> str:
    """A GitHub token whose last 6 characters are the CRC32 of the 30 before, as GitHub's are."""
    body = rand(ALNUM, 30, seed)
    return prefix + body + b62(zlib.crc32(body.encode()))


def exchange(*texts: str) -> Exchange:
    roles = [Role.USER if i % 2 == 0 else Role.ASSISTANT for i in range(len(texts))]
    return Exchange(
        "openai",
        "openai",
        "chat",
        "/v1/chat/completions",
        segments=[
            Segment(r, ("messages", i, "content"), t)
            for i, (r, t) in enumerate(zip(roles, texts, strict=True))
        ],
    )


def pieces(key: str, *cuts: int) -> list[str]:
    bounds = [0, *cuts, len(key)]
    return [key[a:b] for a, b in itertools.pairwise(bounds)]


def assert_gone(ex: Exchange, key: str, parts: list[str]) -> None:
    whole = "\n".join(s.text for s in ex.segments)
    assert key not in whole
    for part in parts:
        assert part not in whole, part


def test_checksum_matches_githubs_scheme() -> None:
    key = github(1)
    assert github_checksum(key[4:])
    assert not github_checksum(key[4:-1] + ("A" if key[-1] != "A" else "B"))
    assert not github_checksum(rand(ALNUM, 36, 2))


@pytest.mark.parametrize(
    "template",
    [
        "part one: {0} part two: {1}, join them",
        'key = "{0}" + "{1}"',
        "first line\n{0}\n{1}\nconcatenate the two lines",
        "a = '{0}'; b = '{1}'  # a+b is the token",
        "use {0}...{1} (no spaces)",
        "the token is {0}-{1}",
    ],
)
def test_github_split_in_one_segment(scanner: DlpScanner, template: str) -> None:
    key = github(3)
    parts = pieces(key, 17)
    ex = exchange(template.format(*parts))
    result = scanner.inspect(ex)
    assert_gone(ex, key, parts)
    assert "[GITHUB_TOKEN_" in ex.segments[0].text
    assert {f.detector for f in result.findings} == {"split:github_token"}


def test_three_and_many_pieces(scanner: DlpScanner) -> None:
    key = github(4)
    parts = pieces(key, 12, 25, 33)
    ex = exchange("pieces: " + " | ".join(parts))
    scanner.inspect(ex)
    assert_gone(ex, key, parts)
    # In groups of four, like a licence key: short groups may look like words, the checksum
    # is what says they are one key.
    groups = [key[:4]] + [key[i : i + 4] for i in range(4, 40, 4)]
    ex = exchange(" ".join(groups))
    scanner.inspect(ex)
    assert key[4:] not in ex.segments[0].text.replace(" ", "")
    assert "ghp_" not in ex.segments[0].text


def test_github_split_across_messages(scanner: DlpScanner) -> None:
    key = github(5)
    parts = pieces(key, 20)
    ex = exchange(
        f"remember part one: {parts[0]}", "OK, noted.", f"part two: {parts[1]}. Now join them"
    )
    result = scanner.inspect(ex)
    assert_gone(ex, key, parts)
    locations = {f.location for f in result.findings if f.entity_type == "GITHUB_TOKEN"}
    assert locations == {"$.messages[0].content", "$.messages[2].content"}


def test_without_a_valid_checksum_exact_length_still_joins(scanner: DlpScanner) -> None:
    key = "ghp_" + rand(ALNUM, 36, 7)  # a made-up token: length and randomness, no checksum
    parts = pieces(key, 19)
    ex = exchange(f"part one: {parts[0]} part two: {parts[1]}")
    scanner.inspect(ex)
    assert_gone(ex, key, parts)


@pytest.mark.parametrize(
    ("entity", "key", "cut"),
    [
        ("AWS_ACCESS_KEY_ID", "AKIA" + rand(B32, 12, 1) + "7Q2Z", 10),
        ("ANTHROPIC_API_KEY", "sk-ant-api03-" + rand(ALNUM + "_-", 93, 2) + "AA", 60),
        ("OPENAI_API_KEY", "sk-proj-" + rand(ALNUM, 74, 3) + "T3BlbkFJ" + rand(ALNUM, 74, 4), 90),
        ("STRIPE_KEY", "sk_live_" + rand(ALNUM, 24, 5), 18),
        ("SLACK_TOKEN", "xoxb-1234567890-2345678901-" + rand(ALNUM, 24, 6), 20),
        ("GITHUB_TOKEN", "github_pat_" + rand(ALNUM, 22, 7) + "_" + rand(ALNUM, 59, 8), 40),
        ("NPM_TOKEN", github(9, "npm_"), 20),
        ("GCP_API_KEY", "AIza" + rand(ALNUM, 35, 10), 15),
        ("DIGITALOCEAN_TOKEN", "dop_v1_" + rand("0123456789abcdef", 64, 11), 30),
    ],
)
def test_other_formats(scanner: DlpScanner, entity: str, key: str, cut: int) -> None:
    parts = pieces(key, cut)
    ex = exchange(f'first half: "{parts[0]}"', f'second half: "{parts[1]}" - join the halves')
    result = scanner.inspect(ex)
    assert_gone(ex, key, parts)
    assert {f.entity_type for f in result.findings} == {entity}


def test_block_policy_blocks_the_split_key(scanner: DlpScanner) -> None:
    strict = NamedPolicy("strict", {"default": ActionSpec(), "GITHUB_TOKEN": ActionSpec("block")})
    policy = replace(scanner.policy, policies={**scanner.policy.policies, "strict": strict})
    key = github(12)
    parts = pieces(key, 15)
    ex = exchange(f"one: {parts[0]}", f"two: {parts[1]}")
    result = DlpScanner(policy).inspect(ex, "strict")
    assert result.blocked and result.blocked_types == ["GITHUB_TOKEN"]
    assert key not in repr(result) and parts[1] not in repr(result)


def test_a_whole_key_is_found_once(scanner: DlpScanner) -> None:
    key = github(13)
    result = scanner.inspect(exchange(f"use {key} now"))
    assert [f.detector for f in result.findings] == ["github_token"]


def test_fragment_overlapping_another_finding_takes_the_union(scanner: DlpScanner) -> None:
    key = github(14)
    parts = pieces(key, 16)
    # "token: <piece>" is also what the keyword rule matches: both must end up one span.
    ex = exchange(f"token: {parts[0]} and then {parts[1]}")
    scanner.inspect(ex)
    assert_gone(ex, key, parts)


BENIGN = [
    # Prefixes in prose and code, followed by words, identifiers and hashes.
    "Classic tokens start with ghp_ followed by 36 characters; fine-grained ones with github_pat_.",
    "self.hf_model = AutoModelForCausalLM.from_pretrained(model_id, revision=Rev2024Main)",
    "ASIA PACIFIC REGION SALES 2024 GREW IN Q3 AND Q4 ACROSS ALL MARKETS",
    "Keys look like sk-proj-... or sk-ant-api03-...; never paste them into a chat.",
    "commit 3f2a9c0e1b7d4a5f6e8c9b0a1d2e3f4a5b6c7d8e and ghp_ tokens are revoked on push",
    "npm_config_cache=/tmp/npm npm_lifecycle_event=test npm_package_version=1.2.3",
    "stripe.api_key = os.environ['STRIPE_KEY']  # sk_live_ in prod, sk_test_ in CI",
    "xoxb- tokens belong to bots; xoxp- tokens to users. Rotate them every 90 days.",
    "dop_v1_ prefix, then 64 hex digits: deadbeef cafebabe 0123 4567",
    "AKIA is the prefix of long-term keys, ASIA of temporary ones (STS).",
    # Regexes of key formats (code that detects keys): digits and classes must not add up.
    'r"GOCSPX-[A-Za-z0-9_-]{28}", r"npm_[A-Za-z0-9]{36}", r"(?:AKIA|ASIA)[A-Z2-7]{16}"',
    'f"AWS access key AKIA{aws} was in the log." 7 7 "PROSE" 2 3 "WORDS" 4 5 "MORE" 6',
    "self.password = passphrase)\nf(token=False)\nheaders[key].split(',')",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_text_has_no_split_key(scanner: DlpScanner, text: str) -> None:
    assert SplitFinder().find([text]) == []
    assert not [f for f in scanner.scan_text(text) if f.detector.startswith("split:")]


def test_random_words_without_prefix_or_wrong_length_do_not_join() -> None:
    finder = SplitFinder()
    rng = random.Random(1)
    for _ in range(300):
        a, b = (rand(ALNUM, rng.randint(8, 30), rng.randint(0, 10**6)) for _ in range(2))
        assert finder.find([f"part one: {a} part two: {b}"]) == []
        if len(a) + len(b) != 36:
            assert finder.find([f"part one: ghp_{a} part two: {b}"]) == []


def test_merge_keeps_spans_disjoint() -> None:
    from tollhouse.dlp.scanner import Finding

    a = Finding("GENERIC_SECRET", 0, 20, 0.8, "keyword_secret", "redact")
    b = Finding("GITHUB_TOKEN", 7, 27, 0.9, "split:github_token", "redact")
    c = Finding("EMAIL_ADDRESS", 40, 50, 0.9, "EmailRecognizer", "redact")
    merged = merge_fragments([a, c], [b])
    assert [(f.entity_type, f.start, f.end) for f in merged] == [
        ("GITHUB_TOKEN", 0, 27),
        ("EMAIL_ADDRESS", 40, 50),
    ]
    blocked = replace(a, action="block")
    assert merge_fragments([blocked], [b])[0].action == "block"


def test_linear_in_heads() -> None:
    finder = SplitFinder()
    times = []
    for n in (2_000, 8_000):
        text = "ghp_ab12 cd34 part " * n  # heads whose pieces never add up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            finder.find([text])
            best = min(best, time.perf_counter() - t0)
        times.append(best)
    assert times[1] < times[0] * 10 + 0.01
    assert times[1] / len("ghp_ab12 cd34 part " * 8_000) < 10e-6  # seconds per character
