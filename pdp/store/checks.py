"""Validation findings of a store version's policies, and a store's opt-in refusal of them.

The policies are the customer-managed ones (`policies/<Name>.json`) and the inline policies of
groups and users; AWS managed documents are AWS's own and not judged (AWS's documents hold
findings too: the IAM User Guide lists managed policies with INVALID_ACTION). A finding never
changes a decision; a version is refused for findings only when its `store.json` says
`"refuse_findings": "<type>"` (docs/store.md), and then for findings of that type or above.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pdp.language import Policy
from pdp.reference import FINDING_TYPES, CheckFailed, ValidationFinding, at_or_above, check_policy

__all__ = ["CheckFailed", "findings_of", "refused", "settings_problem", "version_findings"]

SETTINGS_FILE = "store.json"
SETTINGS_KEYS = ("refuse_findings",)


def _sources(
    policies: Mapping[str, Policy], identities: Iterable[Any]
) -> Iterator[tuple[Policy, str, str]]:
    for name, policy in policies.items():
        yield policy, f"policies/{name}.json", ""
    for identity in identities:
        for policy in identity.inline_policies:
            yield policy, identity.file, f"inline_policies.{policy.name.split('#', 1)[1]}."


def findings_of(
    policies: Mapping[str, Policy], identities: Iterable[Any]
) -> list[ValidationFinding]:
    """The findings of these policies and of the inline policies of these users and groups,
    with paths as `pdp audit` writes them (`inline_policies.<name>.Statement[0]...`). Raises
    CheckFailed when a document's findings cannot be computed."""
    out: list[ValidationFinding] = []
    for policy, file, prefix in _sources(policies, identities):
        out.extend(check_policy(policy.document, file, prefix=prefix))
    return out


def settings_problem(doc: Mapping[str, Any]) -> str | None:
    """Why a store.json object is refused, or None (its keys are checked by the reader)."""
    level = doc.get("refuse_findings")
    if level is not None and level not in FINDING_TYPES:
        return f"refuse_findings must be one of {', '.join(FINDING_TYPES)} (or absent)"
    return None


def refused(
    level: str, policies: Mapping[str, Policy], identities: Iterable[Any]
) -> list[ValidationFinding]:
    """The findings a store that refuses `level` and above refuses."""
    return at_or_above(findings_of(policies, identities), level)


def version_findings(version: Any) -> list[ValidationFinding]:
    """Every finding of a StoreVersion's customer-managed and inline policies."""
    return findings_of(version.policies, [*version.groups.values(), *version.users.values()])
