"""Condition operators through the public API: every spelling of one client decides alike.

The table-driven cases live in tests/corpus/cases/condition_ip_mapped.json; this file checks the
invariant behind them on random addresses and networks.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

import pdp

ALICE = pdp.Principal.user("alice", account="123456789012")


def _decide(effect: str, operator: str, network: str, address: str) -> str:
    statements = [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {
            "Effect": effect,
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {operator: {"aws:SourceIp": network}},
        },
    ]
    if effect == "Allow":
        statements = statements[1:]
    policy = pdp.parse_policy({"Version": "2012-10-17", "Statement": statements}, source="p.json")
    decision = pdp.evaluate(
        [policy],
        ALICE,
        action="s3:GetObject",
        resource="arn:aws:s3:::b/k",
        context={"aws:SourceIp": address},
    )
    assert decision.errors == ()
    return decision.reason


def _spellings(address: ipaddress.IPv4Address) -> list[str]:
    """The IPv4 address, IPv4-mapped (dotted and hex) and IPv4-compatible (when not :: or ::1)."""
    mapped = ipaddress.IPv6Address((0xFFFF << 32) | int(address))
    out = [str(address), f"::ffff:{address}", mapped.exploded, str(mapped).upper()]
    if int(address) > 1:
        out.append(f"::{address}")
    return out


ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)


@settings(max_examples=150, deadline=None)
@given(
    base=ipv4,
    prefix=st.integers(min_value=0, max_value=32),
    near=st.integers(min_value=-3, max_value=3),
    effect=st.sampled_from(["Allow", "Deny"]),
    operator=st.sampled_from(["IpAddress", "NotIpAddress"]),
)
def test_an_ipv4_client_decides_alike_in_every_spelling(
    base: ipaddress.IPv4Address, prefix: int, near: int, effect: str, operator: str
) -> None:
    """IPv4, ::ffff:a.b.c.d, ::ffff:hex and ::a.b.c.d against a network in IPv4 or mapped form."""
    network = ipaddress.IPv4Network((int(base), prefix), strict=False)
    # an address at the edge of the network: inside or just outside it
    edge = int(network.broadcast_address if near > 0 else network.network_address) + near
    address = ipaddress.IPv4Address(edge % 2**32)
    expected = {"Allow": "allowed", "Deny": "explicitDeny"}[effect]
    inside = (address in network) is (operator == "IpAddress")
    want = expected if inside else ("implicitDeny" if effect == "Allow" else "allowed")
    mapped_network = f"::ffff:{network.network_address}/{96 + prefix}"
    for policy_network in (str(network), mapped_network):
        for spelling in _spellings(address):
            got = _decide(effect, operator, policy_network, spelling)
            assert got == want, (policy_network, spelling)
