"""The normalized exchange: one LLM request, whatever the provider's wire format.

A provider adapter parses a request body once into an :class:`Exchange`; every later stage (DLP,
injection, budget, routing, audit) reads and changes the exchange, never the raw body. The adapter
then renders the changed exchange back into the provider's format, touching only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonPath = tuple[str | int, ...]
"""Where a value lives in the parsed JSON body, e.g. ``("messages", 0, "content", 1, "text")``."""


class Role:
    """Who put a segment's text into the prompt. Stages weigh trust by role."""

    SYSTEM = "system"  # system prompt or developer instructions: the application's own text
    USER = "user"
    ASSISTANT = "assistant"  # earlier model turns replayed by the client
    TOOL_CALL = "tool_call"  # arguments of a tool call the model made
    TOOL_RESULT = "tool_result"  # what a tool returned: untrusted, indirect-injection surface
    INPUT = "input"  # embeddings / legacy completions input, no conversational role
    FIELD = "field"  # any other text the provider reads: tool definitions, schemas, metadata,
    #                 names, JSON keys, the query string and headers


class Operation:
    """What the client asked the provider to do."""

    CHAT = "chat"  # OpenAI-style chat completions (OpenAI and compatible providers, Azure)
    RESPONSES = "responses"  # OpenAI Responses API
    COMPLETIONS = "completions"  # legacy text completions
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"  # Anthropic Messages API
    GENERATE = "generate"  # Gemini / Vertex generateContent and streamGenerateContent
    CONVERSE = "converse"  # Bedrock Converse / ConverseStream
    INVOKE = "invoke"  # Bedrock InvokeModel / InvokeModelWithResponseStream
    COUNT_TOKENS = "count_tokens"  # token counting: the prompt reaches the provider, no bill
    UNKNOWN = "unknown"  # an endpoint no adapter knows: read by the generic path, every string


@dataclass(slots=True)
class Segment:
    """One piece of text in the prompt, with the role that supplied it and where it sits.

    ``form`` says how the text is stored at ``path`` and so how a rewrite is written back:
    ``text`` a JSON string value; ``key`` the object key ``path[-1]`` itself; ``base64`` a
    base64 string (``text`` is what it decodes to); ``tokens`` a token-id array (``text`` is the
    decoded text, written back as a string, which every API that takes token ids also accepts);
    ``header``, ``query`` and ``url`` parts of the request outside the body (see
    :mod:`tollhouse.providers.envelope`).
    """

    role: str
    path: JsonPath
    text: str
    form: str = "text"

    @property
    def location(self) -> str:
        """The JSON path as ``$.messages[0].content`` for humans and the audit log."""
        out = "$"
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        return out


@dataclass(slots=True)
class Attachment:
    """A non-text part of the prompt (image, file, audio) that text scanners cannot read."""

    kind: str  # "image", "file", "audio", "document", "video"
    path: JsonPath
    media_type: str | None = None


@dataclass
class Exchange:
    """A parsed request. Stages change it through :meth:`set_text` and :meth:`set_model`.

    ``body`` is the parsed JSON body; adapters own it. ``signed`` means a signature covers the
    body (AWS SigV4): it can be read but never rewritten, so stages that would change it must
    block instead.
    """

    provider: str
    api: str
    operation: str
    path: str
    model: str | None = None
    stream: bool = False
    max_output_tokens: int | None = None
    choices: int = 1  # answers asked for (OpenAI `n`, Gemini `candidateCount`): each can be as long
    segments: list[Segment] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # Parts no text scanner can read (a binary upload, audio; never client text, only what kind of
    # part): the host's `unscannable` policy in rules/hosts.yaml decides whether they may pass.
    unreadable: list[str] = field(default_factory=list)
    body: Any = None
    signed: bool = False
    model_requested: str | None = None
    changed_segments: set[int] = field(default_factory=set)
    model_changed: bool = False
    body_changed: bool = False  # adapter-level changes such as asking for streamed usage
    drop_stream_usage: bool = False  # the gateway asked for streamed usage the client did not
    raw_body: bytes = field(default=b"", repr=False, compare=False)  # as received, for render

    def __post_init__(self) -> None:
        if self.model_requested is None:
            self.model_requested = self.model

    @property
    def changed(self) -> bool:
        """True when the request must be rendered again before it goes upstream."""
        return bool(self.changed_segments) or self.model_changed or self.body_changed

    def set_text(self, index: int, text: str) -> None:
        """Replace the text of segment ``index``; the adapter writes it back on render."""
        if self.segments[index].text != text:
            self.segments[index].text = text
            self.changed_segments.add(index)

    def set_model(self, model: str) -> None:
        """Send the request to ``model`` instead; ``model_requested`` keeps the client's choice."""
        if model != self.model:
            self.model = model
            self.model_changed = True

    def prompt_text(self) -> str:
        """All segment text joined by newlines, e.g. for token estimation."""
        return "\n".join(s.text for s in self.segments)


@dataclass(slots=True)
class Usage:
    """Tokens as the provider reported them. The truth for cost.

    ``input_tokens`` counts every input token, cached ones included (Anthropic reports cache reads
    and writes apart from ``input_tokens``; its adapter adds them in), so that ``cache_read_tokens``
    and ``cache_write_tokens`` are subsets of it, as genai-prices expects.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
