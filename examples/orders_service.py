"""A small orders service that asks pdp before every route (the sidecar pattern).

PDP_ADMIN_TOKEN=x make serve &                 # pdp on the bundled store
.venv/bin/python examples/orders_service.py     # this service on 127.0.0.1:8190
curl -H 'X-User: bob' localhost:8190/orders/42          # 200: developers read orders
curl -X DELETE -H 'X-User: bob' localhost:8190/orders/42  # 403: nobody deletes orders
"""

from __future__ import annotations

import os

from flask import Flask, abort, g, jsonify, request

from pdp_client import HttpClient
from pdp_client.flask import PdpFlask, require

ORDERS = {
    "42": {"id": "42", "team": "blue", "item": "keyboard"},
    "43": {"id": "43", "team": "green", "item": "monitor"},
}


def order_arn() -> str:
    return f"arn:app:orders:::order/{request.view_args['id']}"  # type: ignore[index]


def order_team() -> dict[str, str]:
    order = ORDERS.get(request.view_args["id"])  # type: ignore[index]
    return {"app:OrderTeam": order["team"]} if order else {}


def create_app(client: HttpClient | None = None) -> Flask:
    app = Flask("orders")
    PdpFlask(
        app,
        client or HttpClient(os.environ.get("PDP_URL", "http://127.0.0.1:8180"), timeout=0.5),
        principal=lambda: request.headers["X-User"],
    )

    @app.get("/orders/<id>")
    @require("orders:Read", resource=order_arn)
    def read(id: str):  # noqa: A002
        return jsonify(ORDERS.get(id) or abort(404))

    @app.put("/orders/<id>")
    @require("orders:Update", resource=order_arn, context=order_team)
    def update(id: str):  # noqa: A002
        ORDERS[id] = {**ORDERS[id], **(request.get_json(silent=True) or {})}
        return jsonify(ORDERS[id] | {"decided_by": g.pdp_decision.policy_version})

    @app.delete("/orders/<id>")
    @require("orders:Delete", resource=order_arn)
    def delete(id: str):  # noqa: A002
        ORDERS.pop(id, None)
        return "", 204

    return app


if __name__ == "__main__":
    from waitress import serve

    serve(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8190")))
