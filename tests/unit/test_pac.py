"""The PAC file routes exactly as the catalog matches, and AI hosts never fall back to DIRECT."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tollhouse import cli
from tollhouse.catalog import load_catalog
from tollhouse.pac import pac_file, pattern_regex, proxy_address, route

RULES = Path(__file__).resolve().parents[2] / "rules"
PROXIES = ["gw1.corp.example:8080", "10.0.0.2:3128"]
GATEWAY = "PROXY gw1.corp.example:8080; PROXY 10.0.0.2:3128"
NODE = shutil.which("node")

HOSTS_YAML = """\
version: 1
apis:
  - provider: openai
    api: openai
    hosts: [api.openai.com]
  - provider: azure-openai
    api: azure
    hosts: ["*.openai.azure.com"]
  - provider: vertex-ai
    api: vertex
    hosts: ["*-aiplatform.googleapis.com"]
  - provider: bedrock
    api: bedrock
    hosts: ["bedrock-runtime.*.amazonaws.com"]
consumer_apps:
  - name: chatgpt
    hosts: [chatgpt.com]
    handling: observe
  - name: claude
    hosts: [claude.ai]
    handling: inspect
  - name: poe
    hosts: [poe.com]
    handling: block
  - name: lookalike
    hosts: [exact.openai.azure.com]
    handling: observe
