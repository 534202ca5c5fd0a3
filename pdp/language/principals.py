"""The Principal and NotPrincipal elements of resource-based policies, checked and compiled.

(reference_policies_elements_principal.html) A principal is `"*"` (everyone, anonymous
included; `{"AWS": "*"}` is the same), or an object whose keys are principal types: `AWS`
(account IDs, which stand for the account's root ARN, and user, role, assumed-role session and
federated-user ARNs), `Service` (service principals such as `s3.amazonaws.com`), `Federated`
(identity providers) and `CanonicalUser`. A wildcard cannot match part of a principal: `*`
stands alone or not at all. ARNs are kept lower-cased: IAM names are unique regardless of case
and AWS resolves a policy's principal to the identity, so `user/Alice` names the user `alice`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["PrincipalSpec", "parse_principal"]

_ACCOUNT = re.compile(r"[0-9]{12}")
_IAM_ARN = re.compile(
    r"arn:aws[a-z-]*:iam::[0-9]{12}:(?:root|(?:user|role)(?:/[\x21-\x7e]*)?/[\w+=,.@-]+"
    r"|federated-user/[\w+=,.@-]+|(?:saml-provider|oidc-provider)/[\x21-\x7e]+)",
    re.ASCII,
)
_STS_ARN = re.compile(
    r"arn:aws[a-z-]*:sts::[0-9]{12}:(?:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+"
    r"|federated-user/[\w+=,.@-]+)",
    re.ASCII,
)
_SERVICE = re.compile(r"[a-z0-9.-]+\.(?:amazonaws\.com|amazon\.com|aws\.internal)(?:\.cn)?")
_FEDERATED = re.compile(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}|arn:aws[a-z-]*:iam::[0-9]{12}:[\x21-\x7e]+")
_CANONICAL = re.compile(r"[0-9a-f]{64}")
TYPES = ("AWS", "Service", "Federated", "CanonicalUser")


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """Who a Principal (or NotPrincipal) element names. `aws` holds lower-cased ARNs, account
    IDs turned into `arn:aws:iam::<id>:root`; `services` and `federated` lower-cased names."""

    everyone: bool = False
    aws: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    federated: frozenset[str] = frozenset()
    canonical: frozenset[str] = frozenset()

    def accounts(self) -> frozenset[str]:
        """The account IDs the element names, by any ARN of theirs (for store validation)."""
        return frozenset(arn.split(":")[4] for arn in self.aws)


def parse_principal(value: Any, where: str, problems: list[tuple[str, str, str]]) -> PrincipalSpec:
    """Compile a Principal element; problems go to `problems` as (code, path, message)."""
    if value == "*":
        return PrincipalSpec(everyone=True)
    if not isinstance(value, dict) or not value:
        problems.append(
            (
                "invalid_principal",
                where,
                'a principal is "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}',
            )
        )
        return PrincipalSpec()
    found: dict[str, set[str]] = {t: set() for t in TYPES}
    everyone = False
    for kind, raw in value.items():
        path = f"{where}.{kind}"
        if kind not in TYPES:
            known = ", ".join(TYPES)
            problems.append(
                ("invalid_principal", path, f'unknown principal type "{kind}" (one of {known})')
            )
            continue
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            problems.append(("invalid_principal", path, f"{kind} names no principal"))
        for i, item in enumerate(items):
            at = f"{path}[{i}]" if isinstance(raw, list) else path
            if not isinstance(item, str) or not item:
                problems.append(("invalid_principal", at, f"{kind} values must be strings"))
                continue
            if item == "*" and kind == "AWS":
                everyone = True
                continue
            message = _check(kind, item)
            if message is not None:
                problems.append(("invalid_principal", at, message))
                continue
            found[kind].add(_normal(kind, item))
    return PrincipalSpec(
        everyone=everyone,
        aws=frozenset(found["AWS"]),
        services=frozenset(found["Service"]),
        federated=frozenset(found["Federated"]),
        canonical=frozenset(found["CanonicalUser"]),
    )


def _check(kind: str, item: str) -> str | None:
    if "*" in item or "?" in item:
        return (
            f'"{item}": a wildcard cannot match part of a principal (use "*" alone, or a'
            " condition on aws:PrincipalArn)"
        )
    if kind == "AWS":
        if _ACCOUNT.fullmatch(item) or _IAM_ARN.fullmatch(item) or _STS_ARN.fullmatch(item):
            return None
        return (
            f'"{item}" is not an AWS principal: an account ID, or an IAM user, role, root or'
            " assumed-role session ARN"
        )
    if kind == "Service":
        return None if _SERVICE.fullmatch(item) else f'"{item}" is not a service principal'
    if kind == "Federated":
        return None if _FEDERATED.fullmatch(item) else f'"{item}" is not an identity provider'
    return None if _CANONICAL.fullmatch(item) else f'"{item}" is not a canonical user ID'


def _normal(kind: str, item: str) -> str:
    if kind == "AWS" and _ACCOUNT.fullmatch(item):
        return f"arn:aws:iam::{item}:root"
    return item if kind == "CanonicalUser" else item.lower()
