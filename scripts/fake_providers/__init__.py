"""Wire formats of the fake provider (``scripts/fake_provider.py``), one module per provider family.

Each module turns a parsed request body into a :class:`~fake_providers.common.Prompt` and
renders a :class:`~fake_providers.common.Reply` in the provider's documented format; ``common``
holds what they share (behaviour markers, token counts, SSE and AWS event-stream framing).
Stdlib only.
"""
