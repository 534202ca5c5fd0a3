"""The `pdp` command line: `pdp validate FILE...`; more commands come with the store and server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pdp.errors import PolicyValidationError
from pdp.policy import parse_policy

__all__ = ["main"]


def _validate(paths: Sequence[str]) -> int:
    failed = 0
    for name in paths:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror}", file=sys.stderr)
            failed += 1
            continue
        try:
            policy = parse_policy(data, source=name)
        except PolicyValidationError as exc:
            for diagnostic in exc.diagnostics:
                print(diagnostic, file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: ok ({len(policy.statements)} statements)")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pdp", description="IAM-semantics policy decision point")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="validate IAM policy documents")
    validate.add_argument("paths", nargs="+", metavar="FILE")
    commands.add_parser("serve", help="run the service (not built yet)")
    args = parser.parse_args(argv)
    if args.command == "validate":
        return _validate(args.paths)
    print("pdp serve: serving is not built yet (see the serving issue)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
