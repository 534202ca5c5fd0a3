"""IAM condition operators: their names, how policy values are read, and how one value is tested.

Each base operator belongs to a family (string, numeric, date, bool, binary, ip, arn, null). A
family knows how to read a policy value at load time (`parse`) and how to build the positive test
"does this context value match any policy value" (`build`). Negated operators (`StringNotEquals`,
`NotIpAddress`, `ArnNotLike`, ...) are the negation of that test, so several policy values act as
OR for positive operators and as NOR for negated ones
(reference_policies_multi-value-conditions.html#reference_policies_multiple-conditions-eval).

IP addresses in IPv6 form that embed an IPv4 address (`::ffff:198.51.100.7`) are that IPv4
address, in requests and policies alike (tests/corpus/README.md, "Decisions").

A context value that cannot be read for the family (a word where a number is due) raises
`EvaluationError`; the evaluator turns it into a Deny that lists the error.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from pdp.language.context import ClockTime, Scalar, scalar_text
from pdp.language.wildcard import Matcher, PatternSet, Token, compile_glob
from pdp.text import printable

__all__ = [
    "EvaluationError",
    "Operator",
    "OperatorSpec",
    "parse_operator",
]

Test = Callable[[Scalar], bool]


class EvaluationError(ValueError):
    """A context value could not be compared as its operator requires."""


class OperatorSyntaxError(ValueError):
    """An operator name that IAM does not know; `hint` may suggest the intended one."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


# --- reading values -------------------------------------------------------------------------


def _quote(value: Scalar) -> str:
    """A value for a message, quoted and escaped (it may come from a request or a policy)."""
    return f'"{printable(scalar_text(value))}"'


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d+)?")


_INTEGER = re.compile(r"[+-]?\d+")


def to_number(value: Scalar) -> int | Decimal:
    """An exact number: int where it is whole, Decimal otherwise (they compare exactly)."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[return-value]
    if kind is str:
        if _INTEGER.fullmatch(value):  # type: ignore[arg-type]
            return int(value)
        if _NUMBER.fullmatch(value):  # type: ignore[arg-type]
            try:
                return Decimal(value)
            except InvalidOperation:
                pass
        raise ValueError(f"{_quote(value)} is not a number")
    if kind is bool:
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    raise ValueError(f"{_quote(value)} is not a number")


_YEAR_MONTH = re.compile(r"(\d{4})(?:-(\d{2}))?")


@lru_cache(maxsize=4096)
def _iso_date(text: str) -> float:
    short = _YEAR_MONTH.fullmatch(text)  # W3C ISO 8601 profile: "YYYY" and "YYYY-MM" too
    if short:
        year, month = short.groups()
        stamp = datetime(int(year), int(month or 1), 1, tzinfo=UTC)
        return stamp.timestamp()
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def to_date(value: Scalar) -> float:
    """Seconds since the epoch, from ISO 8601 text or epoch seconds (number or digits)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a date")
    if isinstance(value, int | float):
        return float(value)
    if type(value) is ClockTime:
        return float(value.epoch)
    if _EPOCH.fullmatch(value) and not _YEAR_MONTH.fullmatch(value):
        return float(value)  # epoch seconds; a bare "YYYY" is a year (W3C ISO 8601 profile)
    try:
        return _iso_date(value)
    except ValueError:
        raise ValueError(f"{_quote(value)} is not an ISO 8601 date or epoch time") from None


def to_bool(value: Scalar) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        if low == "true":
            return True
        if low == "false":
            return False
    raise ValueError(f"{_quote(value)} is not true or false")


