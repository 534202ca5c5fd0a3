"""Generate a realistic store for load tests: thousands of users in groups, hundreds of
policies with conditions. Deterministic (seeded), so runs are comparable.

    python loadtests/generate_store.py DIR [--users 5000 --groups 200 --policies 300]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

ACCOUNT = "123456789012"
SERVICES = ["s3", "ec2", "dynamodb", "sqs", "sns", "lambda", "logs", "kms", "orders", "billing"]
TEAMS = ["blue", "green", "red", "gold"]


def policy(i: int) -> dict[str, object]:
    svc = SERVICES[i % len(SERVICES)]
    statements: list[dict[str, object]] = [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": [f"{svc}:Get*", f"{svc}:List*", f"{svc}:Describe*"],
            "Resource": f"arn:aws:{svc}:*:{ACCOUNT}:project-{i % 50}/*",
        },
        {
            "Sid": "TeamWrite",
            "Effect": "Allow",
            "Action": [f"{svc}:Put*", f"{svc}:Update*"],
            "Resource": f"arn:aws:{svc}:*:{ACCOUNT}:project-{i % 50}/*",
            "Condition": {
                "StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"},
                "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
            },
        },
        {
            "Sid": "DeleteWithMfa",
            "Effect": "Deny",
            "Action": f"{svc}:Delete*",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    ]
    if i % 7 == 0:
        statements.append(
            {
                "Sid": "BusinessHours",
                "Effect": "Deny",
                "Action": f"{svc}:*",
                "Resource": "*",
                "Condition": {"NumericGreaterThan": {"app:RiskScore": "80"}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def generate(root: Path, users: int, groups: int, policies: int, version: str = "0001") -> Path:
    rng = random.Random(11)
    target = root / "versions" / version
    shutil.rmtree(root, ignore_errors=True)
    for folder in ("policies", "groups", "users", "tests"):
        (target / folder).mkdir(parents=True)
    (target / "account.json").write_text(json.dumps({"account_id": ACCOUNT}))
    for i in range(policies):
        (target / "policies" / f"P{i:04d}.json").write_text(json.dumps(policy(i)))
    for g in range(groups):
        attached = sorted({f"P{rng.randrange(policies):04d}" for _ in range(3)})
        (target / "groups" / f"G{g:03d}.json").write_text(json.dumps({"policies": attached}))
    for u in range(users):
        member = sorted({f"G{rng.randrange(groups):03d}" for _ in range(1 + u % 4)})
        doc = {"groups": member, "tags": {"team": TEAMS[u % len(TEAMS)]}}
        (target / "users" / f"user{u:05d}.json").write_text(json.dumps(doc))
    (target / "tests" / "smoke.json").write_text(
        json.dumps(
            [
                {
                    "principal": "user00000",
                    "action": "iam:DeleteAccount",
                    "resource": "*",
                    "expect": "Deny",
                }
            ]
        )
    )
    (root / "current").symlink_to(f"versions/{version}")
    return root


def publish(root: Path, version: str) -> None:
    """Copy the current version under a new name, change one policy, and swap `current`."""
    current = (root / "current").resolve()
    target = root / "versions" / version
    shutil.copytree(current, target)
    extra = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": f"Marker{version}", "Effect": "Deny", "Action": "marker:Never", "Resource": "*"}
        ],
    }
    (target / "policies" / "P0000.json").write_text(json.dumps(extra))
    link = root / "current.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(f"versions/{version}")
    link.replace(root / "current")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--policies", type=int, default=300)
    args = parser.parse_args()
    generate(args.dir, args.users, args.groups, args.policies)
    print(f"{args.dir}: {args.users} users, {args.groups} groups, {args.policies} policies")
