"""pdp_server.gateway: how a request a gateway saw becomes an IAM request (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from pdp_server.gateway import (
    ACTION,
    GatewayRules,
    HttpCall,
    Refused,
    clean_path,
    parse_sources,
    to_request,
)

ACCOUNT = "123456789012"
RULES = GatewayRules(api="a1b2c3")
NO_API = GatewayRules()
BASE = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:a1b2c3/$default"


@pytest.mark.parametrize(
    ("method", "path", "resource"),
    [
        ("GET", "/", f"{BASE}/GET/"),
        ("get", "/pets", f"{BASE}/GET/pets"),
        ("POST", "/pets/1/toys?sort=asc", f"{BASE}/POST/pets/1/toys"),
        ("DELETE", "/caf%C3%A9/a%20b", f"{BASE}/DELETE/café/a b"),  # decoded, as served
        ("GET", "/pets/", f"{BASE}/GET/pets/"),  # a trailing slash is kept
    ],
)
def test_the_api_gateway_arn(method: str, path: str, resource: str) -> None:
    request = to_request(HttpCall(method, path, claims={"sub": "alice"}), RULES, ACCOUNT)
    assert (request.principal, request.action, request.resource) == ("alice", ACTION, resource)


@pytest.mark.parametrize(
    "path",
    [
        "/public/../admin",
        "/public/./admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/public%2Fadmin",
        "/public%2fadmin",
        "/public%5Cadmin",
        "/public\\admin",
        "//admin",
        "/public//admin",
        "/a%00b",
        "/a%0ab",
        "/a%zz",
        "/a%",
        "/a%ff",  # not UTF-8
        "/public/%252e%252e/admin",  # decoded twice by some servers
        "/admin;jsessionid=1",
        "/public/secret, /x",  # a header sent twice, joined
        "/public/menu#/../secret",  # a fragment, which a server may keep in the path
        "/a%C2%85b",  # a C1 control (NEL)
        "/a%C2%9Fb",
        "/a b",
        "/a\tb",
        "/caf\u00e9",  # raw non-ASCII: a WSGI header is Latin-1, not what the upstream reads
        "/a\x7fb",
        "public/x",
        "",
        "*",
    ],
)
def test_ambiguous_paths_are_refused_not_matched(path: str) -> None:
    with pytest.raises(Refused) as refused:
        clean_path(path)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("sources", "call", "principal"),
    [
        ("claim:sub,peer", HttpCall("GET", "/", claims={"sub": "alice"}, peer="svc"), "alice"),
        (
            "claim:sub,peer",
            HttpCall("GET", "/", claims={}, peer="spiffe://x/svc"),
            "spiffe://x/svc",
        ),
        ("peer,claim:sub", HttpCall("GET", "/", claims={"sub": "alice"}, peer="svc"), "svc"),
        ("claim:email", HttpCall("GET", "/", claims={"email": "a@x.com", "sub": "s"}), "a@x.com"),
        ("header:x-user", HttpCall("GET", "/", headers={"x-user": "bob"}), "bob"),
        ("claim:sub", HttpCall("GET", "/", claims={"sub": 7}), None),  # not a string
        (
            "claim:sub",
            HttpCall("GET", "/", headers={"sub": "mallory"}),
            None,
        ),  # a header is no claim
        ("claim:sub,peer", HttpCall("GET", "/"), None),
    ],
)
def test_principal_sources_in_order(sources: str, call: HttpCall, principal: str | None) -> None:
    rules = GatewayRules(api="a1b2c3", principal=parse_sources(sources))
    if principal is None:
        with pytest.raises(Refused) as refused:
            to_request(call, rules, ACCOUNT)
        assert refused.value.status == 401
    else:
        assert to_request(call, rules, ACCOUNT).principal == principal


@pytest.mark.parametrize("bad", ["claims:sub", "claim", "peer:x", "header:", "jwt:sub", ""])
def test_bad_principal_sources(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_sources(bad)


@pytest.mark.parametrize(
    ("amr", "mfa"),
    [(["pwd", "mfa"], True), ("mfa", True), (["pwd"], False), (None, False), ("mfa otp", False)],
)
def test_an_amr_claim_with_mfa_is_multi_factor(amr: Any, mfa: bool) -> None:
    claims = {"sub": "alice", **({"amr": amr} if amr is not None else {})}
    request = to_request(HttpCall("GET", "/", claims=claims), RULES, ACCOUNT)
    assert request.context["aws:MultiFactorAuthPresent"] is mfa


def test_source_ip_secure_transport_and_host_as_api() -> None:
    call = HttpCall("GET", "/x", host="Api.Example.com:8443", claims={"sub": "a"},
                    source_ip="203.0.113.9", secure=True)  # fmt: skip
    request = to_request(call, GatewayRules(account="111122223333"), ACCOUNT)
    assert (
        request.resource
        == "arn:aws:execute-api:us-east-1:111122223333:api.example.com/$default/GET/x"
    )
    assert request.context["aws:SourceIp"] == "203.0.113.9"
    assert request.context["aws:SecureTransport"] is True


def test_without_an_api_or_host_there_is_nothing_to_name() -> None:
    with pytest.raises(Refused) as refused:
        to_request(HttpCall("GET", "/x", claims={"sub": "a"}), GatewayRules(), ACCOUNT)
    assert refused.value.status == 400


def test_with_a_role_the_caller_is_a_session_tagged_with_its_claims() -> None:
    rules = GatewayRules(api="a1b2c3", role=f"arn:aws:iam::{ACCOUNT}:role/web/WebCallers")
    claims = {"sub": "alice", "team": "blue", "amr": ["mfa"], "n": 3, "exp": 17.0, "ok": True}
    request = to_request(HttpCall("GET", "/", claims=claims), rules, ACCOUNT)
    assert request.principal == f"arn:aws:sts::{ACCOUNT}:assumed-role/WebCallers/alice"
    assert request.principal_type == "role_session"
    assert request.session is not None
    # scalars as text (a Struct's numbers arrive as floats); lists and objects are not tags
    assert dict(request.session.tags) == {
        "sub": "alice",
        "team": "blue",
        "n": "3",
        "exp": "17",
        "ok": "true",
    }
    assert request.session.mfa_present is True
    assert request.session.source_identity == "alice"
    assert "aws:MultiFactorAuthPresent" not in request.context  # the session states it


def test_awss_tags_claim_is_the_only_source_of_tags_when_present() -> None:
    rules = GatewayRules(api="a1b2c3", role=f"arn:aws:iam::{ACCOUNT}:role/Web")
    aws = {"principal_tags": {"team": ["blue"], "cost": ["42"]}}
    claims = {"sub": "alice", "department": "x", "https://aws.amazon.com/tags": aws}
    request = to_request(HttpCall("GET", "/", claims=claims), rules, ACCOUNT)
    assert request.session is not None
    assert dict(request.session.tags) == {"team": "blue", "cost": "42"}
    for bad in ({"principal_tags": {"team": ["a", "b"]}}, {"principal_tags": ["x"]}, "x"):
        with pytest.raises(Refused) as refused:
            claims = {"sub": "alice", "https://aws.amazon.com/tags": bad}
            to_request(HttpCall("GET", "/", claims=claims), rules, ACCOUNT)
        assert refused.value.status == 403


@pytest.mark.parametrize(
    "extra",
    [
        {"long": "x" * 257},  # a value over 256 characters
        {"k" * 129: "v"},  # a key over 128
        {f"t{i}": "v" for i in range(50)},  # 51 tags with sub
    ],
)
def test_claims_past_the_tag_limits_are_refused_never_cut(extra: dict[str, str]) -> None:
    # a Deny conditioned on the tag that would go missing must not stop applying
    rules = GatewayRules(api="a1b2c3", role=f"arn:aws:iam::{ACCOUNT}:role/Web")
    with pytest.raises(Refused) as refused:
        to_request(HttpCall("GET", "/", claims={"sub": "alice", **extra}), rules, ACCOUNT)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("host", "api"),
    [
        ("Internal.Example.com", "internal.example.com"),
        ("internal.example.com.", "internal.example.com"),  # the DNS root's dot
        ("internal.example.com.:443", "internal.example.com"),
        ("internal.example.com:8443", "internal.example.com"),
    ],
)
def test_one_host_is_one_api_however_spelled(host: str, api: str) -> None:
    request = to_request(HttpCall("GET", "/x", host=host, claims={"sub": "a"}), NO_API, ACCOUNT)
    assert request.resource == f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api}/$default/GET/x"


@pytest.mark.parametrize(
    "host", ["x:internal.example.com", "a..b", "a.b..", "[::1]:80", "h:", "h:99999x", "h:٣"]
)
def test_a_host_that_is_not_one_name_is_refused(host: str) -> None:
    with pytest.raises(Refused) as refused:
        to_request(HttpCall("GET", "/x", host=host, claims={"sub": "a"}), NO_API, ACCOUNT)
    assert refused.value.status == 400


def test_a_session_name_that_cannot_be_one_is_refused() -> None:
    rules = GatewayRules(api="a1b2c3", role=f"arn:aws:iam::{ACCOUNT}:role/Web")
    with pytest.raises(Refused) as refused:
        to_request(HttpCall("GET", "/", claims={"sub": "alice smith"}), rules, ACCOUNT)
    assert refused.value.status == 401


def test_too_many_claims_are_refused() -> None:
    claims = {f"c{i}": "v" for i in range(100)} | {"sub": "alice"}
    with pytest.raises(Refused) as refused:
        to_request(HttpCall("GET", "/", claims=claims), RULES, ACCOUNT)
    assert refused.value.status == 403


@pytest.mark.parametrize("method", ["", "G E T", "GET\r\n", "X" * 20])
def test_a_method_that_is_none_is_refused(method: str) -> None:
    with pytest.raises(Refused):
        to_request(HttpCall(method, "/", claims={"sub": "a"}), RULES, ACCOUNT)
