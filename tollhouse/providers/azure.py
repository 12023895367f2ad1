"""Azure OpenAI: the OpenAI body format, with the model in the path on deployment endpoints.

``/openai/deployments/{deployment}/chat/completions?api-version=...`` (also ``/completions``,
``/embeddings``) name the model by deployment; the newer ``/openai/v1/...`` endpoints, the
preview ``/openai/responses`` and the Azure AI inference ``/models/...`` carry it in the body.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from tollhouse.exchange import Exchange, Operation
from tollhouse.providers.base import Request
from tollhouse.providers.openai import OpenAIAdapter

_DEPLOYMENT = re.compile(
    r"^/openai/deployments/(?P<model>[^/?]+)/(?P<op>chat/completions|completions|embeddings)/?$"
)
_BODY_MODEL = re.compile(
    r"^(?:/openai(?:/v1)?|/models)/(?P<op>chat/completions|completions|embeddings|responses)/?$"
)
_OPERATIONS = {
    "chat/completions": Operation.CHAT,
    "completions": Operation.COMPLETIONS,
    "embeddings": Operation.EMBEDDINGS,
    "responses": Operation.RESPONSES,
}
_API_VERSION = re.compile(r"[?&]api-version=(\d{4}-\d{2}-\d{2})")
_STREAM_OPTIONS_SINCE = "2024-09-01"  # older api-versions reject stream_options


def _bare(path: str) -> str:
    return path.split("?", 1)[0]


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI Service and Azure AI Foundry model inference."""

    api = "azure"

    def operation(self, method: str, path: str) -> str | None:
        if method.upper() != "POST":
            return None
        bare = _bare(path)
        m = _DEPLOYMENT.match(bare) or _BODY_MODEL.match(bare)
        return _OPERATIONS[m["op"]] if m else None

    def parse(self, provider: str, request: Request) -> Exchange:
        exchange = super().parse(provider, request)
        m = _DEPLOYMENT.match(_bare(request.path))
        if m:  # the deployment decides the model; a "model" in the body is ignored by Azure
            exchange.model = exchange.model_requested = unquote(m["model"])
        return exchange

    def write_model(self, exchange: Exchange, model: str) -> tuple[str, bool]:
        bare, sep, query = exchange.path.partition("?")
        m = _DEPLOYMENT.match(bare)
        if not m:
            return super().write_model(exchange, model)
        start, end = m.span("model")
        return bare[:start] + quote(model, safe="") + bare[end:] + sep + query, False

    def ask_for_stream_usage(self, exchange: Exchange) -> bool:
        m = _API_VERSION.search(exchange.path)
        if m and m[1] < _STREAM_OPTIONS_SINCE:
            return False
        return super().ask_for_stream_usage(exchange)
