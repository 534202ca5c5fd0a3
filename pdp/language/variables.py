"""Policy variables (`${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, `${*}`, ...).

Only policies with `"Version": "2012-10-17"` substitute variables; older or absent versions take
`${...}` literally (reference_policies_variables.html). A template is parsed once at load time; at
request time it resolves to a string, or to `None` when a variable has no value and no default
("policy variables with no value": the value then matches nothing).

A resolved value is literal text: a `*` inside a user's tag never becomes a wildcard. Wildcards
come only from the policy text itself, which is why `${*}` and `${?}` exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pdp.language.wildcard import Token, tokenize

__all__ = ["SPECIAL", "Template", "Var", "VariableSyntaxError", "parse_template"]

# "${*}" -> "*", "${?}" -> "?", "${$}" -> "$"
# (reference_policies_variables.html#policy-vars-specialchars)
SPECIAL = {"*": "*", "?": "?", "$": "$"}
_VAR = re.compile(r"\$\{([^}]*)\}")
_NAME_CHAR = r"A-Za-z0-9_.:/+=@\-"
# a key name (a tag key in it may hold spaces: ${aws:PrincipalTag/Cost Center}), then a default
_NAME_DEFAULT = re.compile(
    rf"\s*([{_NAME_CHAR}](?:[{_NAME_CHAR} ]*?[{_NAME_CHAR}])?)\s*(?:,\s*'([^']*)'\s*)?"
)

Lookup = Callable[[str], "str | None"]
"""Resolves a lower-cased context key to a single string value, or None."""


class VariableSyntaxError(ValueError):
    """A `${...}` that is neither a key name (with an optional default) nor a special character."""


@dataclass(frozen=True, slots=True)
class Var:
    """A variable: the context key it reads (lower-cased) and its default, if any."""

    key: str
    default: str | None
    text: str

    def value(self, lookup: Lookup) -> str | None:
        """The context's value, else the default, else None (no value)."""
        found = lookup(self.key)
        return self.default if found is None else found


Part = str | Var


@dataclass(frozen=True, slots=True)
class Template:
    """A policy string with its variables located; `parts` alternate raw text and `Var`s."""

    text: str
    parts: tuple[Part, ...]
    literals: frozenset[int]  # indexes of parts that came from ${*} ${?} ${$}: never wildcards
    token_parts: tuple[tuple[Token, ...] | Var, ...]  # parts as wildcard tokens, cut once
    has_variables: bool = False

    def resolve(self, lookup: Lookup) -> str | None:
        """The string with every variable replaced, or None if one has no value."""
        out = _substituted(self.parts, lookup, list.append)
        return None if out is None else "".join(out)

    def tokens(self, lookup: Lookup | None = None) -> tuple[Token, ...] | None:
        """Wildcard tokens: raw text may hold `*`/`?`; variable values and specials are literal."""
        out = _substituted(self.token_parts, lookup or _no_lookup, list.extend)
        return None if out is None else tuple(out)


def _no_lookup(key: str) -> str | None:
    raise ValueError("template has variables: a lookup is needed")


def _substituted(
    parts: Iterable[Any], lookup: Lookup, add_raw: Callable[[list[Any], Any], None]
) -> list[Any] | None:
    """Each Var's value in place (None as soon as one has none); raw parts go in by `add_raw`."""
    out: list[Any] = []
    for part in parts:
        if isinstance(part, Var):
            value = part.value(lookup)
            if value is None:
                return None
            out.append(value)
        else:
            add_raw(out, part)
    return out


@lru_cache(maxsize=65536)
def parse_template(text: str, *, substitute: bool) -> Template:
    """Locate the variables of `text`; with substitute=False the whole text is raw (2008 rules)."""
    if not substitute or "${" not in text:
        return Template(text, (text,), frozenset(), (tokenize(text),))
    parts: list[Part] = []
    literals: set[int] = set()
    pos = 0
    for m in _VAR.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        inner = m.group(1)
        if inner in SPECIAL:
            literals.add(len(parts))
            parts.append(SPECIAL[inner])
        else:
            nm = _NAME_DEFAULT.fullmatch(inner)
            if nm is None or ":" not in nm.group(1):
                raise VariableSyntaxError(f'malformed policy variable "${{{inner}}}"')
            parts.append(Var(nm.group(1).lower(), nm.group(2), m.group(0)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    if "${" in "".join(p for i, p in enumerate(parts) if isinstance(p, str) and i not in literals):
        raise VariableSyntaxError(f'unterminated policy variable in "{text}"')
    token_parts = tuple(
        p if isinstance(p, Var) else (p,) if i in literals else tokenize(p)
        for i, p in enumerate(parts)
    )
    has_vars = any(isinstance(p, Var) for p in parts)
    return Template(text, tuple(parts), frozenset(literals), token_parts, has_vars)
