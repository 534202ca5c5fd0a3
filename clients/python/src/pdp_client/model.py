"""The decision as clients see it: the same names as pdp.Decision and the wire formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Decision", "MatchedStatement", "unreachable"]


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    policy: str
    statement: int
    sid: str | None
    effect: Literal["Allow", "Deny"]


@dataclass(frozen=True, slots=True)
class Decision:
    """`decision` is "Allow" or "Deny"; `reason` "allowed", "explicitDeny" or "implicitDeny"."""

    decision: Literal["Allow", "Deny"]
    reason: Literal["allowed", "explicitDeny", "implicitDeny"]
    matched: tuple[MatchedStatement, ...] = ()
    errors: tuple[str, ...] = ()
    policy_version: str | None = None
    root: bool = False
    layers: tuple[str, ...] = ()  # the policy layers consulted, in order; () for identity-only
    blocked_by: tuple[str, ...] = ()  # the layers that denied, e.g. ("scp",)
    # only when the request asked for explain: why (docs/queries.md, Explain)
    explanation: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def allowed(self) -> bool:
        return self.decision == "Allow"

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Decision:
        """The decision in a JSON answer; ValueError when it holds no decision at all."""
        if body.get("decision") not in ("Allow", "Deny"):
            raise ValueError(f"no decision in the answer: {str(body)[:200]}")
        return cls(
            decision="Allow" if body.get("decision") == "Allow" else "Deny",
            reason=body.get("reason", "implicitDeny"),
            matched=tuple(
                MatchedStatement(m["policy"], m["statement"], m.get("sid"), m["effect"])
                for m in body.get("matched", ())
            ),
            errors=tuple(body.get("errors", ())),
            policy_version=body.get("policy_version"),
            root=bool(body.get("root", False)),
            layers=tuple(body.get("layers", ())),
            blocked_by=tuple(body.get("blocked_by", ())),
            explanation=explanation
            if isinstance(explanation := body.get("explanation"), dict)
            else None,
        )

    @classmethod
    def from_message(cls, message: Any) -> Decision:
        return cls(
            decision="Allow" if message.decision == "Allow" else "Deny",
            reason=message.reason or "implicitDeny",
            matched=tuple(
                MatchedStatement(m.policy, m.statement, m.sid or None, m.effect)
                for m in message.matched
            ),
            errors=tuple(message.errors),
            policy_version=message.policy_version or None,
            root=message.root,
            layers=tuple(message.layers),
            blocked_by=tuple(message.blocked_by),
            explanation=_struct(message),
        )


def _struct(message: Any) -> dict[str, Any] | None:
    """A response's explanation Struct as a dict, None when the request did not ask for one."""
    if not message.HasField("explanation"):
        return None
    from google.protobuf.json_format import MessageToDict

    return dict(MessageToDict(message.explanation))


def unreachable(detail: str) -> Decision:
    """Fail closed: the Deny a client answers when pdp cannot be reached."""
    return Decision("Deny", "implicitDeny", errors=(f"pdp unreachable: {detail}",))
