"""`parse_policy`: from JSON text (or a parsed dict) to a compiled, immutable `Policy`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdp.errors import Diagnostic, PolicyValidationError
from pdp.language.compile import CompiledStatement, compile_statement
from pdp.language.jsondoc import MalformedJson, load_json
from pdp.language.validate import KINDS, validate_document

__all__ = ["Policy", "parse_policy"]


@dataclass(frozen=True, eq=False, slots=True)
class Policy:
    """A validated, compiled policy. `name` is what decisions cite in `matched[].policy`."""

    name: str
    version: str | None
    id: str | None
    statements: tuple[CompiledStatement, ...]
    document: Mapping[str, Any]
    kind: str = "identity"  # identity, resource, trust, scp or rcp (validate.KINDS)

    def __repr__(self) -> str:
        return f"<Policy {self.name!r}: {len(self.statements)} statements>"


def parse_policy(
    document: str | bytes | Mapping[str, Any],
    source: str | None = None,
    *,
    name: str | None = None,
    kind: str = "identity",
) -> Policy:
    """Validate and compile an IAM policy document.

    `document` is the raw JSON text (str or bytes; malformed JSON and duplicate keys are caught)
    or an already parsed dict. `source` names the file in diagnostics; `name` (default: `source`)
    is the policy's name in decisions. `kind` is what the document is, and sets the grammar it
    follows: "identity" (attached to a user, group or role), "resource" (a resource-based policy,
    with Principal), "trust" (a role's trust policy), "scp" or "rcp" (AWS Organizations).
    Raises `PolicyValidationError` listing every problem.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if isinstance(document, str | bytes | bytearray):
        try:
            doc = load_json(document)
        except MalformedJson as exc:
            raise PolicyValidationError(
                [Diagnostic("malformed_json", "", str(exc), source)]
            ) from None
    else:
        doc = document
    node, problems = validate_document(doc, source, kind)
    statements: list[CompiledStatement] = []
    policy_name = name or source or "policy"
    if node is not None:
        for stmt in node.statements:
            compiled, more = compile_statement(
                stmt, policy=policy_name, version=node.version, source=source
            )
            problems.extend(more)
            if compiled is not None:
                statements.append(compiled)
    if problems:
        raise PolicyValidationError(sorted(problems, key=_order))
    assert node is not None
    return Policy(policy_name, node.version, node.id, tuple(statements), doc, kind)


def _order(d: Diagnostic) -> tuple[str, str]:
    return (d.path, d.message)
