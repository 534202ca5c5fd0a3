"""The `pdp` command line.

pdp validate PATH...     policy files, version directories or stores: every problem, exit 1
pdp test STORE|DIR       run a version's tests/*.json, like `opa test`
pdp check --store STORE --principal P --action A --resource R [--context k=v ...] [--json]
pdp check --store STORE --requests FILE.jsonl      one JSON decision per request line
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pdp.errors import PolicyLoadError, PolicyValidationError
from pdp.loader import build_snapshot, load_directory, load_store, run_policy_tests
from pdp.model import Decision
from pdp.policy import parse_policy
from pdp.snapshot import Snapshot
from pdp.store import StoreError, resolve_version

__all__ = ["main"]

EXIT_ALLOW, EXIT_ERROR, EXIT_DENY = 0, 1, 2


def _is_store(path: Path) -> bool:
    return (path / "versions").is_dir()


def _load(path: str, *, cache_size: int = 0) -> Snapshot:
    target = Path(path)
    if _is_store(target):
        return load_store(target, cache_size=cache_size)
    return load_directory(target, cache_size=cache_size)


def _print_problems(exc: PolicyLoadError | PolicyValidationError) -> None:
    for diagnostic in exc.diagnostics:
        print(diagnostic, file=sys.stderr)


def _validate(paths: Sequence[str]) -> int:
    failed = 0
    for name in paths:
        path = Path(name)
        try:
            if path.is_dir():
                snapshot = _load(name)
                counts = snapshot.index.counts
                print(
                    f"{name}: ok (version {snapshot.version}: {counts.users} users, "
                    f"{counts.groups} groups, {counts.policies} policies)"
                )
            else:
                policy = parse_policy(path.read_bytes(), source=name)
                print(f"{name}: ok ({len(policy.statements)} statements)")
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror}", file=sys.stderr)
            failed += 1
        except (PolicyLoadError, PolicyValidationError) as exc:
            _print_problems(exc)
            failed += 1
    return EXIT_ERROR if failed else 0


def _test(path: str, verbose: bool) -> int:
    target = Path(path)
    try:
        name, root = resolve_version(target) if _is_store(target) else (target.name, target)
        version, snapshot = build_snapshot(Path(os.path.realpath(root)), name, 0)
    except (StoreError, OSError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except PolicyLoadError as exc:
        _print_problems(exc)
        return EXIT_ERROR
    results = run_policy_tests(version, snapshot)
    failed = 0
    for case, failure in results:
        label = f"{case.file}[{case.index}]" + (f" {case.name}" if case.name else "")
        if failure is not None:
            failed += 1
            print(f"FAIL: {label}: {failure.message}")
        elif verbose:
            print(f"PASS: {label}")
    passed = len(results) - failed
    print(f"{'FAIL' if failed else 'PASS'}: {passed}/{len(results)} (version {name})")
    return EXIT_ERROR if failed else 0


def _context_value(text: str) -> Any:
    """`k=v` values: JSON where it parses (true, 3600, ["a","b"]), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _show(decision: Decision, as_json: bool) -> None:
    if as_json:
        print(json.dumps(decision.to_dict()))
        return
    print(f"{decision.decision} ({decision.reason})  version {decision.policy_version}")
    if decision.root:
        print("  root: the account root made this request")
    for m in decision.matched:
        sid = f" Sid {m.sid}" if m.sid else ""
        print(f"  matched: {m.policy} Statement[{m.statement}]{sid} ({m.effect})")
    for error in decision.errors:
        print(f"  error: {error}")


