"""Actions on an exchange, consistent numbering, block, restore, attachments, fail closed."""

from __future__ import annotations

import itertools

import pytest

from tests.unit.dlp.conftest import ALNUM, luhn_card, rand
from tollhouse.dlp import DlpError, DlpScanner, Restorer
from tollhouse.exchange import Attachment, Exchange, Role, Segment


def exchange(*texts: str, roles: tuple[str, ...] = ()) -> Exchange:
    roles = roles or tuple(Role.USER for _ in texts)
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


def test_redact_numbers_consistently_across_segments(scanner: DlpScanner) -> None:
    ex = exchange(
        "system: escalate to ops@acme.io",
        "mail ann@acme.io and ops@acme.io, again ann@acme.io",
        roles=(Role.SYSTEM, Role.USER),
    )
    result = scanner.inspect(ex)
    assert ex.segments[0].text == "system: escalate to [EMAIL_1]"
    assert ex.segments[1].text == "mail [EMAIL_2] and [EMAIL_1], again [EMAIL_2]"
    assert result.restore_map == {"[EMAIL_1]": "ops@acme.io", "[EMAIL_2]": "ann@acme.io"}
    assert ex.changed_segments == {0, 1}
    rows = result.audit_rows()
    assert {
        "stage": "dlp",
        "detector": "EmailRecognizer",
        "entity_type": "EMAIL_ADDRESS",
        "action": "redact",
        "count": 3,
        "location": "$.messages[1].content",
    } in rows
    assert "acme.io" not in repr(rows)


def test_every_role_is_scanned(scanner: DlpScanner) -> None:
    roles = (Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL_CALL, Role.TOOL_RESULT, Role.INPUT)
    ex = exchange(*(f"x{i}@acme.io" for i in range(len(roles))), roles=roles)
    scanner.inspect(ex)
    assert [s.text for s in ex.segments] == [f"[EMAIL_{i}]" for i in range(1, 7)]


def test_mask_keeps_tail(scanner: DlpScanner) -> None:
    card = luhn_card("4556")
    ex = exchange(f"charge {card} now")
    scanner.inspect(ex)
    assert ex.segments[0].text == f"charge ****{card[-4:]} now"


def test_hash_is_keyed_and_stable(scanner: DlpScanner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLHOUSE_DLP_HASH_KEY", "k1")
    a, b = exchange("ann@acme.io"), exchange("ann@acme.io")
    scanner.inspect(a, "analytics")
    scanner.inspect(b, "analytics")
    assert a.segments[0].text == b.segments[0].text
    assert a.segments[0].text.startswith("[EMAIL:") and "ann" not in a.segments[0].text
    monkeypatch.setenv("TOLLHOUSE_DLP_HASH_KEY", "k2")
    c = exchange("ann@acme.io")
    scanner.inspect(c, "analytics")
    assert c.segments[0].text != a.segments[0].text


def test_hash_without_key_fails_closed(
    scanner: DlpScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOLLHOUSE_DLP_HASH_KEY", raising=False)
    with pytest.raises(DlpError):
        scanner.inspect(exchange("ann@acme.io"), "analytics")


def test_block_names_types_never_values(scanner: DlpScanner) -> None:
    key = "ghp_" + rand(ALNUM, 36, 5)
    ex = exchange(f"use {key} for Nightjar and mail ann@acme.io")
    result = scanner.inspect(ex)
    assert result.blocked and result.blocked_types == ["PROJECT_CODENAME"]
    assert "Nightjar" not in repr(result) and "Nightjar" not in result.reason
    assert key not in repr(result) and key not in result.reason
    text = f"use {key} for Nightjar and mail ann@acme.io"
    assert ex.segments[0].text == text  # a block rewrites nothing
    assert not ex.changed_segments


def test_secrets_are_redacted_by_default(scanner: DlpScanner) -> None:
    key = "ghp_" + rand(ALNUM, 36, 5)
    ex = exchange(f"use {key} please")
    result = scanner.inspect(ex)
    assert not result.blocked
    assert key not in ex.segments[0].text and "[GITHUB_TOKEN_1]" in ex.segments[0].text


def test_allow_logs_only_and_named_policy_changes_action(scanner: DlpScanner) -> None:
    ex = exchange("host 203.0.113.9")
    result = scanner.inspect(ex)
    assert ex.segments[0].text == "host 203.0.113.9"
    assert [f.action for f in result.findings] == ["allow"]
    ex = exchange("host 203.0.113.9")
    scanner.inspect(ex, "engineering")
    assert ex.segments[0].text == "host [IP_ADDRESS_1]"


def test_attachments_follow_policy(scanner: DlpScanner) -> None:
    ex = exchange("look at this")
    ex.attachments.append(Attachment("image", ("messages", 0, "content", 1)))
    assert scanner.inspect(ex).attachments == "log"
    assert scanner.inspect(ex, "monitor").attachments == "pass"


def test_custom_entities(scanner: DlpScanner) -> None:
    ex = exchange("badge EMP-123456 belongs to the employee")
    scanner.inspect(ex)
    assert ex.segments[0].text == "badge [EMPLOYEE_1] belongs to the employee"
    result = scanner.inspect(exchange("status of project nightjar?"))
    assert result.blocked_types == ["PROJECT_CODENAME"]


def test_overlaps_resolved_and_offsets_exact(scanner: DlpScanner) -> None:
    text = "db postgres://svc:Zq81mVb2xLw@ann@acme.io/x and ann@acme.io"
    findings = scanner.scan_text(text)
    spans = sorted((f.start, f.end) for f in findings)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_failure_inside_becomes_dlp_error(
    scanner: DlpScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(text: str) -> list:
        raise RuntimeError("secret value sk-xyz")

    monkeypatch.setattr(scanner.detector, "detect", boom)
    with pytest.raises(DlpError) as info:
        scanner.inspect(exchange("anything"))
    assert "sk-xyz" not in str(info.value)


def test_restorer_whole_and_streamed() -> None:
    restorer = Restorer({"[EMAIL_1]": "ann@acme.io", "[PHONE_12]": "+44 20 7946 0958"})
    assert restorer.restore("to [EMAIL_1] or [EMAIL_2]") == "to ann@acme.io or [EMAIL_2]"
    text = "Write to [EMAIL_1], call [PHONE_12]. Array [0] stays."
    for size in (1, 2, 3, 5, 8):
        r = Restorer(restorer.restore_map)
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        out = "".join(r.feed(c) for c in chunks) + r.flush()
        assert out == "Write to ann@acme.io, call +44 20 7946 0958. Array [0] stays."


def test_restorer_holds_back_only_a_possible_prefix() -> None:
    r = Restorer({"[EMAIL_1]": "ann@acme.io"})
    assert r.feed("hello [EM") == "hello "
    assert r.feed("AIL_1] bye [x") == "ann@acme.io bye [x"
    assert r.flush() == ""
