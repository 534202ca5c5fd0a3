"""Decision latency of the in-process engine: `make bench` prints the figures, asserts nothing.

A principal with 30 statements over 10 policies (the shape the engine issue names), decided for
an Allow, an explicit Deny and an implicit Deny, first with plain statements and then with a
condition-heavy set. Each decision is timed on its own (perf_counter_ns); the figures are the
median and p99 in microseconds. For scale, the same run times a bare 20-line scan of pre-compiled
regexes (no conditions, no reasons) and an empty function call.
"""

from __future__ import annotations

import gc
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import pdp

ACCOUNT = "123456789012"
SERVICES = ["s3", "ec2", "dynamodb", "sqs", "sns", "lambda", "logs", "kms", "cloudwatch", "iam"]


def _statements(conditions: bool) -> list[list[dict[str, Any]]]:
    """10 policies x 3 statements: Allows by service, a few Denies, one NotAction."""
    policies = []
    for i, svc in enumerate(SERVICES):
        region = "us-east-1"
        stmts: list[dict[str, Any]] = [
            {
                "Sid": f"Read{i}",
                "Effect": "Allow",
                "Action": [f"{svc}:Get*", f"{svc}:List*", f"{svc}:Describe*"],
                "Resource": f"arn:aws:{svc}:{region}:{ACCOUNT}:*",
            },
            {
                "Sid": f"Write{i}",
                "Effect": "Allow",
                "Action": [f"{svc}:Put*", f"{svc}:Create*"],
                "Resource": [
                    f"arn:aws:{svc}:{region}:{ACCOUNT}:res/${{aws:username}}/*",
                    f"arn:aws:{svc}:{region}:{ACCOUNT}:team/${{aws:PrincipalTag/team}}/*",
                ],
            },
            {
                "Sid": f"NoDelete{i}",
                "Effect": "Deny",
                "Action": f"{svc}:Delete*",
                "Resource": f"arn:aws:{svc}:*:*:protected/*",
            },
        ]
        if conditions:
            stmts[0]["Condition"] = {
                "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]},
                "BoolIfExists": {"aws:MultiFactorAuthPresent": "true"},
            }
            stmts[1]["Condition"] = {
                "StringEquals": {"aws:PrincipalTag/team": ["blue", "green"]},
                "DateLessThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"},
                "ForAllValues:StringLike": {"aws:TagKeys": ["env", "team-*", "cost-*"]},
            }
            stmts[2]["Condition"] = {
                "NumericLessThanIfExists": {"aws:MultiFactorAuthAge": "86400"},
                "StringNotEqualsIgnoreCase": {"aws:RequestedRegion": ["eu-west-1"]},
            }
        if i == 9:
            stmts[2] = {
                "Sid": "NotIam",
                "Effect": "Deny",
                "NotAction": ["iam:*", "sts:*"],
                "Resource": "*",
                "Condition": {"Bool": {"aws:ViaAWSService": "true"}},
            }
        policies.append(stmts)
    return policies


def _policy_set(conditions: bool) -> pdp.PolicySet:
    docs = _statements(conditions)
    return pdp.PolicySet(
        pdp.parse_policy({"Version": "2012-10-17", "Statement": s}, source=f"policy{i}.json")
        for i, s in enumerate(docs)
    )


REQUESTS = {
    "allow": ("s3:GetObject", f"arn:aws:s3:us-east-1:{ACCOUNT}:bucket/key"),
    "explicit deny": ("s3:DeleteObject", f"arn:aws:s3:us-east-1:{ACCOUNT}:protected/x"),
    "implicit deny": ("s3:RestoreObject", f"arn:aws:s3:us-east-1:{ACCOUNT}:bucket/key"),
}
CONTEXT = {
    "aws:SourceIp": "10.1.2.3",
    "aws:MultiFactorAuthPresent": True,
    "aws:MultiFactorAuthAge": 120,
    "aws:TagKeys": ["env", "team-a"],
    "aws:RequestedRegion": "us-east-1",
}


def measure(calls: dict[str, Callable[[], object]], runs: int) -> dict[str, tuple[float, float]]:
    """Median and p99 (us) per scenario. Scenarios are interleaved in batches of 50 so that the
    bursts of a shared, noisy machine fall on all of them alike."""
    batch = 50
    samples: dict[str, list[int]] = {name: [] for name in calls}
    clock = time.perf_counter_ns
    for call in calls.values():
        for _ in range(1000):
            call()
    gc.disable()
    try:
        for _ in range(max(1, runs // batch)):
            for name, call in calls.items():
                bucket = samples[name]
                for _ in range(batch):
                    start = clock()
                    call()
                    bucket.append(clock() - start)
    finally:
        gc.enable()
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = (statistics.median(values) / 1000, values[int(len(values) * 0.99)] / 1000)
    return out


def bare_scan() -> Callable[[], object]:
    """The floor the issue names: a plain scan of pre-compiled regexes over 30 statements."""
    compiled = [
        (re.compile(f"{svc}:(get|list|describe).*", re.I), re.compile(f"arn:aws:{svc}:.*"), "Allow")
        for svc in SERVICES
        for _ in range(3)
    ]

    def decide(action: str = "s3:GetObject", resource: str = "arn:aws:s3:us-east-1:1:b/k") -> str:
        allowed = False
        for act, res, effect in compiled:
            if act.fullmatch(action) and res.fullmatch(resource):
                if effect == "Deny":
                    return "Deny"
                allowed = True
        return "Allow" if allowed else "Deny"

    return decide


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    alice = pdp.Principal.user("alice", account=ACCOUNT, tags={"team": "blue"})
    calls: dict[str, Callable[[], object]] = {
        "empty call (timer floor)": lambda: None,
        "bare regex scan, 30 statements": bare_scan(),
    }
    for conditions in (False, True):
        policy_set = _policy_set(conditions)
        label = "conditions" if conditions else "plain"
        count = sum(len(p.statements) for p in policy_set.policies)
        for name, (action, resource) in REQUESTS.items():
            ctx = CONTEXT if conditions else None
            decision = policy_set.decide(alice, action, resource, ctx)
            expected = {"allow": "allowed", "explicit deny": "explicitDeny"}.get(
                name, "implicitDeny"
            )
            assert decision.reason == expected and not decision.errors, (name, decision)
            calls[f"{label} ({count} stmts) {name}"] = (
                lambda ps=policy_set, a=action, r=resource, c=ctx: ps.decide(alice, a, r, c)
            )
    action, resource = REQUESTS["allow"]
    policies = list(_policy_set(True).policies)
    calls["pdp.evaluate(list) conditions allow"] = lambda: pdp.evaluate(
        policies, alice, action=action, resource=resource, context=CONTEXT
    )
    figures = measure(calls, runs)
    floor = figures["bare regex scan, 30 statements"][0]
    print(
        f"pdp engine benchmark: {runs} timed decisions per row, interleaved; Python "
        f"{sys.version.split()[0]}"
    )
    print(f"{'scenario':38} {'median us':>10} {'p99 us':>9} {'x bare scan':>12}")
    for name, (median, p99) in figures.items():
        print(f"{name:38} {median:10.2f} {p99:9.2f} {median / floor:12.2f}")


if __name__ == "__main__":
    main()
