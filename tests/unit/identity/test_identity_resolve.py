"""Combining the sources: who, which app, which team, which policy, and why something is shadow."""

from __future__ import annotations

from tests.unit.identity.idfixtures import ALICE_KEY, BOB_KEY
from tests.unit.identity.idfixtures import UNIT_SECRET as SECRET
from tollhouse.identity import AuthFailure, Mode, Principal, Reason, Source
from tollhouse.identity.keys import fingerprint

ALICE = Principal("alice", "support", Source.BASIC)
CAROL = Principal("carol", "research", Source.JWT)


def codes(verdict) -> list[str]:
    return [r.split(":", 1)[0] for r in verdict.reasons]


def test_authenticated_user_with_app_header_is_bound_to_a_policy(identifier):
    v = identifier.resolve(client_ip="192.0.2.1", principal=ALICE, app_name="support-bot")
    assert (v.user_id, v.team, v.app, v.policy) == ("alice", "support", "support-bot", "standard")
    assert v.source == "basic+header" and not v.shadow and not v.refused


def test_registered_key_names_the_application_before_the_header(identifier):
    v = identifier.resolve(
        client_ip="192.0.2.1", principal=ALICE, app_name="notebook", key=ALICE_KEY
    )
    assert v.app == "support-bot" and v.source == "basic+key"
    assert v.key_fingerprint == fingerprint(SECRET, ALICE_KEY)
    assert not v.shadow


def test_personal_key_without_app_is_shadow_with_reasons(identifier):
    bob = Principal("bob", "research", Source.BASIC)
    v = identifier.resolve(client_ip="192.0.2.1", principal=bob, key=BOB_KEY)
    fp = fingerprint(SECRET, BOB_KEY)
    assert v.user_id == "bob" and v.app is None and v.shadow
    assert codes(v) == [Reason.UNREGISTERED_KEY, Reason.NO_APP]
    assert fp in v.shadow_reason and BOB_KEY not in v.shadow_reason
    assert v.mode == Mode.MONITOR and not v.refused


def test_app_with_registered_keys_rejects_another_key(identifier):
    v = identifier.resolve(
        client_ip="192.0.2.1", principal=ALICE, app_name="support-bot", key=BOB_KEY
    )
    assert codes(v) == [Reason.UNREGISTERED_KEY]
    assert "not registered to 'support-bot'" in v.shadow_reason


def test_unknown_application_and_missing_binding(identifier):
    v = identifier.resolve(client_ip="192.0.2.1", principal=ALICE, app_name="<script>")
    assert codes(v) == [Reason.UNKNOWN_APP] and "<script>" not in v.shadow_reason
    v = identifier.resolve(client_ip="192.0.2.1", principal=ALICE, app_name="notebook")
    assert codes(v) == [Reason.NO_BINDING]
    assert "user:alice (team support) to application 'notebook'" in v.shadow_reason


def test_user_binding_and_anonymous_callers(identifier):
    v = identifier.resolve(client_ip="192.0.2.1", principal=CAROL, app_name="notebook")
    assert v.policy == "strict" and not v.shadow
    v = identifier.resolve(client_ip="192.0.2.1", app_name="notebook")
    assert codes(v) == [Reason.NO_IDENTITY] and not v.identified


def test_failed_authentication_is_the_reason(identifier):
    failure = AuthFailure("basic", "proxy authentication failed: wrong user or password")
    v = identifier.resolve(client_ip="192.0.2.1", failure=failure, app_name="support-bot")
    assert codes(v) == [Reason.AUTH_FAILED]
    assert v.message().endswith("proxy authentication failed: wrong user or password")


def test_named_network_is_a_device_in_enforce_mode(identifier):
    v = identifier.resolve(client_ip="10.50.8.17", app_name="notebook")
    assert (v.user_id, v.team, v.policy) == ("build-farm", "platform", "strict")
    assert v.source == "network+header"
    assert v.mode == Mode.ENFORCE and not v.refused
    v = identifier.resolve(client_ip="10.50.8.17")
    assert v.refused and codes(v) == [Reason.NO_APP]
    assert "X-Tollhouse-App" in v.message()


def test_mode_per_network_range_longest_prefix(identifier):
    assert identifier.mode("192.0.2.1") == Mode.MONITOR  # global
    assert identifier.mode("10.60.3.4") == Mode.ENFORCE  # /16 range
    assert identifier.mode("::ffff:10.60.3.4") == Mode.ENFORCE  # dual-stack form
    assert identifier.mode("10.50.8.1") == Mode.ENFORCE
    assert identifier.mode(None) == Mode.MONITOR
    assert identifier.mode("not an address") == Mode.MONITOR


def test_network_table_prefers_the_most_specific_range():
    import ipaddress

    from tollhouse.identity.config import Network
    from tollhouse.identity.networks import NetworkTable

    table = NetworkTable(
        (
            Network(ipaddress.ip_network("10.0.0.0/8"), name="wide"),
            Network(ipaddress.ip_network("10.1.2.0/24"), name="narrow"),
            Network(ipaddress.ip_network("0.0.0.0/0"), name="all"),
            Network(ipaddress.ip_network("2001:db8::/32"), name="v6"),
        )
    )
    assert table.match("10.1.2.3").name == "narrow"
    assert table.match("10.9.9.9").name == "wide"
    assert table.match("192.0.2.1").name == "all"
    assert table.match("2001:db8::1").name == "v6"
    assert table.match("2001:db9::1") is None


def test_a_registered_key_beside_another_key_proves_nothing(identifier):
    # The provider may use either key: a registered one sent as a decoy must not sanction a
    # personal one.
    v = identifier.resolve(
        client_ip="192.0.2.1", principal=ALICE, key=ALICE_KEY, other_keys=[BOB_KEY]
    )
    assert v.app is None and v.shadow
    assert codes(v)[0] == Reason.SEVERAL_KEYS
    assert fingerprint(SECRET, BOB_KEY) in v.shadow_reason
    assert ALICE_KEY not in v.shadow_reason and BOB_KEY not in v.shadow_reason
