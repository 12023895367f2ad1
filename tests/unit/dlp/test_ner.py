"""Optional NER: a tiny real spaCy pipeline (an entity ruler saved to disk), nothing downloaded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import spacy

from tests.unit.dlp.test_scanner import exchange
from tollhouse.dlp import DlpError, DlpScanner, PolicyError, load_dlp_policy
from tollhouse.dlp.engine import Detection
from tollhouse.dlp.recognizers import Rule
from tollhouse.dlp.scanner import resolve_overlaps

ROOT = Path(__file__).resolve().parents[3]

PATTERNS = [
    {"label": "PERSON", "pattern": "Jane Doe"},
    {"label": "PERSON", "pattern": "John Roe"},
    {"label": "GPE", "pattern": "Berlin"},
    {"label": "GPE", "pattern": "Paris"},
    {"label": "ORG", "pattern": "Acme Hotline 030 1234 5678"},
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(PATTERNS)  # type: ignore[attr-defined]
    path = tmp_path_factory.mktemp("ner") / "model"
    nlp.to_disk(path)
    return path


def fullwidth(text: str) -> str:
    """``text`` in full-width forms (U+FF01..FF5E), as an evasion would write it."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def write_policy(tmp_path: Path, ner: str, actions: str = "") -> Path:
    path = tmp_path / "dlp.yaml"
    body = "version: 1\n" + ner + "policies:\n  standard:\n    actions:\n      default: redact\n"
    path.write_text(body + textwrap.indent(textwrap.dedent(actions), " " * 6))
    return path


def ner_section(model: Path | str, **fields: object) -> str:
    lines = [f"  model: {model}"] + [f"  {k}: {v}" for k, v in fields.items()]
    return "ner:\n" + "\n".join(lines) + "\n"


def scanner_for(tmp_path: Path, model_dir: Path, actions: str = "", **fields: object) -> DlpScanner:
    return DlpScanner(
        load_dlp_policy(write_policy(tmp_path, ner_section(model_dir, **fields), actions))
    )


def test_names_and_places_redacted_with_consistent_numbering(
    tmp_path: Path, model_dir: Path
) -> None:
    scanner = scanner_for(tmp_path, model_dir, "PERSON: {action: redact, restore: true}\n")
    ex = exchange(
        "Jane Doe flew to Berlin.",
        "Ask Jane Doe, not John Roe, about Berlin and Paris; cc jane@acme.io",
    )
    result = scanner.inspect(ex)
    assert ex.segments[0].text == "[PERSON_1] flew to [LOCATION_1]."
    assert ex.segments[1].text == (
        "Ask [PERSON_1], not [PERSON_2], about [LOCATION_1] and [LOCATION_2]; cc [EMAIL_1]"
    )
    assert result.restore_map == {"[PERSON_1]": "Jane Doe", "[PERSON_2]": "John Roe"}
    rows = result.audit_rows()
    assert {
        "stage": "dlp",
        "detector": "SpacyRecognizer",
        "entity_type": "PERSON",
        "action": "redact",
        "count": 2,
        "location": "$.messages[1].content",
    } in rows
    assert "Jane" not in repr(rows) and "Berlin" not in repr(rows)


def test_actions_per_entity_type(tmp_path: Path, model_dir: Path) -> None:
    scanner = scanner_for(tmp_path, model_dir, "LOCATION: allow\nPERSON: block\n")
    ex = exchange("Jane Doe lives in Berlin")
    result = scanner.inspect(ex)
    assert result.blocked and result.blocked_types == ["PERSON"]
    assert [(f.entity_type, f.action) for f in result.findings] == [
        ("PERSON", "block"),
        ("LOCATION", "allow"),
    ]
    assert ex.segments[0].text == "Jane Doe lives in Berlin"  # a block changes nothing


def test_offsets_map_back_past_non_ascii_and_invisible_characters(
    tmp_path: Path, model_dir: Path
) -> None:
    scanner = scanner_for(tmp_path, model_dir)
    # Full-width letters, an accent, an em dash and zero-width spaces before the names; a
    # zero-width space inside one name; a place written in full-width letters.
    lead = fullwidth("Note:") + " Zo\u00eb \u2014 caf\u00e9\u200b\u200b met "
    text = lead + "Jane Doe and Ja\u200bne Doe in " + fullwidth("Berlin") + "."
    findings = scanner.scan_text(text)
    assert [(f.entity_type, text[f.start : f.end]) for f in findings] == [
        ("PERSON", "Jane Doe"),
        ("PERSON", "Ja\u200bne Doe"),
        ("LOCATION", fullwidth("Berlin")),
    ]
    ex = exchange(text)
    scanner.inspect(ex)
    # Numbering is by the value as written (as for every entity): the hidden variant is another.
    assert ex.segments[0].text == lead + "[PERSON_1] and [PERSON_2] in [LOCATION_1]."