def to_binary(value: Scalar) -> bytes:
    try:
        return base64.b64decode(scalar_text(value), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{_quote(value)} is not base64") from None


_Network = tuple[int, int, int]  # (version, network as int, mask as int)

# IPv4 inside IPv6: "IPv4-mapped" ::ffff:a.b.c.d (RFC 4291 2.5.5.2; what a dual-stack listener
# reports for an IPv4 client) and the deprecated "IPv4-compatible" ::a.b.c.d (2.5.5.1). Both are
# read as the IPv4 address, in requests and in policies, so that no spelling of one client decides
# differently from another. `::` (unspecified) and `::1` (loopback) have their upper 96 bits zero
# too but are not IPv4-compatible: they stay IPv6, so a Deny on ::1/128 still catches loopback.
_MAPPED_HIGH = 0xFFFF  # the upper 96 bits of ::ffff:0:0/96
_IPV4_BITS = 0xFFFFFFFF


def _embedded_ipv4(addr: int) -> int | None:
    """The IPv4 address inside an IPv4-mapped or IPv4-compatible IPv6 address, else None."""
    high = addr >> 32
    if high == _MAPPED_HIGH or (high == 0 and addr > 1):
        return addr & _IPV4_BITS
    return None


def _embedded_networks(net: ipaddress.IPv6Network) -> list[_Network]:
    """The IPv4 networks an IPv6 network holds through the mapped and compatible ranges.

    A network inside a range (prefix 96 or longer) holds the IPv4 network with the remaining
    prefix. A wider one (`::/0`, `::/3`) holds none: it is written as IPv6 and means IPv6
    clients, as in IAM, where an IPv4 request is never in an IPv6 range (a Deny on
    `NotIpAddress ::/0`, "IPv6 clients only", must keep denying IPv4 clients). `::/127`,
    `::/128` and `::1/128` hold only the two addresses that are not IPv4-compatible, so they
    hold no IPv4 network.
    """
    base = int(net.network_address)
    out: list[_Network] = []
    if net.prefixlen < 96:
        return out
    for high in (_MAPPED_HIGH, 0):
        if base >> 32 == high and not (high == 0 and net.prefixlen >= 127 and base <= 1):
            mask = (_IPV4_BITS << (128 - net.prefixlen)) & _IPV4_BITS
            out.append((4, base & mask, mask))
    return out


def to_network(value: Scalar) -> tuple[_Network, ...]:
    """A policy's IP address or CIDR range, with the IPv4 networks it holds through the mapped
    and compatible ranges (`::ffff:198.51.100.0/120` is 198.51.100.0/24)."""
    try:
        net = ipaddress.ip_network(scalar_text(value), strict=False)
    except ValueError:
        raise ValueError(f"{_quote(value)} is not an IP address or CIDR range") from None
    own: _Network = (net.version, int(net.network_address), int(net.netmask))
    if isinstance(net, ipaddress.IPv6Network):
        return (own, *_embedded_networks(net))
    return (own,)


@lru_cache(maxsize=4096)
def to_address(text: str) -> tuple[int, int]:
    """(version, address as int) of a request's IP address; embedded IPv4 is read as IPv4."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        try:
            addr = ipaddress.ip_interface(text).ip
        except ValueError:
            raise ValueError(f"{_quote(text)} is not an IP address") from None
    if addr.version == 6:
        ipv4 = _embedded_ipv4(int(addr))
        if ipv4 is not None:
            return (4, ipv4)
    return (addr.version, int(addr))


# --- families -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Family:
    """How an operator family reads policy values and builds its positive test."""

    name: str
    parse: Callable[[str], Any]  # policy value -> parsed value (raises ValueError)
    build: Callable[[str, Sequence[Any]], Test]  # (kind, parsed values) -> positive test
    wildcards: bool = False  # policy values are patterns (parsed from tokens, not text)
    variables: bool = False  # policy variables may appear in values (reference_policies_variables)


def _string_test(kind: str, values: Sequence[Any]) -> Test:
    if kind == "like":
        match = PatternSet(values, dialect="uniform", ignore_case=False).matcher
        return lambda v: match(v if type(v) is str else scalar_text(v))
    if kind == "equalsignorecase":
        lowered = frozenset(v.lower() for v in values)
        return lambda v: (v if type(v) is str else scalar_text(v)).lower() in lowered
    exact = frozenset(values)
    return lambda v: (v if type(v) is str else scalar_text(v)) in exact


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _ordered_test(
    convert: Callable[[Scalar], Any], what: str
) -> Callable[[str, Sequence[Any]], Test]:
    def build(kind: str, values: Sequence[Any]) -> Test:
        compare = _COMPARE[kind]

        def test(v: Scalar) -> bool:
            try:
                x = convert(v)
            except ValueError as exc:
                raise EvaluationError(f"{exc} ({what} expected)") from None
            return any(compare(x, p) for p in values)

        return test

    return build


def _member_test(
    convert: Callable[[Scalar], Any], what: str
) -> Callable[[str, Sequence[Any]], Test]:
    """Equality against a set of parsed policy values (Bool, BinaryEquals)."""

    def build(_kind: str, values: Sequence[Any]) -> Test:
        wanted = frozenset(values)

        def test(v: Scalar) -> bool:
            try:
                return convert(v) in wanted
            except ValueError as exc:
                raise EvaluationError(f"{exc} ({what} expected)") from None

        return test

    return build


_bool_test = _member_test(to_bool, "Bool")
_binary_test = _member_test(to_binary, "base64 binary")


def _ip_test(_kind: str, values: Sequence[Any]) -> Test:
    networks: tuple[_Network, ...] = tuple(n for value in values for n in value)

    def test(v: Scalar) -> bool:
        try:
            version, addr = to_address(v if type(v) is str else scalar_text(v))
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
        for ver, net, mask in networks:
            if ver == version and addr & mask == net:
                return True
        return False

    return test


def _arn_test(_kind: str, values: Sequence[Any]) -> Test:
    matchers: tuple[Matcher, ...] = tuple(compile_glob(t, dialect="arn") for t in values)
    return lambda v: any(m(scalar_text(v)) for m in matchers)


def _null_parse(text: str) -> bool:
    return to_bool(text)


def _tokens(text: Any) -> Any:
    return text  # wildcard families receive tokens already


FAMILIES = {
    "string": Family("string", str, _string_test, variables=True),
    "like": Family("like", _tokens, _string_test, wildcards=True, variables=True),
    "numeric": Family("numeric", to_number, _ordered_test(to_number, "number")),
    "date": Family("date", to_date, _ordered_test(to_date, "date")),
    "bool": Family("bool", to_bool, _bool_test, variables=True),
    "binary": Family("binary", to_binary, _binary_test),
    "ip": Family("ip", to_network, _ip_test),
    "arn": Family("arn", _tokens, _arn_test, wildcards=True, variables=True),
    "null": Family("null", _null_parse, _bool_test),
}


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A base operator: its family, the comparison kind, and whether it is negated."""

    name: str
    family: Family
    kind: str
    negated: bool


def _specs() -> dict[str, OperatorSpec]:
    table: list[tuple[str, str, str, bool]] = [
        ("StringEquals", "string", "equals", False),
        ("StringNotEquals", "string", "equals", True),
        ("StringEqualsIgnoreCase", "string", "equalsignorecase", False),
        ("StringNotEqualsIgnoreCase", "string", "equalsignorecase", True),
        ("StringLike", "like", "like", False),
        ("StringNotLike", "like", "like", True),
        ("Bool", "bool", "eq", False),
        ("BinaryEquals", "binary", "eq", False),
        ("IpAddress", "ip", "in", False),
        ("NotIpAddress", "ip", "in", True),
        ("ArnEquals", "arn", "like", False),
        ("ArnLike", "arn", "like", False),
        ("ArnNotEquals", "arn", "like", True),
        ("ArnNotLike", "arn", "like", True),
        ("Null", "null", "eq", False),
    ]
    for family in ("Numeric", "Date"):
        for suffix, kind in (
            ("Equals", "eq"),
            ("LessThan", "lt"),
            ("LessThanEquals", "le"),
            ("GreaterThan", "gt"),
            ("GreaterThanEquals", "ge"),
        ):
            table.append((family + suffix, family.lower(), kind, False))
        table.append((family + "NotEquals", family.lower(), "eq", True))
    return {name: OperatorSpec(name, FAMILIES[fam], kind, neg) for name, fam, kind, neg in table}


SPECS = _specs()
SET_PREFIXES = ("ForAllValues:", "ForAnyValue:")
ALL_OPERATOR_NAMES = sorted(
    [n for n in SPECS]
    + [n + "IfExists" for n in SPECS if n != "Null"]
    + [p + n for p in SET_PREFIXES for n in SPECS if n != "Null"]
    + [p + n + "IfExists" for p in SET_PREFIXES for n in SPECS if n != "Null"]
)


@dataclass(frozen=True, slots=True)
class Operator:
    """A full condition operator: optional set prefix, base operator, optional IfExists."""

    text: str
    spec: OperatorSpec
    set_op: str | None  # "all", "any" or None
    if_exists: bool


def parse_operator(text: str) -> Operator:
    """Read `ForAnyValue:StringLikeIfExists` and the like; raise OperatorSyntaxError if unknown."""
    rest = text
    set_op = None
    for prefix, name in (("ForAllValues:", "all"), ("ForAnyValue:", "any")):
        if rest.startswith(prefix):
            rest = rest[len(prefix) :]
            set_op = name
            break
    if_exists = rest.endswith("IfExists") and rest != "IfExists"
    base = rest[: -len("IfExists")] if if_exists else rest
    spec = SPECS.get(base)
    if spec is None or (spec.name == "Null" and (if_exists or set_op)):
        close = difflib.get_close_matches(text, ALL_OPERATOR_NAMES, n=1, cutoff=0.75)
        if spec is not None and spec.name == "Null":
            raise OperatorSyntaxError(
                f'unknown operator "{printable(text)}": Null takes no IfExists and no set prefix'
            )
        raise OperatorSyntaxError(
            f'unknown operator "{printable(text)}"',
            f'did you mean "{close[0]}"?' if close else None,
        )
    return Operator(text, spec, set_op, if_exists)


def parse_values(op: Operator, values: Sequence[str | tuple[Token, ...]]) -> list[Any]:
    """Parse literal policy values for the operator's family (raises ValueError)."""
    return [op.spec.family.parse(v) for v in values]  # type: ignore[arg-type]
