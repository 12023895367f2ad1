"""budgets.yaml: what it means, and errors that name file, line and field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.unit.budget.budget_helpers import policy_from
from tollhouse.budget.periods import window
from tollhouse.budget.policy import load_budget_policy
from tollhouse.policyfile import PolicyError

REPO_RULES = Path(__file__).resolve().parents[3] / "rules" / "budgets.yaml"

POLICY = """\
version: 1
timezone: Europe/Berlin
defaults: {warn_at: "75%", max_output_tokens: 1000}
chains:
  cheaper: [gpt-4o, gpt-4o-mini]
budgets:
  - scope: {team: payments}
    period: month
    limit_usd: 500
  - scope: {team: "*"}
    period: month
    limit_usd: 100
    warn_at: 90
  - scope: {team: "*", model: "gpt-4o*"}
    period: day
    limit_tokens: 100000
    on_cap: downgrade
    chain: cheaper
  - period: week
    limit_usd: 5000
    timezone: America/New_York
"""


def test_the_shipped_budgets_file_is_valid():
    assert load_budget_policy(REPO_RULES).budgets == ()


def test_a_missing_file_means_no_budgets(tmp_path):
    assert load_budget_policy(tmp_path / "budgets.yaml").budgets == ()


def test_a_policy_reads_as_written(tmp_path):
    policy = policy_from(tmp_path, POLICY)
    payments, each_team, models, everyone = policy.budgets
    assert policy.max_output_tokens == 1000
    assert payments.rule == "team:payments/month"
    assert payments.warn_at == Decimal("0.75") and payments.tz == ZoneInfo("Europe/Berlin")
    assert each_team.warn_at == Decimal("0.9")
    assert models.rule == "team:*+model:gpt-4o*/day" and models.chain == ("gpt-4o", "gpt-4o-mini")
    assert models.next_model("gpt-4o") == "gpt-4o-mini" and models.next_model("gpt-4o-mini") is None
    assert everyone.rule == "all/week" and everyone.tz == ZoneInfo("America/New_York")


def test_named_budgets_win_over_each_budgets_and_patterns_are_shared(tmp_path):
    policy = policy_from(tmp_path, POLICY)
    payments = {"team": "payments", "model": "gpt-4o-2024-08-06", "provider": "openai"}
    assert sorted(key for _, key in policy.applicable(payments)) == [
        "all/week",
        "team:payments+model:gpt-4o*/day",
        "team:payments/month",
    ]
    chosen = dict((key, b) for b, key in policy.applicable(payments))
    assert chosen["team:payments/month"].limit == 500
    search = {"team": "search", "model": "claude-3-5-haiku"}
    assert sorted(key for _, key in policy.applicable(search)) == ["all/week", "team:search/month"]


def test_identity_scopes_do_not_apply_without_an_identity(tmp_path):
    policy = policy_from(tmp_path, POLICY)
    assert [key for _, key in policy.applicable({"model": "gpt-4o"})] == ["all/week"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("budgets:\n  - period: year\n    limit_usd: 5\n", "budgets.yaml:2: budgets[0].period"),
        ("budgets:\n  - period: day\n", "budgets.yaml:2: budgets[0]: needs exactly one of"),
        (
            "budgets:\n  - period: day\n    limit_usd: -3\n",
            "budgets.yaml:3: budgets[0].limit_usd: must be a positive number",
        ),
        (
            "budgets:\n  - period: day\n    limit_usd: 1\n    scope: {team: a, org: b}\n",
            "budgets.yaml:4: budgets[0].scope.org: unknown scope",
        ),
        (
            "budgets:\n  - period: day\n    limit_usd: 1\n    on_cap: downgrade\n",
            "budgets.yaml:2: budgets[0].chain: downgrade needs a chain name",
        ),
        (
            "budgets:\n  - period: day\n    limit_usd: 1\n    warn_at: 150\n",
            "budgets.yaml:4: budgets[0].warn_at: must be a percentage above 0",
        ),
        ("timezone: Mars/Olympus\n", "budgets.yaml:1: timezone: unknown time zone"),
        ("chains:\n  solo: [gpt-4o]\n", "budgets.yaml:2: chains.solo: must list at least two"),
        ("notify: {webhook: ftp://x}\n", "budgets.yaml:1: notify.webhook: must be an http"),
        ("defaults: {max_output: 5}\n", "budgets.yaml:1: defaults.max_output: unknown key"),
        (
            "budgets:\n  - {period: day, limit_usd: 1}\n  - {period: day, limit_tokens: 9}\n",
            "budgets.yaml:3: budgets[1]: same scope and period as budgets[0]",
        ),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, text, where):
    with pytest.raises(PolicyError) as caught:
        policy_from(tmp_path, text)
    assert where in str(caught.value)


@pytest.mark.parametrize(
    ("period", "ident", "start", "end"),
    [
        ("day", "2026-03-29", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
        ("week", "2026-W13", "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
        ("month", "2026-03", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"),
    ],
)
def test_periods_are_calendar_periods_in_the_zone_across_dst(period, ident, start, end):
    # 23:30 UTC on 28 March is already 29 March in Berlin, the day clocks go forward.
    now = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    span = window(period, ZoneInfo("Europe/Berlin"), now)
    assert (span.id, span.start.isoformat(), span.end.isoformat()) == (ident, start, end)


def test_december_rolls_into_the_next_year():
    span = window("month", ZoneInfo("UTC"), datetime(2026, 12, 31, 12, tzinfo=UTC))
    assert (span.id, span.end.isoformat()) == ("2026-12", "2027-01-01T00:00:00+00:00")
