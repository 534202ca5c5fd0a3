"""One compiled condition (operator, key, values) and IAM's rules for absent and multi-valued keys.

For a key absent from the request context (reference_policies_elements_condition_operators.html):
- `...IfExists`: true;
- `ForAllValues:`: true (also for an empty list); `ForAnyValue:`: false (also for an empty list);
- no set prefix: a positive operator is false, a negated one (`StringNotEquals`, `NotIpAddress`,
  `ArnNotLike`, ...) is true;
- `Null`: true when the policy value is "true".

For a present key, several policy values are ORed (NORed for negated operators). With a set
prefix each value of the (multi-valued) context key is tested on its own and the results are
combined with all/any. A list sent for a condition without a set prefix is an evaluation error
(a Deny): IAM requires the prefix for multi-valued keys (Access Analyzer: "missing qualifier"),
and guessing would let one extra value switch a negated Deny off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pdp.language.context import CLOCK_KEYS, MISSING, RequestContext, Scalar
from pdp.language.operators import EvaluationError, Operator, Test
from pdp.language.variables import Template

__all__ = ["Condition"]


def _no_value(_key: str) -> None:
    return None


class Condition:
    """A compiled `"Operator": {"key": [values]}` entry; call it with a RequestContext."""

    __slots__ = (
        "operator",
        "key",
        "key_text",
        "templates",
        "_test",
        "_when_present",
        "_negated",
        "_set_op",
        "_when_missing",
        "_reads_clock",
    )

    def __init__(self, operator: Operator, key_text: str, templates: Sequence[Template]) -> None:
        self.operator = operator
        self.key_text = key_text
        self.key = key_text.lower()
        self.templates = tuple(templates)
        self._negated = operator.spec.negated
        self._set_op = operator.set_op
        # The rules for an absent key, decided once (see the module docstring).
        if operator.if_exists or operator.set_op == "all":
            self._when_missing = True
        elif operator.set_op == "any":
            self._when_missing = False
        else:
            self._when_missing = operator.spec.negated
        self._reads_clock = self.key in CLOCK_KEYS
        # For Null only: its answer when the key has a value (for the others, the test decides).
        self._when_present: bool | None = None
        self._test: Test | None = None
        family = operator.spec.family
        if family.name == "null":
            wanted = frozenset(family.parse(t.text) for t in self.templates)
            self._when_missing = True in wanted  # "Null": true asks for no key
            self._when_present = False in wanted  # "Null": false asks for one
        elif not any(t.has_variables for t in self.templates):
            self._test = self._build(self.templates, None)

    def _build(self, templates: Sequence[Template], ctx: RequestContext | None) -> Test:
        family = self.operator.spec.family
        values: list[Any] = []
        for template in templates:
            if family.wildcards:
                tokens = template.tokens(ctx.single if ctx else None)
                if tokens is not None:
                    values.append(tokens)
                continue
            text = template.resolve(ctx.single if ctx else _no_value)
            if text is None:
                continue  # a variable with no value matches nothing
            try:
                values.append(family.parse(text))
            except ValueError as exc:
                raise EvaluationError(
                    f"{self.operator.text} {self.key_text}: policy value {exc}"
                ) from None
        return family.build(self.operator.spec.kind, values)

    def __call__(self, ctx: RequestContext) -> bool:
        value = ctx.get(self.key) if self._reads_clock else ctx.values.get(self.key, MISSING)
        if value is MISSING:
            return self._when_missing
        kind = type(value)
        if kind is tuple:
            if not value:
                return self._when_missing  # an empty multi-valued key is an absent key
        elif value == "" and self._set_op is not None:
            # "a null dataset, such as an empty string" (ForAllValues/ForAnyValue)
            return self._when_missing
        if self._when_present is not None:
            return self._when_present
        test = self._test or self._build(self.templates, ctx)
        negated = self._negated
        set_op = self._set_op
        try:
            if kind is not tuple:
                if set_op is None:
                    return test(value) is not negated  # type: ignore[arg-type]
                values: tuple[Scalar, ...] = (value,)  # type: ignore[assignment]
            elif set_op is None:
                raise EvaluationError(
                    "a multi-valued context value needs ForAllValues: or ForAnyValue: in the policy"
                )
            else:
                values = value  # type: ignore[assignment]
            if set_op == "all":
                return all(test(v) is not negated for v in values)
            return any(test(v) is not negated for v in values)
        except EvaluationError as exc:
            raise EvaluationError(f'{self.operator.text} on "{self.key_text}": {exc}') from None
