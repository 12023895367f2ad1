"""Input-token estimates with tiktoken, from encoding files shipped inside the project.

Provider usage is the truth for cost; this estimate only reserves budget before a request is sent.
tiktoken would download its encodings at run time; we never let it: the files ship gzipped in
``tollhouse/data/tiktoken`` and are unpacked into a cache folder under the file names tiktoken
looks for, and tiktoken verifies their SHA-256 itself as it loads them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from importlib import resources
from pathlib import Path

import tiktoken

# The URLs tiktoken_ext.openai_public loads from; tiktoken names its cache files by their SHA-1.
_SOURCES = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
# Families tokenized with cl100k_base; every other model (newer OpenAI models and, as an
# estimate, other providers' models) uses o200k_base.
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-", "davinci", "babbage")
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5")
# Overhead per segment (role markers, separators) in OpenAI's chat format: a few tokens each.
_TOKENS_PER_SEGMENT = 4
# Beyond this many characters the count is extrapolated, so that a huge prompt costs bounded time.
_EXACT_LIMIT = 1_000_000

_lock = threading.Lock()


def encoding_for(model: str | None) -> str:
    """The tiktoken encoding name used to estimate ``model``'s tokens."""
    name = (model or "").lower()
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def _unpack(name: str, cache_dir: Path) -> None:
    target = cache_dir / hashlib.sha1(_SOURCES[name].encode()).hexdigest()  # noqa: S324 - tiktoken's naming
    if target.exists():
        return
    packed = resources.files("tollhouse") / "data" / "tiktoken" / f"{name}.tiktoken.gz"
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(gzip.decompress(packed.read_bytes()))
    tmp.replace(target)


def load_encoding(name: str, cache_dir: Path) -> tiktoken.Encoding:
    """Load encoding ``name`` from the shipped files, unpacking them into ``cache_dir`` once.

    Raises ValueError if the files do not match tiktoken's expected SHA-256. Nothing is downloaded:
    tiktoken only fetches when its cache lacks the file, and we fill the cache first.
    """
    if name not in _SOURCES:
        raise ValueError(f"no shipped encoding named {name!r}; have {sorted(_SOURCES)}")
    with _lock:
        _unpack(name, cache_dir)
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        try:
            return tiktoken.get_encoding(name)
        finally:
            if previous is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


class TokenCounter:
    """Counts prompt tokens for a model. Encodings load lazily, once per process."""

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._encodings: dict[str, tiktoken.Encoding] = {}

    def encoding(self, model: str | None) -> tiktoken.Encoding:
        name = encoding_for(model)
        if name not in self._encodings:
            self._encodings[name] = load_encoding(name, self._cache_dir)
        return self._encodings[name]

    def warm(self) -> None:
        """Load every shipped encoding now, so the first request does not pay for it."""
        for model in ("gpt-4o", "gpt-4"):
            self.encoding(model)

    def count(self, text: str, model: str | None = None) -> int:
        """Tokens in ``text``; past ~1 MB of text the rest is extrapolated from the exact part."""
        encoding = self.encoding(model)
        if len(text) <= _EXACT_LIMIT:
            return len(encoding.encode_ordinary(text))
        head = len(encoding.encode_ordinary(text[:_EXACT_LIMIT]))
        return round(head * len(text) / _EXACT_LIMIT)

    def count_prompt(self, segments_text: list[str], model: str | None = None) -> int:
        """Estimated input tokens of a prompt made of these segments."""
        return sum(self.count(t, model) for t in segments_text) + _TOKENS_PER_SEGMENT * len(
            segments_text
        )

    def decode(self, ids: list[int], model: str | None = None) -> str:
        """The text that token ``ids`` stand for in ``model``'s encoding (what the provider will
        read). Raises ValueError for an id the encoding lacks or bytes that are not UTF-8."""
        encoding = self.encoding(model)
        if any(i < 0 or i > encoding.max_token_value for i in ids):
            raise ValueError("token id out of range")
        return encoding.decode(ids, errors="strict")
