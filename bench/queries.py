"""Who-can and what-can figures on the large generated store of bench_store.py (100,000 users):
the query index's build time and memory, who-can p50/p95 for one page (limit 100) and for the
whole answer (every page), and what-can for one user. Prints figures, never asserts them.

    python bench/queries.py [--users 100000 --groups 2000 --policies 10000]
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import DATA, generate, rss_mb, shape_arguments  # noqa: E402

import pdp  # noqa: E402
from pdp.store import query_index, what_can, who_can  # noqa: E402

ACTION = "s3:GetObject"
ACCOUNT = "123456789012"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main() -> None:
    parser = shape_arguments()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    store = generate(DATA / "big", args.users, args.groups, args.policies)
    authorizer = pdp.Authorizer.from_store(store, watch=False, cache_size=0)
    snapshot = authorizer.snapshot
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    index = query_index(snapshot)
    for service in ("s3", "ec2", "dynamodb"):
        index.candidates(service)
    build = time.perf_counter() - started
    gc.collect()
    print(
        f"who-can index: {index.users} users in {index.distinct_sets} distinct policy sets;"
        f" built in {build:.2f} s (3 services), +{rss_mb() - before:.0f} MB resident"
    )
    page: list[float] = []
    for i in range(args.runs):  # a new resource each time: the candidate scan is never reused
        resource = f"arn:aws:s3:*:{ACCOUNT}:project-{i % 97}/report-{i}.csv"
        started = time.perf_counter()
        answer = who_can(snapshot, ACTION, resource, limit=100)
        page.append(time.perf_counter() - started)
    print(f"who-can {ACTION}, first page (limit 100), cold scan: {percentiles(page)}")
    resource = f"arn:aws:s3:*:{ACCOUNT}:project-3/report.csv"
    whole: list[float] = []
    total = 0
    for _ in range(max(3, args.runs // 10)):
        started = time.perf_counter()
        token, total = None, 0
        while True:
            answer = who_can(snapshot, ACTION, resource, limit=1000, page_token=token,
                             deadline_seconds=60)  # fmt: skip
            total += len(answer.allowed)
            token = answer.next_page_token
            if token is None:
                break
        whole.append(time.perf_counter() - started)
    checked = len(index.candidates("s3"))
    print(
        f"who-can {ACTION}, every page ({total} allowed of {checked} candidates):"
        f" {percentiles(whole)}"
    )
    what: list[float] = []
    for i in range(args.runs):
        started = time.perf_counter()
        what_can(snapshot, f"u{i * 997 % args.users:06d}")
        what.append(time.perf_counter() - started)
    print(f"what-can, one user (all services): {percentiles(what)}")


if __name__ == "__main__":
    main()
