"""Posture reports of a store (`pdp audit`): security findings (the credential report is
credentials.py).

Findings follow IAM's security best practices and IAM Access Analyzer's policy checks (the
validation findings of pdp.reference among them, docs/validation.md), each with
a severity, the file and JSON path it is about, a stable code and a message. Formats: text for
people, JSON for tools, SARIF 2.1.0 for CI systems that annotate pull requests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pdp.language import Policy, matches_every_action, matches_every_resource, to_date, to_number
from pdp.reference import ValidationFinding
from pdp.store import (
    AWS_MANAGED_PREFIX,
    AccessKey,
    CheckFailed,
    StoreVersion,
    User,
    version_findings,
)
from pdp.text import printable

__all__ = ["SEVERITIES", "Finding", "audit", "render"]

SEVERITIES = ("low", "medium", "high", "critical")
_READ_PREFIXES = (
    "get",
    "list",
    "describe",
    "batchget",
    "search",
    "query",
    "scan",
    "lookup",
    "view",
)
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: str
    file: str
    path: str
    message: str

    def rank(self) -> int:
        return SEVERITIES.index(self.severity)


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _days(seconds: float) -> int:
    return int(seconds // DAY)


def _key_label(key: AccessKey, index: int) -> str:
    """`access key AKIA...`, or `access key 1` (its position, as IAM's credential report
    numbers keys) when the store does not know its id."""
    return f"access key {key.id}" if key.id else f"access key {index + 1}"


def _key_findings(
    file: str, where: str, keys: Iterable[AccessKey], now: float, days: int
) -> list[Finding]:
    out = []
    for i, key in enumerate(keys):
        if key.status != "Active":
            continue
        at = f"{where}[{i}]"
        created = _epoch(key.created) or now
        if now - created > days * DAY:
            out.append(
                Finding(
                    "access_key_old",
                    "medium",
                    file,
                    at,
                    f"{_key_label(key, i)} is {_days(now - created)} days old"
                    f" (rotate keys every {days} days)",
                )
            )
        last = _epoch(key.last_used)
        if (last is None and now - created > days * DAY) or (
            last is not None and now - last > days * DAY
        ):
            idle = "never used" if last is None else f"unused for {_days(now - last)} days"
            out.append(
                Finding(
                    "access_key_unused",
                    "medium",
                    file,
                    at,
                    f"{_key_label(key, i)} is {idle}; deactivate it",
                )
            )
    return out


def _is_write(action: str) -> bool:
    name = action.partition(":")[2].lower()
    return not name.startswith(_READ_PREFIXES)


def _listed(stmt: dict[str, Any], element: str) -> list[str]:
    value = stmt.get(element, [])
    return [value] if isinstance(value, str) else list(value)


def _inline_path(policy: Policy) -> str:
    return f"inline_policies.{policy.name.split('#', 1)[1]}"


def _inline_finding(policy: Policy, file: str, advice: str) -> Finding:
    """An inline policy, of a user or a group: `advice` ends the suggested fix."""
    message = "inline policies cannot be reused or versioned; use a customer-managed policy"
    return Finding("inline_policy", "low", file, _inline_path(policy), message + advice)


def _policy_findings(policy: Policy, file: str, prefix: str = "") -> list[Finding]:
    """Findings of one policy. "Every action" and "every resource" are decided by what the
    patterns match (pdp.language.coverage), so `arn:*:*:*:*:*` counts as `*` and
    `arn:*:*:*:*:*:*` not."""
    out = []
    doc = policy.document
    substitute = doc.get("Version") == "2012-10-17"
    raw = doc.get("Statement")
    statements = [raw] if isinstance(raw, dict) else list(raw or [])
    for i, stmt in enumerate(statements):
        path = f"{prefix}Statement" if isinstance(raw, dict) else f"{prefix}Statement[{i}]"
        if stmt.get("Effect") != "Allow":
            continue
        actions = _listed(stmt, "Action")
        resources = _listed(stmt, "Resource")
        every_resource = [r for r in resources if matches_every_resource(r, substitute=substitute)]
        if any(matches_every_action(a) for a in actions):
            out.append(
                Finding(
                    "wildcard_action",
                    "high",
                    file,
                    f"{path}.Action",
                    f'"Action": {json.dumps(actions)} allows every action of every service',
                )
            )
        elif every_resource and any(_is_write(a) for a in actions):
            writes = sorted(a for a in actions if _is_write(a))
            spelled = every_resource[0]
            note = "" if spelled == "*" else " (it matches every resource)"
            out.append(
                Finding(
                    "wildcard_resource_write",
                    "medium",
                    file,
                    f"{path}.Resource",
                    f'"Resource": {json.dumps(spelled)}{note} with write actions'
                    f" {', '.join(writes)}",
                )
            )
        if "NotAction" in stmt:
            excluded = _listed(stmt, "NotAction")
            if any(matches_every_action(a) for a in excluded):
                pass  # it excludes every action: the statement grants nothing
            elif every_resource:
                out.append(
                    Finding(
                        "broad_not_action",
                        "high",
                        file,
                        f"{path}.NotAction",
                        f'Allow with "NotAction": {json.dumps(excluded)} on every resource grants'
                        " every action of every service except those listed, including"
                        " services added later",
                    )
                )
            else:
                out.append(_allow_with_not(file, path, "NotAction"))
        if "NotResource" in stmt:
            out.append(_allow_with_not(file, path, "NotResource"))
        out.extend(_contradictions(stmt.get("Condition") or {}, file, f"{path}.Condition"))
    return out


def _allow_with_not(file: str, path: str, element: str) -> Finding:
    return Finding(
        "allow_with_not",
        "medium",
        file,
        f"{path}.{element}",
        f"Allow with {element} grants everything not listed, including what is added later",
    )


def _contradictions(block: dict[str, Any], file: str, path: str) -> list[Finding]:
    """Conditions that can never all hold (a statement that never matches)."""
    per_key: dict[str, dict[str, list[str]]] = {}
    for operator, keys in block.items():
        for key, values in keys.items():
            vals = [
                str(v).lower() if isinstance(v, bool) else str(v)
                for v in (values if isinstance(values, list) else [values])
            ]
            per_key.setdefault(key.lower(), {})[operator] = vals
    out = []
    for key, ops in per_key.items():
        reason = None
        if ops.get("Null") == ["true"] and any(
            not op.endswith("IfExists")
            and not op.startswith("ForAllValues:")
            and op != "Null"
            and "Not" not in op
            for op in ops
        ):
            reason = "Null requires the key to be absent, another operator requires a value"
        eq, ne = ops.get("StringEquals"), ops.get("StringNotEquals")
        if eq and ne and set(eq) <= set(ne):
            reason = "StringEquals and StringNotEquals exclude each other's values"
        for family, parse in (("Numeric", to_number), ("Date", to_date)):
            if _empty_range(ops, family, parse):
                reason = f"{family} bounds leave no value between them"
        if reason:
            out.append(
                Finding(
                    "never_matches",
                    "medium",
                    file,
                    f"{path} ({key})",
                    f"this statement can never match: {reason}",
                )
            )
    return out


def _empty_range(ops: dict[str, list[str]], family: str, parse: Callable[[str], Any]) -> bool:
    """True when a lower and an upper bound of one key exclude every value. Several values of
    one operator are ORed, so the loosest value of each operator counts."""
    try:
        lows = [
            (min(parse(v) for v in ops[op]), op.endswith("Than"))
            for op in (f"{family}GreaterThan", f"{family}GreaterThanEquals")
            if op in ops
        ]
        highs = [
            (max(parse(v) for v in ops[op]), op.endswith("Than"))
            for op in (f"{family}LessThan", f"{family}LessThanEquals")
            if op in ops
        ]
    except (ValueError, ArithmeticError):
        return False
    return any(
        low > high or (low == high and (strict_low or strict_high))
        for low, strict_low in lows
        for high, strict_high in highs
    )


def audit(
    version: StoreVersion,
    *,
    now: float | None = None,
    days: int = 90,
    activity: dict[str, float] | None = None,
) -> list[Finding]:
    """Every finding of a store version. `activity` (principal -> last allowed, from the Access
    Advisor) enables the inactive-user finding."""
    now = datetime.now(UTC).timestamp() if now is None else now
    account = version.account
    findings: list[Finding] = []
    if any(k.status == "Active" for k in account.root_access_keys):
        findings.append(
            Finding(
                "root_access_keys",
                "critical",
                "account.json",
                "root.access_keys",
                "the root user has active access keys; delete them",
            )
        )
    if account.root_enabled:
        severity = "medium" if account.root_mfa_enabled else "high"
        detail = "" if account.root_mfa_enabled else " and has no MFA"
        findings.append(
            Finding(
                "root_enabled",
                severity,
                "account.json",
                "root.enabled",
                f"the root user is enabled{detail}; lock it away"
                ' ("enabled": false) unless a task needs it',
            )
        )
    max_age = account.password_policy.get("MaxPasswordAge")
    for user in version.users.values():
        findings.extend(_user_findings(user, now, days, max_age, activity))
    for name, policy in version.policies.items():
        findings.extend(_policy_findings(policy, f"policies/{name}.json"))
    for group in version.groups.values():
        for policy in group.inline_policies:
            findings.append(_inline_finding(policy, group.file, ""))
            findings.extend(_policy_findings(policy, group.file, f"{_inline_path(policy)}."))
    for user in version.users.values():
        for policy in user.inline_policies:
            findings.extend(_policy_findings(policy, user.file, f"{_inline_path(policy)}."))
    try:
        checked = version_findings(version)
    except CheckFailed as exc:  # the rest of the audit stands; say what is missing
        findings.append(Finding("findings_unavailable", "medium", exc.file, "", exc.reason))
    else:
        findings.extend(_validation(f) for f in checked if f.code not in _AUDITED_ALREADY)
    return sorted(findings, key=lambda f: (-f.rank(), f.file, f.path))


# Validation checks the audit makes itself, with more detail (allow_with_not, broad_not_action).
_AUDITED_ALREADY = frozenset({"ALLOW_WITH_NOT_ACTION"})
# A validation finding's severity in the audit: a security warning is high, a part of a policy
# that does nothing (ERROR) medium, the rest low. Its code stays AWS-style (upper case).
VALIDATION_SEVERITY = {
    "SECURITY_WARNING": "high",
    "ERROR": "medium",
    "WARNING": "low",
    "SUGGESTION": "low",
}


def _validation(finding: ValidationFinding) -> Finding:
    """A validation finding (pdp.reference, docs/validation.md) as an audit finding."""
    message = f"{finding.finding_type}: {finding.message}"
    return Finding(
        finding.code, VALIDATION_SEVERITY[finding.finding_type], finding.file, finding.path, message
    )


def _user_findings(
    user: User, now: float, days: int, max_age: Any, activity: dict[str, float] | None
) -> list[Finding]:
    out = []
    if user.console_access and not user.mfa_enabled:
        out.append(
            Finding(
                "console_without_mfa",
                "high",
                user.file,
                "mfa_enabled",
                f"{user.name} signs in to the console without MFA",
            )
        )
    out.extend(_key_findings(user.file, "access_keys", user.access_keys, now, days))
    changed = _epoch(user.password_last_changed)
    # MaxPasswordAge 0 or absent: passwords never expire (AWS's ExpirePasswords is then false)
    expires = isinstance(max_age, int) and not isinstance(max_age, bool) and max_age > 0
    if user.console_access and expires and changed is not None:
        age = _days(now - changed)
        if age > max_age:
            out.append(
                Finding(
                    "password_too_old",
                    "medium",
                    user.file,
                    "password_last_changed",
                    f"password is {age} days old; the account's MaxPasswordAge is {max_age}",
                )
            )
    for i, ref in enumerate(user.policies):
        kind = "AWS managed" if ref.startswith(AWS_MANAGED_PREFIX) else "managed"
        out.append(
            Finding(
                "policy_on_user",
                "low",
                user.file,
                f"policies[{i}]",
                f"{kind} policy {ref} is attached to the user; attach it to a group",
            )
        )
    for policy in user.inline_policies:
        out.append(_inline_finding(policy, user.file, " attached to a group"))
    if activity is not None:
        last = activity.get(user.name)
        if last is None or now - last > days * DAY:
            idle = (
                "no activity in the decision log"
                if last is None
                else (f"no activity for {_days(now - last)} days")
            )
            out.append(
                Finding(
                    "inactive_user",
                    "low",
                    user.file,
                    "",
                    f"{user.name}: {idle}; remove the user or its access",
                )
            )
    return out


_COLOURS = {"critical": "\033[1;31m", "high": "\033[31m", "medium": "\033[33m", "low": "\033[36m"}


def render(findings: list[Finding], fmt: str, *, colour: bool = False) -> str:
    if fmt == "json":
        return json.dumps([asdict(f) for f in findings], indent=2) + "\n"
    if fmt == "sarif":
        return _sarif(findings)
    lines = []
    for severity in reversed(SEVERITIES):
        group = [f for f in findings if f.severity == severity]
        if not group:
            continue
        head = f"{severity.upper()} ({len(group)})"
        lines.append(f"{_COLOURS[severity]}{head}\033[0m" if colour else head)
        for f in group:
            # Our colour codes are the only escape sequences on the screen: the fields come from
            # the store, so they are escaped (pdp.text) before the line is assembled.
            where = f"{f.file}: {f.path}" if f.path else f.file
            lines.append(printable(f"  {where}: {f.message} [{f.code}]"))
    lines.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return "\n".join(lines) + "\n"


def _sarif(findings: list[Finding]) -> str:
    level = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
    rules = sorted({f.code for f in findings})
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pdp audit",
                        "rules": [{"id": r, "shortDescription": {"text": r}} for r in rules],
                    }
                },
                "results": [
                    {
                        "ruleId": f.code,
                        "level": level[f.severity],
                        "message": {"text": f"{f.message} ({f.path})" if f.path else f.message},
                        "properties": {"severity": f.severity, "jsonPath": f.path},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.file}}}],
                    }
                    for f in findings
                ],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