def test_segments_over_the_cap_skip_ner_only(tmp_path: Path, model_dir: Path) -> None:
    scanner = scanner_for(tmp_path, model_dir, max_segment_chars=60)
    short = "Jane Doe, Berlin"
    long = "Jane Doe, Berlin, mail jane@acme.io. " + "x" * 30
    assert len(short) <= 60 < len(long)
    ex = exchange(short, long)
    result = scanner.inspect(ex)
    assert ex.segments[0].text == "[PERSON_1], [LOCATION_1]"
    # Patterns still run on the long segment; NER does not, and the result says where.
    assert ex.segments[1].text.startswith("Jane Doe, Berlin, mail [EMAIL_1]. ")
    assert result.ner_skipped == ["$.messages[1].content"]
    # The cap is on the segment as sent: exactly at the cap still runs.
    at_cap = "Jane Doe" + " " * 52
    assert [f.entity_type for f in scanner.scan_text(at_cap)] == ["PERSON"]


def test_a_pattern_finding_wins_over_an_overlapping_ner_span(
    tmp_path: Path, model_dir: Path
) -> None:
    # The model calls "Acme Hotline 030 1234 5678" an organisation, which policy allows; the
    # phone number inside (pattern score 0.5, below NER's 0.85) must still be redacted.
    scanner = scanner_for(tmp_path, model_dir, "ORGANIZATION: allow\n")
    ex = exchange("ring Acme Hotline 030 1234 5678 now")
    result = scanner.inspect(ex)
    assert ex.segments[0].text == "ring Acme Hotline [PHONE_1] now"
    assert [f.entity_type for f in result.findings] == ["PHONE_NUMBER"]


def test_resolve_overlaps_ranks_ner_below_patterns() -> None:
    ner = Rule(name="SpacyRecognizer", entity="PERSON", patterns=(), triggers=(), ner=True)
    weak = Rule(name="weak", entity="X", patterns=(), triggers=())
    kept = resolve_overlaps(
        [Detection(0, 20, "PERSON", 0.85, ner), Detection(5, 9, "X", 0.3, weak)]
    )
    assert [(d.entity, d.start) for d in kept] == [("X", 5)]
    disjoint = [Detection(0, 4, "PERSON", 0.85, ner), Detection(5, 9, "X", 0.3, weak)]
    assert len(resolve_overlaps(disjoint)) == 2


def test_allow_list_applies_to_ner(tmp_path: Path, model_dir: Path) -> None:
    path = write_policy(tmp_path, ner_section(model_dir) + "allow_list:\n  values: [Berlin]\n")
    findings = DlpScanner(load_dlp_policy(path)).scan_text("Jane Doe in Berlin")
    assert [f.entity_type for f in findings] == ["PERSON"]


def test_min_score_filters_ner(tmp_path: Path, model_dir: Path) -> None:
    # spaCy gives no confidence; presidio scores every NER entity 0.85.
    assert scanner_for(tmp_path, model_dir, min_score=0.9).scan_text("Jane Doe") == []
    assert scanner_for(tmp_path, model_dir, min_score=0.85).scan_text("Jane Doe")


def test_only_configured_entity_types_are_reported(tmp_path: Path, model_dir: Path) -> None:
    scanner = scanner_for(tmp_path, model_dir, entities="[LOCATION]")
    assert [f.entity_type for f in scanner.scan_text("Jane Doe in Berlin")] == ["LOCATION"]


