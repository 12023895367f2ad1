"""What no scanner can read follows hosts.yaml `unscannable`: blocked by default, or passed
where the operator allows it, with the audit saying so."""

from __future__ import annotations

import json
import shutil

import pytest
from mitmproxy.test import taddons

from addons._flow import transit_of
from addons.commit import Commit
from addons.meter import Meter
from addons.parse import Parse
from addons.scope import Scope
from tests.addons.test_pipeline import RULES, openai_flow, send

AUDIO = b"\xff\xfb\x90\x00" + bytes(range(128, 256)) * 4


def multipart(path_part: bytes) -> bytes:
    return (
        b'--B\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
        b"Content-Type: audio/mpeg\r\n\r\n" + path_part + b"\r\n--B--\r\n"
    )


@pytest.fixture
def rules(tmp_path):
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    hosts = folder / "hosts.yaml"
    text = hosts.read_text().replace(
        "    hosts: [api.openai.com, us.api.openai.com, eu.api.openai.com]\n",
        "    hosts: [api.openai.com, us.api.openai.com, eu.api.openai.com]\n"
        "    unscannable: {/v1/audio/transcriptions: pass}\n",
        1,
    )
    hosts.write_text(text)
    return folder


@pytest.fixture
def chain(tmp_path, rules):
    stages = [Scope(), Parse(), Meter(), Commit()]
    with taddons.context(*stages) as tctx:
        tctx.options.tollhouse_rules = str(rules)
        tctx.options.tollhouse_data = str(tmp_path / "data")
        yield stages


async def test_binary_uploads_are_blocked_by_default(chain):
    flow = openai_flow(
        multipart(AUDIO), path="/v1/uploads", content_type="multipart/form-data; boundary=B"
    )
    await send(chain, flow)
    assert flow.response.status_code == 415
    assert "multipart part 2 (audio/mpeg)" in json.loads(flow.response.content)["error"]["message"]
    assert transit_of(flow).record.decision == "block"


async def test_a_pass_rule_forwards_the_upload_and_the_audit_says_so(chain):
    flow = openai_flow(
        multipart(AUDIO),
        path="/v1/audio/transcriptions",
        content_type="multipart/form-data; boundary=B",
    )
    await send(chain, flow)
    transit = transit_of(flow)
    assert flow.response is None
    assert transit.record.decision == "pass"
    assert "audio/mpeg" in transit.record.reason
    assert [e["kind"] for e in transit.events] == ["unscannable_pass"]
    assert AUDIO in flow.request.raw_content  # the audio itself goes out unchanged
