"""Full-chain figures: what the organization, boundary, session and resource-policy layers cost a
decision over an identity-only store, and the load time and memory of a large multi-account store.

    python bench/chain.py [--accounts 100 --users 1000 --roles 10 --rounds 5 --n 20000]

(a) the same request through Snapshot.decide / is_authorized (cache_size=0) against an
identity-only single-account store and against a multi-account store: member account three OUs
deep with an SCP Deny-with-condition next to FullAWSAccess, a role with a permissions boundary, a
session policy in the request and a bucket policy naming the role. Median µs over rounds.
(b) a generated store of accounts × users (+ roles, groups, policies, an organization) written
once to a temp dir, then pdp.store.activation.load_store timed; peak RSS from getrusage.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pdp
from pdp.store.activation import load_store

MGMT, MEMBER = "111111111111", "222222222222"
ORG = "o-a1b2c3d4e5"
S3_RW = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"}],
}
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
REGION_DENY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Action": "ec2:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
        }
    ],
}


def write_version(root: Path, files: dict[str, Any]) -> None:
    version = root / "versions" / "1"
    for rel, content in files.items():
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    os.symlink("versions/1", root / "current")


def trust(account: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": account}, "Action": "sts:AssumeRole"}
        ],
    }


IDENTITY_FILES: dict[str, Any] = {
    "account.json": {"account_id": MEMBER},
    "users/alice.json": {"policies": ["All"]},
    "policies/All.json": S3_RW,
}

CHAIN_FILES: dict[str, Any] = {
    f"accounts/{MGMT}/account.json": {"account_id": MGMT},
    f"accounts/{MEMBER}/account.json": {"account_id": MEMBER},
    f"accounts/{MEMBER}/users/alice.json": {"policies": ["All"]},
    f"accounts/{MEMBER}/policies/All.json": S3_RW,
    f"accounts/{MEMBER}/policies/Bound.json": ALLOW_ALL,
    f"accounts/{MEMBER}/roles/App.json": {
        "trust_policy": trust(MEMBER),
        "policies": ["All"],
        "permissions_boundary": "Bound",
    },
    f"accounts/{MEMBER}/resources/b.json": {
        "arn": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
        "policy": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:role/App"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*",
                }
            ],
        },
    },
    "organization/organization.json": {
        "id": ORG,
        "management_account": MGMT,
        "root": {
            "id": "r-a1b2",
            "accounts": [MGMT],
            "units": [
                {
                    "id": "ou-a1b2-11111111",
                    "scps": ["FullAWSAccess", "RegionDeny"],
                    "units": [
                        {
                            "id": "ou-a1b2-22222222",
                            "units": [{"id": "ou-a1b2-33333333", "accounts": [MEMBER]}],
                        }
                    ],
                }
            ],
        },
    },
    "organization/scps/RegionDeny.json": REGION_DENY,
}


def median_us(call: Callable[[], object], n: int, rounds: int) -> float:
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            call()
        per_round.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(per_round)


def bench_decisions(n: int, rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pdp-chain-"))
    try:
        write_version(tmp / "ident", IDENTITY_FILES)
        write_version(tmp / "chain", CHAIN_FILES)
        ident = load_store(tmp / "ident", cache_size=0)
        chain = load_store(tmp / "chain", cache_size=0)
    finally:
        shutil.rmtree(tmp)
    obj = "arn:aws:s3:::b/k"
    user_arn = f"arn:aws:iam::{MEMBER}:user/alice"
    session_req = pdp.Request(
        f"arn:aws:sts::{MEMBER}:assumed-role/App/s1",
        "s3:GetObject",
        obj,
        principal_type="role_session",
        session=pdp.Session.from_dict({"policies": [S3_RW]}),
    )
    print(
        "decisions: identity",
        ident.is_authorized("alice", "s3:GetObject", obj).decision,
        "chain user",
        chain.is_authorized(user_arn, "s3:GetObject", obj).decision,
        "chain session",
        chain.decide(session_req).decision,
    )
    base = median_us(lambda: ident.is_authorized("alice", "s3:GetObject", obj), n, rounds)
    user = median_us(lambda: chain.is_authorized(user_arn, "s3:GetObject", obj), n, rounds)
    # the same door for all three: is_authorized
    sess = median_us(
        lambda: chain.is_authorized(
            session_req.principal,
            "s3:GetObject",
            obj,
            principal_type="role_session",
            session=session_req.session,
        ),
        n,
        rounds,
    )
    print(f"(a) median of {rounds} rounds x {n} calls, cache_size=0")
    print(f"  identity-only user   {base:8.2f} us")
    print(f"  chain user           {user:8.2f} us  {user / base:4.2f}x  (target 2x)")
    print(f"  chain role session   {sess:8.2f} us  {sess / base:4.2f}x  (target 2x)")


def account_id(i: int) -> str:
    return f"{300000000000 + i:012d}"


def generate(root: Path, accounts: int, users: int, roles: int) -> int:
    """Write the large store under root; return the number of files written."""
    version = root / "versions" / "1"
    count = 0

    def put(rel: str, content: Any) -> None:
        nonlocal count
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(json.dumps(content).encode())
        count += 1

    ids = [account_id(i) for i in range(accounts)]
    for a, acct in enumerate(ids):
        base = f"accounts/{acct}"
        put(f"{base}/account.json", {"account_id": acct})
        for p in range(4):
            put(
                f"{base}/policies/P{p}.json",
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", f"s3:List{p}*"],
                            "Resource": f"arn:aws:s3:::bucket-{a}-{p}/*",
                        }
                    ],
                },
            )
        put(f"{base}/policies/Bound.json", ALLOW_ALL)
        for g in range(5):
            put(f"{base}/groups/g{g}.json", {"policies": [f"P{g % 4}"]})
        for u in range(users):
            user: dict[str, Any] = {"groups": [f"g{u % 5}"], "policies": [f"P{u % 4}"]}
            if u % 10 == 0:
                user["permissions_boundary"] = "Bound"
            put(f"{base}/users/u{u}.json", user)
        for r in range(roles):
            role: dict[str, Any] = {"trust_policy": trust(acct), "policies": [f"P{r % 4}"]}
            if r % 2 == 0:
                role["permissions_boundary"] = "Bound"
            put(f"{base}/roles/r{r}.json", role)
    ous = 4
    units = [
        {
            "id": f"ou-a1b2-{o + 1:08d}",
            "scps": ["FullAWSAccess", "RegionDeny"] if o % 2 == 0 else ["FullAWSAccess"],
            "accounts": ids[1 + o :: ous],
        }
        for o in range(ous)
    ]
    put(
        "organization/organization.json",
        {
            "id": ORG,
            "management_account": ids[0],
            "root": {
                "id": "r-a1b2",
                "accounts": [ids[0]],
                "scps": ["FullAWSAccess", "NoLeave"],
                "units": units,
            },
        },
    )
    put("organization/scps/RegionDeny.json", REGION_DENY)
    put(
        "organization/scps/NoLeave.json",
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}
            ],
        },
    )
    os.symlink("versions/1", root / "current")
    return count


def bench_load(accounts: int, users: int, roles: int, profile: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pdp-chain-load-"))
    try:
        start = time.perf_counter()
        files = generate(tmp, accounts, users, roles)
        written = time.perf_counter() - start
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        if profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            snapshot = prof.runcall(load_store, tmp)
        else:
            snapshot = load_store(tmp)
        loaded = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        principals = accounts * (users + roles)
        print(
            f"(b) {accounts} accounts x {users} users + {roles} roles = {principals} principals,"
            f" {files} files"
        )
        print(f"  write           {written:8.2f} s")
        print(f"  load_store      {loaded:8.2f} s  (target < 10 s)")
        print(f"  peak RSS        {rss / 1024:8.1f} MiB  (before load {rss_before / 1024:.1f} MiB)")
        a = min(7, accounts - 1)
        probe = snapshot.is_authorized(
            f"arn:aws:iam::{account_id(a)}:user/u3", "s3:GetObject", f"arn:aws:s3:::bucket-{a}-3/k"
        )
        print(f"  probe decision  {probe.decision} {probe.reason}")
        if profile:
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--roles", type=int, default=10)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the load")
    args = parser.parse_args()
    bench_decisions(args.n, args.rounds)
    bench_load(args.accounts, args.users, args.roles, args.profile)


if __name__ == "__main__":
    main()
