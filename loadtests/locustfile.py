"""Load scenarios for pdp: the HTTP sidecar (FastHttpUser) and gRPC (GrpcUser).

    locust -f loadtests/locustfile.py SidecarUser --host http://127.0.0.1:8180
    locust -f loadtests/locustfile.py GrpcAuthorizerUser --host 127.0.0.1:50051

The mix: principals drawn with a skew (a few hot users take about half the traffic, the rest is
spread over thousands of cold ones), Allow and Deny requests, and 5% batches of 20. Every
response is checked: a decision with an internal error counts as a failure. The policy versions
seen are written to $PDP_LOADTEST_VERSIONS (JSON) when the run stops, to show reloads under load.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from typing import Any

import grpc
from grpc_user import GrpcUser
from locust import FastHttpUser, between, events, task

from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc

USERS = int(os.environ.get("PDP_LOADTEST_USERS", "5000"))
ACCOUNT = "123456789012"
SERVICES = ["s3", "ec2", "dynamodb", "sqs", "sns", "lambda", "logs", "kms", "orders", "billing"]
HOT = [f"user{u:05d}" for u in range(10)]
VERSIONS: Counter[str] = Counter()


def principal() -> str:
    if random.random() < 0.5:
        return random.choice(HOT)
    return f"user{random.randrange(USERS):05d}"


def request() -> dict[str, Any]:
    svc = random.choice(SERVICES)
    project = random.randrange(50)
    verb = random.choice(["GetObject", "ListThings", "PutThing", "DeleteThing", "RunThing"])
    context: dict[str, Any] = {
        "aws:SourceIp": random.choice(["10.1.2.3", "203.0.113.9"]),
        "aws:ResourceTag/team": random.choice(["blue", "green"]),
    }
    if random.random() < 0.3:
        context["aws:MultiFactorAuthPresent"] = random.random() < 0.5
    if random.random() < 0.2:
        context["app:RiskScore"] = random.randrange(100)
    return {
        "principal": principal(),
        "action": f"{svc}:{verb}",
        "resource": f"arn:aws:{svc}:us-east-1:{ACCOUNT}:project-{project}/item-{project}",
        "context": context,
    }


@events.test_stopping.add_listener
def _write_versions(**_: Any) -> None:
    target = os.environ.get("PDP_LOADTEST_VERSIONS")
    if target:
        with open(f"{target}.{os.getpid()}", "w") as handle:
            json.dump(dict(VERSIONS), handle)


class SidecarUser(FastHttpUser):
    wait_time = between(0, 0.002)

    def _check(self, response: Any, results: list[dict[str, Any]]) -> None:
        for result in results:
            VERSIONS[result.get("policy_version")] += 1
            if any(e.startswith("internal error") for e in result.get("errors", ())):
                response.failure(f"internal error: {result['errors']}")
                return

    @task(19)
    def is_authorized(self) -> None:
        with self.client.post(
            "/v1/is-authorized", json=request(), name="is-authorized", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            self._check(response, [response.json()])

    @task(1)
    def batch(self) -> None:
        body = {"requests": [request() for _ in range(20)]}
        with self.client.post(
            "/v1/batch-is-authorized", json=body, name="batch-is-authorized", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            self._check(response, response.json()["results"])


def message(body: dict[str, Any]) -> pb.IsAuthorizedRequest:
    def value(v: Any) -> pb.Value:
        if isinstance(v, bool):
            return pb.Value(bool_value=v)
        if isinstance(v, int):
            return pb.Value(int_value=v)
        return pb.Value(string_value=v)

    return pb.IsAuthorizedRequest(
        principal=body["principal"],
        action=body["action"],
        resource=body["resource"],
        context={k: value(v) for k, v in body["context"].items()},
    )


class GrpcAuthorizerUser(GrpcUser):
    stub_class = pb_grpc.AuthorizerStub
    wait_time = between(0, 0.002)

    @task(19)
    def is_authorized(self) -> None:
        try:
            answer = self.stub.IsAuthorized(message(request()), timeout=10)
        except grpc.RpcError:
            return  # already reported to locust by the interceptor
        VERSIONS[answer.policy_version] += 1

    @task(1)
    def batch(self) -> None:
        items = [message(request()) for _ in range(20)]
        try:
            answer = self.stub.BatchIsAuthorized(
                pb.BatchIsAuthorizedRequest(requests=items), timeout=10
            )
        except grpc.RpcError:
            return
        for result in answer.results:
            VERSIONS[result.policy_version] += 1
