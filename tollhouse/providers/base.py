"""The contract every provider adapter fulfils. Adapters are the only code that knows a wire
format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from tollhouse.exchange import Exchange, Usage


class ParseError(ValueError):
    """The body on a known endpoint is not what the provider's format says. The message names the
    field (as a JSON path) and never quotes prompt text."""


class SignedBodyError(RuntimeError):
    """The body is covered by a signature (AWS SigV4) and cannot be rewritten without breaking
    it."""


@dataclass(frozen=True, slots=True)
class Request:
    """What an adapter sees of an HTTP request. ``headers`` has lower-case names; ``body`` is
    already content-decoded (gzip, br, zstd, deflate)."""

    method: str
    host: str
    # path and query string as sent, e.g. "/v1beta/models/gemini-2.5-flash:generateContent?alt=sse"
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rewritten request: the new path (the model may live there) and the new body."""

    path: str
    body: bytes


@dataclass(slots=True)
class ResponseSummary:
    """What a finished response said: the provider's usage, the model that answered, its text."""

    usage: Usage | None = None
    model: str | None = None
    text: str = ""


@dataclass(slots=True)
class ErrorReply:
    """A refusal in the provider's own error shape, so that its SDK raises a clear error."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Refusal:
    """Why the gateway answers instead of the provider; adapters map these to their error types."""

    INVALID_REQUEST = "invalid_request"  # 400
    AUTHENTICATION = "authentication"  # 401
    PERMISSION = "permission"  # 403: a policy blocked the request
    NOT_FOUND = "not_found"  # 404
    RATE_LIMIT = "rate_limit"  # 429: a budget is exhausted
    GATEWAY = "gateway"  # 502: the gateway itself failed (fail closed)


class StreamReader(ABC):
    """Reads a streamed response (SSE or AWS event stream) as it passes through.

    ``feed`` is called with each chunk as it arrives and returns the bytes to forward to the client
    now; ``close`` is called once at the end and returns whatever was held back. A reader forwards
    bytes as soon as it may: it holds back only an incomplete event, and only when it must drop
    events (e.g. the usage chunk the gateway asked for and the client did not).
    """

    def __init__(self) -> None:
        self.summary = ResponseSummary()
        # The provider's last word was read: its stop event and its final usage. A client that
        # closes after that (litellm does, on Anthropic streams) had the whole answer.
        self.finished = False

    @abstractmethod
    def feed(self, chunk: bytes) -> bytes: ...

    @abstractmethod
    def close(self) -> bytes: ...


class Adapter(ABC):
    """One wire format (OpenAI, Anthropic, Gemini, Bedrock, ...)."""

    api: str  # the format family, as named in rules/hosts.yaml

    @abstractmethod
    def operation(self, method: str, path: str) -> str | None:
        """The :class:`~tollhouse.exchange.Operation` at this endpoint, or None if not ours."""

    @abstractmethod
    def parse(self, provider: str, request: Request) -> Exchange:
        """Parse the body once into an exchange. Raises :class:`ParseError` on a malformed body."""

    @abstractmethod
    def render(self, exchange: Exchange) -> Rendered:
        """Write changed segments and model back, leaving the rest of the body as it was.
        Raises :class:`SignedBodyError` for a signed exchange that has changed."""

    def ask_for_stream_usage(self, exchange: Exchange) -> bool:
        """Make a streamed request report its usage where the format needs asking (OpenAI chat's
        ``stream_options.include_usage``). Returns True if the body changed, in which case the
        stream reader drops the extra usage event so the client sees what it asked for."""
        return False

    @abstractmethod
    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        """Read usage, answering model and output text from a complete (non-streamed) response.
        ``headers`` (lower-case names) matter where usage travels in them (Bedrock InvokeModel)."""

    @abstractmethod
    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        """A reader for a streamed response of this exchange."""

    @abstractmethod
    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        """A refusal in this provider's error shape."""
