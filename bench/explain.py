"""Explain figures: what an explained decision costs beside a plain one, on the example stores
and on a generated policy set with many statements of one service.

    python bench/explain.py [--rounds 5 --n 2000]

For each request: the median µs of Snapshot.decide (cache_size=0, so every call decides) and of
Snapshot.explain (decide, then the separate explanation), and the explanation's JSON size.
The decide column is also the check that explain costs unexplained decisions nothing: it is the
same call the server makes without "explain". Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pdp
from pdp.store.activation import load_store

ROOT = Path(__file__).resolve().parents[1]


def _median_us(call: Callable[[], object], n: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            call()
        samples.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(samples)


def _many_statements(root: Path, count: int) -> Path:
    """A one-user store whose policies hold `count` s3 statements, each with a condition."""
    version = root / "versions" / "0001"
    (version / "users").mkdir(parents=True)
    (version / "policies").mkdir()
    (version / "account.json").write_text(json.dumps({"account_id": "123456789012"}))
    statements = [
        {
            "Sid": f"S{i}",
            "Effect": "Allow",
            "Action": f"s3:Get{i % 7}*" if i % 2 else "s3:GetObject",
            "Resource": f"arn:aws:s3:::bucket-{i}/*" if i % 3 else "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": f"team-{i}"}},
        }
        for i in range(count)
    ]
    names = []
    for start in range(0, count, 25):  # IAM's 6,144 characters a managed policy
        names.append(f"Many{start}")
        policy = {"Version": "2012-10-17", "Statement": statements[start : start + 25]}
        (version / "policies" / f"{names[-1]}.json").write_text(json.dumps(policy))
    (version / "users" / "u.json").write_text(
        json.dumps({"policies": names, "tags": {"team": "blue"}})
    )
    (root / "current").symlink_to("versions/0001")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pdp-bench-explain-"))
    try:
        many = _many_statements(tmp / "many", 150)
        cases = [
            (
                "examples/store, ec2 (4 statements)",
                load_store(str(ROOT / "examples" / "store"), cache_size=0),
                pdp.Request(
                    "bob", "ec2:StartInstances", "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
                    {"aws:SourceIp": "203.0.113.9", "aws:ResourceTag/team": "red"},
                ),
            ),
            (
                "examples/organization, role session (chain)",
                load_store(str(ROOT / "examples" / "organization"), cache_size=0),
                pdp.Request(
                    "arn:aws:sts::222222222222:assumed-role/Deploy/build", "ec2:RunInstances",
                    "arn:aws:ec2:us-east-1:222222222222:instance/i-1",
                    {"aws:RequestedRegion": "us-east-1"}, principal_type="role_session",
                ),
            ),
            (
                "150 s3 statements with conditions",
                load_store(str(many), cache_size=0),
                pdp.Request("u", "s3:GetObject", "arn:aws:s3:::bucket-1/k"),
            ),
        ]  # fmt: skip
        print(f"{'request':<46} {'decide µs':>10} {'explain µs':>11} {'JSON bytes':>11}")
        for name, snapshot, request in cases:
            decide = _median_us(lambda: snapshot.decide(request), args.n, args.rounds)  # noqa: B023
            explain_n = max(1, args.n // 10)
            explain = _median_us(lambda: snapshot.explain(request), explain_n, args.rounds)  # noqa: B023
            size = len(json.dumps(snapshot.explain(request)[1].to_dict()))
            print(f"{name:<46} {decide:>10.1f} {explain:>11.1f} {size:>11}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
