"""Compile validated statements into matchers, once, when a policy loads.

A `CompiledStatement` answers "does this statement apply to (action, resource, context)?" with
pre-built matchers: actions lower-cased into a `PatternSet`, resources into a segment-aware
`PatternSet`, conditions into `Condition` objects. Only patterns holding policy variables are
finished per request; their compiled form is cached by the substituted tokens.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pdp.errors import Diagnostic
from pdp.language.condition import Condition
from pdp.language.context import RequestContext
from pdp.language.operators import EvaluationError, OperatorSyntaxError, parse_operator
from pdp.language.principals import PrincipalSpec
from pdp.language.validate import StatementNode
from pdp.language.variables import Template, VariableSyntaxError, parse_template
from pdp.language.wildcard import (
    Matcher,
    PatternSet,
    Token,
    compile_glob,
    shared_pattern_set,
    tokenize,
)
from pdp.model import MatchedStatement

__all__ = ["CompiledStatement", "compile_statement"]


@lru_cache(maxsize=8192)
def _resource_matcher(tokens: tuple[Token, ...]) -> Matcher:
    return compile_glob(tokens, dialect="resource")


class CompiledStatement:
    """One statement, ready to evaluate. `services` lists the action prefixes it can match
    (lower-cased), or is None when it may match any service (`*`, `*:Get*`, NotAction).

    `match_action` returns a bool; `match_resource` (the static Resource or NotResource
    patterns) returns something truthy on a match. Whether the statement applies is decided by
    `pdp.language.evaluate.applying` from these attributes.
    """

    __slots__ = (
        "ref",
        "deny",
        "actions",
        "match_action",
        "not_action",
        "resources",
        "match_resource",
        "resource_templates",
        "not_resource",
        "conditions",
        "services",
        "principal",
        "not_principal",
    )

    def __init__(
        self,
        ref: MatchedStatement,
        actions: PatternSet,
        not_action: bool,
        resources: PatternSet,
        resource_templates: tuple[Template, ...],
        not_resource: bool,
        conditions: tuple[Condition, ...],
        services: frozenset[str] | None,
        principal: PrincipalSpec | None = None,
        not_principal: bool = False,
    ) -> None:
        self.ref = ref
        self.deny = ref.effect == "Deny"
        self.actions = actions
        self.match_action = actions.matcher
        self.not_action = not_action
        self.resources = resources
        self.match_resource = resources.test
        self.resource_templates = resource_templates
        self.not_resource = not_resource
        self.conditions = conditions
        self.services = services
        self.principal = principal  # resource-based policies only: whom it names
        self.not_principal = not_principal

    def template_hit(self, resource: str, ctx: RequestContext) -> bool:
        """Whether a Resource (or NotResource) pattern with policy variables matches."""
        for template in self.resource_templates:
            tokens = template.tokens(ctx.single)
            # A variable with no value: "the resource that includes a policy variable with no
            # value will not match any resource" (reference_policies_variables.html), under
            # Resource and NotResource alike.
            if tokens is not None and _resource_matcher(tokens)(resource):
                return True
        return False


def compile_statement(
    node: StatementNode, *, policy: str, version: str | None, source: str | None
) -> tuple[CompiledStatement | None, list[Diagnostic]]:
    """Compile one validated statement; report operator and value problems as diagnostics."""
    problems: list[Diagnostic] = []

    def problem(code: str, path: str, message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic(code, path, message, source, hint))

    substitute = version == "2012-10-17"
    actions = shared_pattern_set(tuple(tokenize(a.lower()) for a in node.actions), "uniform", True)
    services: set[str] | None = set()
    if node.not_action:
        services = None
    else:
        prefixes = {a.partition(":")[0].lower() for a in node.actions}
        if any(a == "*" for a in node.actions) or any("*" in p or "?" in p for p in prefixes):
            services = None  # may match any service
        else:
            services = prefixes

    static: list[tuple[Token, ...]] = []
    templates: list[Template] = []
    element = "NotResource" if node.not_resource else "Resource"
    for resource in node.resources:
        try:
            template = parse_template(resource, substitute=substitute)
        except VariableSyntaxError as exc:
            problem("invalid_variable", f"{node.path}.{element}", str(exc))
            continue
        if template.has_variables:
            templates.append(template)
        else:
            static.append(template.tokens() or ())

    conditions: list[Condition] = []
    for entry in node.conditions:
        try:
            operator = parse_operator(entry.operator)
        except OperatorSyntaxError as exc:
            problem("unknown_operator", f"{node.path}.Condition", str(exc), exc.hint)
            continue
        parsed: list[Template] = []
        for i, value in enumerate(entry.values):
            where = f"{entry.path}[{i}]" if len(entry.values) > 1 else entry.path
            family = operator.spec.family
            if substitute and "${" in value and not family.variables:
                problem(
                    "invalid_variable",
                    where,
                    f"{operator.text}: policy variables can only be used with String, ARN and"
                    " Bool operators",
                )
                continue
            try:
                template = parse_template(value, substitute=substitute)
            except VariableSyntaxError as exc:
                problem("invalid_variable", where, str(exc))
                continue
            if not template.has_variables and not family.wildcards:
                try:
                    family.parse(template.resolve(lambda _k: None) or "")
                except ValueError as exc:
                    problem("invalid_condition_value", where, f"{operator.text}: {exc}")
                    continue
            parsed.append(template)
        try:
            conditions.append(Condition(operator, entry.key, parsed))
        except EvaluationError as exc:
            problem("invalid_condition_value", entry.path, str(exc))

    if problems or node.effect not in ("Allow", "Deny"):
        return None, problems
    effect: Literal["Allow", "Deny"] = "Deny" if node.effect == "Deny" else "Allow"
    ref = MatchedStatement(policy=policy, statement=node.index, sid=node.sid, effect=effect)
    compiled = CompiledStatement(
        ref=ref,
        actions=actions,
        not_action=node.not_action,
        resources=shared_pattern_set(tuple(static), "resource", False),
        resource_templates=tuple(templates),
        not_resource=node.not_resource,
        conditions=tuple(conditions),
        services=frozenset(services) if services is not None else None,
        principal=node.principal,
        not_principal=node.not_principal,
    )
    return compiled, problems
