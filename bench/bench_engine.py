"""Decision latency of the in-process engine: `make bench` prints the figures, asserts nothing.

A principal with 30 statements over 10 policies (the shape the engine issue names), decided for
an Allow, an explicit Deny and an implicit Deny, first with plain statements and then with a
condition-heavy set. Each decision is timed on its own (perf_counter_ns); the figures are the
median and p99 in microseconds.

The floor is a bare scan of the plain set's own 30 statements as pre-compiled regexes (Allow and
Deny, NotAction as a negated match, variables substituted for the benchmark's principal, the
one condition of the plain set a dict lookup), visited in document order and stopping at the
first Deny that applies: no index, no reasons, no request checks. It is timed for each of the
three requests, and each pdp row is divided by the bare scan of the *same* request. The target
(every plain row at most 1.5x its bare scan) is about the plain set; the conditions set is shown
for scale, divided by the same floors. An empty function call shows the timer's floor, and a
PolicySet with no statements what pdp spends on a request before any statement (checks, context,
decision). `is_known_action` is what the server adds per request since the service authorization
reference (an LRU lookup after deciding, for the unknown-action metric and log field).
"""

from __future__ import annotations

import gc
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import pdp
from pdp.reference import is_known_action

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


def _regex(patterns: str | list[str]) -> str:
    """One alternation for a list of IAM globs, with the benchmark principal's variables in."""
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for pattern in patterns:
        for variable, value in VARIABLES.items():
            pattern = pattern.replace(variable, value)
        out.append(
            "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        )
    return "(?:" + "|".join(out) + ")"


VARIABLES = {"${aws:username}": "alice", "${aws:PrincipalTag/team}": "blue"}
BareStatement = tuple[
    Callable[[str], object], bool, Callable[[str], object], bool, tuple[str, bool] | None
]


def bare_scan() -> Callable[[str, str, Mapping[str, object]], str]:
    """The floor: the plain set's statements as (action regex, NotAction?, resource regex,
    Deny?, condition) in document order; the scan stops at the first Deny that applies.

    The plain set's only condition is a `Bool` on one key: it becomes (key, expected value).
    """
    compiled: list[BareStatement] = []
    for statements in _statements(False):
        for s in statements:
            not_action = "NotAction" in s
            action = re.compile(_regex(s["NotAction" if not_action else "Action"]), re.I)
            resource = re.compile(_regex(s["Resource"]), re.S)
            condition = None
            for operator, entries in s.get("Condition", {}).items():
                assert operator == "Bool" and len(entries) == 1, "the bare scan knows only Bool"
                ((key, value),) = entries.items()
                condition = (key.lower(), value == "true")
            deny = s["Effect"] == "Deny"
            compiled.append((action.fullmatch, not_action, resource.fullmatch, deny, condition))

    def decide(action: str, resource: str, context: Mapping[str, object]) -> str:
        allowed = False
        for match_action, not_action, match_resource, deny, condition in compiled:
            if (match_action(action) is None) is not not_action:
                continue
            if match_resource(resource) is None:
                continue
            if condition is not None and context.get(condition[0]) is not condition[1]:
                continue
            if deny:
                return "Deny"
            allowed = True
        return "Allow" if allowed else "Deny"

    return decide


EXPECTED = {"allow": "allowed", "explicit deny": "explicitDeny", "implicit deny": "implicitDeny"}
FLOOR = "bare scan, 30 statements"
NO_CONTEXT: Mapping[str, object] = {}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    alice = pdp.Principal.user("alice", account=ACCOUNT, tags={"team": "blue"})
    calls: dict[str, Callable[[], object]] = {"empty call (timer floor)": lambda: None}
    floors: dict[str, str] = {}  # row -> the bare-scan row of the same request
    scan = bare_scan()
    for name, (action, resource) in REQUESTS.items():
        verdict = "Allow" if EXPECTED[name] == "allowed" else "Deny"
        assert scan(action, resource, NO_CONTEXT) == verdict, (name, "bare scan")
        row = f"{FLOOR} {name}"
        calls[row] = lambda a=action, r=resource: scan(a, r, NO_CONTEXT)
        floors[row] = row
    empty = pdp.PolicySet([])
    action, resource = REQUESTS["explicit deny"]
    calls["pdp, no statements (request overhead)"] = lambda: empty.decide(
        alice, action, resource, None
    )
    for conditions in (False, True):
        policy_set = _policy_set(conditions)
        label = "conditions" if conditions else "plain"
        count = sum(len(p.statements) for p in policy_set.policies)
        for name, (action, resource) in REQUESTS.items():
            ctx = CONTEXT if conditions else None
            decision = policy_set.decide(alice, action, resource, ctx)
            assert decision.reason == EXPECTED[name] and not decision.errors, (name, decision)
            row = f"{label} ({count} stmts) {name}"
            calls[row] = lambda ps=policy_set, a=action, r=resource, c=ctx: ps.decide(
                alice, a, r, c
            )
            floors[row] = f"{FLOOR} {name}"
    action, resource = REQUESTS["allow"]
    policies = list(_policy_set(True).policies)
    row = "pdp.evaluate(list) conditions allow"
    calls[row] = lambda: pdp.evaluate(
        policies, alice, action=action, resource=resource, context=CONTEXT
    )
    floors[row] = f"{FLOOR} allow"
    for name in ("s3:GetObject", "s3:GetObjct"):
        is_known_action(name)  # the first call reads s3's files; the rows time the cached lookup
        calls[f"is_known_action {name} (cached)"] = lambda n=name: is_known_action(n)
    figures = measure(calls, runs)
    print(
        f"pdp engine benchmark: {runs} timed decisions per row, interleaved; Python "
        f"{sys.version.split()[0]}"
    )
    print(
        "x bare scan = median / median of the bare scan of the same request; target <= 1.5x"
        " for the plain rows (conditions rows shown for scale)"
    )
    print(f"{'scenario':40} {'median us':>10} {'p99 us':>9} {'x bare scan':>12}")
    for name, (median, p99) in figures.items():
        ratio = f"{median / figures[floors[name]][0]:12.2f}" if name in floors else f"{'':12}"
        print(f"{name:40} {median:10.2f} {p99:9.2f} {ratio}")


if __name__ == "__main__":
    main()
