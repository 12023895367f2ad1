"""The budget stage in the request chain, driven with mitmproxy's test helpers (no network)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from mitmproxy import flow as mflow
from mitmproxy.test import taddons, tutils

from addons._flow import transit_of
from addons.budget import Budget
from addons.commit import Commit
from addons.meter import Meter
from addons.parse import Parse
from addons.scope import Scope
from addons.settle import Settle
from tests.addons.test_pipeline import openai_flow, send

RULES = Path(__file__).resolve().parents[2] / "rules"
# Round prices: gpt-4o $10 in / $100 out per Mtok, gpt-4o-mini $1 / $10. max_tokens 1000 makes a
# gpt-4o request's worst case just over $0.10, a gpt-4o-mini one just over $0.01.
PRICES = """\
models:
  - {model: gpt-4o, input_per_mtok: 10, output_per_mtok: 100}
  - {model: gpt-4o-mini, input_per_mtok: 1, output_per_mtok: 10}
"""
BUDGETS = """\
chains:
  cheaper: [gpt-4o, gpt-4o-mini]
budgets:
  - {scope: {team: payments}, period: month, limit_usd: 0.05, timezone: Europe/Berlin}
  - {scope: {model: gpt-4o}, period: day, limit_usd: 0.15, on_cap: downgrade, chain: cheaper}
"""


def chat(model: str = "gpt-4o") -> bytes:
    return json.dumps(
        {"model": model, "max_tokens": 1000, "messages": [{"role": "user", "content": "Hi"}]}
    ).encode()


@pytest.fixture
def chain(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "prices.yaml").write_text(PRICES)
    (rules / "budgets.yaml").write_text(BUDGETS)
    stages = [Scope(), Parse(), Meter(), Budget(), Commit()]
    with taddons.context(*stages, Settle()) as tctx:
        tctx.options.tollhouse_data = str(tmp_path / "data")
        tctx.options.tollhouse_rules = str(rules)
        yield stages
    stages[3].done()


async def as_team(stages, flow, team: str | None) -> None:
    """Run the chain with ``team`` filled in, as the identity stage will."""
    for stage in stages[:1]:
        stage.requestheaders(flow)
    transit_of(flow).record.team = team
    await send(stages[1:], flow)


def states(budget: Budget) -> dict[str, tuple[int, int]]:
    budget.engine.flush()
    return {s.key: (s.spent, s.reserved) for s in budget.engine.store.states(time.time())}


async def test_a_reservation_is_held_then_released_on_error(chain):
    flow = openai_flow(chat("gpt-4o-mini"))
    await as_team(chain, flow, "payments")
    transit = transit_of(flow)
    assert flow.response is None and transit.reservation is not None
    assert states(chain[3])["team:payments/month"][1] > 0
    flow.error = mflow.Error("connection reset")
    Settle().error(flow)
    assert states(chain[3])["team:payments/month"] == (0, 0)


async def test_warn_header_and_event_then_block_naming_the_budget(chain):
    flows = []
    for _ in range(4):  # 4 x ~$0.01 of $0.05: the 4th reaches 80%
        flow = openai_flow(chat("gpt-4o-mini"))
        await as_team(chain, flow, "payments")
        assert flow.response is None
        flows.append(flow)
    assert not [e for e in transit_of(flows[2]).events if e["stage"] == "budget"]
    warned = flows[3]
    (event,) = [e for e in transit_of(warned).events if e["stage"] == "budget"]
    assert event["kind"] == "warn"
    assert event["detail"] == {"budget": "team:payments/month", "used_percent": 80}
    warned.response = tutils.tresp()
    chain[3].responseheaders(warned)
    assert warned.response.headers.get_all("x-tollhouse-budget") == [
        "warn; budget=team:payments/month; used=80%"
    ]

    blocked = openai_flow(chat("gpt-4o-mini"))
    await as_team(chain, blocked, "payments")
    assert blocked.response.status_code == 429
    assert blocked.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in blocked.response.headers
    message = json.loads(blocked.response.content)["error"]["message"]
    assert message.startswith("budget team:payments/month has $")
    assert "it resets at " in message
    assert message.endswith("(Europe/Berlin)")
    record = transit_of(blocked).record
    assert record.decision == "block" and record.reason.startswith("budget: budget team:")


async def test_downgrade_rewrites_the_model_and_says_why(chain):
    first = openai_flow(chat("gpt-4o"))
    await send(chain, first)  # no team: only the model budget applies
    assert json.loads(first.request.get_content())["model"] == "gpt-4o"
    second = openai_flow(chat("gpt-4o"))
    await send(chain, second)
    transit = transit_of(second)
    assert second.response is None
    assert json.loads(second.request.get_content())["model"] == "gpt-4o-mini"
    assert (transit.record.model_requested, transit.record.model_sent) == (
        "gpt-4o",
        "gpt-4o-mini",
    )
    (event,) = [e for e in transit.events if e["stage"] == "budget"]
    assert event["kind"] == "downgrade"
    assert event["detail"]["budget"] == "model:gpt-4o/day"
    assert "less than this request's worst case" in event["detail"]["reason"]
    second.response = tutils.tresp()
    chain[3].responseheaders(second)
    assert second.response.headers["x-tollhouse-budget"] == (
        "downgrade; budget=model:gpt-4o/day; from=gpt-4o; to=gpt-4o-mini"
    )


async def test_a_failing_store_fails_closed(chain, monkeypatch):
    def broken(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(chain[3].engine.store, "reserve", broken)
    flow = openai_flow(chat())
    await send(chain, flow)
    assert flow.response.status_code == 502
    assert transit_of(flow).record.reason.startswith("budget:")


async def test_without_budgets_no_store_is_opened(tmp_path):
    with taddons.context(Scope(), Budget()) as tctx:
        tctx.options.tollhouse_data = str(tmp_path)
        tctx.options.tollhouse_rules = str(RULES)
        assert tctx.master.addons.get("budget").engine is None
    assert not (tmp_path / "budget.sqlite3").exists()


def test_a_bad_budgets_file_stops_a_starting_gateway(tmp_path):
    shutil.copytree(RULES, tmp_path, dirs_exist_ok=True)
    (tmp_path / "budgets.yaml").write_text("budgets:\n  - {period: hourly, limit_usd: 1}\n")
    with (
        taddons.context(Scope(), Budget()) as tctx,
        pytest.raises(Exception, match=r"budgets.yaml:2: budgets\[0\].period"),
    ):
        tctx.options.tollhouse_rules = str(tmp_path)


async def test_a_later_stage_refusal_releases_the_reservation(chain):
    from addons._flow import refuse

    flow = openai_flow(chat("gpt-4o-mini"))
    await as_team(chain, flow, "payments")
    transit = transit_of(flow)
    assert transit.reservation is not None
    # e.g. commit refusing a signed body it cannot rewrite: mitmproxy still runs `response`.
    refuse(flow, transit, 400, "invalid_request", "cannot rewrite a signed body", "commit")
    Settle().response(flow)
    Settle().error(flow)  # and a late error changes nothing: released exactly once
    assert states(chain[3])["team:payments/month"] == (0, 0)
