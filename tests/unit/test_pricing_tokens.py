import gzip
import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from tollhouse.exchange import Usage
from tollhouse.policyfile import PolicyError
from tollhouse.pricing import load_price_book
from tollhouse.tokens import TokenCounter, encoding_for
from tollhouse.upstreams import parse_upstreams

RULES = Path(__file__).resolve().parents[2] / "rules"
SHIPPED = Path(__file__).resolve().parents[2] / "tollhouse" / "data" / "tiktoken"


def test_shipped_encodings_match_tiktokens_checksums():
    expected = {
        "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    }
    for name, digest in expected.items():
        data = gzip.decompress((SHIPPED / f"{name}.tiktoken.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest


def test_token_counts_offline(tmp_path, monkeypatch):
    # Any attempt to download would go through requests; make it fail loudly.
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("tiktoken tried to download")

    monkeypatch.setattr(requests, "get", no_network)
    counter = TokenCounter(tmp_path)
    assert counter.count("Hello world", "gpt-4o") == 2
    assert counter.count("Hello world", "gpt-4") == 2
    assert counter.count_prompt(["Hello world", "How are you?"], "gpt-4o-mini") == 2 + 4 + 8


def test_encoding_choice():
    assert encoding_for("gpt-4o-mini") == "o200k_base"
    assert encoding_for("gpt-4-turbo") == "cl100k_base"
    assert encoding_for("text-embedding-3-small") == "cl100k_base"
    assert encoding_for("claude-sonnet-4-5") == "o200k_base"
    assert encoding_for(None) == "o200k_base"


def test_prices_from_genai_prices_and_overrides():
    book = load_price_book(RULES / "prices.yaml")
    assert book.cost("openai", "gpt-4o-mini", Usage(1_000_000, 0)) == Decimal("0.15")
    # Bedrock model ids are priced under AWS; Gemini under Google.
    assert book.cost("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", Usage(1000, 100)) > 0
    assert book.cost("gemini", "gemini-2.5-flash", Usage(1000, 100)) > 0
    # The local override wins for internal models.
    assert book.cost("openai", "internal-summarizer", Usage(1_000_000, 1_000_000)) == Decimal("0.5")
    assert book.cost("openai", "no-such-model-anywhere", Usage(10, 10)) is None
    assert book.cost("openai", None, Usage(10, 10)) is None


def test_override_with_cache_rates(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n  - provider: openai\n    model: gpt-4o\n    input_per_mtok: 2\n"
        "    output_per_mtok: 8\n    cache_read_per_mtok: 1\n"
    )
    book = load_price_book(path)
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=500_000)
    assert book.cost("openai", "gpt-4o", usage) == Decimal("1.5")
    assert book.cost("azure-openai", "gpt-4o", usage) != Decimal("1.5")  # provider-specific


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "models:\n  - model: x\n    input_per_mtok: -1\n    output_per_mtok: 1\n",
            "prices.yaml:3: models[0].input_per_mtok",
        ),
        ("models:\n  - model: x\n    input_per_mtok: 1\n", "models[0].output_per_mtok"),
        ("models:\n  - input_per_mtok: 1\n    output_per_mtok: 1\n", "models[0].model"),
        (
            "models:\n  - model: x\n    input_per_mtok: 1\n    output_per_mtok: '2'\n",
            "prices.yaml:4: models[0].output_per_mtok",
        ),
    ],
)
def test_bad_prices_name_file_line_and_field(tmp_path, text, where):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_price_book(path)
    assert where in str(err.value)


def test_missing_prices_file_means_no_overrides(tmp_path):
    assert load_price_book(tmp_path / "none.yaml").overrides == []


def test_upstream_overrides():
    upstreams = parse_upstreams(["*=127.0.0.1:9443", "api.anthropic.com=10.0.0.5:443"])
    assert upstreams.target("api.openai.com", is_ai_host=True) == ("127.0.0.1", 9443)
    assert upstreams.target("API.anthropic.com", is_ai_host=True) == ("10.0.0.5", 443)
    assert upstreams.target("example.com", is_ai_host=False) is None
    for bad in ["api.openai.com", "x=host", "x=host:99999", "=1.2.3.4:5"]:
        with pytest.raises(ValueError, match="--upstream"):
            parse_upstreams([bad])
