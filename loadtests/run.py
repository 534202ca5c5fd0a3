"""`make loadtest`: pdp on a generated store, locust headless against HTTP and then gRPC twice
(steady, then with the store republished and reloaded several times during the run: the two p99s
are compared), reports under loadtests/results/.

    python loadtests/run.py [--users 50] [--seconds 30] [--processes 1]
    python loadtests/run.py --http HOST:PORT --grpc HOST:PORT   # a pdp running elsewhere
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from generate_store import generate, publish  # noqa: E402

from tests.integration.servers import free_port  # noqa: E402

RESULTS = HERE / "results"


def start_pdp(
    store: Path, token: str, workers: int
) -> tuple[subprocess.Popen[bytes], str, str, str]:
    http, grpc_port, admin = (f"127.0.0.1:{free_port()}" for _ in range(3))
    env = {
        **os.environ,
        "PDP_STORE": str(store),
        "PDP_HTTP": http,
        "PDP_GRPC": grpc_port,
        "PDP_ADMIN": admin,
        "PDP_WORKERS": str(workers),
        "PDP_ADMIN_TOKEN": token,
    }
    with (RESULTS / "pdp.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pdp.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://{http}/readyz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"pdp did not start; see {RESULTS / 'pdp.log'}")
        time.sleep(0.2)
    time.sleep(1)  # let every worker finish loading
    return process, http, grpc_port, admin


def reload_admin(admin: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://{admin}/admin/reload",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def run_locust(
    name: str, user_class: str, host: str, args: argparse.Namespace
) -> dict[str, object]:
    prefix = RESULTS / name
    versions = RESULTS / f"{name}-versions"
    for old in glob.glob(f"{versions}.*"):
        os.unlink(old)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        user_class,
        "--host",
        host,
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.users),
        "-t",
        f"{args.seconds}s",
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    if args.processes > 1:
        command += ["--processes", str(args.processes)]
    env = {
        **os.environ,
        "PDP_LOADTEST_VERSIONS": str(versions),
        "PDP_LOADTEST_USERS": str(args.store_users),
    }
    with (RESULTS / f"{name}.log").open("wb") as log:
        subprocess.run(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=args.seconds + 120,
        )
    seen: Counter[str] = Counter()
    for path in glob.glob(f"{versions}.*"):
        seen.update(json.loads(Path(path).read_text()))
        os.unlink(path)
    with open(f"{prefix}_stats.csv") as handle:
        rows = list(csv.DictReader(handle))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return {"name": name, "rows": rows, "total": total, "versions": dict(seen)}


def describe(result: dict[str, object]) -> list[str]:
    lines = []
    for row in result["rows"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {result['name']} | {row['Name']} | {row['Request Count']} | "
            f"{row['Failure Count']} | {float(row['Requests/s']):.0f} | {row['50%']} | "
            f"{row['95%']} | {row['99%']} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50, help="locust users per run")
    parser.add_argument("--seconds", type=int, default=30, help="duration of each run")
    parser.add_argument("--processes", type=int, default=1, help="locust worker processes")
    parser.add_argument("--workers", type=int, default=2, help="pdp worker processes")
    parser.add_argument("--store-users", type=int, default=5000)
    parser.add_argument("--reloads", type=int, default=5, help="reloads during the gRPC run")
    parser.add_argument("--http", help="HOST:PORT of a running pdp's HTTP sidecar")
    parser.add_argument("--grpc", help="HOST:PORT of a running pdp's gRPC")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    process = None
    token = secrets.token_hex(16)
    store = HERE / ".data" / "store"
    if args.http and args.grpc:
        http, grpc_addr, admin = args.http, args.grpc, None
    else:
        generate(store, args.store_users, max(1, args.store_users // 25), 300)
        process, http, grpc_addr, admin = start_pdp(store, token, args.workers)
    results = []
    reloads: list[dict[str, object]] = []
    try:
        results.append(run_locust("http", "SidecarUser", f"http://{http}", args))
        # The same gRPC run twice, without and then with reloads: their p99s side by side say
        # what reloading costs the requests that are served meanwhile.
        results.append(run_locust("grpc-steady", "GrpcAuthorizerUser", grpc_addr, args))

        def republish() -> None:
            for n in range(args.reloads):
                time.sleep(args.seconds * 0.6 / args.reloads)  # all within the run
                publish(store, f"{n + 2:04d}")
                reloads.append(reload_admin(admin, token))  # type: ignore[arg-type]

        flipper = threading.Thread(target=republish) if admin else None
        if flipper:
            flipper.start()
        results.append(run_locust("grpc", "GrpcAuthorizerUser", grpc_addr, args))
        if flipper:
            flipper.join()
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
            shutil.rmtree(HERE / ".data", ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python loadtests/run.py", *sys.argv[1:]])
    report = [
        f"# pdp load test, {stamp}",
        "",
        f"`{command}`: {args.users} locust users ({args.processes} locust process(es)) for "
        f"{args.seconds} s per transport against pdp with {args.workers} workers, on a store of "
        f"{args.store_users} users; response times in ms.",
        "",
        "| run | request | count | failures | req/s | p50 | p95 | p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        report += describe(result)
    steady, reloading = (float(r["total"]["99%"]) for r in results[1:3])  # type: ignore[index]
    report += [
        "",
        f"gRPC p99 with {len(reloads)} reloads: {reloading:.0f} ms, without: {steady:.0f} ms"
        f" ({reloading / max(steady, 1):.2f}x; target <= 2x)",
        f"Reloads during the gRPC run: {len(reloads)}: "
        + ", ".join(f"{r['previous']} -> {r['version']}" for r in reloads),
        f"Versions seen in gRPC answers: {results[-1]['versions']}",
        f"Versions seen in HTTP answers: {results[0]['versions']}",
    ]
    text = "\n".join(report) + "\n"
    (RESULTS / "summary.md").write_text(text)
    print(text)
    print(f"reports: {RESULTS}/http.html, {RESULTS}/grpc.html and the *_stats.csv files")


if __name__ == "__main__":
    main()