def test_model_loaded_once_per_policy_load(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real_load = spacy.load

    def counting_load(name: object, *args: object, **kwargs: object) -> object:
        calls.append(name)
        return real_load(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(spacy, "load", counting_load)
    scanner = scanner_for(tmp_path, model_dir)
    for _ in range(3):
        scanner.inspect(exchange("Jane Doe", "Berlin"))
    assert calls == [model_dir]


def test_a_failing_model_fails_closed(tmp_path: Path, model_dir: Path) -> None:
    scanner = scanner_for(tmp_path, model_dir)
    assert scanner.policy.ner is not None

    def broken(text: str) -> list[tuple[int, int, str, float]]:
        raise RuntimeError("Jane Doe")

    object.__setattr__(scanner.policy.ner, "find", broken)
    with pytest.raises(DlpError) as info:
        scanner.inspect(exchange("Jane Doe"))
    assert "Jane" not in str(info.value)


def test_default_policy_never_loads_spacy(monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*args: object, **kwargs: object) -> None:
        raise AssertionError("spaCy must not load a model for the default policy")

    monkeypatch.setattr(spacy, "load", no)
    monkeypatch.setattr(spacy.util, "load_model", no)
    monkeypatch.setattr(spacy.cli, "download", no)
    policy = load_dlp_policy(ROOT / "rules" / "dlp.yaml")
    assert policy.ner is None
    scanner = DlpScanner(policy)
    assert scanner.detector.ner is None
    ex = exchange("Jane Doe in Berlin, jane@acme.io")
    result = scanner.inspect(ex)
    assert [f.entity_type for f in result.findings] == ["EMAIL_ADDRESS"]
    assert result.ner_skipped == []


def test_missing_model_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*args: object, **kwargs: object) -> None:
        raise AssertionError("never download a model")

    monkeypatch.setattr(spacy.cli, "download", no)
    for model in ("en_core_web_zz", "models/absent"):
        path = write_policy(tmp_path, ner_section(model))
        with pytest.raises(PolicyError) as info:
            load_dlp_policy(path)
        message = str(info.value)
        assert message.startswith(f"{path}:3: ner.model: "), message
        assert "not installed" in message and "never downloads" in message


def test_relative_model_path_is_relative_to_the_policy_file(
    tmp_path: Path, model_dir: Path
) -> None:
    (tmp_path / "models").symlink_to(model_dir.parent)
    path = write_policy(tmp_path, ner_section(f"models/{model_dir.name}"))
    assert load_dlp_policy(path).ner is not None


def test_unloadable_model_directory(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    path = write_policy(tmp_path, ner_section(broken))
    with pytest.raises(PolicyError, match=r":3: ner.model: .* no config.cfg"):
        load_dlp_policy(path)
    (broken / "config.cfg").write_text("[nlp\nnot a config")
    with pytest.raises(PolicyError, match=r":3: ner.model: spaCy could not load model"):
        load_dlp_policy(path)


@pytest.mark.parametrize(
    ("fields", "actions", "where", "says"),
    [
        ({"entities": "[PERSN]"}, "", ":4: ner.entities[0]", "unknown NER entity 'PERSN'"),
        ({"entities": "[]"}, "", ":4: ner.entities", "at least one"),
        ({"entities": "PERSON"}, "", ":4: ner.entities", "list of strings"),
        ({"min_score": 2}, "", ":4: ner.min_score", "from 0.0 to 1.0"),
        ({"min_score": "high"}, "", ":4: ner.min_score", "from 0.0 to 1.0"),
        ({"max_segment_chars": 0}, "", ":4: ner.max_segment_chars", "whole number"),
        ({"max_segment_chars": 2.5}, "", ":4: ner.max_segment_chars", "whole number"),
        ({"max_segment_chars": "true"}, "", ":4: ner.max_segment_chars", "whole number"),
        ({"max_segment_chars": 2_000_000}, "", ":4: ner.max_segment_chars", "1000000"),
        ({"langauge": "en"}, "", ":4: ner.langauge", "unknown field"),
        # The model labels PERSON, GPE and ORG: none is an NRP.
        ({"entities": "[NRP]"}, "", ":4: ner.entities", "none of them is NRP"),
        (
            {"entities": "[PERSON]"},
            "LOCATION: redact\n",
            ":9: policies.standard.actions.LOCATION",
            "found only by NER",
        ),
    ],
)
def test_bad_ner_settings_name_file_line_field(
    tmp_path: Path, model_dir: Path, fields: dict[str, object], actions: str, where: str, says: str
) -> None:
    path = write_policy(tmp_path, ner_section(model_dir, **fields), actions)
    with pytest.raises(PolicyError) as info:
        load_dlp_policy(path)
    message = str(info.value)
    assert message.startswith(f"{path}{where}: "), message
    assert says in message, message


def test_ner_entity_actions_need_ner(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "", "PERSON: redact\n")
    with pytest.raises(
        PolicyError, match=r":6: policies.standard.actions.PERSON: PERSON is found only by NER"
    ):
        load_dlp_policy(path)


def test_model_must_be_named(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "ner:\n  entities: [PERSON]\n")
    with pytest.raises(PolicyError, match=r":3: ner.model: expected a spaCy model"):
        load_dlp_policy(path)
