"""Structural validation of IAM identity-policy documents, after the IAM JSON policy grammar.

`validate_document` walks the parsed JSON, records every problem as a `Diagnostic` with its JSON
path (`Statement[1].Condition`), and returns a normalized tree (`PolicyNode`) for the compiler.
It never stops at the first problem: a user fixing a policy wants the whole list.
(reference_policies_grammar.html, reference_policies_elements_*.html)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pdp.errors import Diagnostic
from pdp.language.jsondoc import JsonObject
from pdp.language.principals import PrincipalSpec, parse_principal
from pdp.text import has_unsafe, printable

__all__ = ["ConditionEntry", "PolicyNode", "StatementNode", "validate_document"]

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_KEYS = ("Version", "Id", "Statement")
_STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
    "NotPrincipal",
)
_SID = re.compile(r"[A-Za-z0-9]*")
# "*" or "service:action" with wildcards (reference_policies_elements_action.html)
_ACTION = re.compile(r"[A-Za-z0-9*?-]+:[A-Za-z0-9*?_-]+")
_SERVICE = re.compile(r"[A-Za-z0-9-]+")  # a service prefix names one service: no wildcards
_CONDITION_KEY = re.compile(r"[A-Za-z0-9*?-]+:\S(?:[^\t\n\r]*\S)?")  # tag keys hold spaces
# Resource-based policies (trust policies above all) also name identity providers' keys, whose
# prefix is a host name: "accounts.google.com:aud", "cognito-identity.amazonaws.com:amr".
_PROVIDER_KEY = re.compile(r"[A-Za-z0-9*?.-]+(?:/[A-Za-z0-9._/-]+)?:\S(?:[^\t\n\r]*\S)?")
KINDS = ("identity", "resource", "trust", "scp", "rcp")


@dataclass(frozen=True, slots=True)
class ConditionEntry:
    """One `"Operator": {"key": values}` pair; values normalized to strings."""

    operator: str
    key: str
    values: tuple[str, ...]
    path: str


@dataclass(frozen=True, slots=True)
class StatementNode:
    """A statement's elements, normalized to tuples; `not_action`/`not_resource` mark Not* forms."""

    index: int
    path: str
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[ConditionEntry, ...]
    principal: PrincipalSpec | None = None  # resource-based policies: who the statement names
    not_principal: bool = False


@dataclass(frozen=True, slots=True)
class PolicyNode:
    version: str | None
    id: str | None
    statements: tuple[StatementNode, ...]


