"""``tollhouse shadow``: the report read back from a real audit database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tollhouse import cli
from tollhouse.audit.record import ExchangeRecord
from tollhouse.audit.writer import AuditWriter
from tollhouse.identity.report import parse_since

NOW = datetime.now(UTC)


def _exchange(**fields) -> dict:
    record = ExchangeRecord(
        client_addr="10.0.0.7", host="api.openai.com", method="POST", provider="openai",
        status=200, tokens_in=100, tokens_out=20, cost_usd=0.001,
    )  # fmt: skip
    for name, value in fields.items():
        setattr(record, name, value)
    record.finish()
    return record.as_row()


@pytest.fixture
def data(tmp_path):
    writer = AuditWriter(tmp_path)
    writer.start()
    alice = {"user_id": "alice", "team": "support", "app": "support-bot"}
    writer.submit("exchanges", _exchange(**alice, identity_source="basic+header"))
    writer.submit(
        "exchanges",
        _exchange(**alice, identity_source="basic+key", key_fingerprint="aaaa000011112222"),
    )
    writer.submit("exchanges", _exchange(
        user_id="bob", team="research", provider="anthropic", identity_source="basic",
        shadow=True, key_fingerprint="bbbb000011112222",
        shadow_reason="unregistered-key: API key bbbb000011112222 is not registered; "
                      "no-app: no application",
    ))  # fmt: skip
    writer.submit("exchanges", _exchange(
        client_addr="10.9.9.9", shadow=True, shadow_reason="no-identity: no identity",
        started_at=NOW - timedelta(days=30),
    ))  # fmt: skip
    writer.submit("connections", {
        "at": NOW, "client_addr": "10.0.0.8", "sni": "chatgpt.com", "handling": "observe",
        "bytes_up": 1200, "bytes_down": 56000, "duration_ms": 3100.0, "app": "chatgpt",
        "user_id": "carol", "team": "research", "identity_source": "basic",
    })  # fmt: skip
    writer.close()
    return tmp_path


def _report(data, capsys, *args) -> dict:
    assert cli.main(["shadow", "--data", str(data), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_report_per_person_sanctioned_and_shadow(data, capsys):
    report = _report(data, capsys)
    callers = {c["who"]: c for c in report["callers"]}
    alice, bob, carol = callers["alice"], callers["bob"], callers["carol"]
    assert alice["sanctioned"] and alice["requests"] == 2 and alice["apps"] == ["support-bot"]
    assert alice["tokens"] == 240 and alice["unsanctioned_keys"] == []
    assert not bob["sanctioned"] and bob["shadow_requests"] == 1
    assert bob["services"] == ["anthropic"] and bob["unsanctioned_keys"] == ["bbbb000011112222"]
    assert bob["shadow_reasons"] == ["no-app", "unregistered-key"]
    assert not carol["sanctioned"] and carol["services"] == ["chatgpt"]
    assert carol["observed_connections"] == 1
    assert report["observed"][0]["bytes_down"] == 56000
    assert "10.9.9.9" not in callers  # older than the default 7 days


def test_since_all_includes_old_rows(data, capsys):
    callers = {c["who"]: c for c in _report(data, capsys, "--since", "all")["callers"]}
    assert callers["10.9.9.9"]["kind"] == "address"


def test_tables_in_a_terminal(data, capsys):
    assert cli.main(["shadow", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "alice (user)" in out and "bbbb000011112222" in out and "chatgpt" in out


def test_a_deployment_with_no_data_yet_gets_an_empty_report_and_a_hint(tmp_path, capsys):
    assert cli.main(["shadow", "--data", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert not any(report[k] for k in report if isinstance(report[k], list))
    assert "no audit data yet" in captured.err
    assert not (tmp_path / "audit.duckdb").exists()  # reading never creates the database


def test_fingerprint_reads_the_key_from_stdin(tmp_path, capsys, monkeypatch):
    import io

    from tollhouse.identity import keys

    monkeypatch.delenv(keys.ENV, raising=False)
    secret = keys.load_secret(tmp_path)  # as the gateway creates it when it starts
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-live-secret\n"))
    assert cli.main(["shadow", "fingerprint", "--data", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == keys.fingerprint(secret, "sk-live-secret")


def test_fingerprint_never_makes_a_secret_of_its_own(tmp_path, capsys, monkeypatch):
    # A wrong --data (or the wrong folder) must not mint a new secret: its fingerprints would
    # never match what the gateway records, and nothing would say so.
    import io

    from tollhouse.identity import keys

    monkeypatch.delenv(keys.ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-live-secret\n"))
    data = tmp_path / "data"
    assert cli.main(["shadow", "fingerprint", "--data", str(data)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert str(data / keys.SECRET_NAME) in err and keys.ENV in err
    assert not data.exists()
    monkeypatch.setenv(keys.ENV, "an-operator-secret")
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-live-secret\n"))
    assert cli.main(["shadow", "fingerprint", "--data", str(data)]) == 0
    expected = keys.fingerprint(b"an-operator-secret", "sk-live-secret")
    assert capsys.readouterr().out.strip() == expected


@pytest.mark.parametrize(
    ("text", "delta"), [("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
                        ("30m", timedelta(minutes=30)), ("2w", timedelta(weeks=2))],
)  # fmt: skip
def test_parse_since_spans(text, delta):
    assert parse_since(text, NOW) == NOW - delta


def test_parse_since_dates_and_mistakes():
    assert parse_since("2025-06-01") == datetime(2025, 6, 1, tzinfo=UTC)
    assert parse_since("all") is None
    with pytest.raises(ValueError, match=r"expected e\.g\. 24h"):
        parse_since("yesterday")
