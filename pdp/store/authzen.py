"""store.json's `"authzen"` object: how an OpenID AuthZEN 1.0 request maps onto a pdp request.

    "authzen": {
      "subjects": {"<subject id>": "<user name>"},     optional; ids not listed use "principal"
      "principal": "{id}",                             template over the subject's type and id
      "subject_types": {"user": "user"},               AuthZEN subject type -> pdp principal type
      "resource": "arn:app:todo:::{type}/{id}",        template over the resource's type and id
      "actions": {"can_read_todos": "todo:ReadTodos"}, optional map of action names
      "action": "app:{name}",                          template for names the map lacks
      "subject_properties": "authzen:subject/{name}",  context key of each subject property
      "resource_properties": "authzen:resource/{name}",
      "action_properties": "authzen:action/{name}",
      "context": "authzen:context/{name}"              context key of each request context key
    }

Every field is optional; the defaults are those shown (without `subjects` and `actions`).
An action neither mapped nor templated (`"action": null`) is refused at decision time: false;
so is a subject whose type `subject_types` lacks (only "user" by default: an AuthZEN caller
never reaches the account root or a role session unless the store says so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pdp.model import PRINCIPAL_TYPES

__all__ = ["AUTHZEN_KEY", "AuthzenMapping", "authzen_problem", "read_authzen"]

AUTHZEN_KEY = "authzen"
_MAX_ENTRIES = 10_000
_MAX_TEMPLATE = 512
_PLACEHOLDER = re.compile(r"\{([a-z]*)\}")

# field -> the placeholders its template may use
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "principal": ("type", "id"),
    "resource": ("type", "id"),
    "action": ("name",),
    "subject_properties": ("name",),
    "resource_properties": ("name",),
    "action_properties": ("name",),
    "context": ("name",),
}
_MAPS = ("subjects", "actions", "subject_types")
_FIELDS = (*_TEMPLATES, *_MAPS)


@dataclass(frozen=True, slots=True)
class AuthzenMapping:
    """A checked `"authzen"` object (the defaults when store.json has none)."""

    principal: str = "{id}"
    resource: str = "arn:app:{type}:::{type}/{id}"
    action: str | None = "app:{name}"
    subject_properties: str = "authzen:subject/{name}"
    resource_properties: str = "authzen:resource/{name}"
    action_properties: str = "authzen:action/{name}"
    context: str = "authzen:context/{name}"
    subjects: Mapping[str, str] = field(default_factory=dict)
    actions: Mapping[str, str] = field(default_factory=dict)
    subject_types: Mapping[str, str] = field(default_factory=lambda: {"user": "user"})

    def subject_of(self, type_: str, principal: str) -> str | None:
        """The subject id whose principal (`principal_of`) is `principal`, or None: the reverse
        of the mapping, for subject search. Checked forward, so a result always maps back."""
        for id_, named in self.subjects.items():
            if named == principal:
                return id_
        found = unfill(fill(self.principal.replace("{id}", "\0"), type=type_), principal)
        if found is None or self.principal_of(type_, found) != principal:
            return None
        return found

    def resource_id_of(self, type_: str, arn: str) -> str | None:
        """The resource id of `type_` whose ARN (`resource_of`) is `arn`, or None."""
        found = unfill(fill(self.resource.replace("{id}", "\0"), type=type_), arn)
        if found is None or self.resource_of(type_, found) != arn:
            return None
        return found

    def action_names(self, action: str) -> list[str]:
        """The AuthZEN action names that map to the pdp action `action` (case as IAM's:
        action names compare without case)."""
        wanted = action.lower()
        names = [name for name, mapped in self.actions.items() if mapped.lower() == wanted]
        if self.action is not None:
            found = unfill(self.action.replace("{name}", "\0"), action)
            if found is not None and found not in self.actions and self.action_of(found):
                names.append(found)
        return names

    def principal_type_of(self, type_: str) -> str | None:
        """The pdp principal type of an AuthZEN subject type; None: not one the store maps."""
        return self.subject_types.get(type_)

    def principal_of(self, type_: str, id_: str) -> str:
        named = self.subjects.get(id_)
        return named if named is not None else fill(self.principal, type=type_, id=id_)

    def resource_of(self, type_: str, id_: str) -> str:
        return fill(self.resource, type=type_, id=id_)

    def action_of(self, name: str) -> str | None:
        mapped = self.actions.get(name)
        if mapped is not None:
            return mapped
        return None if self.action is None else fill(self.action, name=name)


def fill(template: str, **values: str) -> str:
    """`template` with each `{key}` replaced (checked by authzen_problem: no other braces)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def unfill(pattern: str, value: str) -> str | None:
    """What stands for the one NUL in `pattern` (a filled template whose placeholder was NUL)
    so that the pattern gives `value`; None unless the pattern has exactly one and a
    non-empty stand-in fits."""
    if pattern.count("\0") != 1:
        return None
    prefix, _, suffix = pattern.partition("\0")
    if len(value) <= len(prefix) + len(suffix):
        return None
    if not value.startswith(prefix) or not value.endswith(suffix):
        return None
    return value[len(prefix) : len(value) - len(suffix)]


def _template_problem(where: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEMPLATE:
        return f"must be a non-empty string of at most {_MAX_TEMPLATE} characters"
    rest = _PLACEHOLDER.sub("", value)
    if "{" in rest or "}" in rest:
        return f"braces only in placeholders ({', '.join('{' + a + '}' for a in allowed)})"
    for name in _PLACEHOLDER.findall(value):
        if name not in allowed:
            return f"unknown placeholder {{{name}}} (known: {', '.join(allowed)})"
    return None


def authzen_problem(doc: Any) -> tuple[str, str] | None:
    """(field, why) store.json's `authzen` value is refused, or None."""
    if not isinstance(doc, dict):
        return AUTHZEN_KEY, "must be an object"
    for key in doc:
        if key not in _FIELDS:
            return f"{AUTHZEN_KEY}.{key}", f"unknown field (known: {', '.join(_FIELDS)})"
    for key, allowed in _TEMPLATES.items():
        if key not in doc or (key == "action" and doc[key] is None):
            continue
        why = _template_problem(key, doc[key], allowed)
        if why is not None:
            return f"{AUTHZEN_KEY}.{key}", why
    for key in _MAPS:
        table = doc.get(key, {})
        if not isinstance(table, dict) or len(table) > _MAX_ENTRIES:
            return f"{AUTHZEN_KEY}.{key}", f"must be an object of at most {_MAX_ENTRIES} entries"
        for name, value in table.items():
            where = f'{AUTHZEN_KEY}.{key}["{name}"]'
            if not isinstance(value, str) or not value or len(value) > _MAX_TEMPLATE:
                return where, f"must be a non-empty string of at most {_MAX_TEMPLATE} characters"
            if key == "subject_types" and value not in PRINCIPAL_TYPES:
                return (
                    where,
                    f'unknown principal type "{value}" (known: {", ".join(PRINCIPAL_TYPES)})',
                )
    return None


def read_authzen(doc: Any) -> AuthzenMapping | None:
    """The mapping of a store.json `authzen` value authzen_problem accepted; None if absent."""
    if doc is None:
        return None
    return AuthzenMapping(**doc)
