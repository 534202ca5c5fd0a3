"""AWS managed policy figures: loading a store whose aws-managed/ folder holds 1,500 documents of
AWS's sizes, and the parse + validate + compile time of one document.

    python bench/managed_load.py [--documents 1500] [--users 2000] [--runs 5]

AWS's catalogue (about 1,600 managed policies, 2026) has a median document of ~0.7 KB: ~40%
under 0.5 KB, ~58% from 0.5 to 10 KB, ~2% from 10 to 30 KB and under 1% above (ReadOnlyAccess
~90 KB). The generated documents follow that, with a heavier tail (5% of 10-30 KB, 2% of
30-70 KB), built from the actions, Sids and shapes of pdp's built-ins (AWS's own documents) under
varied names and paths (`/`, `/service-role/`, `/job-function/`), in the `aws iam
get-policy-version` shape. Users attach them, so the index resolves them too. The store is made
in a temporary directory and removed. The issue's target: under 1 ms to parse a typical (0.5-10
KB) document. Figures are medians; the machine is shared, compare ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pdp
from pdp.store import builtin_managed
from pdp.store.aws_managed import managed_arn, parse_managed

ACCOUNT = "123456789012"
PATHS = ("/", "/", "/", "/service-role/", "/job-function/", "/aws-service-role/")


def action_pool() -> list[str]:
    """Every action (or pattern) the built-ins name: AWS's own vocabulary."""
    out: set[str] = set()
    for managed in builtin_managed().values():
        for statement in managed.policy.document["Statement"]:
            listed = statement.get("Action") or statement.get("NotAction") or []
            out.update([listed] if isinstance(listed, str) else listed)
    return sorted(a for a in out if a != "*")


def target_size(rng: random.Random) -> int:
    draw = rng.random()
    if draw < 0.35:
        return rng.randint(150, 500)
    if draw < 0.93:
        return int(500 * 20 ** rng.random())  # log-uniform, 0.5 to 10 KB
    if draw < 0.98:
        return rng.randint(10_000, 30_000)
    return rng.randint(30_000, 70_000)


def document(rng: random.Random, pool: list[str], size: int) -> dict[str, Any]:
    statements: list[dict[str, Any]] = []
    length = 40
    while length < size:
        count = max(1, min(400, (size - length) // 40))
        actions = sorted(rng.sample(pool, min(count, len(pool))))
        statement: dict[str, Any] = {
            "Sid": f"Statement{len(statements)}",
            "Effect": "Allow",
            "Action": actions,
            "Resource": "*",
        }
        kind = rng.random()
        if kind < 0.2:
            statement["Resource"] = [f"arn:aws:s3:::bucket-{rng.randint(0, 99)}/*", "*"]
        elif kind < 0.35:
            statement["Condition"] = {
                "StringEquals": {"aws:ResourceTag/team": ["blue", "green"]},
                "Bool": {"aws:SecureTransport": "true"},
            }
        elif kind < 0.4:
            statement["Effect"] = "Deny"
        statements.append(statement)
        length += len(json.dumps(statement))
    return {"Version": "2012-10-17", "Statement": statements}


def make_store(root: Path, documents: int, users: int, rng: random.Random) -> list[str]:
    """A store whose version 0001 holds `documents` AWS managed files; returns their ARNs."""
    version = root / "versions" / "0001"
    (version / "users").mkdir(parents=True)
    (version / "account.json").write_text(json.dumps({"account_id": ACCOUNT}))
    pool = action_pool()
    arns = []
    for i in range(documents):
        path, name = rng.choice(PATHS), f"AWSBench{i:04d}Access"
        body = {
            "PolicyVersion": {
                "Document": document(rng, pool, target_size(rng)),
                "VersionId": f"v{rng.randint(1, 40)}",
                "IsDefaultVersion": True,
                "CreateDate": "2026-01-15T10:00:00+00:00",
            }
        }
        folder = version / "aws-managed" / path.strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(body))
        arns.append(managed_arn(path, name))
    for i in range(users):
        attached = rng.sample(arns, 3)
        (version / "users" / f"user{i}.json").write_text(json.dumps({"policies": attached}))
    return arns


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1500)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(12)
    with tempfile.TemporaryDirectory(prefix="pdp-managed-bench-") as tmp:
        root = Path(tmp)
        make_store(root, args.documents, args.users, rng)
        version = root / "versions" / "0001"
        files = sorted((version / "aws-managed").rglob("*.json"))
        sizes = [f.stat().st_size for f in files]
        print(
            f"store: {len(files)} AWS managed documents, {sum(sizes) / 1e6:.1f} MB"
            f" (median {statistics.median(sizes) / 1000:.1f} KB, largest"
            f" {max(sizes) / 1000:.0f} KB), {args.users} users attaching 3 each"
        )
        loads = []
        for _ in range(args.runs):
            started = time.perf_counter()
            authz = pdp.Authorizer.from_directory(version)
            loads.append(time.perf_counter() - started)
        print(f"full load (read + validate + compile + index + tests): {median_ms(loads):.0f} ms")
        changed = files[len(files) // 2]
        changed.write_text(changed.read_text().replace('"v', '"v1', 1))
        with pdp.Authorizer.from_store(root, watch=False) as served:
            started = time.perf_counter()
            served.reload()
            print(f"reload after one file changed: {(time.perf_counter() - started) * 1000:.0f} ms")
        decision = authz.is_authorized("user0", "ec2:DescribeInstances", "*")
        assert decision.reason in ("allowed", "implicitDeny", "explicitDeny")
        per_doc: dict[str, list[float]] = {"typical": [], "small": [], "large": []}
        for file, size in zip(files, sizes, strict=True):
            raw = file.read_bytes()
            rel = file.relative_to(version).as_posix()
            best = float("inf")
            for _ in range(args.runs):
                started = time.perf_counter()
                managed, problems = parse_managed(
                    raw, file=rel, arn="arn:aws:iam::aws:policy/X", source="store"
                )
                best = min(best, time.perf_counter() - started)
                assert managed is not None, problems
            kind = "small" if size < 500 else "typical" if size <= 10_000 else "large"
            per_doc[kind].append(best)
        for kind, label in (
            ("small", "under 0.5 KB"),
            ("typical", "0.5-10 KB, typical"),
            ("large", "over 10 KB"),
        ):
            times = per_doc[kind]
            if times:
                print(
                    f"parse + validate + compile, {label} ({len(times)} documents):"
                    f" median {median_ms(times):.3f} ms, p90"
                    f" {sorted(times)[len(times) * 9 // 10] * 1000:.3f} ms,"
                    f" max {max(times) * 1000:.2f} ms"
                )
        typical = median_ms(per_doc["typical"])
        verdict = "under" if typical < 1 else "OVER"
        print(f"target: a typical document parses in under 1 ms: {verdict} ({typical:.3f} ms)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
