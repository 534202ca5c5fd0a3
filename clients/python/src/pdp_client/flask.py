"""Flask helper for the sidecar pattern: authorize a route with pdp, answer 403 on Deny.

PdpFlask(app, HttpClient("http://127.0.0.1:8180"), principal=lambda: request.headers["X-User"])

@app.get("/orders/<id>")
@require("orders:Read", resource=lambda: f"arn:app:orders:::order/{request.view_args['id']}")
def get_order(id): ...

The principal function's value is always sent as a user (name or ARN), never as the account
root: a caller who puts `arn:aws:iam::<account>:root` in the header gets a Deny.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from flask import Flask, current_app, g, jsonify

from pdp_client.model import Decision

__all__ = ["PdpFlask", "require"]

F = TypeVar("F", bound=Callable[..., Any])


class _Client(Protocol):
    def is_authorized(
        self, principal: str, action: str, resource: str, context: Mapping[str, Any] | None = None
    ) -> Decision: ...


class PdpFlask:
    """Registers a pdp client and how to find the principal (and extra context) of a request."""

    def __init__(
        self,
        app: Flask | None = None,
        client: _Client | None = None,
        *,
        principal: Callable[[], str] | None = None,
        context: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.client = client
        self.principal = principal
        self.context = context
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["pdp"] = self

    def require(
        self,
        action: str,
        resource: str | Callable[[], str] = "*",
        context: Callable[[], Mapping[str, Any]] | None = None,
    ) -> Callable[[F], F]:
        return require(action, resource, context, extension=self)


def require(
    action: str,
    resource: str | Callable[[], str] = "*",
    context: Callable[[], Mapping[str, Any]] | None = None,
    *,
    extension: PdpFlask | None = None,
) -> Callable[[F], F]:
    """Authorize the decorated view; a Deny answers 403 with pdp's reason and errors."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            pdp: PdpFlask = extension or current_app.extensions["pdp"]
            if pdp.client is None or pdp.principal is None:
                raise RuntimeError("PdpFlask needs a client and a principal function")
            try:
                principal = pdp.principal()
            except (KeyError, LookupError):
                return jsonify({"error": "unauthenticated: no principal"}), 401
            ctx: dict[str, Any] = dict(pdp.context() if pdp.context else {})
            if context is not None:
                ctx.update(context())
            target = resource() if callable(resource) else resource
            decision = pdp.client.is_authorized(principal, action, target, ctx or None)
            g.pdp_decision = decision
            if not decision.allowed:
                body = {
                    "error": "forbidden",
                    "action": action,
                    "resource": target,
                    "reason": decision.reason,
                    "errors": list(decision.errors),
                }
                return jsonify(body), 403
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
