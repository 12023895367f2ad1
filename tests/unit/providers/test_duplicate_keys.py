"""Ambiguous JSON is refused: a repeated key at any depth, scanned in one copy and read by the
provider in the other, never reaches an adapter's parse result."""

import re

import pytest

from tollhouse import providers
from tollhouse.providers.base import ParseError, Request
from tollhouse.providers.jsonbody import load_object, strict_loads

SECRET = "AKIA" + "Q3EGRN7YW5XTPLZB"


def test_unique_keys_parse_as_usual():
    assert strict_loads(b'{"a":[{"b":1},{"b":2}],"c":"d"}') == {"a": [{"b": 1}, {"b": 2}], "c": "d"}
    assert strict_loads("[1, 2]") == [1, 2]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"model":"m","model":"n"}', "$: duplicate key (2nd occurrence of the 1st key)"),
        (
            '{"model":"m","messages":[{"role":"user","content":"hi","content":"k"}]}',
            "$.messages[0]: duplicate key (2nd occurrence of the 2nd key)",
        ),
        (
            '{"a":1,"b":2,"c":{"x":[0,{"y":1,"z":2,"y":3}]}}',
            "$.c.x[1]: duplicate key (2nd occurrence of the 1st key)",
        ),
        ('[{"a":{"b":1}},{"a":1,"a":1}]', "$[1]: duplicate key"),
    ],
)
def test_a_repeated_key_at_any_depth_is_refused_by_its_location(body, where):
    with pytest.raises(ParseError, match=rf"^{re.escape(where)}"):
        strict_loads(body)


def test_the_first_repeat_in_document_order_is_named():
    with pytest.raises(ParseError, match=r"^\$\.a: "):
        strict_loads('{"a":{"k":1,"k":2},"b":{"k":1,"k":2}}')


def test_keys_that_could_hold_client_secrets_are_never_quoted():
    body = f'{{"tools":{{"{SECRET}":{{"jane.doe@acme-corp.io":{{"q":1,"q":2}}}}}}}}'
    with pytest.raises(ParseError) as err:
        strict_loads(body)
    message = str(err.value)
    assert message.startswith("$.tools.{key 1}.{key 1}: duplicate key")
    assert SECRET not in message and "jane.doe" not in message


def test_a_repeated_secret_key_is_not_quoted_either():
    with pytest.raises(ParseError) as err:
        strict_loads(f'{{"{SECRET}":1,"{SECRET}":2}}')
    assert SECRET not in str(err.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(constant):
    with pytest.raises(ParseError, match="NaN or Infinity"):
        strict_loads(f'{{"temperature":{constant}}}')


def test_invalid_json_is_a_parse_error_with_a_position_only():
    with pytest.raises(ParseError, match=r"line 1 column \d+") as err:
        strict_loads(f'{{"a":"{SECRET}"')
    assert SECRET not in str(err.value)
    with pytest.raises(ParseError, match="not valid UTF-8"):
        strict_loads(b'{"a":"\xff"}')


def test_load_object_is_strict():
    with pytest.raises(ParseError, match="duplicate key"):
        load_object(b'{"a":1,"a":2}')


CASES = [
    (
        "openai",
        "/v1/chat/completions",
        '{"model":"gpt-4o","messages":[{"role":"user","content":"hi","content":"%s"}]}',
    ),
    ("openai", "/v1/responses", '{"model":"gpt-4o","input":"hi","input":"%s"}'),
    (
        "anthropic",
        "/v1/messages",
        '{"model":"c","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi","text":"%s"}]}]}',
    ),
    (
        "gemini",
        "/v1beta/models/gemini-2.0-flash:generateContent",
        '{"contents":[{"parts":[{"text":"hi","text":"%s"}]}]}',
    ),
    (
        "cohere",
        "/v2/chat",
        '{"model":"c","messages":[{"role":"user","content":"hi"}],"messages":[{"role":"user","content":"%s"}]}',
    ),
    (
        "bedrock",
        "/model/anthropic.claude-3-haiku/converse",
        '{"messages":[{"role":"user","content":[{"text":"hi","text":"%s"}]}]}',
    ),
]


@pytest.mark.parametrize(("api", "path", "body"), CASES)
def test_every_adapter_refuses_a_repeated_key(api, path, body):
    resolved = providers.resolve(api, "POST", path)
    assert resolved is not None, (api, path)
    adapter, _ = resolved
    request = Request(
        "POST",
        "api.example.com",
        path,
        {"content-type": "application/json"},
        (body % SECRET).encode(),
    )
    with pytest.raises(ParseError, match="duplicate key") as err:
        adapter.parse(api, request)
    assert SECRET not in str(err.value)
