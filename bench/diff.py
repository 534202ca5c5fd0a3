"""`pdp diff` figures on the large store: two versions that differ by one policy and one user.

    python bench/diff.py [--users 100000 --groups 2000 --policies 10000]

Prints the time to load the two versions, then the diff's own time, the principals it decided
again (those holding the changed policy, through their groups, and the changed user) out of all,
and the checks it made. The second version is a copy of the first (hard links, files replaced,
never edited in place) under bench/.data/, as a publisher writes one.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import DATA, generate, shape_arguments  # noqa: E402

from pdp.store import build_snapshot, diff_snapshots  # noqa: E402


def _replace(path: Path, doc: object) -> None:
    """Write `doc` as a new file in place of a hard link (the old version keeps its bytes)."""
    aside = path.with_suffix(".tmp")
    aside.write_bytes(orjson.dumps(doc))
    os.replace(aside, path)


def second_version(store: Path) -> Path:
    old = store / "versions" / "0001"
    new = store / "versions" / "0002-diff"
    shutil.rmtree(new, ignore_errors=True)
    shutil.copytree(old, new, copy_function=os.link)
    policy = new / "policies" / "P00000.json"
    doc = orjson.loads(policy.read_bytes())
    doc["Statement"].append(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:*:bench"}
    )
    _replace(policy, doc)
    user = new / "users" / "u000001.json"
    _replace(user, {**orjson.loads(user.read_bytes()), "groups": ["G0001"]})
    return new


def main() -> None:
    args = shape_arguments().parse_args()
    store = generate(DATA, args.users, args.groups, args.policies)
    new = second_version(store)
    started = time.perf_counter()
    _, before = build_snapshot(store / "versions" / "0001", "0001", 0)
    _, after = build_snapshot(new, new.name, 0)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    result = diff_snapshots(before, after)
    took = time.perf_counter() - started
    print(f"diff: {args.users} users, {args.groups} groups, {args.policies} policies")
    print(f"  load both versions          {loaded:8.2f} s")
    print(f"  diff (statements + perms)   {took:8.2f} s")
    print(f"  statement changes           {len(result.statements):8d}")
    print(
        f"  principals decided again    {result.principals_evaluated:8d}"
        f" of {result.principals_compared}"
    )
    print(f"  checks                      {result.checks:8d}")
    print(f"  permission changes          {len(result.permissions):8d}")
    shutil.rmtree(new, ignore_errors=True)


if __name__ == "__main__":
    main()
