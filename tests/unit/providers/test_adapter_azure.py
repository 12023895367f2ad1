"""Azure OpenAI: deployment in the path, v1 endpoints with the model in the body."""

from __future__ import annotations

import json

import pytest

from tests.unit.providers.adapter_checks import check_render_exact, parse, request, segments
from tollhouse.exchange import Operation, Role
from tollhouse.providers.azure import AzureOpenAIAdapter

A = AzureOpenAIAdapter()
CHAT = {
    "messages": [
        {"role": "system", "content": "You are an HR assistant."},
        {"role": "user", "content": "Summarize the policy."},
    ],
    "max_tokens": 800,
    "stream": True,
}


def test_deployment_path_names_the_model() -> None:
    path = "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    ex = parse(A, path, CHAT)
    assert (ex.api, ex.operation, ex.model, ex.model_requested) == (
        "azure",
        Operation.CHAT,
        "gpt-4o-prod",
        "gpt-4o-prod",
    )
    assert segments(ex)[1] == (Role.USER, "$.messages[1].content", "Summarize the policy.")
    assert ex.max_output_tokens == 800 and ex.stream


def test_set_model_rewrites_the_deployment_only() -> None:
    path = "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    req = request(path, CHAT)
    again = check_render_exact(A, req, model="gpt-4o-mini dev")
    assert (
        again.path
        == "/openai/deployments/gpt-4o-mini%20dev/chat/completions?api-version=2024-10-21"
    )
    assert again.model == "gpt-4o-mini dev"
    ex = A.parse("test", req)
    ex.set_model("cheap")
    rendered = A.render(ex)
    assert rendered.body == req.body  # the model lives in the path: the body is untouched
    assert rendered.path == "/openai/deployments/cheap/chat/completions?api-version=2024-10-21"


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/openai/deployments/emb/embeddings?api-version=2024-02-01", Operation.EMBEDDINGS),
        ("/openai/deployments/instruct/completions?api-version=2024-02-01", Operation.COMPLETIONS),
        ("/openai/v1/chat/completions", Operation.CHAT),
        ("/openai/v1/responses", Operation.RESPONSES),
        ("/openai/responses?api-version=2025-04-01-preview", Operation.RESPONSES),
        ("/models/chat/completions?api-version=2024-05-01-preview", Operation.CHAT),
    ],
)
def test_endpoints(path: str, operation: str) -> None:
    assert A.operation("POST", path) == operation
    assert A.operation("GET", path) is None


def test_v1_model_in_body() -> None:
    body = {"model": "gpt-4.1-deploy", "input": "Hello", "stream": False}
    ex = parse(A, "/openai/v1/responses", body)
    assert ex.model == "gpt-4.1-deploy"
    check_render_exact(
        A,
        request("/openai/v1/responses", body),
        model="o4-mini",
        model_in_body=lambda b, m: b.update(model=m),
    )


def test_stream_usage_only_for_api_versions_that_accept_it() -> None:
    old = parse(A, "/openai/deployments/d/chat/completions?api-version=2024-06-01", CHAT)
    assert A.ask_for_stream_usage(old) is False and not old.changed
    new = parse(A, "/openai/deployments/d/chat/completions?api-version=2024-10-21", CHAT)
    assert A.ask_for_stream_usage(new) is True
    assert json.loads(A.render(new).body)["stream_options"] == {"include_usage": True}
    v1 = parse(A, "/openai/v1/chat/completions", {"model": "d", **CHAT})
    assert A.ask_for_stream_usage(v1) is True