class _Collector:
    def __init__(self, source: str | None) -> None:
        self.source = source
        self.items: list[Diagnostic] = []

    def add(self, code: str, path: str, message: str, hint: str | None = None) -> None:
        # Paths and messages quote the document's own strings: escaped here, once, so that no
        # printer or log line downstream receives a raw control character from a policy.
        self.items.append(
            Diagnostic(
                code,
                printable(path),
                printable(message),
                self.source,
                printable(hint) if hint else hint,
            )
        )

    def check_object(self, obj: dict[str, Any], path: str, allowed: Iterable[str]) -> None:
        if isinstance(obj, JsonObject):
            for key in obj.duplicates:
                self.add("duplicate_key", path, f'duplicate key "{key}"')
        allowed = tuple(allowed)
        for key in obj:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                if not close:
                    close = [a for a in allowed if a.lower() == key.lower()]
                self.add(
                    "unknown_element",
                    _join(path, key),
                    f'unknown element "{key}"',
                    f'did you mean "{close[0]}"?' if close else None,
                )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _scalar_text(value: Any) -> str | None:
    """A condition value as text: JSON booleans and numbers are allowed unquoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def validate_document(
    doc: Any, source: str | None = None, kind: str = "identity"
) -> tuple[PolicyNode | None, list[Diagnostic]]:
    """Check a parsed policy document of a `kind` (KINDS); return its tree and every problem.

    identity: no Principal (whoever the policy is attached to). resource: Principal or
    NotPrincipal in every statement, NotPrincipal only with Deny, Resource optional (absent: the
    resource the policy is attached to). trust (a role's trust policy): Principal, no NotPrincipal,
    no Resource. scp: no Principal. rcp: `"Principal": "*"` only.

    The tree comes back even when there are problems (None only for a non-object), so that the
    compiler can add what it finds (unknown operators, unreadable values) to the same list.
    """
    out = _Collector(source)
    if not isinstance(doc, dict):
        out.add("not_an_object", "", "a policy document must be a JSON object")
        return None, out.items
    out.check_object(doc, "", _TOP_KEYS)
    version = doc.get("Version")
    if "Version" in doc and version not in VERSIONS:
        out.add(
            "invalid_version",
            "Version",
            f"unsupported Version {_show(version)}",
            'use "2012-10-17"',
        )
        version = None
    policy_id = doc.get("Id")
    if "Id" in doc and not isinstance(policy_id, str):
        out.add("invalid_id", "Id", "Id must be a string")
        policy_id = None
    statements: list[StatementNode] = []
    if "Statement" not in doc:
        out.add("missing_statement", "", "missing Statement")
    else:
        raw = doc["Statement"]
        if isinstance(raw, dict):
            items: list[tuple[str, Any]] = [("Statement", raw)]
        elif isinstance(raw, list):
            if not raw:
                out.add(
                    "empty_statement", "Statement", "empty Statement: a policy needs a statement"
                )
            items = [(f"Statement[{i}]", s) for i, s in enumerate(raw)]
        else:
            out.add(
                "invalid_statement", "Statement", "Statement must be an object or a list of objects"
            )
            items = []
        sids: dict[str, str] = {}
        for index, (path, stmt) in enumerate(items):
            node = _statement(out, index, path, stmt, kind)
            if node is None:
                continue
            if node.sid:
                if node.sid in sids:
                    out.add(
                        "duplicate_sid",
                        _join(path, "Sid"),
                        f'duplicate Sid "{node.sid}" (also in {sids[node.sid]})',
                        "Sid values must be unique within a policy",
                    )
                sids.setdefault(node.sid, path)
            statements.append(node)
    return PolicyNode(version, policy_id, tuple(statements)), out.items


def _show(value: Any) -> str:
    return (
        f'"{value}"'
        if isinstance(value, str)
        else (type(value).__name__ if value is not None else "null")
    )


def _statement(
    out: _Collector, index: int, path: str, stmt: Any, kind: str = "identity"
) -> StatementNode | None:
    if not isinstance(stmt, dict):
        out.add("invalid_statement", path, "a statement must be a JSON object")
        return None
    out.check_object(stmt, path, _STATEMENT_KEYS)
    principal, not_principal = _principal(out, path, stmt, kind)
    sid = stmt.get("Sid")
    if "Sid" in stmt:
        if not isinstance(sid, str):
            out.add("invalid_sid", _join(path, "Sid"), "Sid must be a string")
            sid = None
        elif kind == "resource" and not has_unsafe(sid) and len(sid) <= 512:
            pass  # resource policies take any text: KMS writes "Enable IAM User Permissions"
        elif not _SID.fullmatch(sid):
            out.add(
                "invalid_sid",
                _join(path, "Sid"),
                f'Sid "{sid}" must be alphanumeric',
                "only A-Z, a-z and 0-9 are allowed in IAM policies",
            )
    effect = stmt.get("Effect")
    if "Effect" not in stmt:
        out.add("missing_effect", path, "missing Effect")
    elif effect not in ("Allow", "Deny"):
        out.add(
            "invalid_effect",
            _join(path, "Effect"),
            f"invalid Effect {_show(effect)}",
            'Effect is "Allow" or "Deny" (case-sensitive)',
        )
    actions, not_action = _either(out, stmt, path, "Action", "NotAction")
    for i, action in enumerate(actions):
        if action == "*":
            continue
        where = _element_path(path, "NotAction" if not_action else "Action", i, len(actions))
        if not _ACTION.fullmatch(action):
            out.add(
                "invalid_action",
                where,
                f'invalid action "{action}"',
                'an action is "*" or "service:action", e.g. "s3:GetObject"',
            )
        elif not _SERVICE.fullmatch(action.partition(":")[0]):
            # Access Analyzer: "Invalid service in action" (access-analyzer-reference-policy-
            # checks.html). `*` and `?` are both wildcards; only "*" alone means every action.
            out.add(
                "invalid_service_prefix",
                where,
                f'invalid service prefix in action "{action}": a service prefix cannot hold'
                " wildcards",
                'name the service, e.g. "ec2:Describe*", or use "*" for every action',
            )
    resources: tuple[str, ...]
    if kind == "trust":
        for key in ("Resource", "NotResource"):
            if key in stmt:
                out.add(
                    "resource_in_trust_policy",
                    _join(path, key),
                    f"{key} is not allowed in a role's trust policy",
                    "the resource is the role itself",
                )
        resources, not_resource = ("*",), False
    elif kind == "resource" and "Resource" not in stmt and "NotResource" not in stmt:
        resources, not_resource = ("*",), False  # the resource the policy is attached to
    else:
        resources, not_resource = _either(out, stmt, path, "Resource", "NotResource")
    if kind == "resource" and not_principal and effect == "Allow":
        out.add(
            "not_principal_with_allow",
            _join(path, "NotPrincipal"),
            'NotPrincipal must be used with "Effect": "Deny"',
            "AWS does not support NotPrincipal with Allow",
        )
    for i, resource in enumerate(resources):
        # Six fields, or fewer when a final `*` (which crosses colons) stands for the rest
        if resource != "*" and not (
            resource.startswith("arn:") and (resource.count(":") >= 5 or resource.endswith("*"))
        ):
            out.add(
                "invalid_resource",
                _element_path(
                    path, "NotResource" if not_resource else "Resource", i, len(resources)
                ),
                f'invalid resource "{resource}"',
                'a resource is "*" or an ARN: arn:partition:service:region:account:resource',
            )
    providers = kind in ("resource", "trust")
    conditions = _conditions(out, path, stmt["Condition"], providers) if "Condition" in stmt else ()
    return StatementNode(
        index=index,
        path=path,
        sid=sid if isinstance(sid, str) and sid else None,
        effect=effect if isinstance(effect, str) else "",
        actions=actions,
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        conditions=conditions,
        principal=principal,
        not_principal=not_principal,
    )


def _principal(
    out: _Collector, path: str, stmt: dict[str, Any], kind: str
) -> tuple[PrincipalSpec | None, bool]:
    """The statement's Principal or NotPrincipal, as its policy kind allows."""
    present = [key for key in ("Principal", "NotPrincipal") if key in stmt]
    if kind in ("identity", "scp"):
        for key in present:
            where = "an identity-based policy" if kind == "identity" else "a service control policy"
            out.add(
                "principal_in_identity_policy" if kind == "identity" else "principal_in_scp",
                _join(path, key),
                f"{key} is not allowed in {where}",
                "the principal is whoever the policy is attached to",
            )
        return None, False
    if len(present) == 2:
        out.add("conflicting_elements", path, "Principal and NotPrincipal in the same statement")
        return None, False
    if not present:
        out.add(
            "missing_principal",
            path,
            "missing Principal: a resource-based policy names who it applies to",
        )
        return None, False
    key = present[0]
    if key == "NotPrincipal" and kind in ("trust", "rcp"):
        where = "a role's trust policy" if kind == "trust" else "a resource control policy"
        out.add("invalid_principal", _join(path, key), f"NotPrincipal is not allowed in {where}")
        return None, False
    problems: list[tuple[str, str, str]] = []
    spec = parse_principal(stmt[key], _join(path, key), problems)
    for code, where, message in problems:
        out.add(code, where, message)
    if kind == "rcp" and not problems and spec != PrincipalSpec(everyone=True):
        out.add(
            "invalid_principal",
            _join(path, key),
            'a resource control policy names "Principal": "*" only',
            "narrow it with conditions on aws:PrincipalArn, aws:PrincipalOrgID, ...",
        )
    return (spec if not problems else None), key == "NotPrincipal"


def _element_path(path: str, key: str, i: int, count: int) -> str:
    return _join(path, f"{key}[{i}]") if count > 1 else _join(path, key)


def _either(
    out: _Collector, stmt: dict[str, Any], path: str, name: str, not_name: str
) -> tuple[tuple[str, ...], bool]:
    """Exactly one of `name` / `not_name`, as a non-empty string list."""
    if name in stmt and not_name in stmt:
        out.add("conflicting_elements", path, f"{name} and {not_name} in the same statement")
        return (), False
    if name not in stmt and not_name not in stmt:
        out.add(f"missing_{name.lower()}", path, f"missing {name}/{not_name}")
        return (), False
    key = name if name in stmt else not_name
    value = stmt[key]
    where = _join(path, key)
    if isinstance(value, str):
        values: list[Any] = [value]
    elif isinstance(value, list):
        values = value
        if not values:
            out.add(f"empty_{name.lower()}", where, f"empty {key}: it must name at least one entry")
    else:
        out.add(f"invalid_{name.lower()}", where, f"{key} must be a string or list of strings")
        return (), key == not_name
    good: list[str] = []
    for i, item in enumerate(values):
        if not isinstance(item, str) or not item:
            out.add(
                f"invalid_{name.lower()}",
                f"{where}[{i}]" if isinstance(value, list) else where,
                f"{key} must be a string or list of strings",
            )
        else:
            good.append(item)
    return tuple(good), key == not_name


def _conditions(
    out: _Collector, path: str, block: Any, providers: bool = False
) -> tuple[ConditionEntry, ...]:
    where = _join(path, "Condition")
    if not isinstance(block, dict):
        out.add("invalid_condition", where, "Condition must be an object of operators")
        return ()
    if isinstance(block, JsonObject):
        for key in block.duplicates:
            out.add("duplicate_key", where, f'duplicate key "{key}"')
    entries: list[ConditionEntry] = []
    for operator, keys in block.items():
        op_path = f"{where}.{printable(operator)}"
        if not isinstance(keys, dict) or not keys:
            out.add(
                "invalid_condition",
                op_path,
                f'operator "{operator}" must map condition keys to values',
            )
            continue
        if isinstance(keys, JsonObject):
            for key in keys.duplicates:
                out.add("duplicate_key", op_path, f'duplicate key "{key}"')
        seen: dict[str, str] = {}
        for key, raw in keys.items():
            key_path = f"{op_path}.{printable(key)}"
            if key.lower() in seen:
                out.add(
                    "duplicate_key",
                    key_path,
                    f'condition key "{key}" repeats "{seen[key.lower()]}" (key names ignore case)',
                )
                continue
            seen[key.lower()] = key
            if has_unsafe(key):
                out.add(
                    "invalid_condition_key",
                    key_path,
                    f'condition key "{key}" holds a control or bidirectional-override character',
                    "condition keys are printable text",
                )
                continue
            if not (_PROVIDER_KEY if providers else _CONDITION_KEY).fullmatch(key):
                out.add(
                    "invalid_condition_key",
                    key_path,
                    f'invalid condition key "{key}"',
                    'a condition key has a service prefix, e.g. "aws:SourceIp"',
                )
                continue
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                out.add("empty_condition_values", key_path, f'no values for condition key "{key}"')
                continue
            values: list[str] = []
            for i, item in enumerate(items):
                text = _scalar_text(item)
                if text is None:
                    out.add(
                        "invalid_condition_value",
                        f"{key_path}[{i}]" if isinstance(raw, list) else key_path,
                        "a condition value must be a string, number or boolean",
                    )
                else:
                    values.append(text)
            entries.append(ConditionEntry(operator, key, tuple(values), key_path))
    return tuple(entries)