def _check(args: argparse.Namespace) -> int:
    try:
        snapshot = _load(args.store)
    except PolicyLoadError as exc:
        _print_problems(exc)
        return EXIT_ERROR
    if args.requests:
        with open(args.requests, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    print(f"{args.requests}:{number}: invalid request: {exc}", file=sys.stderr)
                    return EXIT_ERROR
                decision = snapshot.is_authorized(
                    request.get("principal"),  # type: ignore[arg-type]
                    request.get("action"),  # type: ignore[arg-type]
                    request.get("resource"),  # type: ignore[arg-type]
                    request.get("context"),
                )
                print(json.dumps(decision.to_dict()))
        return 0
    missing = [f"--{k}" for k in ("principal", "action", "resource") if not getattr(args, k)]
    if missing:
        print(f"pdp check: missing {', '.join(missing)} (or give --requests)", file=sys.stderr)
        return EXIT_ERROR
    context = {}
    for item in args.context:
        key, eq, value = item.partition("=")
        if not eq or not key:
            print(f"pdp check: --context takes key=value, got {item!r}", file=sys.stderr)
            return EXIT_ERROR
        context[key] = _context_value(value)
    decision = snapshot.is_authorized(args.principal, args.action, args.resource, context)
    _show(decision, args.json)
    return EXIT_ALLOW if decision.decision == "Allow" else EXIT_DENY


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pdp", description="IAM-semantics policy decision point")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser(
        "validate", help="validate policy files, version directories or stores"
    )
    validate.add_argument("paths", nargs="+", metavar="PATH")
    test = commands.add_parser("test", help="run the policy tests of a store's version")
    test.add_argument("path", metavar="STORE|VERSION_DIR")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    check = commands.add_parser("check", help="decide a request, like the IAM policy simulator")
    check.add_argument("--store", default=os.environ.get("PDP_STORE", "examples/store"))
    check.add_argument("--principal", help="user name, user ARN or root ARN")
    check.add_argument("--action")
    check.add_argument("--resource")
    check.add_argument("--context", action="append", default=[], metavar="KEY=VALUE")
    check.add_argument("--json", action="store_true", help="print the decision as JSON")
    check.add_argument("--requests", metavar="FILE.jsonl", help="decide one request per line")
    serve = commands.add_parser("serve", help="serve decisions over gRPC and HTTP, plus admin")
    serve.add_argument("--store", help="store directory (PDP_STORE; default examples/store)")
    serve.add_argument("--grpc", help="gRPC address (PDP_GRPC; default 127.0.0.1:50051)")
    serve.add_argument("--http", help="HTTP sidecar address (PDP_HTTP; default 127.0.0.1:8180)")
    serve.add_argument("--admin", help="admin address (PDP_ADMIN; default 127.0.0.1:8182)")
    serve.add_argument("--workers", type=int, help="worker processes (PDP_WORKERS; default 1)")
    serve.add_argument("--cache-size", type=int, help="decisions cached per worker (100000)")
    serve.add_argument("--admin-token-file", help="file holding the admin bearer token")
    reload = commands.add_parser("reload", help="ask a running pdp to reload its store")
    reload.add_argument("--version", help="pin this version (rollback); default: follow current")
    reload.add_argument("--admin", default=os.environ.get("PDP_ADMIN", "127.0.0.1:8182"))
    reload.add_argument("--admin-token-file", help="file holding the admin bearer token")
    args = parser.parse_args(argv)
    if args.command == "validate":
        return _validate(args.paths)
    if args.command == "test":
        return _test(args.path, args.verbose)
    if args.command == "check":
        return _check(args)
    if args.command == "reload":
        return _reload(args)
    return _serve(args)


def _token(token_file: str | None) -> str | None:
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            return handle.read().strip() or None
    return os.environ.get("PDP_ADMIN_TOKEN") or None


def _serve(args: argparse.Namespace) -> int:
    from server.main import serve
    from server.service import Config

    config = Config.from_env()
    for name in ("store", "grpc", "http", "admin", "workers", "cache_size"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if args.admin_token_file:
        config.admin_token = _token(args.admin_token_file)
    if config.workers < 1:
        print("pdp serve: --workers must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    return serve(config)


def _reload(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    body = json.dumps({"version": args.version} if args.version else {}).encode()
    request = urllib.request.Request(
        f"http://{args.admin}/admin/reload",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    token = _token(args.admin_token_file)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}")
        print(f"pdp reload: {exc.code}: {detail.get('error')}", file=sys.stderr)
        for problem in detail.get("problems", []):
            print(f"  {problem}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"pdp reload: cannot reach {args.admin}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"reloaded: version {answer['version']} (was {answer['previous']}),"
        f" loaded in {answer['load_seconds']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
