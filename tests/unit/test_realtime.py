"""Realtime events as the scanners read them, and the catalog's websocket rules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tollhouse import realtime
from tollhouse.catalog import PolicyError, load_catalog
from tollhouse.exchange import Role
from tollhouse.realtime import FrameRefused, Tally, event_exchange, read_event, rewritten

ROOT = Path(__file__).resolve().parents[2]


def segments(event: dict) -> dict[tuple, tuple[str, str, str]]:
    """Value segments by path; key segments by path + ("key",)."""
    ex = event_exchange("openai", "openai", "/v1/realtime", event)
    return {
        (*s.path, "key") if s.form == "key" else s.path: (s.role, s.form, s.text)
        for s in ex.segments
    }


def test_every_string_and_key_is_a_segment_with_the_role_of_its_place():
    got = segments(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello"}],
            },
            "metadata": {"tag": "x"},
        }
    )
    assert got[("item", "content", 0, "text")] == (Role.USER, "text", "hello")
    assert got[("metadata", "tag", "key")] == (Role.FIELD, "key", "tag")
    assert got[("metadata", "tag")] == (Role.FIELD, "text", "x")
    assert got[("item", "role", "key")] == (Role.FIELD, "key", "role")
    assert got[("type",)][0] == Role.FIELD


def test_instructions_are_system_and_function_outputs_tool_results():
    got = segments(
        {
            "type": "session.update",
            "session": {"instructions": "be brief", "tools": [{"description": "lookup"}]},
        }
    )
    assert got[("session", "instructions")][0] == Role.SYSTEM
    assert got[("session", "tools", 0, "description")][0] == Role.FIELD
    out = segments({"item": {"type": "function_call_output", "output": "42"}})
    assert out[("item", "output")][0] == Role.TOOL_RESULT
    live = segments({"clientContent": {"turns": [{"role": "model", "parts": [{"text": "a"}]}]}})
    assert live[("clientContent", "turns", 0, "parts", 0, "text")][0] == Role.ASSISTANT


def test_binary_audio_is_an_attachment_but_base64_text_is_read_decoded():
    audio = base64.b64encode(bytes(range(256)) * 4).decode()
    ex = event_exchange("openai", "openai", "/", {"type": "x", "audio": audio})
    assert [a.kind for a in ex.attachments] == ["audio"]
    assert audio not in [s.text for s in ex.segments]
    hidden = base64.b64encode(b"mail jane.doe@acme-corp.io the plan").decode()
    ex = event_exchange("openai", "openai", "/", {"type": "x", "audio": hidden})
    assert not ex.attachments
    assert any(s.form == "base64" and "jane.doe" in s.text for s in ex.segments)


def test_rewritten_frames_carry_changed_values_and_keys_only():
    event = {"type": "x", "metadata": {"AKIAW7KQ2ZRMV4XNPJ3T": "mail a@b.io"}}
    ex = event_exchange("openai", "openai", "/", event)
    assert rewritten(ex) is None  # nothing changed: forwarded byte for byte
    for i, s in enumerate(ex.segments):
        if s.form == "key" and s.text.startswith("AKIA"):
            ex.set_text(i, "[AWS_KEY_1]")
        if s.text == "mail a@b.io":
            ex.set_text(i, "mail [EMAIL_1]")
    assert json.loads(rewritten(ex) or "") == {
        "type": "x",
        "metadata": {"[AWS_KEY_1]": "mail [EMAIL_1]"},
    }


@pytest.mark.parametrize(
    "frame",
    [
        '{"type": "a", "type": "b"}',
        '{"item": {"text": "a", "text": "b"}}',
        '{"n": NaN}',
        "[1, 2]",
        "hello AKIAW7KQ2ZRMV4XNPJ3T",
        b"\xff\xfe{}",
    ],
)
def test_ambiguous_or_non_event_frames_are_refused_without_quoting_them(frame):
    with pytest.raises(FrameRefused) as err:
        read_event(frame)
    assert err.value.code == realtime.INVALID_PAYLOAD
    assert "AKIA" not in err.value.message and "type" not in err.value.message


def test_a_deeply_nested_event_is_refused():
    event: dict = {}
    inner = event
    for _ in range(100):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(FrameRefused):
        event_exchange("openai", "openai", "/", event)


def test_the_tally_sums_findings_over_frames_and_keeps_the_worst_injection_verdict():
    tally = Tally()
    row = {"detector": "d", "entity_type": "EMAIL_ADDRESS", "action": "redact", "location": "$.a"}
    tally.add_findings([{**row, "count": 1}])
    tally.add_findings([{**row, "count": 2}])
    tally.add_injection(0.7, "flag")
    tally.add_injection(0.1, "allow")
    assert tally.finding_rows()[0]["count"] == 3
    assert tally.dlp_summary() == "EMAIL_ADDRESS:redact=3"
    assert (tally.injection_score, tally.injection_verdict) == (0.7, "flag")


def test_close_reasons_fit_a_close_frame():
    assert len(realtime.close_reason("é" * 200).encode()) <= 123


def test_the_shipped_catalog_allows_realtime_paths_only():
    catalog = load_catalog(ROOT / "rules" / "hosts.yaml")
    openai = catalog.match("api.openai.com")
    assert openai is not None
    assert openai.allows_websocket("/v1/realtime")
    for path in (
        "/v1/chat/completions",
        "/v1/realtimex",
        "/v1/realtime/../chat/completions",
        "/v1/%72ealtime",
        "//v1/realtime",
    ):
        assert not openai.allows_websocket(path), path
    gemini = catalog.match("generativelanguage.googleapis.com")
    assert gemini is not None and gemini.allows_websocket(
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )
    groq = catalog.match("api.groq.com")
    assert groq is not None and not groq.allows_websocket("/v1/realtime")


@pytest.mark.parametrize(
    "value", ["/v1/realtime", "[v1/realtime]", "[/v1/realtime/]", "[/v1/../x]", "[/v1?x=1]"]
)
def test_a_bad_websocket_entry_names_file_line_and_field(tmp_path, value):
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(
        "version: 1\napis:\n  - provider: openai\n    api: openai\n"
        f"    hosts: [api.openai.com]\n    websocket: {value}\n"
    )
    with pytest.raises(PolicyError) as err:
        load_catalog(hosts)
    assert "hosts.yaml:6" in str(err.value) and "websocket" in str(err.value)
