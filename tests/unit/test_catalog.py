from pathlib import Path

import pytest

from tollhouse.catalog import Handling, load_catalog
from tollhouse.policyfile import PolicyError

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(RULES / "hosts.yaml")


@pytest.mark.parametrize(
    ("host", "provider", "api"),
    [
        ("api.openai.com", "openai", "openai"),
        ("eu.api.openai.com", "openai", "openai"),
        ("contoso-east.openai.azure.com", "azure-openai", "azure"),
        ("us-central1-aiplatform.googleapis.com", "vertex-ai", "vertex"),
        ("bedrock-runtime.eu-central-1.amazonaws.com", "bedrock", "bedrock"),
        ("API.Anthropic.com.", "anthropic", "anthropic"),
        ("openrouter.ai", "openrouter", "openai"),
    ],
)
def test_api_hosts_are_intercepted(catalog, host, provider, api):
    entry = catalog.match(host)
    assert entry is not None
    assert (entry.name, entry.api, entry.handling) == (provider, api, Handling.INTERCEPT)
    assert entry.decrypt


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "openai.com.evil.test",
        "a.b.openai.azure.com",
        "s3.us-east-1.amazonaws.com",
        "notapi.openai.com",
        "",
        None,
    ],
)
def test_other_hosts_are_not_in_scope(catalog, host):
    assert catalog.match(host) is None


def test_consumer_apps_are_observed_not_decrypted_by_default(catalog):
    entry = catalog.match("chatgpt.com")
    assert entry is not None and entry.kind == "consumer"
    assert entry.handling == Handling.OBSERVE and not entry.decrypt


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "apis:\n  - provider: x\n    api: nope\n    hosts: [a.example]\n",
            "hosts.yaml:3: apis[0].api",
        ),
        ("apis:\n  - provider: x\n    api: openai\n    hosts: []\n", "hosts.yaml:4: apis[0].hosts"),
        ("apis:\n  - provider: x\n    api: openai\n    hosts: ['bad host']\n", "apis[0].hosts[0]"),
        (
            "consumer_apps:\n  - name: c\n    hosts: [c.example]\n    handling: spy\n",
            "hosts.yaml:4: consumer_apps[0].handling",
        ),
        (
            "apis:\n  - provider: x\n    api: openai\n    hosts: [a.example]\n    colour: red\n",
            "hosts.yaml:5: apis[0].colour",
        ),
        (
            "apis:\n  - provider: x\n    api: openai\n    hosts: [a.example]\n"
            "  - provider: y\n    api: openai\n    hosts: [a.example]\n",
            "apis[1].hosts[0]",
        ),
        ("apis: [\n", "hosts.yaml:"),
    ],
)
def test_bad_catalog_names_file_line_and_field(tmp_path, text, where):
    with pytest.raises(PolicyError) as err:
        load_catalog(write(tmp_path, text))
    assert where in str(err.value)


def test_duplicate_key_is_refused(tmp_path):
    with pytest.raises(PolicyError, match=r"hosts.yaml:2: apis: duplicate key"):
        load_catalog(write(tmp_path, "apis: []\napis: []\n"))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_catalog(tmp_path / "absent.yaml")