"""

# Hosts a browser might ask about, chosen at the edges of the translation: case, trailing dots,
# `*` spanning a dot or matching nothing, suffix and prefix look-alikes, an exact name that a
# pattern also matches (the exact entry wins, as in Catalog.match).
PROBES = [
    "api.openai.com",
    "API.OpenAI.com.",
    "api.openai.com..",
    "api.openai.com.evil.example",
    "evilapi.openai.com",
    "myco.openai.azure.com",
    "my-co-2.openai.azure.com",
    "a.b.openai.azure.com",
    ".openai.azure.com",
    "openai.azure.com",
    "myco_x.openai.azure.com",
    "myco.openai.azure.com.evil.example",
    "us-central1-aiplatform.googleapis.com",
    "-aiplatform.googleapis.com",
    "a.b-aiplatform.googleapis.com",
    "bedrock-runtime.us-east-1.amazonaws.com",
    "bedrock-runtime.us.east.amazonaws.com",
    "bedrock-runtime..amazonaws.com",
    "xbedrock-runtime.us-east-1.amazonaws.com",
    "chatgpt.com",
    "claude.ai",
    "poe.com",
    "exact.openai.azure.com",
    "example.com",
    "localhost",
    "10.1.2.3",
    "",
]


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text(HOSTS_YAML)
    return load_catalog(path)


def expected(catalog, host: str) -> str:
    entry = catalog.match(host)
    way = route(entry) if entry else None
    return {"GATEWAY": GATEWAY, "OBSERVED": GATEWAY + "; DIRECT", None: "DIRECT"}[way]


def run_pac(text: str, hosts: list[str], tmp_path: Path) -> list[str]:
    """FindProxyForURL for each host, in Node (a JavaScript engine like a browser's)."""
    script = tmp_path / "run.js"
    script.write_text(
        text
        + "\nconst hosts = JSON.parse(process.argv[2]);\n"
        + "console.log(JSON.stringify(hosts.map(h => FindProxyForURL('https://' + h + '/', h))));\n"
    )
    out = subprocess.run(
        [NODE, str(script), json.dumps(hosts)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(NODE is None, reason="node not installed: the PAC file is not run in JS")
def test_the_pac_file_routes_every_probe_as_the_catalog_matches_it(catalog, tmp_path):
    got = run_pac(pac_file(catalog, PROXIES), PROBES, tmp_path)
    assert dict(zip(PROBES, got, strict=True)) == {h: expected(catalog, h) for h in PROBES}
    # The cases that matter, spelled out: AI hosts only ever through the gateways.
    routes = dict(zip(PROBES, got, strict=True))
    assert routes["API.OpenAI.com."] == GATEWAY
    assert routes["a.b.openai.azure.com"] == "DIRECT"  # `*` is one label, as in the catalog
    assert routes["claude.ai"] == routes["poe.com"] == GATEWAY  # inspect and block
    assert routes["chatgpt.com"] == GATEWAY + "; DIRECT"  # observe: counted, may fall back
    assert routes["exact.openai.azure.com"] == GATEWAY + "; DIRECT"  # exact before pattern
    assert "DIRECT" not in routes["myco.openai.azure.com"]


@pytest.mark.skipif(NODE is None, reason="node not installed: the PAC file is not run in JS")
def test_the_shipped_catalog_sends_every_api_host_to_the_gateway_only(tmp_path):
    catalog = load_catalog(RULES / "hosts.yaml")
    samples = [h.replace("*", "x1") for h in catalog.api_hosts()]
    got = run_pac(pac_file(catalog, PROXIES), samples, tmp_path)
    assert got == [GATEWAY] * len(samples)


def test_patterns_translate_to_anchored_single_label_regexes(catalog):
    _, patterns = catalog.entries()
    for host in PROBES:
        normalized = host.lower().rstrip(".")
        by_regex = next(
            (e for p, e in patterns if re.fullmatch(pattern_regex(p), normalized)), None
        )
        exact = dict(catalog.entries()[0]).get(normalized)
        assert (exact or by_regex) == catalog.match(host), host
    assert pattern_regex("*-aiplatform.googleapis.com") == (
        r"^[a-z0-9-]+-aiplatform\.googleapis\.com$"
    )
    with pytest.raises(ValueError):
        pattern_regex("a/b.com")


@pytest.mark.parametrize(
    "spec, normalized",
    [
        ("GW.corp.example:8080", "gw.corp.example:8080"),
        ("gw.corp.example.:08080", "gw.corp.example:8080"),
        ("10.0.0.2:3128", "10.0.0.2:3128"),
        ("[2001:db8::0:1]:8080", "[2001:db8::1]:8080"),
    ],
)
def test_proxy_addresses_are_normalized(spec, normalized):
    assert proxy_address(spec) == normalized


@pytest.mark.parametrize(
    "spec",
    [
        "gw.corp.example",
        "gw:0",
        "gw:65536",
        "gw:80a",
        ":8080",
        'gw";alert(1);"x:8080',
        "gw x:8080",
        "gw\n:8080",
        "[::g]:8080",
        "-gw:8080",
        "gw:٨٠",  # non-ASCII digits
    ],
)
def test_malformed_proxies_are_refused_without_quoting_them(spec):
    with pytest.raises(ValueError) as err:
        proxy_address(spec)
    assert spec not in str(err.value)


def test_no_proxy_is_an_error(catalog):
    with pytest.raises(ValueError):
        pac_file(catalog, [])


def test_the_command_prints_the_file_and_writes_it_atomically(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hosts.yaml").write_text(HOSTS_YAML)
    assert cli.main(["pac", "--rules", str(rules), "--proxy", PROXIES[0]]) == 0
    printed = capsys.readouterr().out
    assert "function FindProxyForURL(url, host)" in printed
    assert 'var GATEWAY = "PROXY gw1.corp.example:8080";' in printed
    out = tmp_path / "proxy.pac"
    argv = ["pac", "--rules", str(rules), "--proxy", PROXIES[0], "--proxy", PROXIES[1]]
    assert cli.main([*argv, "-o", str(out)]) == 0
    assert f"var GATEWAY = {json.dumps(GATEWAY)};" in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_command_reports_a_bad_proxy_or_catalog(tmp_path, capsys):
    assert cli.main(["pac", "--rules", str(RULES), "--proxy", "nope"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hosts.yaml").write_text("apis: [{provider: x, api: nope, hosts: [a.com]}]\n")
    assert cli.main(["pac", "--rules", str(rules), "--proxy", "gw:80"]) == 2
    assert "hosts.yaml" in capsys.readouterr().err
