"""Does an Action pattern match every action, or a Resource pattern every resource? Decided exactly.

`pdp audit` judges what a pattern matches, not how it is spelled: `"arn:*:*:*:*:*"` names every
resource as surely as `"*"`, while `"arn:*:*:*:*:*:*"` does not (it misses `arn:aws:s3:::bucket`,
which has five colons, not six). Each question is a language inclusion, "does the pattern match
every string of the grammar?", with the grammars:

- **every action**: `service:name`, both non-empty runs of `[a-z0-9_.-]`, which is what a request
  may name (`pdp.language.evaluate.check_request`), lower-cased as the matcher compares actions.
- **every resource**: every ARN of the partition, `arn:aws:<service>:<region>:<account>:<resource>`,
  with service and resource non-empty, region and account possibly empty (`arn:aws:s3:::b`,
  `arn:aws:iam::123456789012:user/u`), and the resource part holding any characters, colons too
  (`function:f:alias`), though it neither starts nor ends with one (no AWS resource id does).
  The partition is `aws` because pdp names its principals `arn:aws:iam::...`, and IAM grants no
  access across partitions; so `"arn:aws:*"` is every resource, `"arn:aws-cn:*"` none of them.
  The request resource `"*"` (an action that names no resource) is not an ARN and not counted:
  `"arn:*"` does not match it, though `"*"` does.

A pattern is read exactly as `pdp.language.wildcard` matches it: for actions `*` and `?` match any
character; for resources `?` and a `*` inside an ARN segment never match `:`, and a `*` that ends
its segment (followed by `:` or the end) crosses colons.

How (`_missed`, which also returns the shortest string missed, for the tests): the grammar is a
small deterministic automaton and the pattern a nondeterministic one (its
positions; a `*` may also match nothing). Both run together over the reachable pairs (grammar
state, set of live pattern positions). The pattern misses some string exactly when a pair is
reachable in which the grammar accepts and no live position is at the pattern's end, or no
position is live at all (every grammar state here can still reach acceptance). Characters other
than the pattern's literals, the grammar's literals and `:` behave alike in both automata, so one
stands for all of them and the search is finite.

Bound: a pattern like `*a??????????` has exponentially many position sets. Past `MAX_STATES`
pairs the answer comes from probing the real matcher with typical actions or ARNs (all must
match), which can call a pathological pattern universal that is not; nothing in practice is
that long.

A pattern holding a policy variable (`${aws:username}`) names resources per principal through
a literal value; it is judged with that value unknown, so it never counts as every resource.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pdp.language.variables import VariableSyntaxError, parse_template
from pdp.language.wildcard import QMARK, STAR, Token, compile_glob, normalize, tokenize

__all__ = ["MAX_STATES", "matches_every_action", "matches_every_resource"]

MAX_STATES = 4096

_ANY, _SEGMENT = True, False  # a wildcard's class: crosses `:` or stays inside a segment
_ACTION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_PREFIX = "arn:aws:"

_Unit = tuple[str, str | bool]  # ("=", char) | ("?", class) | ("*", class)


@dataclass(frozen=True, slots=True)
class _Grammar:
    """A deterministic automaton: `step(state, char)` is the next state or None (rejected)."""

    start: int
    accepting: int
    step: Callable[[int, str], int | None]
    literals: frozenset[str]
    probes: tuple[str, ...]


def _action_step(state: int, ch: str) -> int | None:
    # 0: service starts, 1: in the service, 2: name starts, 3: in the name (accepting)
    if ch in _ACTION_CHARS:
        return (1, 1, 3, 3)[state]
    if ch == ":" and state == 1:
        return 2
    return None


def _resource_step(state: int, ch: str) -> int | None:
    # 0-7: reading "arn:aws:"; 8: service starts; 9: in the service; 10: region; 11: account;
    # 12: resource starts; 13: in the resource, after a character other than ":" (accepting);
    # 14: in the resource, after a ":"
    if state < len(_PREFIX):
        return state + 1 if ch == _PREFIX[state] else None
    if state in (8, 12):
        return None if ch == ":" else state + 1
    if state in (9, 10, 11):
        return state + 1 if ch == ":" else state
    return 14 if ch == ":" else 13


_ACTIONS = _Grammar(
    0,
    3,
    _action_step,
    _ACTION_CHARS | {":"},
    ("a:b", "ab:cd", "s3:getobject", "iam:createuser", "a.b-c_d:e.f-g_h"),
)
_RESOURCES = _Grammar(
    0,
    13,
    _resource_step,
    frozenset(_PREFIX),
    (
        "arn:aws:s3:::b",
        "arn:aws:iam::123456789012:user/a",
        "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
        "arn:aws:sqs:us-east-1:123456789012:q",
        "arn:aws:x:y:z:a:b:c",
    ),
)


def _units(tokens: Sequence[Token], dialect: str) -> list[_Unit]:
    """The pattern's positions, with each wildcard's class as pdp.language.wildcard assigns it."""
    units: list[_Unit] = []
    for i, tok in enumerate(tokens):
        if tok is STAR:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            ends_segment = nxt is None or (isinstance(nxt, str) and nxt.startswith(":"))
            units.append(("*", _ANY if dialect == "uniform" or ends_segment else _SEGMENT))
        elif tok is QMARK:
            units.append(("?", _ANY if dialect == "uniform" else _SEGMENT))
        else:
            units.extend(("=", ch) for ch in str(tok))
    return units


def _closure(positions: set[int], units: Sequence[_Unit]) -> frozenset[int]:
    """Add the positions reached by letting stars match nothing."""
    stack = list(positions)
    while stack:
        i = stack.pop()
        if i < len(units) and units[i][0] == "*" and i + 1 not in positions:
            positions.add(i + 1)
            stack.append(i + 1)
    return frozenset(positions)


def _advance(alive: frozenset[int], ch: str, units: Sequence[_Unit]) -> frozenset[int]:
    out: set[int] = set()
    for i in alive:
        if i == len(units):
            continue
        kind, arg = units[i]
        if kind == "=":
            if arg == ch:
                out.add(i + 1)
        elif arg is _ANY or ch != ":":
            out.add(i + 1 if kind == "?" else i)
    return _closure(out, units)


def _complete(grammar: _Grammar, state: int, letters: Sequence[str]) -> str:
    """The shortest text that takes the grammar from `state` to acceptance."""
    paths = {state: ""}
    queue = deque([state])
    while queue:
        at = queue.popleft()
        if at == grammar.accepting:
            return paths[at]
        for ch in letters:
            nxt = grammar.step(at, ch)
            if nxt is not None and nxt not in paths:
                paths[nxt] = paths[at] + ch
                queue.append(nxt)
    raise AssertionError("every grammar state reaches acceptance")


def _missed(tokens: tuple[Token, ...], dialect: str, grammar: _Grammar) -> str | None:
    """A string of the grammar that the pattern does not match, or None if it matches them all."""
    units = _units(tokens, dialect)
    end = len(units)
    alphabet = set(grammar.literals)
    if dialect != "uniform":  # resources: any character may occur, so add the pattern's own
        alphabet |= {arg for kind, arg in units if kind == "=" and isinstance(arg, str)}
        alphabet.add(next(chr(c) for c in range(0x21, 0x110000) if chr(c) not in alphabet))
    letters = sorted(alphabet)
    start = (grammar.start, _closure({0}, units))
    text = {start: ""}  # the shortest text reaching each pair
    queue = deque([start])
    while queue:
        pair = queue.popleft()
        state, alive = pair
        for ch in letters:
            nxt_state = grammar.step(state, ch)
            if nxt_state is None:
                continue
            nxt_alive = _advance(alive, ch, units)
            if not nxt_alive:  # no position left: any completion is a miss
                return text[pair] + ch + _complete(grammar, nxt_state, letters)
            if nxt_state == grammar.accepting and end not in nxt_alive:
                return text[pair] + ch
            nxt = (nxt_state, nxt_alive)
            if nxt not in text:
                if len(text) >= MAX_STATES:
                    matcher = compile_glob(tokens, dialect=dialect)
                    return next((p for p in grammar.probes if not matcher(p)), None)
                text[nxt] = text[pair] + ch
                queue.append(nxt)
    return None


@lru_cache(maxsize=4096)
def matches_every_action(pattern: str) -> bool:
    """True when an `Action` entry matches every action a request can name (`*`, not `s3:*`)."""
    return _missed(normalize(tokenize(pattern.lower())), "uniform", _ACTIONS) is None


@lru_cache(maxsize=4096)
def matches_every_resource(pattern: str, *, substitute: bool = True) -> bool:
    """True when a `Resource` entry matches every ARN (`*`, `arn:*`, `arn:*:*:*:*:*`).

    `substitute` is whether the policy's Version substitutes variables (2012-10-17)."""
    try:
        template = parse_template(pattern, substitute=substitute)
    except VariableSyntaxError:
        return False
    if template.has_variables:
        return False
    return _missed(normalize(template.tokens() or ()), "resource", _RESOURCES) is None
